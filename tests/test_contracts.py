"""The import-linter contracts in the root pyproject.toml: kept by the code, and able to catch a wrong import."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every distribution but training-compat: its pkgutil-style training/__init__.py confuses import-linter.
LINTED = ("training-core", "training-execution", "training-hpo", "training-cli")
LAYERS = "Layers: CLI | HPO > Execution > Core > Config > Data > Common"
CONTRACTS = (
    LAYERS,
    "Every training sub-package sits in a layer on purpose",
    "CLI and HPO are independent siblings (commands arrive through entry points)",
    "Only training.hpo imports optuna",
    "Nothing below training.execution imports azure",
    "data, config and common never import torch or transformers",
    "The onnxruntime predictor never imports torch or transformers",
    "Nothing imports the legacy compatibility packages",
)


@functools.cache
def lint_imports_python() -> tuple[str, str]:
    """The interpreter that runs `lint-imports` and the folder holding its `importlinter` package."""
    candidates = [Path(sys.executable).parent / "lint-imports", shutil.which("lint-imports")]
    for script in (Path(c) for c in candidates if c):
        if not script.is_file():
            continue
        first_line = script.read_text(encoding="utf-8", errors="replace").splitlines()[0]
        python = first_line[2:].strip() if first_line.startswith("#!") else sys.executable
        found = subprocess.run(
            [python, "-c", "import importlinter, os; print(os.path.dirname(os.path.dirname(importlinter.__file__)))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0:
            return python, found.stdout.strip()
    pytest.skip("import-linter is not installed (pip install import-linter)")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run `lint-imports` on `root`, seeing only the source trees of the linted distributions.

    `python -S` keeps site-packages (and any installed training-compat) off the path; import-linter's own
    folder is added back explicitly.
    """
    python, site = lint_imports_python()
    sources = [str(root / "packages" / distribution / "src") for distribution in LINTED]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sources, site])}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [python, "-S", "-c", code, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in CONTRACTS:
        assert f"{contract} KEPT" in result.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the linted source trees and the root pyproject.toml, to break on purpose."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for distribution in LINTED:
        shutil.copytree(
            ROOT / "packages" / distribution / "src",
            tmp_path / "packages" / distribution / "src",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return tmp_path


def add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def verdicts(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.endswith((" KEPT", " BROKEN"))]


def broken(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Contract name -> the report lint-imports gives for it, for each broken contract."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.partition("Broken contracts")[2].splitlines()
    reports: dict[str, str] = {}
    name = None
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if line in CONTRACTS and underline == "-" * len(line):
            name = line
            reports[name] = ""
        elif name is not None:
            reports[name] += line + "\n"
    return reports


def test_the_copy_lints_like_the_repository(tree: Path) -> None:
    assert verdicts(lint_imports(tree)) == verdicts(lint_imports(ROOT))


def test_data_importing_the_cli_breaks_the_layers(tree: Path) -> None:
    add_line(tree / "packages/training-core/src/data/splits.py", "import training.cli  # noqa")
    report = broken(lint_imports(tree))
    assert "data is not allowed to import training.cli" in report[LAYERS]
    assert "- data.splits -> training.cli (l." in report[LAYERS]


def test_core_importing_optuna_breaks_the_optuna_contract(tree: Path) -> None:
    add_line(tree / "packages/training-core/src/training/core/__init__.py", "import optuna  # noqa")
    assert "training.core -> optuna (l." in broken(lint_imports(tree))["Only training.hpo imports optuna"]


def test_config_importing_torch_breaks_the_torch_contract(tree: Path) -> None:
    add_line(tree / "packages/training-core/src/training/config/__init__.py", "import torch  # noqa")
    report = broken(lint_imports(tree))["data, config and common never import torch or transformers"]
    assert "training.config -> torch (l." in report


def test_a_shared_pipeline_step_importing_torch_breaks_the_onnxruntime_contract(tree: Path) -> None:
    windowing = tree / "packages/training-core/src/training/core/windowing.py"
    add_line(windowing, "from training.core import features  # noqa")
    report = broken(lint_imports(tree))["The onnxruntime predictor never imports torch or transformers"]
    assert "training.core.windowing -> training.core.features (l." in report


def test_execution_importing_compat_breaks_the_legacy_contract(tree: Path) -> None:
    add_line(tree / "packages/training-execution/src/training/execution/__init__.py", "import training_exec  # noqa")
    report = broken(lint_imports(tree))["Nothing imports the legacy compatibility packages"]
    assert "training.execution -> training_exec (l." in report


def test_cli_importing_hpo_breaks_independence(tree: Path) -> None:
    add_line(tree / "packages/training-cli/src/training/cli/__init__.py", "import training.hpo  # noqa")
    report = broken(lint_imports(tree))["CLI and HPO are independent siblings (commands arrive through entry points)"]
    assert "- training.cli -> training.hpo (l." in report


def test_a_sub_package_outside_every_layer_is_caught(tree: Path) -> None:
    stray = tree / "packages/training-core/src/training/extras"
    stray.mkdir()
    (stray / "__init__.py").write_text("", encoding="utf-8")
    report = broken(lint_imports(tree))["Every training sub-package sits in a layer on purpose"]
    assert "not listed as layers:\n\n- training.extras" in report
