"""`TrainResult`: what a finished run achieved, as `metrics.json` records it, and the reuse of a finished run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.loaders import Dataset
from training.common.errors import InputError
from training.config.schema import TrainingConfig
from training.core.run_folder import START_OVER, RunFolder
from training.core.run_metrics import RunMetrics


@dataclass(frozen=True)
class TrainResult(Mapping[str, Any]):
    """A finished run: its folder and its `metrics.json` record; reads like its best metrics (`result["f1"]`)."""

    output_dir: Path
    metrics: RunMetrics

    @property
    def model_dir(self) -> Path:
        return RunFolder(self.output_dir).model

    def _best(self) -> dict[str, Any]:
        return self.metrics.best.model_dump(exclude_none=True) if self.metrics.best else {}

    def __getitem__(self, key: str) -> Any:
        return self._best()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._best())

    def __len__(self) -> int:
        return len(self._best())


def previous_run(
    run: RunFolder, config: TrainingConfig, dataset: Dataset, resume: bool, world_size: int
) -> TrainResult | None:
    """A finished identical run of `world_size` processes to reuse; an error if the folder holds another run (or the
    same one on another process count, whose batches and schedule differ, or a checkpoint whose run is unknown) and
    `resume` is on."""
    if not resume:  # a restart writes its own record over whatever is there, a damaged one too
        return None
    record = run.read_metrics(training=True)
    if record is None and run.checkpoint.is_dir():  # resumed, it would go on with another run's weights and schedule
        raise InputError(
            f"{run.root}: holds a checkpoint but no metrics.json, which names the config and dataset it trained; "
            f"start it over ({START_OVER})"
        )
    if record is None:
        return None
    if (record.config_fingerprint, record.dataset_fingerprint) != (config.fingerprint, dataset.fingerprint):
        config_fp, data_fp = record.config_fingerprint[:12], record.dataset_fingerprint[:12]
        raise InputError(
            f"{run.root}: holds a run of another config or dataset (config {config_fp}, data {data_fp}); "
            f"choose another output folder, or start it over ({START_OVER})"
        )
    if record.completed and record.world_size != world_size:
        raise InputError(
            f"{run.root}: holds a finished run on {record.world_size} process(es), not {world_size}; its batches and "
            f"schedule depend on the count: run it with {record.world_size}, choose another output folder, or start "
            f"it over ({START_OVER})"
        )
    if record.completed and record.best is not None and not (run.model / "config.json").is_file():  # reused: none
        raise InputError(
            f"{run.root}: holds a finished run whose model folder {run.model} is gone; start it over ({START_OVER})"
        )
    if not record.completed:
        return None
    # A kill between the final record and the checkpoint's removal left it (a MiniLM one is ~260 MB): no run needs it.
    shutil.rmtree(run.checkpoint, ignore_errors=True)
    return TrainResult(run.root, record)
