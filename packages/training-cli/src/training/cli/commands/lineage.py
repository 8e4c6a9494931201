"""`training lineage`: where a model came from: trial, study, data, config and code."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.output import print_json, print_table


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("lineage", help="show the lineage of a trained model")
    parser.add_argument("folder", type=Path, help="a run folder (train or final), its model/ folder or an export")
    parser.add_argument("--json", action="store_true", help="print the lineage record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.execution import extract_lineage_from_best_model

    lineage = extract_lineage_from_best_model(args.folder)
    record = lineage.model_dump(mode="json")
    if args.json:
        print_json(record)
        return 0
    study = record.pop("study") or {}
    fields = list(record.items()) + [(f"study.{key}", value) for key, value in study.items()]
    rows = [
        (key, value if isinstance(value, (str, int, float)) or value is None else _short(value))
        for key, value in fields
    ]
    print_table(f"lineage of {args.folder}", ("field", "value"), rows)
    return 0


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."
