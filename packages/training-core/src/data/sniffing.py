"""The format a data file's start shows, whatever its suffix, and the format a run's settings read other data in."""

from __future__ import annotations

import os
from pathlib import Path

from data.brat import is_brat
from data.columns import Columns
from data.csv_tables import csv_header
from data.formats import conll_text, json_format
from data.hf_datasets import is_datasets_input
from data.split_names import split_files
from data.text_files import HEAD_BYTES, read_head
from training.common.errors import DataError, InputError


def own_format(
    data_asset: str | os.PathLike[str],
    format: str,
    columns: Columns = Columns(),
    other_data: bool = True,
    encoding: str = "utf-8",
) -> str:
    """The format a run's `format` reads other data at `data_asset` (files in `encoding`) in: that one, unless a
    file's first record cannot be read in it (JSON lines after a CoNLL run); then the one the files show, or auto where
    they show two. A suffix alone changes nothing. Not `other_data` (the run's own), such content is an `InputError`."""
    if format == "auto" or is_datasets_input(data_asset):
        return format
    path = Path(data_asset)
    if is_brat(path):  # .txt/.ann pairs: a folder's layout, not a file's start, shows the format
        shown = {"brat"}
    else:
        files = split_files(path).values() if path.is_dir() else [path]
        shown = {content_format(file, columns, format, encoding) for file in files} - {None}
    if shown <= {format}:
        return format
    if not other_data:
        raise InputError(
            f"{data_asset}: its files show {' and '.join(sorted(shown))} data, not the sweep's data.format {format}: "
            "other data than the sweep's; pass --other-data (other_data=True) if that is intended"
        )
    return shown.pop() if len(shown) == 1 else "auto"


def content_format(
    file: Path, columns: Columns = Columns(), format: str = "auto", encoding: str = "utf-8"
) -> str | None:
    """The format the start of `file` (in `encoding`) shows: a JSON one (`format` where the first record holds its
    keys), `csv` where a header row names the words and tags columns, else `conll`; None for no such file or a blank
    start. A first record cut where the start ends is read on until it completes."""
    if not file.is_file():
        return None
    size = HEAD_BYTES
    while True:
        text = read_head(file, size, encoding)
        start = text.lstrip(" \t\r\n")[:1]
        if not start:
            return None
        if start not in ("{", "["):
            return "csv" if csv_header(file, text, columns) else "conll"
        try:
            return json_format(file, text, columns, format)
        except DataError:
            if file.stat().st_size <= size:  # invalid JSON, or a CoNLL token `[`: the load names what is wrong
                return "conll" if conll_text(text) else None
            size *= 2
