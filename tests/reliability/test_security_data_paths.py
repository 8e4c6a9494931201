"""A data path written in a config file stays inside the config folder (`..`, absolute paths and symbolic links out
are refused) unless the data config allows it explicitly; a path given as an argument is the user's own choice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.common.errors import ConfigError
from training.config import build_training_config


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(a config folder with `corpus/` inside, a data folder `elsewhere/` beside it)."""
    config, elsewhere = tmp_path / "config", tmp_path / "elsewhere"
    for folder in (config / "model", config / "data", config / "corpus", elsewhere):
        folder.mkdir(parents=True)
    (config / "train.yaml").write_text("backbone: tiny-bert\ndata: corpus\n", encoding="utf-8")
    (config / "model" / "tiny-bert.yaml").write_text("backbone: tiny-bert\n", encoding="utf-8")
    (config / "link").symlink_to(elsewhere, target_is_directory=True)
    return config, elsewhere


def data_path(config: Path, yaml_text: str) -> str | None:
    (config / "data" / "corpus.yaml").write_text(yaml_text, encoding="utf-8")
    return build_training_config(None, config).data.path


@pytest.mark.parametrize(
    "path",
    ["../elsewhere", "corpus/../../elsewhere", "{elsewhere}", "link", "link/train.jsonl", "~/corpus"],
    ids=["dotdot", "dotdot-inside", "absolute", "symlink", "through-symlink", "home"],
)
def test_a_data_path_out_of_the_config_folder_is_refused(path: str, folders: tuple[Path, Path]) -> None:
    """Each way out of the config folder: a ConfigError naming the data file, the value and the way to allow it."""
    config, elsewhere = folders
    value = path.format(elsewhere=elsewhere)
    with pytest.raises(ConfigError) as caught:
        data_path(config, f"path: {value}\n")
    assert str(caught.value) == (
        f"{config / 'data' / 'corpus.yaml'}: data.path: {value!r} resolves outside the config folder {config}; "
        "set data.allow_external_paths: true or pass the path explicitly (data_path, --data-path)"
    )


def test_a_data_path_inside_or_allowed_explicitly(folders: tuple[Path, Path]) -> None:
    """Inside the folder it resolves there; out of it only with allow_external_paths or as an argument."""
    config, elsewhere = folders
    assert data_path(config, "path: corpus\n") == str((config / "corpus").resolve())
    allowed = data_path(config, "path: ../elsewhere\nallow_external_paths: true\n")
    assert allowed == str(elsewhere.resolve())
    given = build_training_config({"data_path": str(elsewhere)}, config)
    assert given.data.path == str(elsewhere) and os.path.isdir(given.data.path)
