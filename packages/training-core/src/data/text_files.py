"""A file's text, UTF-8 unless a data file's `data.encoding` names another: all of it, for reading, or a data file's
start, for telling its format."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from training.common.errors import DataError

HEAD_BYTES = 64 * 1024  # enough for a file's first records; a format is told by them, not by a whole corpus
ENCODINGS = "a text encoding Python reads, such as utf-8, latin-1 or cp1252"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-16 (LE, BE), UTF-32 BE; UTF-32 LE starts as 16 LE
_LATIN = ("iso8859-1", "iso8859-15")  # latin-1 and latin-9, whose bytes 0x80-0x9f are controls where cp1252 has text
_C1_CONTROL = re.compile("[\x80-\x9f]")
_UTF8 = ("utf-8", "utf-8-sig")  # codecs.lookup's names for utf8, UTF-8, utf_8 and the BOM's utf-8-sig
# Corpora come in the encoding they were made in: CoNLL-2002's Spanish and Dutch files are Latin-1.
_DATA_WAY_OUT = (
    "re-encode the text as UTF-8, or give its encoding in data.encoding (--encoding of evaluate and report): "
    "latin-1 for CoNLL-2002's files"
)


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


def is_text_encoding(name: object) -> bool:
    """Whether `name` names a codec of Python's that decodes bytes to text (not one such as base64 or rot13)."""
    try:
        b"x".decode(name, "replace")  # type: ignore[arg-type]  # a LookupError for an unknown name or bytes to bytes
        b"x".decode(name)  # type: ignore[arg-type]
    except UnicodeDecodeError:  # a text codec (UTF-16: one byte is half a character)
        return True
    # UnicodeError: `undefined`, which decodes nothing, and the domain names' `idna` (replaces nothing) and `punycode`
    except (LookupError, TypeError, UnicodeError):
        return False
    return True


def read_data(path: Path, encoding: str = "utf-8") -> str:
    """A data file's text in `encoding`, its `data.encoding`: UTF-8 as `decode_text` reads it, where a file that is
    not is told of the setting, else that codec's; bytes it cannot decode are an `EncodingError`. A file of UTF-8
    beyond ASCII is read as such in any encoding: a run's Latin-1 reading another corpus would garble its accents; so
    is one without NULs in UTF-16 or UTF-32, where a UTF-16 run read an ASCII file's pairs of letters as CJK ones."""
    raw = _read_bytes(path)
    codec = codecs.lookup(encoding).name
    wide = raw.startswith(_WIDE_BOMS) or _wide_without_bom(raw)  # UTF-16 or UTF-32, which no 8-bit codec should read
    if codec in _UTF8 or (not codec.startswith(("utf-16", "utf-32")) and wide):
        if utf := _bom_utf(raw):  # a codec of Python's reads it: the setting is the way out, as for other encodings
            way_out = f"save it as UTF-8, or set data.encoding: {utf.lower()} (--encoding of evaluate and report)"
            raise EncodingError(str(path), None, f"{utf} text (it starts with a {utf} byte-order mark); {way_out}")
        return decode_text(raw, str(path), _DATA_WAY_OUT)
    if _utf8_beyond_ascii(raw, whole=True) or _no_wide_text(raw, codec):
        return decode_text(raw, str(path))
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].decode(encoding, "replace").count("\n") + 1
        byte = f"byte 0x{raw[error.start]:02x} at offset {error.start}"
        reason = f"not valid {encoding} ({byte}), the encoding data.encoding (or --encoding) names; give the file's"
        raise EncodingError(str(path), line, reason) from error
    if codec in _LATIN and (control := _C1_CONTROL.search(text)) and _decodes(raw, "cp1252"):
        # Windows' text (curly quotes, dashes, the euro sign) read as Latin-1: its controls split words or vanish
        at, shown = control.start(), control.group().encode(encoding).decode("cp1252")
        reason = (
            f"byte 0x{ord(control.group()):02x} at offset {at} is a control character in {encoding}, and {shown!r} in "
            "cp1252, as Windows writes such text; set data.encoding (or --encoding) to cp1252"
        )
        raise EncodingError(str(path), text.count("\n", 0, at) + 1, reason)
    return text


def decode_text(raw: bytes, where: str, way_out: str = "re-encode the text as UTF-8") -> str:
    """`raw` (the contents of `where`, a file or standard input) as UTF-8 (a BOM is allowed), else `EncodingError`
    (a byte that is not UTF-8 offering `way_out`)."""
    if utf := _bom_utf(raw):
        raise EncodingError(where, None, f"{utf} text (it starts with a {utf} byte-order mark); save it as UTF-8")
    if _wide_without_bom(raw):  # told before decoding: UTF-16 of 'Zürich' is not valid UTF-8 at the 'ü'
        reason = "starts with NUL characters, as UTF-16 or UTF-32 text without a byte-order mark does; save it as UTF-8"
        raise EncodingError(where, 1, reason)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0)  # utf-8-sig counts after its BOM
        line = raw[:offset].count(b"\n") + 1
        reason = f"not valid UTF-8 (byte 0x{raw[offset]:02x} at offset {offset}); {way_out}"
        raise EncodingError(where, line, reason) from error


def _bom_utf(raw: bytes) -> str | None:
    """UTF-16 or UTF-32, the byte-order mark `raw` starts with (Notepad's "Unicode", PowerShell 5's `>`), else None."""
    if not raw.startswith(_WIDE_BOMS):
        return None
    return "UTF-32" if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else "UTF-16"


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _wide_without_bom(raw: bytes) -> bool:
    """Whether `raw` starts as UTF-16 or UTF-32 of ASCII text does: half its first four bytes or more are NULs (one
    NUL there is a NUL inside UTF-8 text)."""
    head = raw[:4]
    return bool(head) and head.count(0) * 2 >= len(head)


def read_head(path: Path, size: int = HEAD_BYTES, encoding: str = "utf-8") -> str:
    """The text of the first `size` bytes of the data file at `path` in `encoding`: a character cut there is left
    out, and bytes that `encoding` cannot decode are replaced (reading the whole file names them). A start of UTF-8
    beyond ASCII (a BOM included), or without NULs in UTF-16 or UTF-32, is read as UTF-8, as `read_data` reads the whole
    file."""
    raw = _read_bytes(path, size)
    codec = codecs.lookup(encoding).name
    utf8 = codec in _UTF8 or _utf8_beyond_ascii(raw, whole=False) or _no_wide_text(raw, codec)
    decoder = codecs.getincrementaldecoder("utf-8-sig" if utf8 else encoding)(errors="replace")
    try:
        return decoder.decode(raw, final=False)
    except UnicodeError:  # UTF-16 or UTF-32 without a BOM, which only bytes.decode reads (in this machine's order)
        return raw.decode(encoding, "replace")


def _utf8_beyond_ascii(raw: bytes, whole: bool) -> bool:
    """Whether `raw` (all of a file where `whole`, else its start, perhaps cut inside a character) is UTF-8 text
    beyond ASCII, which no Latin-1 or cp1252 text is; never text of NULs (UTF-16 or UTF-32 of ASCII)."""
    if raw.isascii() or _wide_without_bom(raw):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def _no_wide_text(raw: bytes, codec: str) -> bool:
    """Whether `raw`, to be read in UTF-16 or UTF-32 `codec`, holds no NUL byte, which such text of lines holds in each
    line break: a UTF-8 (or ASCII) file, such as another corpus read with a UTF-16 run's data.encoding."""
    return codec.startswith(("utf-16", "utf-32")) and b"\x00" not in raw


def _read_bytes(path: Path, size: int = -1) -> bytes:
    """The first `size` bytes of the file at `path` (all of them by default)."""
    try:
        with path.open("rb") as file:
            return file.read(size)
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror})") from error
