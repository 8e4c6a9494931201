"""The job runner of every backend: `python -m training.execution.runner job.json [--data PATH] [--output DIR]`
(or `run_job`) loads and splits the data, trains, and writes `lineage.json`; exits 0 done, 1 failure, 2 bad input.
`record_lineage` writes the `lineage.json` of a run that `train_model` trained directly (`training train`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from data.loaders import Dataset
from training.common.arguments import non_empty
from training.common.errors import InputError, TrainingError, print_error
from training.common.home import expand_home
from training.common.malloc import keep_freed_memory
from training.config.execution import is_local
from training.config.schema import TrainingConfig
from training.core.run_context import RunContext, create_run_context
from training.core.run_folder import RunFolder
from training.core.trainer import TrainResult, train_model
from training.execution.job_spec import DataPlan, JobSpec, Resources
from training.execution.lineage import LINEAGE_FILE, Lineage
from training.execution.provenance import build_lineage, code_revision


def run_job(
    spec: JobSpec,
    *,
    dataset: Dataset | None = None,
    context: RunContext | None = None,
    backbone_folder: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train the job `spec` describes into `spec.output_dir`; `dataset` replaces loading `spec.data_path`;
    `backbone_folder` holds the files of the spec's local backbone here (an Azure job's mounted copy of the folder),
    while the run's config and lineage name the backbone as the spec does."""
    if dataset is None:
        dataset = spec.load_data()
    source = spec.data_path or "the dataset"
    spec.check_data(dataset.fingerprint, source)
    training_data, evaluated_on = spec.data.apply(dataset, spec.config.data.holdout_fraction, source)
    ctx = context or create_run_context()
    try:
        output = Path(spec.output_dir)
        with RunFolder(output).writing(ctx.is_main):  # from its job.json to its lineage, the folder is this job's
            if ctx.is_main:
                spec.save_to_output()
            result = train_model(
                spec.config, training_data, output, context=ctx, resume=spec.resume, backbone_folder=backbone_folder
            )
            if ctx.is_main:
                trained_on = tuple(name for name in spec.data.train if name in dataset)
                _write_lineage(spec, output, dataset.fingerprint, trained_on, evaluated_on, backbone_folder)
        ctx.barrier()
        return result
    finally:
        if context is None:
            ctx.close()


def record_lineage(
    config: TrainingConfig,
    dataset: Dataset,
    output_dir: str | os.PathLike[str],
    *,
    data_path: str | os.PathLike[str] | None = None,
    processes: int = 1,
    resume: bool = True,
    code_dir: str | os.PathLike[str] | None = None,
) -> Lineage:
    """Write and return the `lineage.json` of the finished run `train_model(config, dataset, output_dir)` trained
    on `processes` processes: trained on `train`, evaluated on `validation` (or the held-out part of train).
    `data_path` is where `dataset` was loaded from, if anywhere; `resume` as given to `train_model` (a run trained
    anew replaces the record of the one before); `code_dir` the checkout whose git revision lineage records.
    """
    Dataset.check(dataset)
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise InputError(f"processes: expected a whole number of at least 1, got {processes!r}")
    output = expand_home(output_dir).resolve()
    metrics = RunFolder(output).read_metrics()
    if metrics is None or not metrics.completed or metrics.dataset_fingerprint != dataset.fingerprint:
        raise InputError(
            f"{output}: holds no finished run of this dataset (its metrics.json); train it with train_model first"
        )
    if metrics.config_fingerprint != config.fingerprint:
        raise InputError(f"{output}: holds the run of another config (fingerprint {metrics.config_fingerprint[:12]})")
    path = os.fspath(data_path) if data_path is not None else None
    if path is not None and is_local(path):  # `hf://org/name` stays a URI
        path = os.path.expanduser(path)
    plan = DataPlan()
    spec = JobSpec(
        job_id=JobSpec.make_id("train", config, path, plan),
        config=config,
        data_path=path,
        output_dir=str(output),
        data=plan,
        resources=Resources(backend="torchrun" if processes > 1 else "local", nproc_per_node=processes),
        resume=resume,
        code_revision=code_revision(code_dir),
    )
    evaluated_on = plan.evaluated_on(dataset, config.data.holdout_fraction, path or "the dataset")
    return _write_lineage(spec, output, dataset.fingerprint, plan.train, evaluated_on)


def _write_lineage(
    spec: JobSpec,
    output: Path,
    dataset_fingerprint: str,
    trained_on: tuple[str, ...],
    evaluated_on: str,
    backbone_folder: str | os.PathLike[str] | None = None,
) -> Lineage:
    """Write `lineage.json`, keeping an existing record of this same run (a reused run keeps its history; a forced
    one, trained anew, gets a new record)."""
    if spec.resume and (output / LINEAGE_FILE).is_file():
        existing = Lineage.load(output)
        same = (existing.run_id, existing.config_fingerprint, existing.dataset_fingerprint)
        if same == (spec.job_id, spec.config.fingerprint, dataset_fingerprint) and existing.status == "completed":
            return existing
    lineage = build_lineage(
        spec,
        run_dir=output,
        dataset_fingerprint=dataset_fingerprint,
        trained_on=trained_on,
        evaluated_on=evaluated_on,
        backbone_folder=backbone_folder,
    )
    lineage.save(output)
    return lineage


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job in `argv`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m training.execution.runner", description="Run one training job from its job.json."
    )
    parser.add_argument("job", help="the job spec (job.json)")
    parser.add_argument(
        "--data", type=non_empty(os.path.expanduser), help="data folder or file, replacing the spec's data_path"
    )
    parser.add_argument("--output", type=non_empty(str), help="output (run) folder, replacing the spec's output_dir")
    parser.add_argument(
        "--backbone-folder",
        type=non_empty(os.path.expanduser),
        help="the folder holding the files of the spec's local backbone (its config still names the original)",
    )
    parser.add_argument("--job-id", type=non_empty(str), help="the job the spec must be (its launcher's)")
    args = parser.parse_args(argv)
    keep_freed_memory()  # the job's own process (every backend's): its training reuses freed memory
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Under torchrun only rank 0 reports progress; every rank reports warnings and errors.
    handler.addFilter(lambda record: record.levelno >= logging.WARNING or os.environ.get("RANK", "0") in ("", "0"))
    training_logger = logging.getLogger("training")
    training_logger.addHandler(handler)
    if training_logger.level == logging.NOTSET:
        training_logger.setLevel(logging.INFO)
    try:
        spec = JobSpec.load(args.job)
        if args.job_id is not None and spec.job_id != args.job_id:
            raise InputError(
                f"{args.job}: holds job {spec.job_id}, not {args.job_id}: another launch into {spec.output_dir} "
                "replaced it; one job at a time per output folder"
            )
        updates = {"data_path": args.data, "output_dir": args.output}
        spec = spec.model_copy(update={key: value for key, value in updates.items() if value is not None})
        run_job(spec, backbone_folder=args.backbone_folder)
    except TrainingError as error:
        print_error(f"error: {error}")
        return error.exit_code
    finally:
        training_logger.removeHandler(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
