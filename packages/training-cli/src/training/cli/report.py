"""A run folder's report: learning curves, per-entity F1 and the confusion of entity types, as PNG and HTML, and as
one interactive page (`interactive.html`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.cli.interactive_report import FRACTION, SCORES, confusion_counts, run_figures
from training.cli.run_paths import DataOptions, run_dataset
from training.common.atomic import atomic_write_text
from training.common.errors import InputError
from training.common.optional import require
from training.common.report_page import check_report_folder, report_page, save_png
from training.core.run_folder import RunFolder

if TYPE_CHECKING:
    from training.core.run_metrics import EntityScores, HistoryEntry


def write_run_report(
    run_dir: Path,
    out_dir: Path,
    data_path: str | None = None,
    data_options: DataOptions | None = None,
) -> Path:
    """Write PNG plots, `index.html` and `interactive.html` for a training run folder; returns the `index.html` path.
    With data (given, read with `data_options` where given, else as the run read its own, or the run's own), also
    the confusion of entity types."""
    record = RunFolder(run_dir).read_metrics()
    if record is None:
        raise InputError(f"{run_dir}: not a run folder (no metrics.json)")
    require("matplotlib", "training report")
    require("plotly", "training report")
    import matplotlib

    matplotlib.use("Agg")
    check_report_folder(out_dir)
    model_dir = run_dir / "model"
    if data_path is not None and not model_dir.is_dir():  # told to use data it cannot: not left unread in silence
        raise InputError(
            f"{run_dir}: no model folder (model/) to compute the entity-type confusion on {data_path} with; leave the "
            "data out for a report of the run's metrics"
        )
    no_confusion = "needs the run's data (pass --data-path)" if model_dir.is_dir() else "the run has no model/ folder"
    config = RunFolder.of_model(model_dir).read_config()
    metric = config.training.metric_for_best if config is not None else "entity_f1"  # what chose the checkpoints
    if data_path is None and config is not None and config.data.path and Path(config.data.path).exists():
        data_path = config.data.path
    confusion = None
    if model_dir.is_dir() and data_path:
        from training.core import evaluate_model

        dataset = run_dataset(model_dir, data_path, data_options or DataOptions())
        split = next((name for name in ("test", "validation", "train") if name in dataset), "train")
        result = evaluate_model(model_dir, None, dataset[split])
        confusion = _entity_confusion([doc.tags for doc in dataset[split]], result.predictions)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_entity = record.best.per_entity if record.best else {}
    figures = run_figures(record.history, per_entity, confusion, metric, no_confusion)
    drawings = {
        "learning_curves": lambda: _learning_curves(record.history, metric),
        "entity_f1": lambda: _entity_f1(per_entity, metric),
        "entity_confusion": lambda: _confusion(confusion or {}),
    }
    sections = []  # the interactive page's headings and notes: a plot left out is named, with why
    for (heading, figure, note), (name, draw) in zip(figures, drawings.items(), strict=True):
        if figure is not None:
            drawn = draw()
            drawn.tight_layout()
            save_png(drawn, out_dir / f"{name}.png")
        sections.append((heading, None if figure is None else f"{name}.png", note))
    scalars = record.best.scalars() if record.best else {}
    scores = [(key, value) for key, value in scalars.items() if isinstance(value, float)]  # not the counts
    page = out_dir / "index.html"
    best_epoch = "no best checkpoint yet" if record.best_epoch is None else f"best epoch {record.best_epoch}"
    status = "completed" if record.completed else "unfinished (metrics.json: running; training still, or stopped)"
    intro = f"Run {status}, {best_epoch}."
    table = "\n".join(f"{key:<24} {value:.4f}" for key, value in scores)
    links = [("Interactive version (opens offline)", "interactive.html")]
    atomic_write_text(page, report_page(f"Run {run_dir.name}", intro, sections, table, links))
    best = "; ".join(f"{key} {value:.4f}" for key, value in scores)
    intro = f"checkpoints chosen by {metric}; best: {best or 'none yet'}"
    atomic_write_text(out_dir / "interactive.html", report_page(f"Run {run_dir.name}", intro, figures))
    return page


def _entity_confusion(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]
) -> dict[str, Counter[str]]:
    """Word-level confusion of entity types (B-/I- dropped): gold type -> counts of predicted types."""
    table: dict[str, Counter[str]] = {}
    for gold_tags, predicted_tags in zip(references, predictions, strict=True):
        for gold, predicted in zip(gold_tags, predicted_tags, strict=True):
            table.setdefault(gold[2:] or "O", Counter())[predicted[2:] or "O"] += 1
    return table


def _learning_curves(history: Sequence[HistoryEntry], metric: str) -> Any:
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [entry.step for entry in history]

    def values(key: str) -> list[float]:  # a value not recorded is a gap, never a zero
        return [math.nan if (value := getattr(entry, key)) is None else value for entry in history]

    for key in dict.fromkeys((metric, *SCORES)):
        if key != "loss" and any(getattr(entry, key) is not None for entry in history):
            left.plot(steps, values(key), marker="o", label=key)
    left.set(xlabel="optimizer step (count)", ylabel=f"score {FRACTION}", ylim=(0, 1.02))
    left.set_title(f"validation scores (checkpoints chosen by {metric})")
    left.legend()
    right.plot(steps, values("loss"), marker="o", color="tab:red")
    right.set(xlabel="optimizer step (count)", ylabel="loss (cross-entropy, nats)", title="validation loss")
    return figure


def _entity_f1(per_entity: dict[str, EntityScores], metric: str) -> Any:
    import matplotlib.pyplot as plt

    labels = sorted(per_entity)
    figure, axes = plt.subplots(figsize=(max(5, len(labels) * 0.9), 4))
    bars = axes.bar(labels, [per_entity[label].f1 for label in labels], color="tab:blue")
    axes.bar_label(bars, labels=[f"n={per_entity[label].support}" for label in labels], fontsize=8)
    axes.set(ylabel=f"F1 {FRACTION}", title=f"F1 per entity type at the best checkpoint by {metric}", ylim=(0, 1.1))
    axes.tick_params(axis="x", rotation=30)
    return figure


def _confusion(confusion: dict[str, Counter[str]]) -> Any:
    import matplotlib.pyplot as plt
    import numpy as np

    types, counts = confusion_counts(confusion)
    matrix = np.array(counts, float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(1 + len(types) * 0.8, 1 + len(types) * 0.7))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(types)), types, rotation=45, ha="right")
    axes.set_yticks(range(len(types)), types)
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            color = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, int(count), ha="center", va="center", fontsize=7, color=color)
    axes.set(xlabel="predicted", ylabel="gold", title="entity types per word")
    return figure
