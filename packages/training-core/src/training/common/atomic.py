"""Atomic writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from training.common.errors import InputError, TrainingError, first_line

# A writer touches its staging entry as it writes: one untouched this long lost its writer (killed mid-write).
STALE_STAGING_S = 3600.0


@functools.lru_cache(maxsize=64)  # bounded: a long sweep writes into a new folder per trial
def _ordinary_modes(folder: Path) -> tuple[int, int]:
    """The file and folder permissions open() and mkdir() give in `folder`, probed (reading the umask would set it
    for every thread); private temporary files and folders get these when they take their final name."""
    probe = Path(tempfile.mkdtemp(prefix=".mode.", suffix=".tmp", dir=folder))
    try:
        os.close(os.open(probe / "file", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        (probe / "folder").mkdir(0o777)
        return stat.S_IMODE((probe / "file").stat().st_mode), stat.S_IMODE((probe / "folder").stat().st_mode)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def check_target(path: str | os.PathLike[str], expected: str) -> Path:
    """`path` as a `Path`; an `InputError` naming the file it lies inside, if any (mkdir would report only "File
    exists"); `expected` says what belongs at `path`."""
    target = Path(path)
    found = next((parent for parent in target.parents if parent.exists()), None)
    if found is not None and not found.is_dir():
        raise InputError(f"{target}: lies inside the file {found}; expected {expected}")
    return target


def check_file_target(path: str | os.PathLike[str]) -> Path:
    """`path` as a `Path` a file can be written at; an `InputError` where it is a folder (os.replace would fail with
    an OSError naming a temporary file), a device, pipe or socket (os.replace put a file in place of `/dev/null` or
    a named pipe, where root may rename) or lies inside a file."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; expected the path of a file to write")
    if target.exists() and not target.is_file():
        raise InputError(f"{target}: is a device, pipe or socket; expected the path of a regular file to write")
    return check_target(target, "the path of a file to write")


def check_folder(path: str | os.PathLike[str], expected: str, option: str = "", *, create: bool = False) -> Path:
    """`path` as a `Path`; an `InputError` where it is, or lies inside, a file, or where the file system cannot hold
    it (a name over its length limit), before any work goes into it; `expected` says what belongs at `path`, `option`
    names the command-line option that gave it. `create`: the folder is made (with its parents), or an `InputError`
    says why it cannot be (under /proc, in a read-only folder)."""
    named = f"{option} " if option else ""
    try:
        target = check_target(path, expected)
        is_file = target.exists() and not target.is_dir()
    except InputError as error:
        raise InputError(f"{named}{error}") from None
    except OSError as error:
        raise InputError(f"{named}{path}: {error.strerror}; expected {expected}") from None
    if is_file:
        raise InputError(f"{named}{target}: is a file; expected {expected}")
    if create:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{named}{target}: cannot be created ({error.strerror}); expected {expected}") from None
    return target


def check_output_folder(
    path: str | os.PathLike[str], earlier: Callable[[Path], bool], what: str, write: str, option: str = ""
) -> Path:
    """`path` as a `Path`; an `InputError`, before any work, where it exists, holds anything and is not an earlier
    `what` (the command's own output, which it may write again): a config folder or a run, whose files `write` (what
    the command would do to them) loses or buries; or where no file can be written in it (`check_writable`); `option`
    names the command-line option that gave it."""
    target = Path(path)
    if target.exists() and not (target.is_dir() and not any(target.iterdir())) and not earlier(target):
        named = f"{option} " if option else ""
        raise InputError(f"{named}{target}: not {what}, and {write}; write to a new folder (or an earlier one)")
    check_writable(target, what, option)  # a report writes its files in it
    return target


def check_writable(folder: str | os.PathLike[str], expected: str, option: str = "", named: Path | None = None) -> None:
    """An `InputError` naming `named` (by default `folder`), before any work, where no file can be written in `folder`
    (under /proc, a read-only folder): the write came last, and failed with an OSError; `expected` says what the folder
    is for. The folders made to find out are removed again (the write makes them)."""
    made = [path for path in (Path(folder), *Path(folder).parents) if not path.exists()]  # deepest first
    try:
        tempfile.TemporaryFile(dir=check_folder(folder, expected, option, create=True)).close()
    except OSError as error:
        choose = f"choose another {option or 'path'}"
        raise InputError(f"{named or folder}: cannot be written ({error.strerror}); {choose}") from None
    finally:
        for path in made:
            with contextlib.suppress(OSError):  # not made (/proc/x), or another process writes there now
                path.rmdir()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path` (with `mode`, else open()'s)."""
    target = check_file_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent, glob.escape(target.name))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _ordinary_modes(target.parent.resolve())[0] if mode is None else mode)
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _name_target(error, target)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Atomically write `value` as indented, key-sorted JSON."""
    return atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temporary sibling folder, then swap it in for `path`; on error `path` is untouched.

    Its files get ordinary permissions, also those written private (safetensors writes 0o600).
    """
    target = check_target(path, "the path of a folder to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent, glob.escape(target.name))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    file_mode, folder_mode = _ordinary_modes(target.parent.resolve())
    try:
        staging.chmod(folder_mode)
        yield staging
        for entry in staging.rglob("*"):
            if entry.is_file() and not entry.is_symlink():
                entry.chmod(file_mode)
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            _remove(retired)
            os.replace(target, retired)
            os.replace(staging, target)
            _remove(retired)
        else:
            os.replace(staging, target)
        _fsync_dir(target.parent)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        _name_target(error, target)
        raise


def _name_target(error: BaseException, target: Path) -> None:
    """Name `target` in `error` where it is an OSError with an errno but no file: a write or fsync that failed (a full
    disk), which the CLI would show as "[Errno 28] No space left on device" alone. In place: its type and words stay
    (a new OSError lost a subclass, and the message of one without an errno: "[Errno None] None")."""
    if isinstance(error, OSError) and error.errno is not None and error.filename is None:
        error.filename = str(target)


def _remove(path: Path) -> None:
    """Delete a folder, or a file or link (a link as a link: rmtree refuses one); nothing if `path` is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def staging_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """What interrupted atomic writes of `path` (a kill -9 mid-write) left beside it: staging files and folders."""
    target = Path(path)
    name = glob.escape(target.name)
    return sorted([*target.parent.glob(f".{name}.*.tmp"), *target.parent.glob(f".{name}.old")])


def remove_stale_staging(folder: str | os.PathLike[str], name: str) -> None:
    """Delete the staging entries of atomic writes (`.<name>.*.tmp`, `name` a glob pattern) in `folder` untouched for
    `STALE_STAGING_S`: a killed writer's. A live writer's entry is younger, so writers never remove each other's."""
    for entry in Path(folder).glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):  # removed meanwhile by another writer of the folder
            is_folder = entry.is_dir() and not entry.is_symlink()
            parts = [entry, *(entry.rglob("*") if is_folder else ())]
            if time.time() - max(part.lstat().st_mtime for part in parts) >= STALE_STAGING_S:
                _remove(entry)


def remove_staging_leftovers(folder: str | os.PathLike[str]) -> None:
    """Delete what atomic writes cut short left anywhere under `folder` (staging `.*.tmp`, retired `.*.old`, unless
    `put_back_retired` puts it back). Only for a folder whose writers have all ended."""
    for leftover in sorted([*Path(folder).rglob(".*.tmp"), *Path(folder).rglob(".*.old")]):
        with contextlib.suppress(OSError):  # already gone with a folder above it, or not ours to remove
            if not put_back_retired(leftover):
                _remove(leftover)


def put_back_retired(leftover: Path) -> bool:
    """Whether `leftover` is a retired folder (`.X.old`) that `atomic_directory`'s swap left as the only copy (it
    crashed before the new `X` came in), now put back as `X`."""
    kept = leftover.with_name(leftover.name[1:].removesuffix(".old"))
    if leftover.suffix != ".old" or not leftover.is_dir() or os.path.lexists(kept):
        return False
    os.replace(leftover, kept)
    return True


def write_failure(path: str | os.PathLike[str], what: str, error: BaseException) -> TrainingError:
    """The error for a failed write of `what` into `path`: its reason in one line and the space left on the disk."""
    target = Path(path)
    existing = next((folder for folder in (target, *target.parents) if folder.exists()), None)
    space = f"; {shutil.disk_usage(existing).free / 2**20:.1f} MiB free on its disk" if existing is not None else ""
    return TrainingError(f"{target}: cannot write {what} ({type(error).__name__}: {first_line(error)}){space}")
