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
    """The statements and uses that have warned already, each once per process.

    A site is a code object and the offset of its instruction; every name of one `from m import a, b` is one site,
    at the statement's `IMPORT_NAME`. The code objects are held here: an id is unique only while its object lives,
    and a module's code (or a frame) is freed once it has run, so a later module could reuse the id and pass for a
    site that already warned. Code objects compare by content, not file, so they are keyed by id.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int, str], CodeType] = {}

    def first(self, frame: FrameType, name: str = "") -> bool:
        """Whether the statement `frame` runs has not been seen before for `name` (and remember it)."""
        code = frame.f_code
        key = id(code), _statement_start(code.co_code, frame.f_lasti), name
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


def _instruction(frame: FrameType) -> int:
    """The opcode `frame` runs: tells a `from m import x` statement (`IMPORT_FROM`, and `IMPORT_NAME` while the
    import system looks `x` up in a package) from a use, `m.x`."""
    return frame.f_code.co_code[frame.f_lasti]


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
    statements warn at theirs, and so does every line that uses a name through the module (`old.name`), since a
    later `import old` finds the module cached and cannot warn.
    """
    move = MODULES[old]
    message = moved_message(old, move.new)
    sites = _Sites()
    site = import_site()
    sites.first(site)
    warn_at(site, message)

    def __getattr__(name: str) -> Any:
        if name == "__path__":  # a plain module must not look like a package
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        if name == "__all__":
            target = importlib.import_module(move.new)
            value = getattr(target, "__all__", [n for n in vars(target) if not n.startswith("_")])
        else:
            try:
                value = _resolve(move.new, name, f"{old}.{name}")
            except AttributeError:
                raise AttributeError(f"module {old!r} (now {move.new!r}) has no attribute {name!r}") from None
        site = import_site()
        if _instruction(site) in (_IMPORT_NAME, _IMPORT_FROM):
            if sites.first(site):
                warn_at(site, message)
        elif name != "__all__" and sites.first(site):
            warn_at(site, moved_message(old, move.new, name))
        return value

    def __dir__() -> list[str]:
        return sorted(dir(importlib.import_module(move.new)))

    return __getattr__, __dir__


def legacy_names(package: str, namespace: MutableMapping[str, Any]) -> tuple[Getattr, Dir, list[str]]:
    """`__getattr__`, `__dir__` and `__all__` of the top-level `training` package's legacy names.

    Every use warns at its line, once per name, except the import system's own look-up while it runs
    `from training import x`: that statement warns once per name, when it takes it.
    """
    public = sorted(NAMES)
    sites = _Sites()

    def __getattr__(name: str) -> Any:
        new = NAMES.get(name)
        if new is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        site = import_site()
        if _instruction(site) != _IMPORT_NAME and sites.first(site, name):
            warn_at(site, moved_message(package, new, name))
        return _resolve(new, name, f"{package}.{name}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__, public
