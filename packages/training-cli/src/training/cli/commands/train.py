"""`training train`: one training run from a config folder into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.commands.common import add_config_options, load_config_and_data
from training.cli.output import add_output_options, note, print_evaluation, print_json
from training.common.malloc import keep_freed_memory


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("train", help="train a model from a config folder")
    add_config_options(parser)
    parser.add_argument("--output", type=Path, required=True, help="run folder to write (resumed if it exists)")
    parser.add_argument("--restart", action="store_true", help="ignore a previous run in the folder")
    add_output_options(parser)
    parser.set_defaults(func=run, resumable=True)


def run(args: argparse.Namespace) -> int:
    from training.core.run_folder import RunFolder

    keep_freed_memory()  # this process is the command's own, and trains
    RunFolder(args.output).check_path()  # before the data loads (train_model checks it again, for its other callers)
    config, dataset = load_config_and_data(args)
    from training.cli.progress import ProgressBar
    from training.core import train_model
    from training.execution import create_run_context, record_lineage

    with create_run_context() as ctx:  # under torchrun every rank runs this command: the first one reports
        for line in dataset.report.lines() if ctx.is_main else ():
            note(args, line)
        bar = ProgressBar(config.training.metric_for_best, enabled=ctx.is_main and not (args.quiet or args.json))
        resume = not args.restart
        # From its training to its lineage the folder is this run's: a second `train` there in between (the lock of
        # `train_model` alone was free) trained over the run, and this one's lineage failed or described it
        with RunFolder(args.output).writing(ctx.is_main):
            result = train_model(config, dataset, args.output, callbacks=[bar], resume=resume, context=ctx)
            if ctx.is_main:
                path, processes = config.data.path, ctx.world_size
                record_lineage(config, dataset, args.output, data_path=path, processes=processes, resume=resume)
    if not ctx.is_main:
        return 0
    if args.json:
        print_json(
            {
                "output_dir": str(result.output_dir),
                "best_epoch": result.metrics.best_epoch,
                "metrics": result.metrics.best,
                "stopped_early": result.metrics.stopped_early,
            }
        )
        return 0
    metrics = result.metrics
    print_evaluation(f"best of {len(metrics.history)} evaluations (epoch {metrics.best_epoch})", metrics.best)
    note(args, f"run folder: {result.output_dir}")
    return 0
