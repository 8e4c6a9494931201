"""`TrainResult`: what a finished run achieved, as `metrics.json` records it, and the reuse of a finished run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.loaders import Dataset
from training.common.errors import InputError
from training.config.schema import TrainingConfig
from training.core.run_folder import RunFolder


@dataclass(frozen=True)
class TrainResult(Mapping[str, Any]):
    """What a run achieved; reads like its best metrics (`result["entity_f1"]`)."""

    output_dir: Path
    best_metrics: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    best_epoch: int | None
    best_step: int
    stopped_early: bool
    tag_names: tuple[str, ...]
    config_fingerprint: str
    dataset_fingerprint: str
    train_samples_per_second: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return RunFolder(self.output_dir).model

    def __getitem__(self, key: str) -> Any:
        return self.best_metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.best_metrics)

    def __len__(self) -> int:
        return len(self.best_metrics)

    def to_record(self) -> dict[str, Any]:
        """The JSON record written to `metrics.json`."""
        return {
            "status": "completed",
            "best": self.best_metrics,
            "history": list(self.history),
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "stopped_early": self.stopped_early,
            "tag_names": list(self.tag_names),
            "config_fingerprint": self.config_fingerprint,
            "dataset_fingerprint": self.dataset_fingerprint,
            "train_samples_per_second": self.train_samples_per_second,
            **self.extra,
        }

    @classmethod
    def from_record(cls, output_dir: Path, record: Mapping[str, Any]) -> TrainResult:
        known = {
            "status",
            "format",
            "best",
            "history",
            "best_epoch",
            "best_step",
            "stopped_early",
            "tag_names",
            "config_fingerprint",
            "dataset_fingerprint",
            "train_samples_per_second",
        }
        return cls(
            output_dir=output_dir,
            best_metrics=dict(record["best"]),
            history=tuple(record["history"]),
            best_epoch=record["best_epoch"],
            best_step=record["best_step"],
            stopped_early=record["stopped_early"],
            tag_names=tuple(record["tag_names"]),
            config_fingerprint=record["config_fingerprint"],
            dataset_fingerprint=record["dataset_fingerprint"],
            train_samples_per_second=record.get("train_samples_per_second", 0.0),
            extra={key: value for key, value in record.items() if key not in known},
        )


def previous_run(run: RunFolder, config: TrainingConfig, dataset: Dataset, resume: bool) -> TrainResult | None:
    """A finished identical run to reuse; an error if the folder holds another run and `resume` is on."""
    record = run.read_metrics()
    if record is None:
        return None
    same = (record.get("config_fingerprint"), record.get("dataset_fingerprint")) == (
        config.fingerprint,
        dataset.fingerprint,
    )
    if not resume:
        return None
    if not same:
        config_fp, data_fp = str(record.get("config_fingerprint"))[:12], str(record.get("dataset_fingerprint"))[:12]
        raise InputError(
            f"{run.root}: holds a run of another config or dataset (config {config_fp}, data {data_fp}); "
            "choose another output folder, or start it over (resume=False; training train --restart)"
        )
    return TrainResult.from_record(run.root, record) if record.get("status") == "completed" else None
