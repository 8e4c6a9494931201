"""`RunMetrics`: what a run's `metrics.json` holds, while it trains (progress) and once it has finished (result)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from data.report import LoadReport
from training.common.errors import InputError

METRICS_FORMAT = 1
# The precisions a run computes in (`training.precision: auto` resolves to one of them).
Precision = Literal["fp32", "bf16", "fp16"]


class EntityScores(BaseModel):
    """Precision, recall and F1 of one entity type, and how many gold entities of it there are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: float
    recall: float
    f1: float
    support: int


class Scores(BaseModel):
    """The scores of one evaluation on the validation split; `score(name)` is what `metric_for_best` picks.

    None: not computed (`evaluate_model` has no loss; files written before span scores and repaired entities were
    recorded). Keys of older formats (`invalid_entities`) are ignored.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    entity_precision: float
    entity_recall: float
    entity_f1: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    support: int
    token_accuracy: float
    loss: float | None = None
    repaired_entities: int | None = None
    span_precision: float | None = None
    span_recall: float | None = None
    span_f1: float | None = None

    def score(self, metric: str) -> float:
        """The value of `metric` (a `Metric` of the config: `entity_f1`, `loss`, ...); an error if not recorded."""
        value = getattr(self, metric, None)
        if not isinstance(value, (int, float)):
            raise InputError(f"metric {metric!r}: not recorded in this evaluation; it has {', '.join(self.scalars())}")
        return float(value)

    def scalars(self) -> dict[str, float | int]:
        """Every number recorded, by name in sorted order (no per-entity table, nothing unrecorded)."""
        values = self.model_dump(exclude={"per_entity", "epoch", "step"}, exclude_none=True)
        return dict(sorted(values.items()))


class HistoryEntry(Scores):
    """One evaluation of a run's history: when it happened (epoch, optimizer step) and its scores."""

    epoch: int
    step: int


class Evaluation(Scores):
    """The scores of one evaluation with its per-entity table: the best of a run."""

    per_entity: dict[str, EntityScores] = {}

    def entry(self, epoch: int, step: int) -> HistoryEntry:
        """This evaluation's history entry (its scores, without the per-entity table)."""
        return HistoryEntry(epoch=epoch, step=step, **self.model_dump(exclude={"per_entity"}))


class PrecisionCheck(BaseModel):
    """The evaluation that decided a `precision: auto` run's bf16, scored in bf16 and again in fp32 with the same
    weights: the entity F1 of each, and whether bf16 fell too far below for the run to keep it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bf16_f1: float
    fp32_f1: float
    switched: bool  # the run went on in fp32
    taken: bool = False  # made by an earlier run of the same model and data (a sweep's trial), taken by this one

    @model_serializer(mode="wrap")
    def _written(self, write: SerializerFunctionWrapHandler) -> dict[str, object]:
        """`taken` only where true: files without it read as before, also by versions that predate it."""
        fields = write(self)
        if not self.taken:
            fields.pop("taken", None)
        return fields


# The best evaluation so far; `{}` on disk while there is none, as files have always recorded it.
BestEvaluation = Annotated[
    Evaluation | None,
    BeforeValidator(lambda value: value or None),
    PlainSerializer(lambda best: best.model_dump() if best is not None else {}),
]


class RunMetrics(BaseModel):
    """The one record of a run's metrics: its evaluations so far and, once `completed`, the best of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = METRICS_FORMAT
    status: Literal["running", "completed"]
    history: tuple[HistoryEntry, ...] = ()
    config_fingerprint: str
    dataset_fingerprint: str
    validation_fingerprint: str | None = None  # of the documents that evaluated the run (None: written before it was)
    best: BestEvaluation = None
    best_epoch: int | None = None
    best_step: int = 0
    stopped_early: bool = False
    tag_names: tuple[str, ...] = ()
    train_samples_per_second: float = 0.0
    validation_overlap: int = 0
    world_size: int = 1
    truncated_words: int = 0
    unlabelled_windows: int = 0
    skipped_steps: int = 0
    precision: Precision | None = None  # what `training.precision` resolved to on the run's device, so far
    precision_check: PrecisionCheck | None = None  # `auto`'s bf16 check, where the run made one
    load_report: LoadReport | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"
