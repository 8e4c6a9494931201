"""`RunMetrics`: what a run's `metrics.json` holds, while it trains (progress) and once it has finished (result)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from data.report import LoadReport

METRICS_FORMAT = 1
# The precisions a run computes in (`training.precision: auto` resolves to one of them).
Precision = Literal["fp32", "bf16", "fp16"]


class RunMetrics(BaseModel):
    """The one record of a run's metrics: its evaluations so far and, once `completed`, the best of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = METRICS_FORMAT
    status: Literal["running", "completed"]
    history: tuple[dict[str, Any], ...] = ()
    config_fingerprint: str
    dataset_fingerprint: str
    best: dict[str, Any] = {}
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
    precision: Precision | None = None  # what `training.precision` resolved to on the run's device
    load_report: LoadReport | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"
