"""One forwarding function behind every legacy path (pydantic's `getattr_migration`, numpy 2.0's `core` shims).

Objects are looked up in their new home on each access, never copied, so `old.name is new.name` holds.
"""

from __future__ import annotations

import importlib
import opcode
from collections.abc import Callable, MutableMapping
from types import CodeType, FrameType
from typing import Any

from training_compat.deprecation import import_site, moved_message, warn_at
from training_compat.moves import MODULES, NAMES

_IMPORT_NAME = opcode.opmap["IMPORT_NAME"]
_IMPORT_FROM = opcode.opmap["IMPORT_FROM"]

Getattr = Callable[[str], Any]
Dir = Callable[[], list[str]]


class _Sites:
    """The import statements that have warned already, each once per process.

    A statement is its code object and the offset of its `IMPORT_NAME` instruction, so every name of one
    `from m import a, b` is one site. The code objects are held here: an id is unique only while its object
    lives, and a module's code (or a frame) is freed once it has run, so a later module could reuse the id
    and pass for a site that already warned. Code objects compare by content, not file, so they are keyed by id.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int], CodeType] = {}

    def first(self, frame: FrameType) -> bool:
        """Whether the statement `frame` runs has not been seen before (and remember it)."""
        code = frame.f_code
        key = id(code), _statement_start(code.co_code, frame.f_lasti)
        if key in self._seen:
            return False
        self._seen[key] = code
        return True


def _statement_start(bytecode: bytes, offset: int) -> int:
    """For an `IMPORT_FROM`, the offset of its statement's `IMPORT_NAME`; any other instruction is its own site."""
    if bytecode[offset] != _IMPORT_FROM:
        return offset
    while offset > 0 and bytecode[offset] != _IMPORT_NAME:
        offset -= 2  # wordcode: every even offset starts an instruction or a cache entry (opcode 0)
    return offset


def _executing(frame: FrameType, op: int) -> bool:
    """Whether `frame` is running the instruction `op`: tells a `from m import x` statement from `m.x`."""
    return frame.f_code.co_code[frame.f_lasti] == op


def _resolve(module: str, name: str, legacy: str) -> Any:
    """`module.name`; a missing optional library is reported under the legacy path the user wrote."""
    # Imported here: `training/__init__.py` imports this module, so a top-level `training.*` import would be circular.
    from training.common.optional import MissingDependencyError, missing

    try:
        return getattr(importlib.import_module(module), name)
    except MissingDependencyError as error:
        library = getattr(error.__cause__, "name", None)
        if library is None:
            raise
        raise missing(library, legacy) from error.__cause__


def forward(old: str) -> tuple[Getattr, Dir]:
    """Warn that legacy module `old` is imported, and return its `__getattr__` and `__dir__`.

    Called from the shim's body, so the first import warns at its own line; later `from old import name`
    statements warn at theirs. Attribute uses (`old.name`) do not warn: their import already did.
    """
    move = MODULES[old]
    message = moved_message(old, move.new)
    sites = _Sites()  # one warning per statement, however many names it imports
    site = import_site()
    sites.first(site)
    warn_at(site, message)

    def __getattr__(name: str) -> Any:
        if name == "__path__":  # a plain module must not look like a package
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        site = import_site()
        if _executing(site, _IMPORT_FROM) and sites.first(site):
            warn_at(site, message)
        if name == "__all__":
            target = importlib.import_module(move.new)
            return getattr(target, "__all__", [n for n in vars(target) if not n.startswith("_")])
        try:
            return _resolve(move.new, name, f"{old}.{name}")
        except AttributeError:
            raise AttributeError(f"module {old!r} (now {move.new!r}) has no attribute {name!r}") from None

    def __dir__() -> list[str]:
        return sorted(dir(importlib.import_module(move.new)))

    return __getattr__, __dir__


def legacy_names(package: str, namespace: MutableMapping[str, Any]) -> tuple[Getattr, Dir, list[str]]:
    """`__getattr__`, `__dir__` and `__all__` of the top-level `training` package's legacy names.

    Every use warns at its line, except the import system's own look-up while it runs `from training import x`:
    that statement warns once, when it takes the name.
    """
    public = sorted(NAMES)

    def __getattr__(name: str) -> Any:
        new = NAMES.get(name)
        if new is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        site = import_site()
        if not _executing(site, _IMPORT_NAME):
            warn_at(site, moved_message(package, new, name))
        return _resolve(new, name, f"{package}.{name}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__, public
