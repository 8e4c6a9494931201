"""Arguments and steps several commands share: the config folder and the data set."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from data.formats import FORMATS
from data.text_files import ENCODINGS, is_text_encoding
from training.cli.run_paths import DataOptions
from training.common.atomic import check_file_target, check_writable
from training.common.errors import InputError
from training.config.schema import DataColumns, PrecisionChoice

if TYPE_CHECKING:
    from data.loaders import Dataset
    from training.config import TrainingConfig


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for sizes and counts: a whole number of at least `minimum`, and at most `maximum` where one
    is given (else a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got {text!r}")
        return value

    return parse


positive_int = whole_number(1)


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """`--precision`, for the commands that run a saved torch model (an exported folder computes in its own)."""
    parser.add_argument(
        "--precision",
        choices=get_args(PrecisionChoice),
        help="torch's precision (default: the one the run evaluated in, where this machine computes it natively; "
        "else fp32)",
    )


def check_replaceable(path: Path, earlier: Callable[[Path], bool], what: str) -> None:
    """Refuse an `--output` file that exists and is not an earlier `what`: it may be one of the command's inputs (a
    run's metrics.json, the data, a config file), which the write would lose; or a folder, or a place no file can be
    written (under /proc, a read-only folder), before any work: the write came last, and failed with an OSError."""
    check_file_target(path)
    check_writable(path.parent, "a folder to write the file in", "--output", named=path)
    if path.is_file() and path.stat().st_size and not earlier(path):  # an empty file (`mktemp`) holds nothing
        raise InputError(f"{path}: not {what}, and --output would replace it; write to a new file (or an earlier one)")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """`--config-dir`, `--backbone`, `--data`, `--data-path` and repeatable `--set key=value`."""
    parser.add_argument("--config-dir", type=Path, default=Path("configs"), help="config folder (default: configs)")
    parser.add_argument("--backbone", help="model config name: model/<NAME>.yaml")
    parser.add_argument("--data", help="data config name: data/<NAME>.yaml")
    parser.add_argument("--data-path", type=os.path.expanduser, help="data folder or file (overrides data.path)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. training.learning_rate=3e-5 (repeatable)",
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """`--format`, `--encoding` and `--columns` of the data given with `--data-path`, which need not be the run's."""
    parser.add_argument(
        "--format", choices=("auto", *FORMATS), help="format of --data-path (default: the run's; auto: detected)"
    )
    parser.add_argument(
        "--encoding", type=_encoding, help="text encoding of --data-path's files (default: the run's data.encoding)"
    )
    parser.add_argument(
        "--columns",
        type=_columns,
        metavar="TOKENS,TAGS",
        help="the words' and tags' columns of --data-path: CoNLL positions (1,2; 0 first, -1 last) or header names "
        "(Word,Tag) (default: the run's data.columns where that data takes them)",
    )
    parser.add_argument(
        "--tag-names",
        type=_tag_names,
        metavar="NAMES",
        help="the names of --data-path's integer tags in id order, as O,B-PER,I-PER "
        "(default: the run's data.tag_names)",
    )


def data_options(args: argparse.Namespace) -> DataOptions:
    """What `add_data_options` read."""
    return DataOptions(args.format, args.encoding, args.columns, args.tag_names)


def _columns(text: str) -> DataColumns:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(parts) or any(part.startswith("--") for part in parts):
        raise argparse.ArgumentTypeError(f"expected TOKENS,TAGS (positions: 1,2; names: Word,Tag), got {text!r}")
    tokens, tags = (int(part) if part.removeprefix("-").isdigit() else part for part in parts)
    return DataColumns(tokens=tokens, tags=tags)


def _tag_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names) or len(names) < 2:
        raise argparse.ArgumentTypeError(f"expected the tag names in id order, as O,B-PER,I-PER, got {text!r}")
    twice = [name for name in names if names.count(name) > 1]  # a typo merges two tags' words
    if twice:
        raise argparse.ArgumentTypeError(f"names {twice[0]!r} twice; expected one name per tag id, got {text!r}")
    return names


def _encoding(name: str) -> str:
    if not is_text_encoding(name):
        raise argparse.ArgumentTypeError(f"unknown encoding {name!r}; expected {ENCODINGS}")
    return name


def load_config_and_data(args: argparse.Namespace) -> tuple[TrainingConfig, Dataset]:
    """The config of the options, and the data set it points at, loaded with its format, schema and policies."""
    from training.config import build_training_config

    config = build_training_config(args, args.config_dir)
    return config, config.data.load()
