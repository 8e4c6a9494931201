"""URLs of local stores (Optuna's and MLflow's SQLite databases, MLflow's folders) that mean the same file from any
working directory: a relative one is read from wherever a process starts, so a resume elsewhere opened a new one."""

from __future__ import annotations

import re
from pathlib import Path

from training.common.home import expand_home

# `postgres//host/db`: a scheme and '//' before any folder, no ':'
_SCHEME_WITHOUT_COLON = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)//")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite database at absolute `path` (`%` and `?` escaped: an escape, the options)."""
    return f"sqlite:///{_url_path(path)}"


def absolute_store_url(url: str, base: Path, *, folders: bool = False) -> str:
    """`url` with a relative SQLite path (`sqlite:///study.db`) made absolute against `base`, and with `folders`, a
    relative folder (MLflow's file store: `mlruns`, `file:./mlruns`) too; any other URL as it is."""
    scheme, separator, rest = url.partition(":///")
    if separator and scheme.split("+")[0] == "sqlite":
        if not rest or rest.startswith(("/", ":memory:")) or rest[1:2] == ":":  # absolute, in memory, C:/
            return url
        return f"{scheme}:///{_url_path(base.resolve())}/{rest}"
    if folders and url.startswith("file:") and not url[5:].startswith("/"):  # `file:./mlruns`
        return (base / url[5:]).resolve().as_uri()
    path = expand_home(url)
    local = ":" not in url or (len(url) > 1 and url[1] == ":")  # no scheme (or a Windows drive)
    return str((base / path).resolve()) if folders and local and not path.is_absolute() else url


def missing_colon(storage: str) -> str | None:
    """Why a storage value that reads as a URL without the ':' of '://' (`postgres//host/db`) is refused, else None:
    read as a journal file path, it made folders named after the URL. '//' after a folder (`/data//x`) is a path."""
    typo = _SCHEME_WITHOUT_COLON.match(storage)
    if typo is None or "://" in storage:
        return None
    return (
        f"'{typo[0]}' lacks the ':' of a URL; expected a URL such as postgresql://host/db or "
        "sqlite:///path/to/study.db, or a journal file path without '//'"
    )


def absolute_tracking_uri(uri: str, base: Path) -> str:
    """An MLflow tracking URI with a relative store (`sqlite:///mlflow.db`, `mlruns`) made absolute against `base`;
    MLflow's URIs without a colon (`databricks`) stay as written."""
    return uri if uri in ("databricks", "databricks-uc", "uc") else absolute_store_url(uri, base, folders=True)


def _url_path(path: Path) -> str:
    return str(path).replace("%", "%25").replace("?", "%3F")
