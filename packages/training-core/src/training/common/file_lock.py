"""An exclusive lock on a file, for read-modify-write of files that several processes of one host share."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def file_lock(lock_file: Path | None, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (flock: threads and processes of one host exclude each other); no lock
    without a file, or on Windows (there, such writers are not serialised). Not `wait`: a `BlockingIOError` at once
    where another holds it. A holder may remove the file (and the folder it made): waiters lock the one made anew."""
    if lock_file is None or sys.platform == "win32":
        yield
        return
    import fcntl  # not at import: there is none on Windows

    while True:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                if _same_file(handle.fileno(), lock_file):  # else its holder removed it: lock the one there now
                    yield
                    return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _same_file(descriptor: int, path: Path) -> bool:
    """Whether the open file `descriptor` is still the file at `path` (not removed, nor replaced, meanwhile)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(descriptor)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def remove_made(folder: Path, lock_file: Path, made: Sequence[Path]) -> None:
    """Remove `lock_file` and the folders `made` for it (deepest first, `folder` among them) where `folder` holds
    nothing else: its holder, refused, leaves the new folder as it was. Only while holding it: a waiter then locks the
    file made anew, not the removed one it had opened."""
    with contextlib.suppress(OSError):  # removed already, or another process writes there now
        if made and list(folder.iterdir()) == [lock_file]:
            lock_file.unlink()
            for path in made:
                path.rmdir()
