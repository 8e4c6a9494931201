"""training-compat owns only its own files: without it the legacy paths are gone and the new ones work unchanged;
with it, `training` still spans every distribution."""

from __future__ import annotations

import json
import os
import sysconfig
from pathlib import Path

import pytest

from training_compat.moves import MODULES, NAMES

PACKAGES = Path(__file__).resolve().parents[3] / "packages"
COMPAT = PACKAGES / "training-compat" / "src"
OTHERS = {
    name: PACKAGES / name / "src" for name in ("training-core", "training-execution", "training-hpo", "training-cli")
}
SITE = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def files(src: Path) -> set[str]:
    return {
        path.relative_to(src).as_posix()
        for path in src.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_compat_ships_only_files_no_other_distribution_has() -> None:
    compat = files(COMPAT)
    for name, src in OTHERS.items():
        assert compat.isdisjoint(files(src)), f"training-compat would overwrite files of {name}"
    legacy = {f"training/{old.split('.')[1]}.py" for old in MODULES if old.startswith("training.")}
    assert {path for path in compat if path.startswith("training/")} == {"training/__init__.py", *legacy}
    assert not any((src / "training" / "__init__.py").exists() for src in OTHERS.values())


def test_without_compat_old_paths_fail_and_new_paths_work(guide, python) -> None:
    """`python -S` skips site-packages' .pth files, so no editable install (compat's included) is on the path:
    only the four other source trees and the site-packages folders themselves (for torch, optuna, ...)."""
    if any(Path(site, "training_compat").exists() for site in SITE):
        pytest.skip("training-compat is installed as files in site-packages; the clean-venv install tests cover this")
    news = [f"from {new} import {statement.split()[-1]}" for statement, new in guide]
    code = f"""
import importlib, importlib.util, json
seen = {{"compat": importlib.util.find_spec("training_compat") is not None, "modules": [], "names": []}}
for old in {sorted(MODULES)!r}:
    try:
        importlib.import_module(old)
    except ModuleNotFoundError:
        seen["modules"].append(old)
for name in {sorted(NAMES)!r}:
    try:
        exec(f"from training import {{name}}")
    except ImportError as error:
        seen["names"].append(name)
{chr(10).join(news)}
import training
seen["namespace"] = [getattr(training, "__file__", None), type(training.__path__).__name__]
print(json.dumps(seen))
"""
    result = python("-S", "-c", code, env={"PYTHONPATH": os.pathsep.join([*map(str, OTHERS.values()), *SITE])})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["compat"] is False
    assert seen["modules"] == sorted(MODULES)  # every legacy module: ModuleNotFoundError
    assert seen["names"] == sorted(NAMES)  # every legacy top-level name: ImportError
    assert seen["namespace"] == [None, "_NamespacePath"]  # a PEP 420 namespace


def test_with_compat_the_namespace_spans_every_distribution(probe) -> None:
    seen = probe(
        "import json, training, training.core, training.execution, training.hpo, training.cli, training.config\n"
        "print(json.dumps({'init': training.__file__, 'path': list(training.__path__),\n"
        "  'files': [m.__file__ for m in (training.core, training.execution, training.hpo, training.cli)]}))"
    )
    assert seen["init"] == str(COMPAT / "training" / "__init__.py")
    assert {str(src / "training") for src in OTHERS.values()} <= set(seen["path"])
    for file, src in zip(
        seen["files"], ("training-core", "training-execution", "training-hpo", "training-cli"), strict=True
    ):
        assert Path(file).is_relative_to(OTHERS[src]), file
