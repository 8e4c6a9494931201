"""Jupyter notebooks: rewrite the code cells' sources, leave every other byte of the file as it was."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from training.common.errors import InputError

# IPython lines that are not Python (`%pip install x`, `!ls`): hidden from the parser, put back unchanged.
_MAGIC = re.compile(r"^[ \t]*[%!].*$", re.MULTILINE)
_PLACEHOLDER = "# training-migrate: ipython line {}"
# json.dumps settings that writers of notebooks use; nbformat's own (indent 1, sorted keys) comes first.
_LAYOUTS = [
    {"indent": indent, "sort_keys": sort_keys, "ensure_ascii": ensure_ascii}
    for indent in (1, 2, 4, None)
    for sort_keys in (True, False)
    for ensure_ascii in (False, True)
]


@dataclass(frozen=True)
class Cell:
    """A code cell whose source changed: its position in the notebook (from 1) and its source before and after."""

    index: int
    before: str
    after: str


def code_cells(notebook: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any], str]]:
    """(position from 1, cell, source) of every code cell, the source joined from nbformat's list of lines."""
    for index, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            yield index, cell, "".join(source) if isinstance(source, list) else source


def rewrite_notebook(raw: bytes, rewrite_code: Callable[[int, str], str]) -> tuple[bytes, list[Cell]]:
    """Apply `rewrite_code(index, source)` to each code cell; return the new file and the changed cells.

    A cell that `rewrite_code` rejects raises `InputError` naming the cell, and nothing is returned.
    """
    try:
        text = raw.decode("utf-8")
        notebook = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"not a notebook (invalid JSON: {error})") from None
    changed: list[Cell] = []
    for index, cell, source in code_cells(notebook):
        if source.lstrip().startswith("%%"):  # a cell magic: the body is not Python
            continue
        try:
            after = _unmasked(rewrite_code(index, _masked(source)), source)
        except InputError as error:
            raise InputError(f"cell {index}, {error}") from None
        if after != source:
            changed.append(Cell(index, source, after))
            cell["source"] = after.splitlines(keepends=True) if isinstance(cell["source"], list) else after
    if not changed:
        return raw, changed
    return _dumps(notebook, text).encode("utf-8"), changed


def _masked(source: str) -> str:
    count = itertools.count()
    return _MAGIC.sub(lambda match: _indent(match.group()) + _PLACEHOLDER.format(next(count)), source)


def _unmasked(rewritten: str, source: str) -> str:
    lines = [match.group().lstrip(" \t") for match in _MAGIC.finditer(source)]
    return re.sub(
        re.escape(_PLACEHOLDER).replace(r"\{\}", r"(\d+)"), lambda match: lines[int(match.group(1))], rewritten
    )


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dumps(notebook: dict[str, Any], original: str) -> str:
    """Serialise in the layout the file had (found by re-serialising the original), else nbformat's."""
    newline = "\n" if original.endswith("\n") else ""
    parsed = json.loads(original)
    for layout in _LAYOUTS:
        if json.dumps(parsed, **layout) + newline == original:
            return json.dumps(notebook, **layout) + newline
    return json.dumps(notebook, **_LAYOUTS[0]) + "\n"
