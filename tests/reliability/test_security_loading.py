"""Loading never runs code from files: YAML through safe loaders only, weights as safetensors (a legacy pickle only
with `weights_only=True`, which refuses a payload), and no model code from a folder unless `trust_remote_code` is set,
which no config does by default."""

from __future__ import annotations

import ast
import importlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

from training.common.errors import ConfigError, InputError
from training.config import ModelConfig, build_training_config
from training.config.yaml_io import parse_yaml
from training.core.checkpoint import Progress, load_checkpoint, rng_state, save_checkpoint
from training.core.model import create_model_and_tokenizer, load_model, save_model

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("packages/*/src"))
UNSAFE_YAML = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all", "Loader", "FullLoader", "UnsafeLoader"}
UNSAFE_YAML |= {"CLoader", "CFullLoader", "CUnsafeLoader"}


class Payload:
    """A pickle that creates `marker` when it is unpickled by a loader that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def source_files() -> Iterator[tuple[Path, ast.Module]]:
    for source in SOURCES:
        for path in sorted(source.rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def calls(tree: ast.Module, owner: str, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        function = node.func if isinstance(node, ast.Call) else None
        if isinstance(function, ast.Attribute) and function.attr == name and ast.unparse(function.value) == owner:
            yield node


def module_name(path: Path) -> str:
    source = next(source for source in SOURCES if path.is_relative_to(source))
    return ".".join(path.relative_to(source).with_suffix("").parts)


def test_the_source_trees_load_yaml_and_torch_files_safely() -> None:
    """No unsafe YAML loader or unpickling anywhere; yaml.load only with a SafeLoader; torch.load only weights_only;
    trust_remote_code never set to True."""
    yaml_loads = 0
    for path, tree in source_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml":
                assert node.attr not in UNSAFE_YAML, f"{path}:{node.lineno}: yaml.{node.attr}"
        for call in [*calls(tree, "yaml", "load"), *calls(tree, "yaml", "load_all")]:
            (loader,) = [keyword.value for keyword in call.keywords if keyword.arg == "Loader"]
            assert isinstance(loader, ast.Name), f"{path}:{call.lineno}: yaml.load with Loader={ast.unparse(loader)}"
            resolved = getattr(importlib.import_module(module_name(path)), loader.id)
            assert issubclass(resolved, yaml.SafeLoader), f"{path}:{call.lineno}: {loader.id} is not a SafeLoader"
            yaml_loads += 1
        for call in [*calls(tree, "pickle", "load"), *calls(tree, "pickle", "loads")]:
            pytest.fail(f"{path}:{call.lineno}: unpickling in the source tree")
        for call in calls(tree, "torch", "load"):
            keywords = {keyword.arg: keyword.value for keyword in call.keywords}
            weights_only = keywords.get("weights_only")
            assert isinstance(weights_only, ast.Constant) and weights_only.value is True, f"{path}:{call.lineno}"
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert not (isinstance(node.value, ast.Constant) and node.value.value), f"{path}:{node.value.lineno}"
    assert yaml_loads >= 1


@pytest.mark.parametrize(
    "tagged",
    [
        "!!python/object/apply:pathlib.Path.touch [{marker}]",
        "!!python/object/new:pathlib.Path [{marker}]",
        "!!python/name:os.system",
    ],
)
def test_a_yaml_file_with_a_python_tag_is_rejected(
    tagged: str, training_config: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """A config file holding a python/* tag: exit 2 naming the file and the tag; the payload never runs."""
    config = shutil.copytree(training_config, tmp_path / "config")
    marker = tmp_path / "ran"
    (config / "train.yaml").write_text(
        f"backbone: tiny-bert\ndata: resumes\ntraining: {tagged.format(marker=marker)}\n", encoding="utf-8"
    )
    completed = run_cli("train", "--config-dir", config, "--output", tmp_path / "run", "--quiet")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert f"{config / 'train.yaml'}:3: invalid YAML: could not determine a constructor for the tag" in completed.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="could not determine a constructor"):
        parse_yaml(tagged.format(marker=marker), "inline")


@pytest.fixture(scope="module")
def tiny(single_thread: None, training_config: Path) -> tuple:
    """A tiny BERT for the entity types of the generated resumes, and its tokenizer."""
    config = build_training_config(None, training_config)
    labels = ("COMPANY", "DATE", "DEGREE", "EMAIL", "LOCATION", "PERSON", "PHONE", "SKILL")
    return create_model_and_tokenizer(config, labels=labels)


def test_weights_are_saved_as_safetensors_only(tiny: tuple, tmp_path: Path) -> None:
    """save_model writes model.safetensors and no pickle-based weight file."""
    model, tokenizer = tiny
    folder = save_model(model, tokenizer, tmp_path / "model")
    names = {path.name for path in folder.iterdir()}
    assert "model.safetensors" in names
    assert not {name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))}


def test_a_pickle_payload_in_legacy_weights_or_a_checkpoint_is_refused(tiny: tuple, tmp_path: Path) -> None:
    """A pytorch_model.bin or a checkpoint's optimizer.pt that would run code: refused, the code never runs."""
    model, tokenizer = tiny
    marker = tmp_path / "ran"
    legacy = save_model(model, tokenizer, tmp_path / "legacy")
    (legacy / "model.safetensors").unlink()
    torch.save({"classifier.weight": Payload(marker)}, legacy / "pytorch_model.bin")
    with pytest.raises(InputError, match=f"{legacy}: corrupt or unreadable model weights"):
        load_model(legacy)
    assert not marker.exists()

    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    checkpoint = tmp_path / "checkpoint"
    save_checkpoint(checkpoint, model, optimizer, scheduler, None, Progress(), [rng_state()])
    torch.save({"optimizer": Payload(marker)}, checkpoint / "optimizer.pt")
    with pytest.raises(InputError, match=f"{checkpoint}: corrupt or incomplete checkpoint .UnpicklingError"):
        load_checkpoint(checkpoint, model, optimizer, scheduler, None)
    assert not marker.exists()


def test_model_code_from_a_folder_never_runs_by_default(training_config: Path, tmp_path: Path) -> None:
    """A model folder shipping its own code (auto_map): refused unless trust_remote_code is set; its code never runs."""
    assert ModelConfig(name="x", backbone="y").trust_remote_code is False
    assert build_training_config(None, training_config).model.trust_remote_code is False
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "ran"
    auto_map = {"AutoConfig": "modeling.Settings", "AutoModelForTokenClassification": "modeling.Model"}
    settings = {"model_type": "reliability-custom", "auto_map": auto_map, "id2label": {"0": "O"}}
    (folder / "config.json").write_text(json.dumps(settings), encoding="utf-8")
    (folder / "modeling.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match=f"{folder}: unreadable model config"):
        load_model(folder)
    config = build_training_config({"set": [f"model.backbone={folder}"]}, training_config)
    with pytest.raises(ConfigError, match=f"model.backbone '{folder}': the folder {folder} does not hold a loadable"):
        create_model_and_tokenizer(config, labels=("PERSON",))
    assert not marker.exists()
