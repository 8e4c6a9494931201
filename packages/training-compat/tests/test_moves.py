"""The table of moves: one shim file per legacy module, and every new home exists with the names it should have."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from training_compat.moves import MODULES, NAMES

SRC = Path(__file__).resolve().parents[1] / "src"


def shim_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_every_legacy_module_has_one_tiny_shim_and_no_shim_is_missing_from_the_table() -> None:
    shims = {
        ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for top in ("training", "hpo", "training_exec")
        for path in (SRC / top).rglob("*.py")
    }
    assert shims - {"training"} == set(MODULES)
    for module in MODULES:
        text = shim_file(module).read_text(encoding="utf-8")
        assert "__getattr__, __dir__ = _forward(__name__)" in text and len(text.splitlines()) <= 6, module


@pytest.mark.parametrize("old", sorted(MODULES))
def test_every_new_home_exists(old: str) -> None:
    move = MODULES[old]
    importlib.import_module(move.new)
    if move.prefer is not None:  # the package whose names `training migrate` prefers re-exports this module's
        assert move.new.startswith(f"{move.prefer}.")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_legacy_top_level_name_has_a_public_new_home(name: str) -> None:
    module = importlib.import_module(NAMES[name])
    assert name in getattr(module, "__all__", ()) or callable(getattr(module, name))
