"""`BestConfig`: what a sweep chose, with enough provenance to refit it and trace the result back."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from training.common.atomic import atomic_write_text
from training.config.schema import Section, TrainingConfig

BEST_CONFIG_FORMAT = 1


class BestConfig(Section):
    """The best trial of a study: its hyperparameters, cross-validated objective and where it came from."""

    format: int = BEST_CONFIG_FORMAT
    config: TrainingConfig = Field(description="the base config every trial started from")
    hyperparameters: dict[str, Any] = Field(description="dotted config keys the trial set, e.g. training.learning_rate")
    num_epochs: int | None = Field(default=None, ge=1, description="epochs the best trial trained (refit uses them)")
    metric: str
    direction: Literal["maximize", "minimize"]
    objective: float = Field(description="mean of the metric over the folds")
    cv_std: float = 0.0
    fold_values: tuple[float, ...] = ()
    trial_number: int
    trial_run: str | None = Field(default=None, description="the run that trained the trial (Azure ML child job)")
    study_name: str
    storage: str = Field(description="study storage URL with any password removed")
    dataset_fingerprint: str
    data_path: str | None = Field(default=None, description="the data the sweep used (a refit's default data)")
    splits_path: str | None = None
    checkpoint: str | None = Field(default=None, description="model folder of the best trial, when kept")

    @property
    def backbone(self) -> str:
        return self.config.model.backbone

    def training_config(self) -> TrainingConfig:
        """The base config with the best hyperparameters (and epoch count) applied: what a refit trains."""
        values = dict(self.hyperparameters)
        if self.num_epochs is not None:
            values["training.num_epochs"] = self.num_epochs
        return self.config.with_values(values)

    def save(self, path: str | Path) -> Path:
        """Write `best_config.json` atomically."""
        return atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BestConfig:
        """Read a `best_config.json`; a missing, unreadable or invalid file is a `ConfigError` naming it."""
        from training.config.validation import read_json_file, validate

        return validate(cls, read_json_file(path, "best-config file"), str(path))
