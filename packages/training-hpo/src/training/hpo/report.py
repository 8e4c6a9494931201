"""`write_report`: PNG plots of a study with an `index.html`, the same plots as an interactive page (plotly), and a
plain-text table of its trials. Plots are drawn headless (matplotlib's Agg backend), and a caller's backend and style
(a notebook's) are put back after."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from training.common.atomic import atomic_write_bytes, atomic_write_text
from training.common.errors import InputError, TrainingError, first_line
from training.common.optional import require
from training.common.plural import counted
from training.common.report_page import Section, check_report_folder, png_bytes, report_page
from training.hpo.interactive_report import (
    figure_labels,
    importance_evaluator,
    importances_note,
    interactive_page,
    metric_axis,
)
from training.hpo.recovery import interrupted
from training.hpo.trial_record import TrialRecord

COLUMNS = ("trial", "state", "objective", "cv std", "folds", "device", "parameters", "fail reason")


def trials_table(study: optuna.Study, *, latest: int | None = None) -> str:
    """Every trial (or the `latest` ones, and a line counting those left out) as one row of `COLUMNS` (a RUNNING trial
    whose process died as `running (worker gone)`), then the training time pruning saved."""
    rows = [COLUMNS]
    trials = study.get_trials(deepcopy=False)
    gone = {trial.number for trial in trials if interrupted(trial)}
    shown = trials if latest is None else trials[max(0, len(trials) - latest) :]
    for trial in shown:
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
    if len(shown) < len(trials):
        left_out = counted(len(trials) - len(shown), "earlier trial")
        lines.append(f"{left_out} left out; the report's trials.txt (`training hpo report`) lists every trial")
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
    `trials.txt`). Every figure is drawn before the first file is written: a figure that fails leaves the folder as
    it was; a file, or a folder that holds anything else than an earlier report, is refused before any work."""
    check_report_folder(out_dir)
    require("matplotlib", "training.hpo.write_report")
    require("plotly", "training.hpo.write_report")
    metric = study_metric(study)
    pngs: dict[str, bytes] = {}
    figures: list[Section] = []
    evaluator = importance_evaluator()  # one fANOVA fit for both pages
    with _drawn_headless():
        for heading, name, draw, note in study_plots(study, metric, evaluator):
            if note is None:
                pngs[name] = _png(heading, draw)
            figures.append((heading, None if note else name, note or ""))
    table = trials_table(study)
    intro = f"Direction: {study.direction.name.lower()}."
    links = [("Interactive version (opens offline)", "interactive.html")]
    index = report_page(f"Study {study.study_name}", intro, figures, table, links)
    interactive = interactive_page(study, metric, table, evaluator)
    out = Path(out_dir)
    for name, png in pngs.items():
        atomic_write_bytes(out / name, png)
    atomic_write_text(out / "trials.txt", table)
    atomic_write_text(out / "index.html", index)
    atomic_write_text(out / "interactive.html", interactive)
    return table


@contextlib.contextmanager
def _drawn_headless() -> Iterator[None]:
    """Draw on Agg canvases (Optuna's importance plot needs one), then put back the caller's backend and style: Optuna
    sets the ggplot style for good, and a notebook's plots after a report showed nothing (Agg) in that style."""
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    with matplotlib.rc_context():
        plt.switch_backend("agg")
        try:
            yield
        finally:
            plt.switch_backend(backend)


def _png(heading: str, draw: Callable[[], Any]) -> bytes:
    """The PNG of one plot; an error naming the plot if it cannot be drawn."""
    try:
        return png_bytes(draw().figure)
    except InputError:  # a trial's record the plot reads, named as it is
        raise
    except Exception as error:
        reason = f"report figure {heading!r} could not be drawn ({first_line(error)})"
        raise TrainingError(f"{reason}; no file of the report was written") from error


def study_plots(
    study: optuna.Study, metric: str, evaluator: optuna.importance.BaseImportanceEvaluator | None = None
) -> list[tuple[str, str, Callable[[], Any], str | None]]:
    """(heading, PNG file name, a function drawing its matplotlib Axes, why it is skipped or None) for each plot;
    titles and axes name `metric` and its unit, as the interactive page does; `evaluator` (else a fresh
    `importance_evaluator()`) computes the importances."""
    evaluator = evaluator or importance_evaluator()
    from optuna.visualization import matplotlib as plots

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    axis = metric_axis(metric)
    none_yet = "no complete trial yet" if not complete else None
    importances = importances_note(complete)
    # A parameter or objective with one value in every trial has a zero-height axis: matplotlib warns ("identical low
    # and high ylims") and the axis says nothing, so only the parameters that vary are drawn, and only if the
    # objective varies too.
    names = sorted({name for trial in complete for name in trial.params})
    varying = [name for name in names if len({trial.params.get(name) for trial in complete}) > 1]
    constant = importances or (None if varying else "needs complete trials with different parameter values")
    drawings = {
        "history.png": (lambda: plots.plot_optimization_history(study, target_name=axis), none_yet),
        "importances.png": (
            lambda: plots.plot_param_importances(study, evaluator=evaluator, target_name=axis),
            importances,
        ),
        "parallel.png": (
            lambda: plots.plot_parallel_coordinate(study, params=varying, target_name=axis),
            none_yet or constant,
        ),
        "folds.png": (lambda: _fold_spread(complete), none_yet),
    }
    return [
        (heading, name, functools.partial(_labelled, draw, *labels), note)
        for (heading, labels), (name, (draw, note)) in zip(figure_labels(metric).items(), drawings.items(), strict=True)
    ]


def _labelled(draw: Callable[[], Any], title: str, x: str, y: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = draw()
    axes.set_title("", loc="left")  # where optuna puts some of its titles
    axes.set_title(title)
    if x:
        axes.set(xlabel=x, ylabel=y)
    return axes


def study_metric(study: optuna.Study) -> str:
    """The metric a study optimises: from its sweep record, or `objective` for a study made elsewhere."""
    from training.hpo.sweep_settings import RECORD, SweepSettings

    return SweepSettings.load(study).hpo_config.metric if RECORD in study.user_attrs else "objective"


def _fold_spread(trials: list[FrozenTrial]) -> Any:
    import matplotlib.pyplot as plt

    # A box at each trial's number: past 20 trials the figure stops growing and matplotlib picks the ticks (1,000
    # trials drew a PNG 47,000 pixels wide, a page shrank it to a line).
    _, axes = plt.subplots(figsize=(min(14.0, max(4.0, 0.6 * len(trials) + 2)), 4))
    numbers = [trial.number for trial in trials]
    values = [list(TrialRecord.of(trial).fold_values) for trial in trials]
    axes.boxplot(values, positions=numbers, manage_ticks=len(trials) <= 20)
    # one call for every point: a call per trial rescaled the axes over all the earlier ones (1,800 trials: 15 s)
    points = [(number, value) for number, folds in zip(numbers, values, strict=True) for value in folds]
    axes.scatter([number for number, _ in points], [value for _, value in points], s=12, zorder=3)
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
