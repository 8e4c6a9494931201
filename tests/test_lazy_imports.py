"""Importing any package stays light: no heavy library is imported, and everything light works without them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "optuna", "azure", "sklearn", "seqeval", "mlflow")
PACKAGES = (
    "training.core",
    "training.config",
    "data",
    "training.hpo",
    "training.execution",
    "training.cli",
    "training.common",
    "hpo",
    "training_exec",
    "training_compat",
    "training",
)
# Prepended to every blocked run: a meta-path finder that makes the heavy libraries look uninstalled.
BLOCKER = f"""
import importlib.abc, json, sys

BLOCKED = {HEAVY!r}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, Blocker())


def leaked():
    return sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
"""


def installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:
        return False


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    result = run(BLOCKER + textwrap.dedent(code))
    assert result.returncode == 0, result.stderr
    return result


INSTALLED = [p for p in PACKAGES if installed(p)]


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_imports_no_heavy_library(package: str) -> None:
    if package not in INSTALLED:
        pytest.skip(f"{package} is not installed in this environment")
    result = run(f"import json, sys, {package}\nprint(json.dumps(sorted(sys.modules)))")
    assert result.returncode == 0, result.stderr
    heavy = [name for name in json.loads(result.stdout) if name.split(".")[0] in HEAVY]
    assert heavy == [], f"importing {package} imported {heavy[:10]}"


def test_every_package_imports_with_the_heavy_libraries_missing() -> None:
    result = run_blocked(f"""
        import importlib
        for package in {INSTALLED!r}:
            module = importlib.import_module(package)
            dir(module)
        assert leaked() == [], leaked()
        try:
            import torch
        except ModuleNotFoundError as error:
            print(error.name)
    """)
    assert result.stdout.strip() == "torch"  # the blocker works


def test_cli_help_works_without_heavy_libraries() -> None:
    result = run_blocked("""
        from training.cli.main import main
        try:
            main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        else:
            raise AssertionError("--help did not exit")
        assert leaked() == [], leaked()
    """)
    assert "usage: training" in result.stdout


def test_config_and_data_load_without_heavy_libraries(tmp_path: Path) -> None:
    corpus = tmp_path / "train.jsonl"
    corpus.write_text('{"text": "Ada Lovelace wrote", "annotations": [[0, 12, "PER"]]}\n', encoding="utf-8")
    result = run_blocked(f"""
        from training.config import build_training_config, load_hpo_config
        from data.loaders import load_dataset
        from data.splits import train_test_split
        config = build_training_config({{"data_path": {str(corpus)!r}}}, "configs")
        load_hpo_config("configs/hpo/demo.yaml")
        dataset = load_dataset(config.data.path)
        print(json.dumps([config.model.name, list(dataset.labels), len(config.fingerprint)]))
        assert leaked() == [], leaked()
    """)
    assert json.loads(result.stdout) == ["minilm", ["PER"], 64]


def test_heavy_names_say_which_pip_install_fixes_them() -> None:
    """Every public name either resolves without a heavy library or raises `MissingDependencyError`."""
    result = run_blocked(f"""
        import importlib
        from training.common.optional import MissingDependencyError, require

        outcomes = {{}}
        for package in {INSTALLED!r}:
            module = importlib.import_module(package)
            for name in getattr(module, "__all__", []):
                key = f"{{package}}.{{name}}"
                try:
                    getattr(module, name)
                    outcomes[key] = ["ok", ""]
                except MissingDependencyError as error:
                    outcomes[key] = ["missing", str(error)]
                except ModuleNotFoundError as error:
                    # A module of ours that is not written yet is not what this test is about.
                    kind = "unwritten" if (error.name or "").split(".")[0] in ("training", "data") else "error"
                    outcomes[key] = [kind, repr(error)]
                except Exception as error:
                    outcomes[key] = ["error", repr(error)]
        try:
            require("torch", "a test")
        except MissingDependencyError as error:
            outcomes["require"] = ["missing", str(error)]
        print(json.dumps(outcomes))
    """)
    outcomes = json.loads(result.stdout)
    assert outcomes["require"] == [
        "missing",
        "a test needs 'torch', which is not installed: pip install training-core (it requires torch)",
    ]
    errors = {name: detail for name, (kind, detail) in outcomes.items() if kind == "error"}
    assert errors == {}
    assert outcomes["training.core.train_model"][0] in ("missing", "unwritten")  # it trains with torch
    missing = {name: detail for name, (kind, detail) in outcomes.items() if kind == "missing" and name != "require"}
    for name, message in missing.items():
        assert message.startswith(f"{name} needs '") and "pip install" in message, message
    if not missing:
        pytest.skip("no public name needs a heavy library yet")
