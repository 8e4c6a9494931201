"""The format a data file's start shows, whatever its suffix, and the format a run's settings read other data in."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from data.formats import conll_text, json_format
from data.hf_datasets import is_datasets_input
from data.split_names import split_files
from data.text_files import read_head
from training.common.errors import DataError


def own_format(data_asset: str | os.PathLike[str], format: str) -> str:
    """The format a run's `format` reads other data at `data_asset` in: that one, unless its files' content shows
    another (JSON lines after a CoNLL run, spans after a tokens run, CoNLL after a JSON one); then the one they show,
    or auto where they show two. A suffix alone changes nothing: JSON lines saved as `.txt` read as spans stay so."""
    if format == "auto" or is_datasets_input(data_asset):
        return format
    path = Path(data_asset)
    files = split_files(path).values() if path.is_dir() else [path]
    shown = {content_format(file) for file in files} - {None}
    if shown <= {format}:
        return format
    return shown.pop() if len(shown) == 1 else "auto"


def content_format(file: Path) -> str | None:
    """`spans` or `tokens` by the first JSON record of `file` (as `detect_format` tells them), `conll` where its first
    line is a token line, else None (no such file, or a start that shows neither); only the file's start is read."""
    if not file.is_file():
        return None
    text = read_head(file)
    if text.lstrip(" \t\r\n")[:1] in ("{", "["):
        # A first record cut at the head's end (or invalid JSON, or a CoNLL token `[`) shows no JSON format here; the
        # load that follows reads the whole file and names what is wrong with it.
        with suppress(DataError):
            return json_format(file, text)
    return "conll" if conll_text(text) else None
