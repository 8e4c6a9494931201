"""`WholeLinesJournal`: an Optuna journal file whose appends leave whole lines only.

Optuna skips a last line cut short (a full disk, a kill mid-write) when it reads, but its next append continued that
line: the two became one invalid line mid-file, and the study could not be read again. Here an append first cuts
such a tail off, and a failed append takes back the half line it wrote, under the journal's own lock.
"""

from __future__ import annotations

import json
import os
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

_TAIL = 65536  # bytes read at a time, from the end, to find the last whole line


class WholeLinesJournal(JournalFileBackend):
    """A `JournalFileBackend` (with Optuna's default lock) whose file holds whole lines after every append."""

    def __init__(self, file_path: str) -> None:
        self._path, self._whole_lock = file_path, JournalFileSymlinkLock(file_path)
        super().__init__(file_path, self._whole_lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode("utf-8")
        self._whole_lock.acquire()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_APPEND)
            try:
                _append_whole(fd, data)
            finally:
                os.close(fd)
        finally:
            self._whole_lock.release()


def _append_whole(fd: int, data: bytes) -> None:
    """Append `data` after the last whole line of the open file `fd`; on failure, the file ends at a whole line."""
    end = _whole_lines_end(fd)
    os.ftruncate(fd, end)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except BaseException:  # a whole line stays (an fsync that failed): another process may have read it already
        os.ftruncate(fd, _whole_lines_end(fd))
        raise


def _whole_lines_end(fd: int) -> int:
    """Where the last whole line of the open file `fd` ends: its size, unless its last write was cut short."""
    position = os.lseek(fd, 0, os.SEEK_END)
    while position > 0:
        start = max(0, position - _TAIL)
        newline = os.pread(fd, position - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0
