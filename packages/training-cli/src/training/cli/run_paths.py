"""Finding things in run folders given by the user: the model folder and the window settings it was trained with."""

from __future__ import annotations

from pathlib import Path

from training.common.errors import InputError


def model_folder(path: Path) -> Path:
    """`path` itself when it holds a model, else its `model/` folder; an error naming `path` otherwise."""
    for candidate in (path, path / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    raise InputError(f"{path}: not a model folder or a run folder with model/ (no config.json found)")


def window_settings(model_dir: Path) -> tuple[int, int]:
    """(max_length, stride) from the run's `config.yaml` beside `model/`, else `ModelConfig`'s defaults."""
    from training.config import ModelConfig, TrainingConfig

    config_file = model_dir.parent / "config.yaml"
    if not config_file.is_file():
        fields = ModelConfig.model_fields
        return fields["max_length"].default, fields["stride"].default
    config = TrainingConfig.from_yaml(config_file.read_text(encoding="utf-8"), str(config_file))
    return config.model.max_length, config.model.stride
