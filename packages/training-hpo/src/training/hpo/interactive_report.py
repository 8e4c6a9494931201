"""The study report as one interactive HTML page (plotly), its figures built from the trials (not with
`optuna.visualization`) so every axis names the study's metric and its unit."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from training.common.optional import require
from training.common.plural import counted
from training.common.report_page import Section, report_page
from training.hpo.trial_record import TrialRecord


def metric_axis(metric: str) -> str:
    """The axis label of a metric, with its unit: a loss in nats (cross-entropy), a score as a fraction."""
    return f"{metric} (cross-entropy, nats)" if metric.endswith("loss") else f"{metric} (score, 0 to 1)"


def study_figures(
    study: optuna.Study, metric: str, evaluator: optuna.importance.BaseImportanceEvaluator | None = None
) -> list[Section]:
    """(heading, figure or None, why it is missing) for each plot of the study; `evaluator` (else a fresh
    `importance_evaluator()`) computes the importances."""
    require("plotly", "the interactive study report")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return [(heading, None, "no complete trial yet") for heading in _HEADINGS]
    skip_importances = importances_note(complete)
    return [
        (_HEADINGS[0], _history(study, complete, metric), ""),
        (
            _HEADINGS[1],
            None if skip_importances else _importances(study, metric, evaluator or importance_evaluator()),
            skip_importances or "",
        ),
        (_HEADINGS[2], _parallel(complete, metric), ""),
        (_HEADINGS[3], _fold_spread(complete, metric), ""),
    ]


def importances_note(complete: list[FrozenTrial]) -> str | None:
    """Why parameter importances are skipped, or None: optuna needs 2 complete trials and 2 objective values (with
    one value it warns that every importance is equal)."""
    if len(complete) < 2:
        return f"needs at least 2 complete trials; the study has {len(complete)}"
    if len({trial.value for trial in complete}) < 2:
        return f"needs complete trials with different objective values; every one has {complete[0].value}"
    return None


# optuna's trees grow 64 levels deep: the importances of 1,800 complete trials took 50 s, about the square of the
# trials; trees of 8 levels give them within 0.01 in 3 s, and 5,000 trials in 4 s (docs/benchmarks.md)
FANOVA_DEPTH = 8


def importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    """fANOVA, which the figures name (optuna's default is PED-ANOVA), seeded: one study, one answer; its trees
    `FANOVA_DEPTH` levels deep. It fits its forest once per study and parameters, so the two pages of a report share
    one fit."""
    return _FanovaOnce(seed=0)


class _FanovaOnce(optuna.importance.FanovaImportanceEvaluator):
    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed, max_depth=FANOVA_DEPTH)
        self._fitted: dict[tuple, dict[str, float]] = {}

    def evaluate(self, study: optuna.Study, params: list[str] | None = None, *, target: Any = None) -> dict[str, float]:
        key = (study, tuple(params or ()), target)  # the study itself: an id could be reused once it is gone
        if key not in self._fitted:
            self._fitted[key] = super().evaluate(study, params, target=target)
        return self._fitted[key]


_HEADINGS = ("Optimisation history", "Parameter importances", "Parallel coordinates", "Fold values per trial")


def figure_labels(metric: str) -> dict[str, tuple[str, str, str]]:
    """(title, x axis, y axis; empty where a plot has no such axis) of each plot by heading, for both pages."""
    axis = metric_axis(metric)
    labels = (
        (f"Optimisation history of {metric}", "trial (number)", axis),
        (
            f"Parameter importances for {metric} (fANOVA)",
            "importance (share of the variance of the metric, 0 to 1)",
            "hyperparameter",
        ),
        (f"Parameters of the complete trials against {metric}", "", ""),
        (f"Spread of {metric} over the folds", "trial (number)", f"fold {axis}"),
    )
    return dict(zip(_HEADINGS, labels, strict=True))


def interactive_page(
    study: optuna.Study, metric: str, table: str, evaluator: optuna.importance.BaseImportanceEvaluator | None = None
) -> str:
    """`interactive.html`: the page of the study's plotly figures (self-contained, opens offline) and its `table`."""
    title = f"Study {study.study_name}"
    intro = f"{study.direction.name.lower()} {metric}; {counted(len(study.get_trials(deepcopy=False)), 'trial')}"
    return report_page(title, intro, study_figures(study, metric, evaluator), table)


def _history(study: optuna.Study, complete: list[FrozenTrial], metric: str) -> Any:
    import plotly.graph_objects as go

    numbers = [trial.number for trial in complete]
    values = [float(trial.value or 0.0) for trial in complete]  # a complete trial always has its value
    better = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    best = [better(values[: index + 1]) for index in range(len(values))]
    figure = go.Figure(
        [
            go.Scatter(x=numbers, y=values, mode="markers", name=f"{metric} (CV mean)"),
            go.Scatter(x=numbers, y=best, mode="lines", name="best so far", line={"shape": "hv"}),
        ]
    )
    return _labelled(figure, *figure_labels(metric)[_HEADINGS[0]])


def _importances(study: optuna.Study, metric: str, evaluator: optuna.importance.BaseImportanceEvaluator) -> Any:
    import plotly.graph_objects as go

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    names = list(importances)[::-1]  # the most important on top
    figure = go.Figure(go.Bar(x=[importances[name] for name in names], y=names, orientation="h", name="importance"))
    return _labelled(figure, *figure_labels(metric)[_HEADINGS[1]])


def _parallel(complete: list[FrozenTrial], metric: str) -> Any:
    import plotly.graph_objects as go

    # A conditional parameter is only in the trials that drew it: the others show it as "inactive".
    names = sorted({name for trial in complete for name in trial.params})
    values = [float(trial.value) if trial.value is not None else math.nan for trial in complete]
    dimensions = []
    for name in names:
        column = [trial.params.get(name) for trial in complete]
        distribution = next(trial.distributions[name] for trial in complete if name in trial.distributions)
        if isinstance(distribution, CategoricalDistribution):
            choices = [str(choice) for choice in distribution.choices]
            if any(value is None for value in column):
                choices.append("inactive")
            dimensions.append(
                {
                    "label": name,
                    "values": [choices.index("inactive" if value is None else str(value)) for value in column],
                    "tickvals": list(range(len(choices))),
                    "ticktext": choices,
                }
            )
        elif getattr(distribution, "log", False):  # a log-scale range reads best in decades
            dimensions.append(_numbers(f"log10 {name}", [None if v is None else math.log10(v) for v in column]))
        else:
            dimensions.append(_numbers(name, column))
    dimensions.append({"label": metric_axis(metric), "values": values})
    line = {"color": values, "colorscale": "Viridis", "showscale": True}
    figure = go.Figure(go.Parcoords(line=line, dimensions=dimensions))
    figure.update_layout(title={"text": figure_labels(metric)[_HEADINGS[2]][0]})
    return figure


def _numbers(label: str, column: list[float | None]) -> dict[str, Any]:
    """A number axis; the trials without the parameter on an "inactive" tick below its values: plotly.js draws a NaN
    (or None) of parallel coordinates at 0 (plotly.js#4341), a value the parameter may well take."""
    if None not in column:
        return {"label": label, "values": column}
    drawn = [value for value in column if value is not None]
    low, span = min(drawn), (max(drawn) - min(drawn)) or 1.0
    ticks = [low + span * step / 4 for step in range(5)]
    inactive = low - span / 5
    return {
        "label": label,
        "values": [inactive if value is None else value for value in column],
        "tickvals": [inactive, *ticks],
        "ticktext": ["inactive", *(f"{tick:.3g}" for tick in ticks)],
    }


def _fold_spread(complete: list[FrozenTrial], metric: str) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure(
        [
            go.Box(
                y=list(TrialRecord.of(trial).fold_values),
                name=str(trial.number),
                boxpoints="all",
                showlegend=False,
            )
            for trial in complete
        ]
    )
    return _labelled(figure, *figure_labels(metric)[_HEADINGS[3]])


def _labelled(figure: Any, title: str, x: str, y: str) -> Any:
    figure.update_layout(title={"text": title}, xaxis_title={"text": x}, yaxis_title={"text": y})
    return figure
