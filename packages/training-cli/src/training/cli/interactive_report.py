"""The figures of a run's interactive report page (plotly): learning curves, F1 per entity type and the confusion of
entity types, each titled and labelled with the run's metric and units."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from training.common.report_page import Section

if TYPE_CHECKING:
    from training.core.run_metrics import EntityScores, HistoryEntry

SCORES = ("entity_f1", "entity_precision", "entity_recall", "macro_f1")
FRACTION = "(0 to 1)"


def run_figures(
    history: Sequence[HistoryEntry],
    per_entity: Mapping[str, EntityScores],
    confusion: Mapping[str, Counter[str]] | None,
    metric: str,
    no_confusion: str,
) -> list[Section]:
    """(heading, figure or None, why it is missing) for each plot of a run; `no_confusion` says why a confusion is
    None."""
    return [
        ("Learning curves", _learning_curves(history, metric), "")
        if history
        else ("Learning curves", None, "no evaluation yet"),
        ("F1 per entity type", _entity_f1(per_entity, metric), "")
        if per_entity
        else ("F1 per entity type", None, "no per-entity scores in the run's best metrics"),
        ("Confusion of entity types", _confusion(confusion), "")
        if confusion
        else ("Confusion of entity types", None, no_confusion),
    ]


def confusion_counts(confusion: Mapping[str, Counter[str]]) -> tuple[list[str], list[list[int]]]:
    """Every entity type (gold or predicted), sorted, and the counts of words by gold (rows) and predicted type."""
    types = sorted(set(confusion) | {predicted for row in confusion.values() for predicted in row})
    return types, [[confusion.get(gold, Counter())[predicted] for predicted in types] for gold in types]


def _learning_curves(history: Sequence[HistoryEntry], metric: str) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = [entry.step for entry in history]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("validation scores", "validation loss"))
    for key in dict.fromkeys((metric, *SCORES)):
        values = [getattr(entry, key) for entry in history]
        if key != "loss" and any(value is not None for value in values):  # scores a run did not record: no curve
            figure.add_trace(go.Scatter(x=steps, y=values, mode="lines+markers", name=key), row=1, col=1)
    losses = [entry.loss for entry in history]
    figure.add_trace(go.Scatter(x=steps, y=losses, mode="lines+markers", name="loss"), row=1, col=2)
    figure.update_layout(title={"text": f"Learning curves (checkpoints chosen by {metric})"})
    figure.update_xaxes(title_text="optimizer step (count)")
    figure.update_yaxes(title_text=f"score {FRACTION}", range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(title_text="loss (cross-entropy, nats)", row=1, col=2)
    return figure


def _entity_f1(per_entity: Mapping[str, EntityScores], metric: str) -> Any:
    import plotly.graph_objects as go

    labels = sorted(per_entity)
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[per_entity[label].f1 for label in labels],
            text=[f"n={per_entity[label].support}" for label in labels],
            name="F1",
        )
    )
    figure.update_layout(
        title={"text": f"F1 per entity type at the best checkpoint by {metric}"},
        xaxis_title={"text": "entity type"},
        yaxis_title={"text": f"F1 {FRACTION}"},
        yaxis_range=[0, 1.05],
    )
    return figure


def _confusion(confusion: Mapping[str, Counter[str]]) -> Any:
    import plotly.graph_objects as go

    types, counts = confusion_counts(confusion)
    shares = [[count / max(sum(row), 1) for count in row] for row in counts]
    figure = go.Figure(
        go.Heatmap(
            z=shares,
            x=types,
            y=types,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "share of the gold type's words"}},
        )
    )
    figure.update_layout(
        title={"text": "Entity types per word: gold against predicted"},
        xaxis_title={"text": "predicted type"},
        yaxis_title={"text": "gold type (words, counts in cells)"},
    )
    return figure
