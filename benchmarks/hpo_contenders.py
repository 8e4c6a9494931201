"""Sweep + refit for `bench_hpo.py --refit`: the workload, our side, the report (Hugging Face's side: `hf_search.py`).

Ours: `run_local_hpo_sweep` on the data's fixed validation split (`validation: split`, pruning from the first
report), then `refit` of the best config, as `training hpo run --refit` does: `execute_final_training` (train +
validation merged, the best trial's epochs) in a process from the server the sweep's trial processes came from.
Hugging Face: `Trainer.hyperparameter_search` on the same train and validation splits, then one more `Trainer.train`
of the chosen parameters on train + validation (its search keeps no model), saved with `save_model`. Both chosen
models are then scored on the test split, which no trial saw, by one scorer (`evaluate_model`: words, strict IOB2);
that scoring is outside both walls. Best validation F1 is each search's own objective: ours, a trial's best epoch
(the refit trains that many epochs); Hugging Face's, a trial's last epoch (its best epoch is printed too, from the
per-epoch reports).

Where the time goes, per stage (seconds; rows of trials are summed over trials, so parallel trials can add up to
more than the stage's wall, and "other" is the wall minus the rows above it):
- ours: each `train_model` run's folder (`train.log` timestamps, `metrics.json`, the trial's recorded seconds)
  splits it into setup (features from the cache or tokenised, model creation), training (windows x epochs at the
  run's recorded training samples/s) and evaluation + saving (the rest of the loop); a pruned run records no
  throughput, so its loop stays unsplit; a trial's wall beyond its `train_model` run is process start and storage;
- Hugging Face: timed around its calls (`model_init`, `Trainer.evaluate`, `Trainer.train`, `save_model`).

Each side's process imports what it uses, as a user's script would: ours neither torch nor transformers (its sweep
process never trains; the server of its trial and refit processes imports them once), Hugging Face's both, at its
start.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import psutil

from data.documents import iob2_tag_names
from data.generate import ENTITY_TYPES, generate_corpus, write_corpus
from data.loaders import Dataset, load_dataset
from training.config.hpo_schema import HPOConfig
from training.config.schema import DataConfig, ModelConfig, OptimizationConfig, TrainingConfig
from training.core.run_folder import RunFolder
from training.hpo import extract_best_config_from_study, refit, run_local_hpo_sweep
from training.hpo.study_folder import StudyFolder
from training.hpo.trial_record import TrialRecord

# Each backbone's learning rates: the tiny BERT starts from random weights, MiniLM is fine-tuned from pretrained ones.
LEARNING_RATES = {"tiny-bert": (1e-3, 3e-3, 1e-2, 2e-2), "minilm": (5e-5, 1e-4, 2e-4, 5e-4)}
BATCH_SIZES = (8, 16)
SEED = 0
STARTUP_TRIALS = 5  # both prune with Optuna's median pruner as `optuna.create_study` makes it by default
SPLIT = (0.6, 0.2, 0.2)  # train / validation (every trial's score) / test (no trial sees it)
PHASES = (
    "setup (features, model)",
    "training",
    "evaluation + saving",
    "pruned runs (unsplit)",
    "process, storage, lineage",
)


def bench_config(epochs: int, backbone: str = "tiny-bert") -> TrainingConfig:
    """The backbone (the tiny BERT, or the packaged MiniLM whose head both sides draw from the same seed), its windows,
    and the epochs every trial trains."""
    return TrainingConfig(
        model=ModelConfig(name=backbone, backbone=backbone, max_length=256, stride=32),
        data=DataConfig(name="bench", labels=ENTITY_TYPES),
        training=OptimizationConfig(num_epochs=epochs, batch_size=16, seed=SEED, warmup_ratio=0.0),
    )


def split_workload(documents: int, epochs: int, folder: Path, backbone: str) -> tuple[TrainingConfig, Dataset]:
    corpus = generate_corpus(documents, seed=SEED, max_sentences=3, split=SPLIT)
    return bench_config(epochs, backbone), load_dataset(write_corpus(folder / "corpus", corpus), labels=ENTITY_TYPES)


def space(trial: optuna.Trial, backbone: str) -> dict[str, Any]:
    """The grid as Hugging Face's search asks for it."""
    return {
        "learning_rate": trial.suggest_categorical("learning_rate", list(LEARNING_RATES[backbone])),
        "per_device_train_batch_size": trial.suggest_categorical("batch_size", list(BATCH_SIZES)),
    }


def search_settings(backbone: str = "tiny-bert") -> dict[str, Any]:
    """`hyperparameter_search` arguments besides the storage: the same grid and pruner as our sweep."""
    return {
        "hp_space": functools.partial(space, backbone=backbone),
        "compute_objective": lambda metrics: metrics["eval_entity_f1"],
        "direction": "maximize",
        "backend": "optuna",
        "sampler": optuna.samplers.GridSampler(
            {"learning_rate": list(LEARNING_RATES[backbone]), "batch_size": list(BATCH_SIZES)}, seed=SEED
        ),
        "study_name": "hf",
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0),
    }


def our_hpo(trials: int, isolation: str, parallel: int, validation: str, backbone: str = "tiny-bert") -> HPOConfig:
    return HPOConfig(
        name="bench",
        k_folds=2,
        validation=validation,
        n_trials=trials,
        sampler={"type": "grid", "seed": SEED},
        pruner={"type": "median", "startup_trials": STARTUP_TRIALS, "warmup_steps": 0},
        isolation=isolation,
        parallel_trials=parallel,
        search_space={
            "learning_rate": {"type": "choice", "values": list(LEARNING_RATES[backbone])},
            "batch_size": {"type": "choice", "values": list(BATCH_SIZES)},
        },
    )


@contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def since_process_start() -> float:
    return time.time() - psutil.Process().create_time()


def ours(config: TrainingConfig, dataset: Dataset, args: Any, folder: Path) -> dict[str, Any]:
    startup = since_process_start()
    hpo = our_hpo(args.trials, args.isolation, args.parallel, "split", args.model)
    started = time.perf_counter()
    study = run_local_hpo_sweep(None, hpo, config=config, dataset=dataset, study_dir=folder / "ours")
    sweep_wall = time.perf_counter() - started
    sweep = _trial_phases(study, StudyFolder(folder / "ours"))
    best = extract_best_config_from_study(study)
    begun, started = time.time(), time.perf_counter()
    job = refit(best, output_dir=folder / "ours-final", dataset=dataset, isolation=args.isolation)
    refit_wall = time.perf_counter() - started
    refit_phases = _run_phases(RunFolder(job.output_dir), None, begun)
    refit_phases["process, storage, lineage"] = begun + refit_wall - _log_times(RunFolder(job.output_dir))[-1]
    return {
        "startup": startup,
        "walls": [sweep_wall, refit_wall],
        "phases": [sweep, refit_phases],
        "best": study.best_value,
        "params": [best.hyperparameters[key] for key in ("training.learning_rate", "training.batch_size")],
        "refit_epochs": best.num_epochs,
        "pruned": sum(trial.state == optuna.trial.TrialState.PRUNED for trial in study.trials),
        "test_f1": split_f1(job.model_dir, dataset, config),
    }


def split_f1(model_dir: Path, dataset: Dataset, config: TrainingConfig, split: str = "test") -> float:
    """Entity F1 of a saved model on one split (word-level strict IOB2): one scorer for both sides, in fp32 (ours' run
    may have trained in bf16, which its model would otherwise be scored in)."""
    # imported here: scoring is outside both walls, and ours' sweep process imports no torch before it
    from training.core.evaluator import evaluate_model

    tags, model = iob2_tag_names(ENTITY_TYPES), config.model
    windows = {"max_length": model.max_length, "stride": model.stride}
    result = evaluate_model(model_dir, None, dataset[split], tag_names=tags, precision="fp32", **windows)
    return float(result.metrics["entity_f1"])


def _trial_phases(study: optuna.Study, folder: StudyFolder) -> dict[str, float]:
    """The sweep's trials, summed: each one's `train_model` run split by its folder, the rest of its wall."""
    phases = dict.fromkeys(PHASES, 0.0)
    for trial in study.trials:
        record = TrialRecord.of(trial)
        for name, seconds in _run_phases(RunFolder(folder.fold(trial.number, 0)), record.train_seconds).items():
            phases[name] += seconds
        wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
        phases["process, storage, lineage"] += wall - record.train_seconds
    return phases


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
_WINDOWS = re.compile(r" training (\d+) windows ")


def _log_times(run: RunFolder) -> list[float]:
    """The times (epoch seconds) of the lines of a run's `train.log`."""
    lines = run.log.read_text(encoding="utf-8").splitlines()
    stamps = [_STAMP.match(line) for line in lines]
    return [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() for m in stamps if m]


def _run_phases(run: RunFolder, seconds: float | None, begun: float | None = None) -> dict[str, float]:
    """One `train_model` run of `seconds` (or begun at `begun`, epoch seconds): setup until its first log line
    (features, model), then its loop until the last, split into training and evaluation + saving when it finished."""
    times = _log_times(run)
    first, last = times[0], times[-1]
    start = begun if begun is not None else last - (seconds or 0.0)
    phases = dict.fromkeys(PHASES, 0.0)
    phases["setup (features, model)"] = first - start
    metrics = run.read_metrics()
    windows = _WINDOWS.search(run.log.read_text(encoding="utf-8"))
    if metrics is None or not metrics.completed or not metrics.train_samples_per_second or windows is None:
        phases["pruned runs (unsplit)"] = last - first
        return phases
    training = int(windows.group(1)) * len(metrics.history) / metrics.train_samples_per_second
    phases["training"], phases["evaluation + saving"] = training, last - first - training
    return phases


def report(results: dict[str, dict[str, Any]], args: Any, load: Sequence[float]) -> None:
    """The sweep + refit table: walls, the ratio, best validation F1, test F1, and where the time goes."""
    ours_, hf = results["ours"], results["hf"]
    total = {name: side["startup"] + sum(side["walls"]) for name, side in results.items()}
    print(
        f"# sweep + refit: {args.trials} trials on a fixed validation split, {args.documents} generated documents "
        f"(train / validation / test {SPLIT}), {args.epochs} epochs, {args.model}; ours isolation={args.isolation} "
        f"parallel_trials={args.parallel}; {os.cpu_count()} CPUs, load average before / after: "
        f"{load[0]:.2f} / {load[1]:.2f}"
    )

    def line(label: str, *cells: str) -> None:
        print(f"{label:30}" + "".join(f"{cell:>14}" for cell in cells))

    line("", "ours", "HF")
    line("total wall (s)", f"{total['ours']:.1f}", f"{total['hf']:.1f}")
    line("HF wall / ours wall", f"{total['hf'] / total['ours']:.2f}x", "")
    line("best validation F1", f"{ours_['best']:.4f}", f"{hf['best']:.4f}")
    line("  HF: at any epoch", "", f"{hf['best_any_epoch']:.4f}")
    line("test F1 (chosen model)", f"{ours_['test_f1']:.4f}", f"{hf['test_f1']:.4f}")
    line("chosen lr, batch size", *(f"{s['params'][0]:g}, {s['params'][1]}" for s in (ours_, hf)))
    line("refit epochs", str(ours_["refit_epochs"]), str(hf["refit_epochs"]))
    line("trials pruned", str(ours_["pruned"]), str(hf["pruned"]))
    print("\nwhere the time goes (s)")
    line("", "ours: sweep", "ours: refit", "HF: search", "HF: refit")
    line("start-up (imports, data)", f"{ours_['startup']:.1f}", "", f"{hf['startup']:.1f}", "")
    stages = [(side, stage) for side in (ours_, hf) for stage in (0, 1)]
    for name in PHASES:
        line(name, *(f"{side['phases'][stage].get(name, 0.0):.1f}" for side, stage in stages))
    other = [side["walls"][stage] - sum(side["phases"][stage].values()) for side, stage in stages]
    line("other (wall - rows above)", *(f"{value:.1f}" for value in other))
    line("stage wall", *(f"{side['walls'][stage]:.1f}" for side, stage in stages))
