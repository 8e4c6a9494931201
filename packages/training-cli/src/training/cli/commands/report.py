"""`training report`: HTML and PNG report of a run folder, or of a study folder through a plugin."""

from __future__ import annotations

import argparse
import os
from importlib.metadata import entry_points
from pathlib import Path

from training.cli.commands.common import add_format_option
from training.cli.output import print_json
from training.common.errors import InputError

REPORT_PLUGINS = "training.cli.reports"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("report", help="write an HTML + PNG report of a run or study folder")
    parser.add_argument("folder", type=Path, help="a run folder (metrics.json) or a study folder")
    parser.add_argument("--output", type=Path, help="report folder (default: FOLDER/report)")
    parser.add_argument(
        "--data-path", type=os.path.expanduser, help="data to compute the entity-type confusion on (default: the run's)"
    )
    add_format_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report path as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise InputError(f"{args.folder}: no such folder")
    out_dir = args.output or args.folder / "report"
    if (args.folder / "metrics.json").is_file():
        page = write_folder_report(args.folder, out_dir, args.data_path, args.format)
    else:
        page = _plugin_report(args.folder, out_dir)
    if args.json:
        print_json({"report": str(page)})
    else:
        print(f"report: {page}")
    return 0


def write_folder_report(
    run_dir: Path, out_dir: Path, data_path: str | None = None, data_format: str | None = None
) -> Path:
    """A run folder's report; with data (given, in `data_format` or the run's, or the run's own), also the confusion
    of entity types."""
    from training.cli.report import entity_confusion, write_run_report
    from training.cli.run_paths import run_dataset
    from training.core.run_folder import RunFolder

    confusion = None
    model_dir = run_dir / "model"
    config = RunFolder.of_model(model_dir).read_config()
    if data_path is None and config is not None and config.data.path and Path(config.data.path).exists():
        data_path = config.data.path
    if model_dir.is_dir() and data_path:
        from training.core import evaluate_model

        dataset = run_dataset(model_dir, data_path, data_format)
        split = next((name for name in ("test", "validation", "train") if name in dataset), "train")
        result = evaluate_model(model_dir, None, dataset[split])
        confusion = entity_confusion([doc.tags for doc in dataset[split]], result.predictions)
    metric = config.training.metric_for_best if config is not None else "entity_f1"
    return write_run_report(run_dir, out_dir, confusion, metric)


def _plugin_report(folder: Path, out_dir: Path) -> Path:
    """Ask each installed report plugin (e.g. training-hpo for study folders) whether it knows the folder."""
    for entry in entry_points(group=REPORT_PLUGINS):
        page = entry.load()(folder, out_dir)
        if page is not None:
            return Path(page)
    raise InputError(
        f"{folder}: neither a run folder (metrics.json) nor a folder an installed plugin reports on "
        "(study folders need training-hpo)"
    )
