"""One forwarding function behind every legacy path (pydantic's `getattr_migration`, numpy 2.0's `core` shims);
objects are looked up in their new home on each access, so `old.name is new.name`."""

from __future__ import annotations

import dis
import importlib
import opcode
from collections.abc import Callable, MutableMapping
from types import CodeType, FrameType
from typing import Any

from training_compat.deprecation import import_site, moved_message, warn_at
from training_compat.moves import MODULES, NAMES

_IMPORT_NAME = opcode.opmap["IMPORT_NAME"]
_IMPORT_FROM = opcode.opmap["IMPORT_FROM"]
_IMPORT_STAR = opcode.opmap.get("IMPORT_STAR", opcode.opmap.get("CALL_INTRINSIC_1"))  # the latter from Python 3.12

Getattr = Callable[[str], Any]
Dir = Callable[[], list[str]]


class _Sites:
    """Warns once per statement or use (per process), keyed by code object and instruction offset.

    The code objects are held so their ids are never reused by a later module (they compare by content, not file).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int, str], CodeType] = {}

    def warn(self, frame: FrameType, message: str, name: str = "") -> None:
        """Warn at `frame`'s line unless the statement it runs has warned for `name` before."""
        code = frame.f_code
        key = id(code), _statement_start(code.co_code, frame.f_lasti), name
        if key not in self._seen:
            self._seen[key] = code
            warn_at(frame, message)


def _statement_start(bytecode: bytes, offset: int) -> int:
    """For an `IMPORT_FROM` or `IMPORT_STAR`, the offset of its statement's `IMPORT_NAME`; any other instruction is
    its own site."""
    if bytecode[offset] not in (_IMPORT_FROM, _IMPORT_STAR):
        return offset
    while offset > 0 and bytecode[offset] != _IMPORT_NAME:
        offset -= 2  # wordcode: every even offset starts an instruction or a cache entry (opcode 0)
    return offset


def _instruction(frame: FrameType) -> int:
    """The opcode `frame` runs: tells `from m import x` (`IMPORT_FROM`, or `IMPORT_NAME` while it runs) from `m.x`."""
    return frame.f_code.co_code[frame.f_lasti]


def _asks_for(site: FrameType, package: str) -> bool:
    """Whether the statement `site` runs asks for `package` itself: not where it imports one of its submodules without
    binding the package's name (`from hpo.sweep import x`, `import hpo.sweep as s`), whose own shim then warns."""
    instructions = dis.get_instructions(site.f_code)
    for instruction in instructions:
        if instruction.offset == site.f_lasti:
            if instruction.opcode != _IMPORT_NAME or not str(instruction.argval).startswith(f"{package}."):
                return True
            following = next(instructions, None)
            return following is None or following.opcode not in (_IMPORT_FROM, _IMPORT_STAR)
    return True


def _resolve(module: str, name: str, legacy: str) -> Any:
    """`module.name`; a missing optional library is reported under the legacy path the user wrote."""
    # Imported here: `training/__init__.py` imports this module, so a top-level `training.*` import would be circular.
    from training.common.optional import INSTALL_HINTS, MissingDependencyError, missing

    try:
        return getattr(importlib.import_module(module), name)
    except MissingDependencyError as error:
        library = getattr(error.__cause__, "name", None)
        if library is None:
            raise
        raise missing(library, legacy) from error.__cause__
    except ModuleNotFoundError as error:  # a module that imports a library at its top (training.core.trainer: torch)
        if (error.name or "").split(".")[0] not in INSTALL_HINTS:
            raise
        raise missing(error.name or "", legacy) from error


def forward(old: str) -> tuple[Getattr, Dir]:
    """Warn that legacy module `old` is imported, and return its `__getattr__` and `__dir__`.

    The first import warns at its line (not a package imported on the way to a legacy submodule, which warns itself);
    later `from old import name` statements and uses (`old.name`) warn at theirs, since a later `import old` finds the
    module cached and cannot warn.
    """
    move = MODULES[old]
    message = moved_message(old, move.new)
    sites = _Sites()
    site = import_site()
    if _asks_for(site, old):
        sites.warn(site, message)

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
        if _instruction(site) in (_IMPORT_NAME, _IMPORT_FROM, _IMPORT_STAR):
            sites.warn(site, message)
        elif name != "__all__":
            sites.warn(site, moved_message(old, move.new, name))
        return value

    def __dir__() -> list[str]:
        return sorted(dir(importlib.import_module(move.new)))

    return __getattr__, __dir__


def legacy_names(package: str, namespace: MutableMapping[str, Any]) -> tuple[Getattr, Dir, list[str]]:
    """`__getattr__`, `__dir__` and `__all__` of the top-level `training` package's legacy names; each use or
    `from training import x` warns at its line once per name (not the import system's own look-up)."""
    public = sorted(NAMES)
    sites = _Sites()

    def __getattr__(name: str) -> Any:
        new = NAMES.get(name)
        if new is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        site = import_site()
        if _instruction(site) != _IMPORT_NAME:
            sites.warn(site, moved_message(package, new, name), name)
        return _resolve(new, name, f"{package}.{name}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__, public
