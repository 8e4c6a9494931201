"""Finding things in run folders given by the user: the model folder, the run's config, and data read as it was."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from training.common.errors import InputError

if TYPE_CHECKING:
    from data.loaders import Dataset
    from training.config import TrainingConfig


def model_folder(path: Path) -> Path:
    """`path` itself when it holds a model, else its `model/` folder; an error naming `path` otherwise."""
    for candidate in (path, path / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    raise InputError(f"{path}: not a model folder or a run folder with model/ (no config.json found)")


def run_config(model_dir: Path) -> TrainingConfig | None:
    """The config the model was trained with (`config.yaml` beside `model/`), None for a model without its run."""
    from training.config import TrainingConfig

    config_file = model_dir.parent / "config.yaml"
    if not config_file.is_file():
        return None
    return TrainingConfig.from_yaml(config_file.read_text(encoding="utf-8"), str(config_file))


def window_settings(model_dir: Path) -> tuple[int, int]:
    """(max_length, stride) the model was trained with, else `ModelConfig`'s defaults."""
    from training.config import ModelConfig

    config = run_config(model_dir)
    if config is None:
        fields = ModelConfig.model_fields
        return fields["max_length"].default, fields["stride"].default
    return config.model.max_length, config.model.stride


def run_dataset(model_dir: Path, data_path: str) -> Dataset:
    """The data at `data_path`, read with the run's data options (format, scheme, labels, columns) when known."""
    config = run_config(model_dir)
    if config is not None:
        return config.data.load(data_path)
    from data.loaders import load_dataset

    return load_dataset(data_path)
