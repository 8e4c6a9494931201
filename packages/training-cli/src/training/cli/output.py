"""How commands talk to people and scripts: rich tables and messages, or JSON with `--json`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """`--json` for scripts, `--quiet` for nothing but results."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    json.dump(value, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def note(args: argparse.Namespace, message: str) -> None:
    """A human note on stderr (silent with --quiet or --json, so stdout stays parseable)."""
    if not (getattr(args, "quiet", False) or getattr(args, "json", False)):
        print(message, file=sys.stderr)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*(f"{cell:.4f}" if isinstance(cell, float) else str(cell) for cell in row))
    Console().print(table)


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The scalar metrics of a metrics dict, in a stable order."""
    return [(key, value) for key, value in sorted(metrics.items()) if isinstance(value, (int, float))]


def entity_rows(metrics: Mapping[str, Any]) -> list[tuple[str, float, float, float, int]]:
    """Per-entity precision, recall, F1 and support rows."""
    per_entity = metrics.get("per_entity") or {}
    return [(label, row["precision"], row["recall"], row["f1"], row["support"]) for label, row in per_entity.items()]
