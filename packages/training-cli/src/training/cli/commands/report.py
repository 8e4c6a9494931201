"""`training report`: HTML and PNG report of a run folder, or of a study folder through a plugin."""

from __future__ import annotations

import argparse
import os
from importlib.metadata import entry_points
from pathlib import Path

from training.cli.commands.common import add_data_options, data_options
from training.cli.output import print_json
from training.common.errors import InputError
from training.core.run_folder import STUDY_MANIFEST, RunFolder

REPORT_PLUGINS = "training.cli.reports"
# of the data a run's report computes its confusion on
_DATA_OPTIONS = ("data_path", "format", "encoding", "columns", "tag_names")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("report", help="write an HTML + PNG report of a run or study folder")
    parser.add_argument("folder", type=Path, help="a run folder (metrics.json) or a study folder")
    parser.add_argument("--output", type=Path, help="report folder (default: FOLDER/report)")
    parser.add_argument(
        "--data-path",
        type=os.path.expanduser,
        help="data to compute the entity-type confusion on (default: the run's); run folders only",
    )
    add_data_options(parser)
    parser.add_argument("--json", action="store_true", help="print the report path as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise InputError(f"{args.folder}: no such folder")
    out_dir = args.output or args.folder / "report"
    run = RunFolder(args.folder)
    if run.metrics.is_file() and not (run.root / STUDY_MANIFEST).is_file():  # a study holding a run is a study
        from training.cli.report import write_run_report

        page = write_run_report(args.folder, out_dir, args.data_path, data_options(args))
    else:
        _refuse_data_options(args)
        page = _plugin_report(args.folder, out_dir)
    if args.json:
        print_json({"report": str(page)})
    else:
        print(f"report: {page}")
    return 0


def _refuse_data_options(args: argparse.Namespace) -> None:
    """The data options choose the data of a run's entity-type confusion: a study report, of trials, has none to use
    them for, and ignoring them would leave the user believing the report read that data."""
    given = [f"--{name.replace('_', '-')}" for name in _DATA_OPTIONS if getattr(args, name) is not None]
    if given:
        verb, pronoun = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise InputError(
            f"{args.folder}: {', '.join(given)} {verb} to a run folder's report only (the data of its entity-type "
            f"confusion), not to a study folder's; leave {pronoun} out"
        )


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
