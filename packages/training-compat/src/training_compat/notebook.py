"""Jupyter notebooks: rewrite the code cells' sources, leave every other byte of the file as it was."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from training.common.errors import TOO_DEEP, InputError
from training_compat.ipython import PYTHON_CELL_MAGICS, cell_magic, mask
from training_compat.moves import MODULES
from training_compat.plan import Note
from training_compat.rewrite import rewrite

# A legacy import in text that is not Python (an IPython line, a `%%bash` cell).
_LEGACY = re.compile(
    r"\b(?:from|import)[ \t]+(?:hpo|training_exec|{})\b|\bfrom[ \t]+training[ \t]+import\b".format(
        "|".join(re.escape(module) for module in MODULES if module.startswith("training."))
    )
)
IPYTHON = "IPython syntax"
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


@dataclass(frozen=True)
class CellNote:
    """A note on a line of a code cell (both counted from 1)."""

    cell: int
    note: Note


@dataclass(frozen=True)
class Notebook:
    """A rewritten notebook: the file (the input's bytes when nothing changed), the changed cells, the notes."""

    source: bytes
    cells: tuple[Cell, ...]
    notes: tuple[CellNote, ...]
    imports: int


def rewrite_notebook(raw: bytes) -> Notebook:
    """Rewrite the legacy imports of each code cell, leaving IPython syntax, outputs and metadata; a cell that does
    not parse raises `InputError` naming the cell and line."""
    try:
        text = raw.decode("utf-8")
        notebook = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"not a notebook (invalid JSON: {error})") from None
    except RecursionError:
        raise InputError(f"not a notebook (invalid JSON: {TOO_DEEP})") from None
    changed: list[Cell] = []
    notes: list[CellNote] = []
    imports = 0
    for index, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))  # nbformat keeps a list of lines, or one string
        magic = cell_magic(source)
        if magic is not None and magic not in PYTHON_CELL_MAGICS:
            if _LEGACY.search(source):
                why = f"a %%{magic} cell is not Python; migrate the imports in it by hand"
                notes.append(CellNote(index, Note(1, why, IPYTHON)))
            continue
        masked = mask(source)
        try:
            result = rewrite(masked.code.encode("utf-8"))
        except InputError as error:
            raise InputError(f"cell {index}, {error}") from None
        notes += [CellNote(index, note) for note in result.notes]
        why = "an IPython line is not Python; migrate the import in it by hand"
        notes += [CellNote(index, Note(at, why, IPYTHON)) for at, line in masked.hidden() if _LEGACY.search(line)]
        imports += result.imports
        after = masked.unmask(result.source.decode("utf-8"))
        if after != source:
            changed.append(Cell(index, source, after))
            cell["source"] = _lines(after) if isinstance(cell["source"], list) else after
    if not changed:
        return Notebook(raw, (), tuple(notes), imports)
    return Notebook(_dumps(notebook, text).encode("utf-8"), tuple(changed), tuple(notes), imports)


def _lines(source: str) -> list[str]:
    """nbformat's list of lines: split after each newline only (`str.splitlines` also splits at form feeds)."""
    return [line for line in re.split(r"(?<=\n)", source) if line]


def _dumps(notebook: dict[str, Any], original: str) -> str:
    """Serialise in the layout the file had (found by re-serialising the original), else nbformat's."""
    newline = "\n" if original.endswith("\n") else ""
    parsed = json.loads(original)
    for layout in _LAYOUTS:
        if json.dumps(parsed, **layout) + newline == original:
            return json.dumps(notebook, **layout) + newline
    return json.dumps(notebook, **_LAYOUTS[0]) + "\n"
