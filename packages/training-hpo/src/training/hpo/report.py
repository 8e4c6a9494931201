"""`write_report`: PNG plots of a study with an `index.html`, the same plots as an interactive page (plotly), and a
plain-text table of its trials. Rendering is headless (matplotlib's Agg backend)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from training.common.atomic import atomic_write_text
from training.common.optional import require
from training.common.report_page import Section, report_page, save_png
from training.hpo.interactive_report import importances_note, write_interactive_report
from training.hpo.recovery import interrupted
from training.hpo.trial_record import TrialRecord

COLUMNS = ("trial", "state", "objective", "cv std", "folds", "device", "parameters", "fail reason")


def trials_table(study: optuna.Study) -> str:
    """Every trial as one row of `COLUMNS` (a RUNNING trial whose process died as `running (worker gone)`), then the
    training time pruning saved."""
    rows = [COLUMNS]
    trials = study.get_trials(deepcopy=False)
    gone = {trial.number for trial in trials if interrupted(trial)}
    for trial in trials:
        record = TrialRecord.of(trial)
        rows.append(
            (
                str(trial.number),
                trial.state.name.lower() + (" (worker gone)" if trial.number in gone else ""),
                _number(trial.value),
                _number(record.cv_std),
                " ".join(_number(value) for value in record.fold_values) or "-",
                record.device or "-",
                " ".join(f"{key}={_short(value)}" for key, value in record.hyperparameters.items()) or "-",
                record.fail_reason or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows
    ]
    if gone:
        lines.append("worker gone: the trial's process died; `training hpo resume` marks it failed and queues it again")
    saved = pruning_savings(study)
    if saved is not None:
        lines.append(f"pruning saved about {saved:.1f} s of training")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def pruning_savings(study: optuna.Study) -> float | None:
    """Training seconds the pruned trials did not spend, at the complete trials' mean fold time (None: no pair)."""
    trials = study.get_trials(deepcopy=False)
    complete = [TrialRecord.of(trial) for trial in trials if trial.state == TrialState.COMPLETE]
    pruned = [TrialRecord.of(trial) for trial in trials if trial.state == TrialState.PRUNED]
    fold_seconds = [seconds for record in complete for seconds in record.fold_seconds]
    if not pruned or not fold_seconds:
        return None
    full_trial = len(complete[0].fold_values) * sum(fold_seconds) / len(fold_seconds)
    return sum(max(0.0, full_trial - record.train_seconds) for record in pruned)


def write_report(study: optuna.Study, out_dir: str | os.PathLike[str]) -> str:
    """Write the plots, `index.html` and `interactive.html` into `out_dir`; return the trials table (also saved as
    `trials.txt`)."""
    require("matplotlib", "training.hpo.write_report").use("Agg")
    require("plotly", "training.hpo.write_report")
    from optuna.visualization import matplotlib as plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    figures: list[Section] = []

    def add(title: str, name: str, draw: Callable[[], Any], note: str | None) -> None:
        if note is not None:
            figures.append((title, None, note))
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw()
            save_png((axes.flat[0] if hasattr(axes, "flat") else axes).figure, out / name)
        figures.append((title, name, ""))

    none_yet = "no complete trial yet" if not complete else None
    add("Optimisation history", "history.png", lambda: plots.plot_optimization_history(study), none_yet)
    importances = importances_note(complete)
    add("Parameter importances", "importances.png", lambda: plots.plot_param_importances(study), importances)
    # A parameter or objective with one value in every trial has a zero-height axis: matplotlib warns ("identical low
    # and high ylims") and the axis says nothing, so only the parameters that vary are drawn, and only if the
    # objective varies too.
    names = sorted({name for trial in complete for name in trial.params})
    varying = [name for name in names if len({trial.params.get(name) for trial in complete}) > 1]
    constant = importances or (None if varying else "needs complete trials with different parameter values")
    add(
        "Parallel coordinates",
        "parallel.png",
        lambda: plots.plot_parallel_coordinate(study, params=varying),
        none_yet or constant,
    )
    add("Fold values per trial", "folds.png", lambda: _fold_spread(complete), none_yet)
    table = trials_table(study)
    atomic_write_text(out / "trials.txt", table)
    intro = f"Direction: {study.direction.name.lower()}."
    links = [("Interactive version (opens offline)", "interactive.html")]
    atomic_write_text(out / "index.html", report_page(f"Study {study.study_name}", intro, figures, table, links))
    write_interactive_report(study, out, study_metric(study), table)
    return table


def study_metric(study: optuna.Study) -> str:
    """The metric a study optimises: from its sweep record, or `objective` for a study made elsewhere."""
    from training.hpo.sweep_settings import RECORD, SweepSettings

    return SweepSettings.load(study).hpo_config.metric if RECORD in study.user_attrs else "objective"


def _fold_spread(trials: list[FrozenTrial]) -> Any:
    import matplotlib.pyplot as plt

    _, axes = plt.subplots(figsize=(max(4.0, 0.6 * len(trials) + 2), 4))
    values = [list(TrialRecord.of(trial).fold_values) for trial in trials]
    axes.boxplot(values, tick_labels=[str(trial.number) for trial in trials])
    for position, folds in enumerate(values, start=1):
        axes.scatter([position] * len(folds), folds, s=12, zorder=3)
    axes.set_xlabel("trial")
    axes.set_ylabel("fold value")
    axes.set_title("Spread of the metric over the folds")
    return axes


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def report_study_folder(folder: Path, out_dir: Path) -> Path | None:
    """The `training report` plugin: write a study folder's report, or return None for any other folder."""
    from training.hpo.storage import load_study
    from training.hpo.study_folder import StudyFolder

    if not StudyFolder(Path(folder)).manifest.is_file():
        return None
    write_report(load_study(folder), out_dir)
    return Path(out_dir) / "index.html"
