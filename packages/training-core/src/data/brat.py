"""brat standoff folders, as brat and INCEpTION export them and many biomedical and clinical NER corpora ship: each
`NAME.txt` beside its `NAME.ann` is a document, whose `T` lines are its entities, but for the triggers of events (a `T`
line an `E` line names first: `E1<TAB>Binding:T2 Theme:T1`), which are counted; the other lines (relations, events,
attributes, normalisations, notes) name no entity and are skipped."""

from __future__ import annotations

import codecs
import contextlib
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path

from data.formats import LINE_BREAK, Record
from data.split_names import SPLIT_ALIASES, SPLIT_ORDER, split_folders
from data.text_files import read_data
from training.common.errors import DataError

# `TYPE START END`, the fragments of a discontinuous span after `;` (`Organization 25 32;33 40`).
_ENTITY = re.compile(r"(\S+) ((?:\d+ \d+;)*\d+ \d+)\s*", re.ASCII)
_TRIGGER = re.compile(r"E\w*\t[^:\s]+:(T\w+)")  # an event line's first argument: its trigger's id
_LAYOUT = "a folder of NAME.txt and NAME.ann pairs, or train, dev (or devel, validation) and test subfolders of them"


def is_brat(path: Path) -> bool:
    """Whether `path` is a folder holding .ann files, or split subfolders (`train`, `dev`, `test`) holding them."""
    return path.is_dir() and any(_files(folder, ".ann") for folder in [path, *split_folders(path).values()])


def brat_splits(folder: Path) -> dict[str, Path]:
    """The folder of each split, in our order: `folder` itself (the `train` split) where it holds .ann files, else
    its subfolders named by a split."""
    if not is_brat(folder):
        raise DataError(f"{folder}: no .ann files; the brat format reads {_LAYOUT}")
    subfolders = split_folders(folder)
    if _files(folder, ".ann"):
        if subfolders:  # the subfolders' documents would not be read
            named = ", ".join(f"{sub.name}/" for sub in subfolders.values())
            raise DataError(f"{folder}: holds .ann files beside split subfolders ({named}); keep one layout")
        return {"train": folder}
    found: dict[str, Path] = {}
    for name, sub in subfolders.items():
        split = SPLIT_ALIASES[name.lower()]
        if split in found:
            raise DataError(f"{folder}: both {found[split].name}/ and {name}/ hold the {split!r} split; keep one")
        found[split] = sub
    if "train" not in found:
        named = ", ".join(f"{sub.name}/" for sub in found.values())
        raise DataError(f"{folder}: no train subfolder beside {named}; the brat format reads {_LAYOUT}")
    return {split: found[split] for split in SPLIT_ORDER if split in found}


def brat_records(folder: Path, encoding: str, counts: Counter[str]) -> list[Record]:
    """A span record for each `NAME.txt` and `NAME.ann` pair in `folder`, by name; both files read in `encoding`;
    event triggers skipped are added to `counts`."""
    texts, annotations = _files(folder, ".txt"), _files(folder, ".ann")
    if unpaired := sorted(texts.keys() ^ annotations.keys()):
        name = unpaired[0]
        alone, missing = (texts[name], ".ann") if name in texts else (annotations[name], ".txt")
        raise DataError(
            f"{alone}: no {name}{missing} beside it; each document is a NAME.txt and a NAME.ann (empty for a document "
            "without entities), so move other files out"
        )
    return [_record(texts[name], annotations[name], encoding, counts) for name in sorted(annotations)]


def _record(txt: Path, ann: Path, encoding: str, counts: Counter[str]) -> Record:
    """The span record of one document, on the text as brat counts it (see `_readings`); span checks name the .ann."""
    lines = LINE_BREAK.split(read_data(ann, encoding))
    triggers = {found[1] for line in lines if (found := _TRIGGER.match(line))}
    entities = [(number, line) for number, line in enumerate(lines, start=1) if line.startswith("T")]
    kept = [(number, line) for number, line in entities if line.split("\t", 1)[0] not in triggers]
    counts["triggers_skipped"] += len(entities) - len(kept)
    brat, *others = _readings(txt, encoding)
    try:
        return _document(txt, ann, brat, kept)
    except DataError as error:
        for text in others:
            with contextlib.suppress(DataError):
                return _document(txt, ann, text, kept)
        raise error


def _document(txt: Path, ann: Path, text: str, entities: list[tuple[int, str]]) -> Record:
    spans = [_entity(f"{ann}:{number}", line, txt.name, text) for number, line in entities]
    return Record(1, {"id": txt.stem, "text": text, "annotations": spans}, file=str(ann))


def _readings(txt: Path, encoding: str) -> list[str]:
    """The text of `txt` as brat counts its offsets (universal newlines: CRLF is one character; a BOM is one), then
    as the file holds it (CRLF two), then both without a BOM: other tools count offsets on the file's characters, or
    drop its BOM."""
    text = read_data(txt, encoding)
    with txt.open("rb") as file:
        bom = "\ufeff" if codecs.lookup(encoding).name.startswith("utf-8") and file.read(3) == codecs.BOM_UTF8 else ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    return list(dict.fromkeys([bom + lines, bom + text, lines, text]))


def _entity(where: str, line: str, txt: str, text: str) -> list[int | str]:
    """The span `[start, end, type]` of the entity line `line` on the text `text` of the file named `txt`."""
    fields = line.split("\t", 2)  # the text covered may hold a tab; brat reads a line without it
    found = _ENTITY.fullmatch(fields[1]) if len(fields) >= 2 else None
    if found is None:
        raise DataError(
            f"{where}: expected an entity line 'ID<TAB>TYPE START END<TAB>TEXT' (START END in characters, the "
            f"fragments of a discontinuous span separated by ';'), got {line!r}"
        )
    label, offsets = found.groups()
    fragments = [(int(start), int(end)) for start, end in (part.split(" ") for part in offsets.split(";"))]
    for start, end in fragments:
        if start >= end:
            raise DataError(f"{where}: fragment '{start} {end}' is empty or inverted: its start must be below its end")
        if end > len(text):
            raise DataError(f"{where}: fragment '{start} {end}' is out of range: {txt} has {len(text)} characters")
    if any(after[0] < before[1] for before, after in pairwise(fragments)):
        raise DataError(f"{where}: fragments {offsets!r} overlap or are out of order; expected them in text order")
    cut = " ".join(text[start:end] for start, end in fragments)
    if len(fields) == 3 and cut != fields[2]:
        raise DataError(
            f"{where}: offsets {offsets!r} cut {cut!r} out of {txt}, not {fields[2]!r} as the line says (a text "
            "re-saved with other line endings or in another encoding shifts them)"
        )
    # brat cuts a span at each line break: fragments apart by whitespace alone are one span.
    between = (text[before[1] : after[0]] for before, after in pairwise(fragments))
    if gap := next((part for part in between if part.strip()), None):
        raise DataError(
            f"{where}: {label} span {offsets!r} ({cut!r}) leaves out {gap!r} between its fragments; NER tags cannot "
            "express a gap: annotate the fragments as entities of their own, or one span over the gap"
        )
    return [fragments[0][0], fragments[-1][1], label]


def _files(folder: Path, suffix: str) -> dict[str, Path]:
    """The files of `folder` (not hidden ones) whose names end in `suffix`, by name without it."""
    return {
        file.stem: file
        for file in sorted(folder.iterdir())
        if file.suffix == suffix and file.is_file() and not file.name.startswith(".")
    }
