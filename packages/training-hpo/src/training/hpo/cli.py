"""`training hpo run|resume|worker|best|report|azure`, registered with `training` through an entry point; light:
optuna, torch and the sweep are imported inside the commands."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.common.atomic import check_folder
from training.common.errors import ConfigError, TrainingError
from training.common.malloc import keep_freed_memory
from training.common.redact import redact_url
from training.hpo import azure_cli
from training.hpo.study_folder import DEFAULT_STUDIES, StudyFolder, default_study_dir

# the trials a command prints at its end (the latest): a study of thousands scrolled them off the terminal
SHOWN_TRIALS = 20

if TYPE_CHECKING:
    from training.config.best import BestConfig
    from training.config.hpo_schema import HPOConfig
    from training.hpo.live import Mode
    from training.hpo.processes import Isolation


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `hpo` and its actions to the `training` parser."""
    parser = commands.add_parser("hpo", help="k-fold Optuna sweeps (run, resume, worker, best, report, azure)")
    actions = parser.add_subparsers(dest="hpo_action", metavar="ACTION", required=True)

    run = actions.add_parser("run", help="start (or continue) a sweep from a config folder")
    run.add_argument("--config-dir", type=Path, required=True, help="folder with train.yaml, model/, data/, hpo/")
    run.add_argument("--hpo", required=True, metavar="NAME_OR_PATH", help="hpo/<NAME>.yaml, or a file")
    # a string, not a Path: `./corpus` stays a path (not a config name) and `hf://org/name` keeps its `//`
    run.add_argument(
        "--data",
        "--data-path",  # as train, splits and final name it
        dest="data",
        type=os.path.expanduser,
        help="data folder or file (default: the study's while it is there, when it continues one, else the data "
        "config's data.path)",
    )
    run.add_argument("--study-dir", type=Path, help=f"study folder (default: {DEFAULT_STUDIES}/<hpo name>)")
    run.add_argument("--backbone", help="model config name or backbone id to tune")
    _budget_arguments(run)
    run.add_argument("--storage", help="RDB URL or journal file (default: SQLite in the study folder)")
    _refit_arguments(run)
    _common_arguments(run)
    run.set_defaults(func=_run, resumable=True)

    resume = actions.add_parser("resume", help="continue a sweep after a stop, a crash or a kill")
    resume.add_argument("--study-dir", type=Path, required=True, help="the study folder")
    resume.add_argument("--storage", help="storage URL, when the study's needs a password")
    resume.add_argument(
        "--data", "--data-path", dest="data", type=os.path.expanduser, help="the study's data, when it has moved"
    )
    _budget_arguments(resume)
    _refit_arguments(resume)
    _common_arguments(resume)
    resume.set_defaults(func=_resume, resumable=True)

    worker = actions.add_parser("worker", help="join a running study from another process or host")
    worker.add_argument("--study-dir", type=Path, help="the study folder (shared between hosts)")
    worker.add_argument("--storage", help="storage URL (with --study-name, instead of --study-dir)")
    worker.add_argument("--study-name", help="the study to join in --storage")
    worker.add_argument(
        "--data",
        "--data-path",
        dest="data",
        type=os.path.expanduser,
        help="the study's data, when it lies elsewhere on this host",
    )
    worker.add_argument("--gpus", metavar="IDS", help="GPUs this worker's trials may use, e.g. 0,1 (default: all)")
    worker.add_argument(
        "--single-host",
        action="store_true",
        help="join a study on a file storage (SQLite, journal) from another host anyway, at the risk of losing trials",
    )
    _common_arguments(worker)
    worker.set_defaults(func=_resume, worker=True, resumable=True)

    best = actions.add_parser("best", help="the best trial as best_config.json (for final training)")
    best.add_argument("--study-dir", type=Path, help="the study folder (required unless --azure-job)")
    best.add_argument("--storage", help="storage URL, when the study's needs a password")
    best.add_argument("--json", action="store_true", help="print the best config as JSON")
    best.set_defaults(func=_best)
    azure_cli.register(actions, best)

    report = actions.add_parser("report", help="plots, index.html and a table of the trials")
    report.add_argument("--study-dir", type=Path, required=True, help="the study folder")
    report.add_argument("--storage", help="storage URL, when the study's needs a password")
    report.add_argument("--output", type=Path, help="report folder (default: <study-dir>/report)")
    report.set_defaults(func=_report)


def _budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-trials", type=int, help="trials for the whole study (all workers together)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="active time for the whole study")


def _refit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--refit",
        type=Path,
        metavar="DIR",
        help="then train the best config into DIR as `training final --backend local` does (where the trials ran; "
        "logged to MLflow where they log)",
    )
    parser.add_argument("--force", action="store_true", help="with --refit: train again even if DIR holds a run")


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    # a study run again, resumed or joined logs where it began with --mlflow-uri (its URI is kept with the study)
    default = "the URI the sweep was started with, else tracking.mlflow"
    parser.add_argument(
        "--mlflow-uri", metavar="URI", help=f"log the study and its trials to MLflow (default: {default})"
    )
    parser.add_argument("--inprocess", action="store_true", help="run trials in this process (for debugging)")
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="trials this process runs at once, sharing the CPU cores"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the sweep's events, then its outcome, as JSON lines on stdout (one object per line)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress (nor --json's events): the trials and the outcome only"
    )


def _view_mode(args: argparse.Namespace) -> Mode:
    """None with --quiet (--json prints the outcome alone), JSON lines with --json, the live view on a terminal, else
    one plain line per event (a log)."""
    return "quiet" if args.quiet else "json" if args.json else "live" if sys.stdout.isatty() else "plain"


def _run(args: argparse.Namespace) -> int:
    from training.config.builder import section_file
    from training.hpo.search_space import create_search_space

    keep_freed_memory()  # this process is the command's own: trials and a refit may train in it (--inprocess)
    source = section_file(args.config_dir, "hpo", args.hpo)
    # errors name the file; checks added since old studies began (a one-value choice) are the sweep's, which knows
    # the study it continues
    hpo = create_search_space(source, recorded=True).hpo_config
    assert hpo is not None
    _check_refit(args)
    # `train --data` takes config names; a path (`../corpus`) is never one
    bare = args.data is not None and os.path.basename(args.data) == args.data and not Path(args.data).exists()
    named = args.config_dir / "data" / f"{args.data}.yaml"
    if bare and named.is_file():
        raise ConfigError(
            f"--data {args.data}: no such file or folder; hpo run --data takes the data folder or file, and the data "
            f"config ({named}) is chosen in train.yaml (data: {args.data})"
        )
    from training.hpo.live import watching
    from training.hpo.sweep import run_local_hpo_sweep

    study_dir, isolation = args.study_dir or default_study_dir(hpo.name), _isolation(args, hpo)
    with watching(_view_mode(args), sys.stdout) as events:
        study = run_local_hpo_sweep(
            args.backbone,
            source,
            config_dir=args.config_dir,
            data_path=args.data,
            study_dir=study_dir,
            n_trials=args.n_trials,
            timeout_s=args.timeout,
            storage=args.storage,
            isolation=isolation,
            parallel_trials=args.parallel,
            mlflow_uri=args.mlflow_uri,
            events=events,
        )
    best = _summary(study, args.json, study_dir)
    if args.refit is None:
        return 0
    from training.hpo.sweep_settings import SweepSettings

    # a study run again logs where it began (its trials did above), unless --mlflow-uri says otherwise: as a resume
    return _refit(best, args, isolation, SweepSettings.load(study).tracking_uri(args.mlflow_uri))


def _isolation(args: argparse.Namespace, hpo: HPOConfig) -> Isolation:
    """Where trials (and the refit) run: in this process with --inprocess, else as the hpo config says."""
    return "inprocess" if args.inprocess else hpo.isolation


def _check_refit(args: argparse.Namespace) -> None:
    """Refuse, before sweeping (not after it), a `--refit` path that is (or lies inside) a file or holds a run that
    no refit made, and a `--force` without `--refit`."""
    refit = getattr(args, "refit", None)  # `hpo worker` has none: the refit is the sweep owner's
    if refit is not None:
        check_folder(refit, "a folder for the final run", option="--refit")
        from training.core.run_folder import RunFolder
        from training.execution.job_spec import JOB_FILE

        run = RunFolder(Path(refit))  # a refit writes its job.json first: a run without one is another's
        if not args.force and run.metrics.is_file() and not (run.root / JOB_FILE).is_file():
            raise ConfigError(
                f"--refit {refit}: holds a training run that no refit made (no {JOB_FILE}); choose another folder, or "
                "train over it with --force"
            )
    if getattr(args, "force", False) and refit is None:
        raise ConfigError("--force: only with --refit DIR (it trains again over a run already in DIR)")


def _refit(best_config: BestConfig | None, args: argparse.Namespace, isolation: Isolation, tracking: str | None) -> int:
    """`hpo run|resume --refit DIR`: the sweep's best config (None: it has no complete trial) trained as `training
    final --backend local` trains it (on `--data` where given: the sweep's data, moved)."""
    from training.core.run_folder import RunFolder
    from training.hpo.refit_job import refit

    if best_config is None:
        raise TrainingError(f"--refit {args.refit}: the sweep has no complete trial, so there is nothing to refit")
    if not (args.json or args.quiet):
        print(f"refitting the best config into {args.refit} (its log: {args.refit / 'train.log'})", flush=True)
    job = refit(
        best_config,
        output_dir=args.refit,
        data_path=args.data,
        force=args.force,
        isolation=isolation,
        tracking_uri=tracking,
    )
    metrics = RunFolder(job.output_dir).read_metrics()
    best = metrics.best if metrics is not None else None
    if args.json:
        scores = best.model_dump(mode="json") if best is not None else None
        outcome = {"job": job.id, "status": job.status, "outputs": str(job.output_dir), "metrics": scores}
        print(json.dumps({"refit": outcome}))
    else:
        f1 = f"entity F1 {best.entity_f1:.4f} on its evaluation split; " if best is not None else ""
        print(f"refit {job.id}: {job.status}; {f1}model: {job.model_dir}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    """`hpo resume` and `hpo worker` (which joins a running study and leaves the budget alone)."""
    from training.hpo.devices import parse_gpus
    from training.hpo.live import watching
    from training.hpo.sweep import resume_hpo_sweep

    keep_freed_memory()  # as in `_run`
    gpus = parse_gpus(args.gpus, "--gpus") if getattr(args, "gpus", None) is not None else None
    _check_refit(args)
    with watching(_view_mode(args), sys.stdout) as events:
        study = resume_hpo_sweep(
            args.study_dir,
            storage=args.storage,
            study_name=getattr(args, "study_name", None),
            data_path=args.data,
            n_trials=getattr(args, "n_trials", None),
            timeout_s=getattr(args, "timeout", None),
            isolation="inprocess" if args.inprocess else None,
            parallel_trials=args.parallel,
            worker=getattr(args, "worker", False),
            gpus=gpus,
            single_host=getattr(args, "single_host", False),
            mlflow_uri=args.mlflow_uri,
            events=events,
        )
    from training.hpo.sweep_settings import SweepSettings

    record = SweepSettings.load(study)
    study_dir = Path(args.study_dir) if args.study_dir is not None else Path(record.study_dir)
    best = _summary(study, args.json, study_dir)
    if getattr(args, "refit", None) is None:
        return 0
    return _refit(best, args, _isolation(args, record.hpo_config), record.tracking_uri(args.mlflow_uri))


def _best(args: argparse.Namespace) -> int:
    from training.hpo.best_config import extract_best_config_from_study
    from training.hpo.storage import load_study

    if args.azure_job is not None:
        best, written = azure_cli.best_config(args)
    elif args.study_dir is None:
        raise ConfigError("hpo best: pass --study-dir (a local study) or --azure-job NAME (an Azure ML sweep)")
    else:
        study = load_study(args.study_dir, storage=args.storage)
        best = extract_best_config_from_study(study, study_dir=args.study_dir)
        written = StudyFolder(args.study_dir).best_config
    if args.json:
        print(best.model_dump_json(indent=2))
    else:
        study = best.study
        print(f"best trial {study.trial_number} of study {study.study_name}: {study.metric} {study.objective:.4f}")
        print(f"cv std {study.cv_std:.4f} over folds {', '.join(f'{value:.4f}' for value in study.fold_values)}")
        for key, value in best.hyperparameters.items():
            print(f"  {key} = {value}")
        print(f"refit epochs: {best.num_epochs}; checkpoint: {best.checkpoint or 'not kept'}")
        print(f"written to {written}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from training.hpo.report import trials_table, write_report
    from training.hpo.storage import existing_study

    out = args.output or StudyFolder(args.study_dir).report
    location, study = existing_study(args.study_dir, storage=args.storage)
    write_report(study, out)  # it refuses an `out` that is no report folder, before any work
    print(trials_table(study, latest=SHOWN_TRIALS), end="")
    print(f"report: {out / 'index.html'}")
    print(f"live view: optuna-dashboard {shlex.quote(redact_url(location))}")  # a command to paste
    return 0


def _summary(study: Any, as_json: bool, study_dir: Path) -> BestConfig | None:
    """Print the sweep's trials and where its best config is (or its outcome as JSON); return that best config, as
    the sweep wrote it to `study_dir` (None before any trial completed)."""
    from training.config.best import BestConfig
    from training.hpo.checkpoints import best_trial_number
    from training.hpo.report import trials_table
    from training.hpo.sweep_settings import SweepSettings

    record = SweepSettings.load(study)
    best_file = study_dir / "best_config.json"
    best = BestConfig.load(best_file) if best_trial_number(study) is not None and best_file.is_file() else None
    if as_json:
        outcome = {
            "study_name": study.study_name,
            "study_dir": str(study_dir.resolve()),  # where it was opened (the folder may have moved since it began)
            "storage": record.storage,
            "trials": [_trial_summary(trial) for trial in study.get_trials(deepcopy=False)],
            "best": best.model_dump(mode="json") if best is not None else None,
        }
        print(json.dumps(outcome))  # after the events (and before the refit's line with --refit)
    else:
        print(trials_table(study, latest=SHOWN_TRIALS), end="")
        print(f"best config: {best_file}" if best is not None else "no complete trial yet")
    return best


def _trial_summary(trial: Any) -> dict[str, Any]:
    """One trial in the JSON outcome of `hpo run` and `resume`: state, objective, folds, parameters, device, reason."""
    from training.hpo.trial_record import TrialRecord

    record = TrialRecord.of(trial)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "params": record.hyperparameters or trial.params,
        "fold_values": list(record.fold_values),
        "device": record.device,
        "fail_reason": record.fail_reason,
    }
