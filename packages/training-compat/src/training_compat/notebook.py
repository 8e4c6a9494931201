"""Jupyter notebooks: rewrite the code cells' sources, leave every other byte of the file as it was."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

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
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


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
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"not a notebook (invalid JSON: {error})") from None
    except RecursionError:
        raise InputError(f"not a notebook (invalid JSON: {TOO_DEEP})") from None
    changed: list[Cell] = []
    notes: list[CellNote] = []
    imports = 0
    pieces: list[str] = []  # the file with the changed sources spliced in: every other byte stays as it was
    done = 0
    for index, start, end in _code_sources(text):
        value = json.loads(text[start:end])
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(line, str) for line in value))):
            raise InputError(f"not a notebook (the source of cell {index} is neither text nor a list of lines)")
        source = "".join(value)  # nbformat keeps a list of lines, or one string
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
            pieces += [text[done:start], _source_json(text[start:end], after, ensure_ascii=text.isascii())]
            done = end
    if not changed:
        return Notebook(raw, (), tuple(notes), imports)
    return Notebook("".join([*pieces, text[done:]]).encode("utf-8"), tuple(changed), tuple(notes), imports)


def _code_sources(text: str) -> list[tuple[int, int, int]]:
    """(position among the cells from 1, start, end) of each code cell's source in the JSON `text`; nbformat 3 keeps
    the cells in worksheets, and a code cell's source under "input"."""
    top = _object(text, _SPACE.match(text).end(), "the file")
    if "worksheets" in top:
        sheets = [_object(text, start, "a worksheet") for start, _ in _array(text, top["worksheets"], "worksheets")]
        lists, key = [sheet["cells"] for sheet in sheets if "cells" in sheet], "input"
    elif "cells" in top:
        lists, key = [top["cells"]], "source"
    else:
        raise InputError("not a notebook (no cells)")
    cells = [_object(text, start, "a cell") for found in lists for start, _ in _array(text, found, "cells")]
    return [
        (index, *cell[key])
        for index, cell in enumerate(cells, start=1)
        if key in cell and "cell_type" in cell and json.loads(text[slice(*cell["cell_type"])]) == "code"
    ]


def _object(text: str, start: int, what: str) -> dict[str, tuple[int, int]]:
    """Where each member's value of the JSON object at `start` lies in `text` (a repeated key: the last, as json)."""
    if text[start] != "{":
        raise InputError(f"not a notebook ({what} is not a JSON object)")
    return {key or "": (at, end) for key, at, end in _entries(text, start)}


def _array(text: str, span: tuple[int, int], what: str) -> list[tuple[int, int]]:
    """Where each item of the JSON array at `span` lies in `text`."""
    if text[span[0]] != "[":
        raise InputError(f"not a notebook ({what} is not a JSON array)")
    return [(at, end) for _, at, end in _entries(text, span[0])]


def _entries(text: str, start: int) -> list[tuple[str | None, int, int]]:
    """(key, or None in an array; start; end) of each entry of the JSON object or array at `start` in valid JSON."""
    close = "}" if text[start] == "{" else "]"
    found: list[tuple[str | None, int, int]] = []
    at = _SPACE.match(text, start + 1).end()
    while text[at] != close:
        key = None
        if close == "}":
            key, at = json.decoder.scanstring(text, at + 1)
            at = _SPACE.match(text, _SPACE.match(text, at).end() + 1).end()  # past the colon
        end = _DECODER.raw_decode(text, at)[1]
        found.append((key, at, end))
        at = _SPACE.match(text, end).end()
        if text[at] == ",":
            at = _SPACE.match(text, at + 1).end()
    return found


def _source_json(old: str, after: str, ensure_ascii: bool) -> str:
    """`after` as JSON laid out as `old`, the source it replaces: one string, or a list of lines where an unchanged
    line keeps its bytes and new ones are spaced as the old ones."""
    if old.startswith('"'):
        return json.dumps(after, ensure_ascii=ensure_ascii)
    items = _entries(old, 0)
    kept = {json.loads(old[start:end]): old[start:end] for _, start, end in items}
    lines = [kept.get(line) or json.dumps(line, ensure_ascii=ensure_ascii) for line in _lines(after)]
    opening, closing = old[1 : items[0][1]], old[items[-1][2] : -1]
    between = old[items[0][2] : items[1][1]] if len(items) > 1 else "," + opening if "\n" in opening else ", "
    return f"[{opening}{between.join(lines)}{closing}]"


def _lines(source: str) -> list[str]:
    """nbformat's list of lines: split after each newline only (`str.splitlines` also splits at form feeds)."""
    return [line for line in re.split(r"(?<=\n)", source) if line]
