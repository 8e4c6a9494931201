"""How commands talk to people and scripts: rich tables and messages, or JSON with `--json`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.core.run_metrics import Evaluation


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """`--json` for scripts, `--quiet` for nothing but results."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def print_json(value: Any) -> None:
    """One JSON document on stdout; records are written as their JSON form."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # a pydantic record; pydantic itself is not imported for --help
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # an `Entity` (slots: no __dict__)
        return dataclasses.asdict(value)
    return str(value)


def note(args: argparse.Namespace, message: str) -> None:
    """A human note on stderr (silent with --quiet or --json, so stdout stays parseable)."""
    if not (getattr(args, "quiet", False) or getattr(args, "json", False)):
        print(message, file=sys.stderr)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on stdout; title and cells are printed as they are (a `[split]` or a path with brackets is no
    markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title))
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*(Text(_visible(f"{cell:.4f}" if isinstance(cell, float) else str(cell))) for cell in row))
    Console().print(table)


def _visible(cell: str) -> str:
    """`cell` with control characters written as escapes: an entity's text may hold an ESC that would otherwise
    recolour or move the terminal's cursor, or a bidirectional override that would reorder the rest of its line."""
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", lambda c: repr(c[0])[1:-1], cell)


def print_evaluation(title: str, evaluation: Evaluation | None, entity_title: str | None = "per entity") -> None:
    """The scores of an evaluation as a table, then (unless `entity_title` is None) its per-entity table."""
    print_table(title, ("metric", "value"), list(evaluation.scalars().items()) if evaluation else [])
    if entity_title is not None:
        per_entity = evaluation.per_entity if evaluation else {}
        rows = [(label, row.precision, row.recall, row.f1, row.support) for label, row in per_entity.items()]
        print_table(entity_title, ("entity", "precision", "recall", "f1", "support"), rows)
