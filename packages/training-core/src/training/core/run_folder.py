"""The layout of a training run folder; every file in it is written atomically."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training.common.atomic import atomic_write_text, check_folder, put_back_retired, staging_leftovers
from training.common.errors import ConfigError, InputError
from training.config.schema import TrainingConfig
from training.config.validation import read_record, validate
from training.config.yaml_io import load_yaml_mapping
from training.core.run_metrics import Precision, RunMetrics

if TYPE_CHECKING:
    from training.core.windowing import Windowing


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run: `config.yaml`, `metrics.json`, `model/`, `checkpoint/`, `train.log`, `lineage.json`."""

    root: Path

    @classmethod
    def of_model(cls, model_dir: str | os.PathLike[str]) -> RunFolder:
        """The run holding the model folder `model_dir`: its parent once resolved (`.`, said inside it, has itself)."""
        return cls(Path(model_dir).resolve().parent)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage.json"

    def check_path(self) -> None:
        """Refuse, before any work, a run folder path that is (or lies inside) a file rather than a folder, that the
        file system cannot hold (a name over its length limit), or whose `model/` is no model (a config folder's
        `model/` of YAML files): the run would replace it."""
        check_folder(self.root, "a run folder (an existing one or a new path)")
        if self.model.exists() and not (self.model / "config.json").is_file():
            raise InputError(
                f"{self.model}: not a model folder (no config.json), and the run would replace it; choose another "
                "output folder"
            )

    def write_config(self, yaml_text: str) -> None:
        atomic_write_text(self.config, yaml_text)

    def read_config(self) -> TrainingConfig | None:
        """The config the run trained with (`config.yaml`), None when the folder has none."""
        if not self.config.is_file():
            return None
        return validate(TrainingConfig, load_yaml_mapping(self.config), str(self.config))

    def windowing(self, *, max_length: int | None = None, stride: int | None = None) -> Windowing:
        """Window settings for this run's model: those given, else the run's config's, else `ModelConfig`'s."""
        from training.core.windowing import Windowing

        config = self.read_config() if max_length is None or stride is None else None  # both given: no file read
        return Windowing.of(config.model if config else None, max_length=max_length, stride=stride)

    def write_metrics(self, metrics: RunMetrics) -> None:
        atomic_write_text(self.metrics, metrics.model_dump_json(indent=2) + "\n")

    def read_metrics(self, *, training: bool = False) -> RunMetrics | None:
        """The metrics record, or None when the run has not written one yet; only `training` (its writer) advises
        removing a damaged one."""
        if not self.metrics.is_file():
            return None
        what = "run metrics file (remove it to start over)" if training else "run metrics file"
        return read_record(RunMetrics, self.metrics, what)

    def recorded_precision(self) -> Precision | None:
        """The precision the run's evaluations ran in (the last it recorded), None where it recorded none."""
        try:
            metrics = self.read_metrics()
        except ConfigError as error:  # another tool's file, or a damaged one: the model itself is fine
            hint = "give a precision (precision='fp32', --precision fp32) to use the model"
            raise ConfigError(f"{error}; {hint}") from None
        return metrics.precision if metrics is not None else None

    def remove(self, path: Path) -> None:
        """Delete a file or folder of this run; never through a symbolic link, whose target lies elsewhere."""
        if path.is_symlink():
            raise InputError(f"{path}: refusing to delete through a symbolic link in the run folder {self.root}")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def remove_leftovers(self) -> list[Path]:
        """Delete (and return) the staging leftovers of interrupted writes; a retired folder (`.model.old`) whose
        swap crashed before the new one came in is put back instead."""
        removed = []
        job = self.root / "job.json"  # the job spec its runner writes first (training.execution's `JOB_FILE`)
        for target in (job, self.config, self.metrics, self.model, self.checkpoint, self.lineage):
            for leftover in staging_leftovers(target):
                if not put_back_retired(leftover):
                    self.remove(leftover)
                    removed.append(leftover)
        return removed

    def attach_log(self, logger: logging.Logger) -> logging.Handler:
        """Append `logger`'s INFO and higher records to `train.log`; the caller removes the handler when done."""
        self.root.mkdir(parents=True, exist_ok=True)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        handler = logging.FileHandler(self.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        return handler
