"""`training evaluate`: word-level strict-IOB2 metrics of a saved model on a data split."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from training.cli.commands.common import (
    add_data_options,
    add_precision_option,
    check_replaceable,
    data_options,
    positive_int,
)
from training.cli.output import add_output_options, note, print_evaluation, print_json
from training.cli.run_paths import model_folder, note_unfinished, run_dataset
from training.common.atomic import atomic_write_json
from training.common.plural import counted


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("evaluate", help="evaluate a saved model on a data split (per-entity table)")
    parser.add_argument("model", type=Path, help="a run folder or its model/ folder")
    parser.add_argument("--data-path", type=os.path.expanduser, required=True, help="data folder or file")
    add_data_options(parser)
    parser.add_argument("--split", help="split to evaluate (default: test; a single data file is evaluated whole)")
    parser.add_argument("--output", type=Path, help="also write the result as JSON here")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="windows per forward pass (default 32)")
    add_precision_option(parser)
    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from data.split_names import chosen_split
    from training.core import evaluate_model

    if args.output:
        check_replaceable(args.output, _is_evaluation, "an evaluation record")
    model_dir = model_folder(args.model)
    note_unfinished(args, model_dir)
    dataset = run_dataset(model_dir, args.data_path, data_options(args))
    split = chosen_split(dataset, args.data_path, args.split, "test")
    whole = args.split is None and split != "test"  # a data file (a brat folder) is one split, loaded as train
    result = evaluate_model(model_dir, None, dataset[split], batch_size=args.batch_size, precision=args.precision)
    # Once scored (a refusal stays one line): documents skipped and spans widened change what was scored.
    note(args, "\n".join(dataset.report.lines(whole=whole)))
    record = {
        "model": str(model_dir),
        "data": str(args.data_path),
        "split": split,
        "dataset_fingerprint": dataset.fingerprint,
        "num_documents": result.num_documents,
        "truncated_words": result.truncated_words,
        "precision": result.precision,  # the run's where this machine has it natively, unless --precision said
        "metrics": result.metrics,
    }
    if args.output:
        atomic_write_json(args.output, record)
    if args.json:
        print_json(record)
        return 0
    from training.core.run_metrics import Evaluation

    scored = Path(args.data_path).name if whole else split
    print_evaluation(
        f"{scored}: {counted(result.num_documents, 'document')}", Evaluation.model_validate(result.metrics)
    )
    if result.truncated_words:
        note(args, f"{counted(result.truncated_words, 'word')} fell outside every window and were scored as O")
    return 0


def _is_evaluation(path: Path) -> bool:
    """Whether `path` holds a record `--output` wrote (keys of older versions' records included)."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(record, dict) and {"model", "data", "split", "metrics"} <= record.keys()
