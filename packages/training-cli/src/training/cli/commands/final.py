"""`training final`: refit the best config of a study on all training data, through a chosen backend."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from training.cli.output import add_output_options, note, print_evaluation, print_json
from training.common.malloc import keep_freed_memory
from training.config.execution import BACKENDS


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("final", help="final (refit) training of a best config")
    parser.add_argument("best_config", type=Path, help="best_config.json written by a sweep")
    parser.add_argument(
        "--data-path", type=os.path.expanduser, help="data folder or file (default: the one in the best config)"
    )
    parser.add_argument("--output", type=Path, required=True, help="final run folder")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="where the job runs (default: the execution config's, else local)"
    )
    parser.add_argument(
        "--nproc-per-node", type=int, help="processes per node (default: the execution config's, else 1)"
    )
    parser.add_argument("--config-dir", type=Path, default=Path("configs"), help="config folder (default: configs)")
    parser.add_argument(
        "--execution",
        metavar="NAME_OR_PATH",
        help="execution/<NAME>.yaml of the config folder, or a file (default with --backend azure: azure)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write the job (Azure: job YAML) and print the command that would run it, without running it",
    )
    parser.add_argument("--force", action="store_true", help="train again even if an identical run finished")
    parser.add_argument(
        "--other-data", action="store_true", help="refit on other data than the sweep's on purpose (lineage notes both)"
    )
    parser.add_argument(
        "--mlflow-uri", metavar="URI", help="log the finished run and its model to MLflow (default: tracking.mlflow)"
    )
    add_output_options(parser)
    parser.set_defaults(func=run, resumable=True)


def run(args: argparse.Namespace) -> int:
    from training.config import BestConfig
    from training.config.builder import section_file
    from training.execution import execute_final_training

    keep_freed_memory()  # this process is the command's own, and trains unless the job goes elsewhere
    best = BestConfig.load(args.best_config)
    name = args.execution or ("azure" if args.backend == "azure" else None)
    execution = section_file(args.config_dir, "execution", name) if name else None
    job = execute_final_training(
        best,
        data_path=args.data_path,
        output_dir=args.output,
        backend=args.backend,
        nproc_per_node=args.nproc_per_node,
        execution_config=execution,
        force=args.force,
        dry_run=args.dry_run,
        other_data=args.other_data,
        tracking_uri=args.mlflow_uri,
    )
    if args.dry_run:  # what would run, as a line to paste into a shell
        summary = {"job": job.id, "status": job.status, "outputs": str(job.output_dir), "command": job.command_line}
        if args.json:
            print_json(summary)
        else:
            note(args, f"dry run: job written to {job.output_dir}; it runs with:")
            print(job.command_line)
        return 0
    if studio_url := getattr(job, "studio_url", None):
        note(args, f"Azure ML job {job.id}: {studio_url}")
    job.wait()
    from training.core.run_folder import RunFolder

    record = RunFolder(job.output_dir).read_metrics()
    metrics, tracked = (record.best if record else None), job.tracked_run
    if args.json:
        outcome = {"job": job.id, "status": job.status, "outputs": str(job.output_dir), "metrics": metrics}
        print_json(outcome | {"mlflow_model": tracked.pyfunc_uri if tracked else None})
        return 0
    print_evaluation(f"final training {job.id}: {job.status}", metrics, entity_title=None)
    note(args, f"final run folder: {job.output_dir}")
    if tracked:
        note(args, f"MLflow model: {tracked.pyfunc_uri} (mlflow.pyfunc.load_model)")
    return 0
