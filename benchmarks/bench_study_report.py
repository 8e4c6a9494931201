"""Reading a large study: `load_study`, the best trial, `trials_table`, fANOVA importances and `write_report`, this
tree against a git revision.

    hatch run test:python benchmarks/bench_study_report.py --baseline REV [--trials 3000] [--rounds 1]

Writes a study of `--trials` trials into a temporary folder, once in SQLite and once in a journal file, as long sweeps
leave them: 60% complete (two folds each), 25% pruned, 10% failed, 5% still running on another host, with the user
attributes a trial records (`TrialRecord`) and a metric that depends mostly on the learning rate, then the number of
epochs. Each version reads each storage in a fresh process whose `PYTHONPATH` points at its `packages/*/src` (a
revision's files come from `git archive`); the versions alternate within every round. Reported per storage and
version: seconds of each stage, peak memory, the best trial, the importances, and whether both versions wrote the
same table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_predict import REPOSITORY, revision_tree

THIS_TREE = "this tree"
STAGES = ("load", "best", "table", "importances", "report")


def write_study(storage: Any, trials: int, seed: int) -> None:
    """The study `bench`: `trials` trials of a three-parameter space, states and records as a long sweep leaves them."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    from training.hpo.trial_record import TrialRecord

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {
        "training.learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
        "training.num_epochs": IntDistribution(2, 6),
        "training.warmup_ratio": FloatDistribution(0.0, 0.2),
    }
    rng = random.Random(seed)
    owner = {"host": "another-host", "boot_id": "b", "pid_namespace": "pid:[1]", "pid": 1, "started": 1}
    made = []
    for number in range(trials):
        params = {
            "training.learning_rate": math.exp(rng.uniform(math.log(1e-5), math.log(1e-3))),
            "training.num_epochs": rng.randint(2, 6),
            "training.warmup_ratio": rng.uniform(0.0, 0.2),
        }
        decades = math.log10(params["training.learning_rate"]) + 4  # best at 1e-4
        mean = 0.8 - 0.1 * decades**2 + 0.01 * params["training.num_epochs"]
        folds = [mean + rng.gauss(0, 0.02) for _ in range(2)]
        mean = sum(folds) / 2
        fields: dict[str, Any] = {"owner": owner, "device": f"cuda:{number % 4}", "hyperparameters": params}
        draw = rng.random()
        state = (
            TrialState.COMPLETE
            if draw < 0.6
            else TrialState.PRUNED
            if draw < 0.85
            else TrialState.FAIL
            if draw < 0.95
            else TrialState.RUNNING
        )
        if state == TrialState.COMPLETE:
            fields |= {"fold_values": folds, "cv_mean": mean, "cv_std": abs(folds[0] - folds[1]) / 2}
            fields |= {"fold_best_epochs": [2, 2], "fold_seconds": [600.0, 600.0], "train_seconds": 1200.0}
        elif state == TrialState.PRUNED:
            fields |= {"train_seconds": 300.0}
        elif state == TrialState.FAIL:
            fields |= {"fail_reason": "CUDA out of memory. Tried to allocate 2.00 GiB"}
        attrs = TrialRecord.model_validate(fields).model_dump(mode="json", include=set(fields))
        made.append(
            create_trial(
                state=state,
                value=mean if state == TrialState.COMPLETE else None,
                params=params,
                distributions=space,
                user_attrs=attrs,
                intermediate_values={1: folds[0]} if state != TrialState.FAIL else {},
            )
        )
    optuna.create_study(study_name="bench", storage=storage, direction="maximize").add_trials(made)


def worker(location: str, out: Path) -> int:
    """Read the study at `location` stage by stage; print one JSON line of timings, peak memory and outputs."""
    import optuna

    from training.hpo.checkpoints import best_trial
    from training.hpo.interactive_report import importance_evaluator
    from training.hpo.report import trials_table, write_report
    from training.hpo.storage import load_study

    seconds: dict[str, float] = {}

    def timed(stage: str, call: Any) -> Any:
        started = time.perf_counter()
        value = call()
        seconds[stage] = time.perf_counter() - started
        return value

    study = timed("load", lambda: load_study(storage=location, study_name="bench"))
    best = timed("best", lambda: best_trial(study))
    table = timed("table", lambda: trials_table(study))
    evaluator = importance_evaluator()  # a fresh fit: the report fits its own
    importances = timed("importances", lambda: optuna.importance.get_param_importances(study, evaluator=evaluator))
    timed("report", lambda: write_report(study, out))
    result = {
        "seconds": seconds,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "best": best.number if best is not None else None,
        "importances": {name: round(float(value), 4) for name, value in importances.items()},
        "table": hashlib.sha256(table.encode()).hexdigest(),
        "report_mb": sum(path.stat().st_size for path in out.iterdir()) / 1e6,
    }
    print(json.dumps(result))
    return 0


def run(source: Path, location: str, out: Path) -> dict[str, Any]:
    """One reading in a fresh process on the code under `source`."""
    paths = sorted(str(folder) for folder in (source / "packages").glob("*/src"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, __file__, "--worker", location, "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{source}: reading {location} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to compare with; none: this tree alone")
    parser.add_argument("--trials", type=int, default=3000, help="trials of the study")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        sys.exit(worker(args.worker, args.out))
    with tempfile.TemporaryDirectory() as scratch:
        sources = {THIS_TREE: REPOSITORY}
        if args.baseline:
            sources[f"revision {args.baseline}"] = revision_tree(args.baseline, Path(scratch))
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = str(Path(scratch) / "study.journal")
        storages = {"sqlite": f"sqlite:///{Path(scratch) / 'study.db'}", "journal": journal}
        write_study(storages["sqlite"], args.trials, args.seed)
        write_study(JournalStorage(JournalFileBackend(journal)), args.trials, args.seed)
        print(f"load average {os.getloadavg()[0]:.2f}; {args.trials} trials")
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_number in range(args.rounds):
            order = list(sources) if round_number % 2 == 0 else list(reversed(sources))
            for kind, location in storages.items():
                for version in order:
                    out = Path(scratch) / f"report-{round_number}-{kind}-{len(results)}"
                    result = run(sources[version], location, out)
                    results.setdefault((kind, version), []).append(result)
                    print(f"round {round_number} {kind:8s} {version:22s} {result['seconds']['report']:7.2f}s report")
        report(storages, sources, results)


def report(storages: dict[str, str], sources: dict[str, Path], results: dict[tuple[str, str], list[dict]]) -> None:
    print(f"\n{'storage':8s} {'version':22s} " + " ".join(f"{stage + ' s':>13s}" for stage in STAGES), end="")
    print(f" {'peak MB':>8s} {'report MB':>9s} {'best':>5s}  importances")
    for kind in storages:
        for version in sources:
            runs = results[kind, version]
            medians = [statistics.median(r["seconds"][stage] for r in runs) for stage in STAGES]
            peak = max(r["maxrss_mb"] for r in runs)
            print(
                f"{kind:8s} {version:22s} "
                + " ".join(f"{value:13.2f}" for value in medians)
                + f" {peak:8.0f} {runs[0]['report_mb']:9.1f} {runs[0]['best']!s:>5s}  {runs[0]['importances']}"
            )
    if len(sources) < 2:
        return
    this, baseline = list(sources)
    print(f"\nratio {this} / {baseline} of the report's seconds per round: median [min-max]; same table and best")
    for kind in storages:
        mine, theirs = results[kind, this], results[kind, baseline]
        ratios = [a["seconds"]["report"] / b["seconds"]["report"] for a, b in zip(mine, theirs, strict=True)]
        same = all(a["table"] == b["table"] and a["best"] == b["best"] for a, b in zip(mine, theirs, strict=True))
        print(
            f"{kind:8s} {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]  "
            f"same table and best trial: {'yes' if same else 'NO'}"
        )


if __name__ == "__main__":
    main()
