"""The layout of a study folder, its manifest, and the only way anything in it is deleted.

<study_dir>/study.json         manifest: study name and storage (without password)
<study_dir>/study.db           default SQLite storage (or study.journal)
<study_dir>/splits.json        the k folds, made once per study
<study_dir>/cache/             tokenised features shared by every trial
<study_dir>/trials/<n>/fold-<k>/   one training run folder per trial and fold
<study_dir>/best_config.json   the best trial, for final training
<study_dir>/report/            plots and index.html
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from pydantic import BaseModel, ConfigDict

from training.common.atomic import atomic_write_text, check_folder
from training.common.errors import ConfigError, InputError
from training.common.file_lock import file_lock, remove_made
from training.config.validation import read_record
from training.core.run_folder import STUDY_MANIFEST, RunFolder


class StudyManifest(BaseModel):
    """`study.json`: which study of which storage a study folder holds (the storage URL without its password)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["training.hpo-study"] = "training.hpo-study"
    study_name: str
    storage: str
    study_dir: str | None = None  # the folder's absolute path when written (None in manifests from before it was)


class _Inside:
    """A read-only attribute: the path `name` in the study folder."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, folder: None, owner: type[StudyFolder]) -> _Inside: ...
    @overload
    def __get__(self, folder: StudyFolder, owner: type[StudyFolder]) -> Path: ...
    def __get__(self, folder: StudyFolder | None, owner: type[StudyFolder]) -> _Inside | Path:
        """The path in `folder`; the descriptor itself on the class (as help(), inspect and sphinx read it)."""
        return self if folder is None else folder.root / self.name


@dataclass(frozen=True)
class StudyFolder:
    """Paths of one study folder."""

    root: Path
    manifest = _Inside(STUDY_MANIFEST)
    database = _Inside("study.db")
    journal = _Inside("study.journal")
    splits = _Inside("splits.json")
    recovery_lock = _Inside(".recovery.lock")
    lock = _Inside(".study.lock")  # held by a process that reads the study, then writes this folder from what it read
    cache = _Inside("cache")
    best_config = _Inside("best_config.json")
    report = _Inside("report")
    trials = _Inside("trials")

    def trial(self, number: int) -> Path:
        return self.trials / str(number)

    def fold(self, number: int, fold: int) -> Path:
        return self.trial(number) / f"fold-{fold}"

    def check_path(self) -> None:
        """Refuse, before any work, a study folder path that is (or lies inside) a file, or a folder that holds a
        training run and no study: the study's files would mix with the run's."""
        check_folder(self.root, "a study folder (an existing one or a new path)")
        run_files = RunFolder(self.root).run_files()
        if run_files and not self.manifest.is_file():
            raise InputError(
                f"{self.root}: holds a training run ({', '.join(run_files)}), where the study's files would mix with "
                "the run's; choose another study folder"
            )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's `lock`; a folder made for it that holds nothing else when the hold ends in an error (a
        refused sweep) is removed again, with the parents made for it: the refused new folder is left as it was."""
        made = [path for path in (self.root, *self.root.parents) if not path.exists()]  # deepest first
        with file_lock(self.lock):
            try:
                yield
            except BaseException:
                remove_made(self.root, self.lock, made)
                raise

    def write_manifest(self, manifest: StudyManifest) -> None:
        atomic_write_text(self.manifest, manifest.model_dump_json(indent=2) + "\n")

    def read_manifest(self) -> StudyManifest:
        """The manifest; a folder without one is not a study folder."""
        if not self.manifest.is_file():
            raise InputError(
                f"{self.root}: not a study folder (no study.json); start a sweep there with `training hpo run`"
            )
        return read_record(StudyManifest, self.manifest, "study manifest")

    def remove(self, path: Path) -> None:
        """Delete `path` (a file or folder) inside the study folder; never through a link, never outside the folder."""
        base = Path(os.path.abspath(self.root))
        target = Path(os.path.abspath(path))
        try:
            parts = target.relative_to(base).parts
        except ValueError:
            raise InputError(f"{path}: refusing to delete it: it lies outside the study folder {base}") from None
        if not parts:
            raise InputError(f"{path}: refusing to delete the study folder itself")
        current = base.resolve()
        for part in parts:
            current = current / part
            if current.is_symlink():
                raise InputError(f"{path}: refusing to delete through the symbolic link {current} in the study folder")
        # Workers of one study clean up side by side: a rename claims the path, so one of them deletes it.
        try:
            claimed = current.rename(current.with_name(f".{current.name}.{uuid.uuid4().hex}.removing"))
        except FileNotFoundError:  # already removed by another worker
            return
        if claimed.is_dir():
            shutil.rmtree(claimed)
        else:
            claimed.unlink()


DEFAULT_STUDIES = Path("studies")


def default_study_dir(name: str) -> Path:
    """`studies/<name>`, for a study name that is one plain folder name: `..` or `a/../..` would put the study's files
    (and its cleanup) elsewhere, such as the working folder."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ConfigError(
            f"study name {name!r}: cannot be a folder of {DEFAULT_STUDIES}/ (one name, without '/', not '.' or "
            "'..'); pass --study-dir, or rename the study"
        )
    return DEFAULT_STUDIES / name
