"""`training splits`: write document-level k-fold splits for a data set."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.commands.common import add_config_options, check_replaceable, load_config_and_data, whole_number
from training.cli.output import add_output_options, note, print_json, print_table
from training.common.errors import DataError, InputError
from training.core.run_folder import STUDY_MANIFEST


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("splits", help="write k-fold cross-validation splits (splits.json)")
    add_config_options(parser)
    parser.add_argument("-k", "--folds", type=whole_number(2), default=5, help="number of folds (default 5)")
    parser.add_argument("--seed", type=int, help="seed of the folds; default: training.seed, as in a sweep")
    parser.add_argument(
        "--no-stratify", action="store_true", help="do not balance entity types across folds; default: data.stratify"
    )
    parser.add_argument(
        "--group-by",
        choices=["group", "none"],
        help="keep documents of one group (CoNLL -DOCSTART- document) in one fold; default: data.group_by (group)",
    )
    parser.add_argument("--output", type=Path, default=Path("splits.json"), help="file to write (default: splits.json)")
    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.core.cv_utils import create_kfold_splits

    study = args.output.parent
    if (study / STUDY_MANIFEST).is_file():  # its splits.json: the folds the sweep made once, which resume reads
        raise InputError(
            f"--output {args.output}: lies in the study folder {study}, whose folds (splits.json) its trials were "
            "trained on; write the splits outside it"
        )
    check_replaceable(args.output, _is_splits, "a splits file")
    config, dataset = load_config_and_data(args)
    group_by = config.data.group_by if args.group_by is None else {"group": "group", "none": None}[args.group_by]
    # The config's seed and stratification, as a sweep makes its folds (`--seed` set training.seed in it).
    stratify = config.data.stratify and not args.no_stratify
    splits = create_kfold_splits(dataset, args.folds, seed=config.training.seed, stratify=stratify, group_by=group_by)
    path = splits.save(args.output)
    if args.json:
        print_json(
            {
                "path": str(path),
                "folds": [
                    {"train": len(f.train_indices), "validation": len(f.validation_indices)} for f in splits.folds
                ],
                "dataset_fingerprint": splits.dataset_fingerprint,
                "notes": list(splits.notes),
            }
        )
        return 0
    print_table(
        f"{splits.k} folds of {len(dataset['train'])} documents",
        ("fold", "train", "validation"),
        [(f.index, len(f.train_indices), len(f.validation_indices)) for f in splits.folds],
    )
    for line in splits.notes:
        note(args, line)
    note(args, f"wrote {path}")
    return 0


def _is_splits(path: Path) -> bool:
    """Whether `path` holds splits (this command's output, which it may replace)."""
    from training.core.cv_utils import KFoldSplits

    try:
        KFoldSplits.load(path)
    except DataError:
        return False
    return True
