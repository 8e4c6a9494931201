"""The same sweep with `run_local_hpo_sweep` and with Hugging Face `Trainer.hyperparameter_search(backend="optuna")`.

Both sweep the same grid (learning rate x batch size) with Optuna's grid sampler, so both try exactly the same
parameter sets whatever order parallel trials finish in, train the same tiny BERT (identical initial weights) on the
same generated corpus for the same epochs, and score entity F1 the same way (strict IOB2, `compute_metrics`).
`run_local_hpo_sweep` cross-validates on 2 folds, each trial in a fresh process, `--parallel` trials at once (each
on its share of the cores). `Trainer.hyperparameter_search` has no cross-validation, so it runs once per fold (same
grid seed, so trial `i` has the same parameters on both folds) and its objective is the mean of the two searches,
trial by trial; it runs one trial at a time (its `n_jobs` threads would share one `Trainer`). Both prune with
Optuna's default median pruner (5 startup trials, no warm-up) on each epoch's validation F1; ours also reports the
running CV mean after each fold, and the summary shows the training time its pruned trials did not spend (the same
figure as the sweep summary's "pruning saved about ... s").

Per trial:
- wall: the trial's duration as Optuna recorded it (both sides, summed over the two HF searches);
- training: ours, `train_model` calls (model creation, training, per-epoch evaluation, best-model saving);
  HF, from `model_init` to the end of `Trainer.train` (model creation, training, per-epoch evaluation);
- overhead: wall minus training (process start, data transfer, storage writes, bookkeeping);
- peak RSS: ours, the peak of the trial's own process; HF, the peak of its one process after the trial.

Each contender runs in a fresh process of its own (one after the other), so memory figures start clean.

`--refit` measures sweep + refit instead (see `hpo_contenders.py`): ours sweeps on the data's fixed validation split
and refits the best config with `refit` (in a process from its trial processes' server); Hugging Face searches on
the same splits and trains the chosen parameters once more; both chosen models are scored on a test split no trial
saw, and the time of each side is split into start-up, setup (tokenisation, model creation), training, evaluation +
saving and the rest.

Usage: `python benchmarks/bench_hpo.py [--trials 8] [--documents 160] [--epochs 2] [--isolation subprocess]
[--parallel 1] [--refit [--model tiny-bert|minilm]]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hpo_contenders
import optuna
import psutil
from hpo_contenders import BATCH_SIZES, LEARNING_RATES, SEED, bench_config, our_hpo, search_settings, split_workload

from data.generate import ENTITY_TYPES, generate_corpus, write_corpus
from data.loaders import Dataset, load_dataset
from training.config.schema import TrainingConfig
from training.core.cv_utils import create_kfold_splits
from training.hpo import run_local_hpo_sweep
from training.hpo.report import pruning_savings
from training.hpo.trial_record import TrialRecord


def workload(documents: int, epochs: int, folder: Path) -> tuple[TrainingConfig, Dataset]:
    corpus = generate_corpus(documents, seed=SEED, max_sentences=3)
    path = write_corpus(folder / "corpus", {"train": [doc for split in corpus.values() for doc in split]})
    return bench_config(epochs), load_dataset(path, labels=ENTITY_TYPES)


def ours(
    config: TrainingConfig, dataset: Dataset, trials: int, isolation: str, parallel: int, folder: Path
) -> dict[str, Any]:
    hpo = our_hpo(trials, isolation, parallel, "kfold")
    parent = psutil.Process()
    rss_before = parent.memory_info().rss
    started = time.perf_counter()
    study = run_local_hpo_sweep(None, hpo, config=config, dataset=dataset, study_dir=folder / "ours")
    wall = time.perf_counter() - started
    rows = []
    for trial in study.trials:
        record = TrialRecord.of(trial)
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append(
            {
                "params": (trial.params["training.learning_rate"], trial.params["training.batch_size"]),
                "value": trial.value,
                "wall": duration,
                "training": record.train_seconds,
                "rss_mb": record.peak_rss_mb,
            }
        )
    return {
        "wall": wall,
        "best": study.best_value,
        "trials": rows,
        "parent_rss_growth_mb": (parent.memory_info().rss - rss_before) / 2**20,
        "pruned": sum(trial.state == optuna.trial.TrialState.PRUNED for trial in study.trials),
        "pruning_saved": pruning_savings(study),
    }


def huggingface(config: TrainingConfig, dataset: Dataset, trials: int, folder: Path) -> dict[str, Any]:
    from hf_search import TimedTrainer, Timing, Windows, arguments, entity_f1  # torch and transformers: HF's side only
    from transformers import DataCollatorForTokenClassification

    from training.core.model import create_model_and_tokenizer

    splits = create_kfold_splits(dataset, 2, seed=config.training.seed, stratify=config.data.stratify)
    _, tokenizer = create_model_and_tokenizer(config)
    timing = Timing()
    studies, started = [], time.perf_counter()
    for fold in range(2):
        part = splits.fold_dataset(dataset, fold)
        trainer = TimedTrainer(
            model_init=timing.model_init(config),
            args=arguments(config, folder / f"hf-{fold}"),
            train_dataset=Windows(part["train"], tokenizer, config),
            eval_dataset=Windows(part["validation"], tokenizer, config),
            data_collator=DataCollatorForTokenClassification(tokenizer),
            compute_metrics=entity_f1,
            callbacks=[timing],
        )
        storage = f"sqlite:///{folder / f'hf-{fold}.db'}"
        trainer.hyperparameter_search(n_trials=trials, storage=storage, **search_settings())
        studies.append(optuna.load_study(study_name="hf", storage=storage))
    wall = time.perf_counter() - started
    rows = []
    for number in range(trials):
        pair = [study.trials[number] for study in studies]
        rows.append(
            {
                "params": (pair[0].params["learning_rate"], pair[0].params["batch_size"]),
                "same_params_on_both_folds": pair[0].params == pair[1].params,
                "value": statistics.fmean(trial.value for trial in pair),
                "wall": sum((t.datetime_complete - t.datetime_start).total_seconds() for t in pair),
                "training": timing.training[number] + timing.training[trials + number],
                "rss_mb": timing.rss_mb[trials + number],
            }
        )
    return {"wall": wall, "best": max(row["value"] for row in rows), "trials": rows}


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    import torch
    import transformers

    trials, documents, epochs = args.trials, args.documents, args.epochs
    print(
        f"# {trials} trials, 2 folds, {documents} generated documents, {epochs} epochs, tiny BERT; "
        f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"optuna {optuna.__version__}, {os.cpu_count()} CPUs; "
        f"run_local_hpo_sweep isolation={args.isolation} parallel_trials={args.parallel}"
    )
    print(f"{'':34}{'run_local_hpo_sweep':>22}{'HF hyperparameter_search':>26}")
    ours_, hf = results["ours"], results["hf"]

    def line(label: str, a: str, b: str) -> None:
        print(f"{label:34}{a:>22}{b:>26}")

    line("wall-clock, whole sweep (s)", f"{ours_['wall']:.1f}", f"{hf['wall']:.1f}")
    line("best objective (CV mean F1)", f"{ours_['best']:.4f}", f"{hf['best']:.4f}")
    for name, rows in (("ours", ours_["trials"]), ("hf", hf["trials"])):
        results[name]["overheads"] = [row["wall"] - row["training"] for row in rows]
    line(
        "overhead per trial, median (s)",
        f"{statistics.median(ours_['overheads']):.3f}",
        f"{statistics.median(hf['overheads']):.3f}",
    )
    line("overhead, trial 1 (s)", f"{ours_['overheads'][0]:.3f}", f"{hf['overheads'][0]:.3f}")
    line(
        "training per trial, median (s)",
        f"{statistics.median(r['training'] for r in ours_['trials']):.2f}",
        f"{statistics.median(r['training'] for r in hf['trials']):.2f}",
    )
    first, last = ours_["trials"][0]["rss_mb"], ours_["trials"][-1]["rss_mb"]
    hf_first, hf_last = hf["trials"][0]["rss_mb"], hf["trials"][-1]["rss_mb"]
    line(f"peak RSS trial 1 / trial {trials} (MiB)", f"{first:.0f} / {last:.0f}", f"{hf_first:.0f} / {hf_last:.0f}")
    line("sweep process RSS growth (MiB)", f"{ours_['parent_rss_growth_mb']:.0f}", "-")
    saved = ours_["pruning_saved"]  # the sweep summary's own figure (see `training.hpo.report.pruning_savings`)
    line("trials pruned / training saved (s)", f"{ours_['pruned']} / {'-' if saved is None else f'{saved:.1f}'}", "-")
    print("\nper trial: learning rate, batch size, objective, wall s, training s, peak RSS MiB")
    for name, rows in (("run_local_hpo_sweep", ours_["trials"]), ("HF hyperparameter_search", hf["trials"])):
        print(name)
        for index, row in enumerate(rows):
            params = f"{row['params'][0]:.5f} {row['params'][1]:>3}"
            print(
                f"  {index}: {params}  {_value(row['value'])}  {row['wall']:6.2f}  {row['training']:6.2f}  "
                f"{row['rss_mb']:6.0f}"
            )
    same = all(row["same_params_on_both_folds"] for row in hf["trials"])
    print(f"HF tried the same parameters on both folds: {same}")


def _value(value: float | None) -> str:
    return "pruned" if value is None else f"{value:.4f}"


def run_contender(args: argparse.Namespace) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.contender == "hf":
        import transformers

        transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="bench-hpo-") as tmp:
        folder = Path(tmp)
        if args.refit:
            config, dataset = split_workload(args.documents, args.epochs, folder, args.model)
            if args.contender == "ours":
                return hpo_contenders.ours(config, dataset, args, folder)
            import hf_search

            return hf_search.huggingface(config, dataset, args, folder)
        config, dataset = workload(args.documents, args.epochs, folder)
        if args.contender == "ours":
            return ours(config, dataset, args.trials, args.isolation, args.parallel, folder)
        return huggingface(config, dataset, args.trials, folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="default: the grid's size")
    parser.add_argument("--documents", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--isolation", choices=("subprocess", "inprocess"), default="subprocess")
    parser.add_argument("--parallel", type=int, default=1, help="run_local_hpo_sweep's parallel_trials")
    parser.add_argument(
        "--refit", action="store_true", help="sweep + refit on a fixed validation split, scored on a test split"
    )
    parser.add_argument("--model", choices=("tiny-bert", "minilm"), default="tiny-bert", help="the backbone (--refit)")
    parser.add_argument("--contender", choices=("ours", "hf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model != "tiny-bert" and not args.refit:
        parser.error("--model is a --refit option (the k-fold comparison trains the tiny BERT)")
    args.trials = args.trials or len(LEARNING_RATES[args.model]) * len(BATCH_SIZES)
    if args.contender:  # one contender in this fresh process; the result goes to the parent as JSON
        print(json.dumps(run_contender(args)))
        return 0
    results, load = {}, [os.getloadavg()[0]]
    for contender in ("ours", "hf"):  # each in a fresh process, so memory figures start clean
        command = [sys.executable, __file__, *sys.argv[1:], "--contender", contender]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[contender] = json.loads(done.stdout.strip().splitlines()[-1])
    load.append(os.getloadavg()[0])
    if args.refit:
        hpo_contenders.report(results, args, load)
    else:
        report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
