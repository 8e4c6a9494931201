"""A data file's text as UTF-8: all of it, for reading, or its start, for telling its format."""

from __future__ import annotations

import codecs
from pathlib import Path

from training.common.errors import DataError

HEAD_BYTES = 64 * 1024  # enough for a file's first records; a format is told by them, not by a whole corpus


class EncodingError(DataError):
    """Text that is not UTF-8, with its `line` (None for a whole UTF-16 or UTF-32 file) and `reason` apart, for a
    reader of another kind of file to word its own message; the parts are its `args`, so it pickles whole."""

    def __init__(self, where: str, line: int | None, reason: str) -> None:
        super().__init__(where, line, reason)
        self.where, self.line, self.reason = where, line, reason

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.reason}" if self.line is not None else f"{self.where}: {self.reason}"


def read_text(path: Path) -> str:
    """The file's text as UTF-8 (a BOM is allowed); anything else is a `DataError`."""
    return decode_text(_read_bytes(path), str(path))


def decode_text(raw: bytes, where: str) -> str:
    """`raw` (the contents of `where`, a file or standard input) as UTF-8 (a BOM is allowed), else `EncodingError`."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):  # Notepad's "Unicode", PowerShell 5's `>`
            utf = "UTF-32" if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else "UTF-16"
            reason = f"{utf} text (it starts with a {utf} byte-order mark); save it as UTF-8"
            raise EncodingError(where, None, reason) from error
        line = raw[: error.start].count(b"\n") + 1
        reason = f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); re-encode the text as UTF-8"
        raise EncodingError(where, line, reason) from error
    if "\x00" in text[:2]:  # UTF-16 or UTF-32 of ASCII text without a byte-order mark: valid UTF-8, NUL after NUL
        reason = "starts with NUL characters, as UTF-16 or UTF-32 text without a byte-order mark does; save it as UTF-8"
        raise EncodingError(where, 1, reason)
    return text


def read_head(path: Path, size: int = HEAD_BYTES) -> str:
    """The text of the first `size` bytes of the file at `path`: a character cut there is left out, and bytes that
    are not UTF-8 are replaced (reading the whole file names them)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    return decoder.decode(_read_bytes(path, size), final=False)


def _read_bytes(path: Path, size: int = -1) -> bytes:
    """The first `size` bytes of the file at `path` (all of them by default)."""
    try:
        with path.open("rb") as file:
            return file.read(size)
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from error
