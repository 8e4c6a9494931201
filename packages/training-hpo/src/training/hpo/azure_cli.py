"""`training hpo azure` (build or submit an Azure ML sweep) and `hpo best --azure-job NAME`; light like `cli`."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from training.common.atomic import check_folder
from training.common.errors import ConfigError
from training.hpo.study_folder import DEFAULT_STUDIES, StudyFolder, default_study_dir

if TYPE_CHECKING:
    from training.config import AzureConfig, BestConfig


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser], best: argparse.ArgumentParser) -> None:
    """Add `hpo azure`, and `--azure-job` (with the workspace options) to `hpo best`."""
    azure = actions.add_parser("azure", help="build (--dry-run) or submit the sweep as an Azure ML sweep job")
    azure.add_argument("--config-dir", type=Path, required=True, help="folder with train.yaml, model/, data/, hpo/")
    azure.add_argument("--hpo", required=True, metavar="NAME_OR_PATH", help="hpo/<NAME>.yaml, or a file")
    azure.add_argument("--backbone", help="model config name to tune (default: the one in train.yaml)")
    azure.add_argument(
        "--data",
        "--data-path",  # as train, splits and final name it
        dest="data",
        type=os.path.expanduser,
        help="azureml:name:version, datastore URI or local path (default: azure.data_asset)",
    )
    azure.add_argument("--output", type=Path, help=f"job folder (default: {DEFAULT_STUDIES}/<hpo name>/azure)")
    azure.add_argument("--max-concurrent-trials", type=int, metavar="N", help="trials Azure runs at once")
    azure.add_argument("--dry-run", action="store_true", help="write sweep_job.yaml and submit nothing")
    azure.add_argument("--wait", action="store_true", help="stream the sweep's status until it ends")
    azure.set_defaults(func=run_sweep)
    best.add_argument("--azure-job", metavar="NAME", help="a finished Azure ML sweep job instead of a local study")
    best.add_argument("--config-dir", type=Path, default=Path("configs"), help="config folder (default: configs)")
    for parser in (azure, best):
        execution_help = "execution/<NAME>.yaml (default: azure), or a file"
        parser.add_argument("--execution", default="azure", metavar="NAME_OR_PATH", help=execution_help)


def azure_settings(config_dir: Path, execution: str) -> AzureConfig:
    """The `azure:` section of the execution config `execution` names in `config_dir`."""
    from training.config.builder import load_execution_config, section_file

    path = section_file(config_dir, "execution", execution)
    settings = load_execution_config(path).azure
    if settings is None:
        raise ConfigError(f"{path}: azure: an Azure ML sweep needs an 'azure:' section (at least 'compute')")
    return settings


def run_sweep(args: argparse.Namespace) -> int:
    from training.config.builder import build_training_config, load_hpo_config, section_file
    from training.hpo.azure_sweep import (
        SWEEP_FILE,
        build_azure_sweep_job,
        submit_azure_sweep_job,
        write_azure_sweep_job,
    )

    if args.output is not None:  # before the job's files are written into it
        check_folder(args.output, "a folder for the sweep job", option="--output")
    azure = azure_settings(args.config_dir, args.execution)
    hpo = load_hpo_config(section_file(args.config_dir, "hpo", args.hpo))
    config = build_training_config({"backbone": args.backbone}, args.config_dir)
    folder = (args.output or default_study_dir(hpo.name) / "azure").resolve()
    job = build_azure_sweep_job(
        hpo, config, azure, folder=folder, data=args.data, max_concurrent_trials=args.max_concurrent_trials
    )
    path = write_azure_sweep_job(job, folder / SWEEP_FILE)
    print(f"sweep job: {path}")
    if args.dry_run:
        print(f"submit it with: az ml job create --file {shlex.quote(str(path))}")  # a command to paste
        return 0
    handle = submit_azure_sweep_job(job, azure, folder=folder)
    print(f"submitted Azure ML sweep {handle.id}: {handle.studio_url}")
    if args.wait:
        handle.stream()
        print(f"sweep {handle.id} completed; next: training hpo best --azure-job {handle.id}")
    return 0


def best_config(args: argparse.Namespace) -> tuple[BestConfig, Path]:
    """`hpo best --azure-job NAME`: the best trial of the sweep as `<study-dir>/best_config.json`."""
    from training.hpo.azure_best import best_config_from_azure_sweep

    folder = args.study_dir or default_study_dir(args.azure_job)
    best = best_config_from_azure_sweep(args.azure_job, azure_settings(args.config_dir, args.execution), folder)
    return best, StudyFolder(folder).best_config
