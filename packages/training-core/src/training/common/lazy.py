"""Lazy public names for package `__init__` modules (SPEC 1 style)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from training.common.optional import INSTALL_HINTS, missing


def attach(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` resolving `names` (name -> module) on first use; a missing optional
    library is a `MissingDependencyError` naming the install command."""
    public = sorted(names)

    def __getattr__(name: str) -> Any:
        module_name = names.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            root = (error.name or "").split(".")[0]
            if root in INSTALL_HINTS:
                raise missing(root, f"{package}.{name}") from error
            raise
        return getattr(module, name)

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public
