"""Where a legacy import path goes now, and whether what it names exists there (read without running heavy code:
a package's light `__init__`, a plain module's source)."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from training_compat.moves import MODULES, NAMES

# Top-level packages of the old layout besides `training`: everything under them is legacy.
LEGACY_ROOTS = frozenset({"hpo", "training_exec"})
ANY = frozenset({"*"})  # the names of a module with a module-level `__getattr__`: any name may exist


@dataclass(frozen=True)
class Homeless:
    """A legacy path (`hpo.helper`, `training_exec.scheduler`) with no counterpart in the new packages."""

    path: str


def root(dotted: str) -> str:
    return dotted.partition(".")[0]


@functools.cache
def names(module: str) -> frozenset[str]:
    """What `from module import x` can find: its top-level names and submodules (empty if there is no module)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return frozenset()
    if spec is None:
        return frozenset()
    if spec.submodule_search_locations is not None:  # a package: its `__init__` is light
        package = importlib.import_module(module)
        found = {*getattr(package, "__all__", ()), *vars(package)}
        found.update(info.name for info in pkgutil.iter_modules(package.__path__))  # a namespace's portions too
        return frozenset(found)
    if spec.origin is None or not spec.origin.endswith(".py"):
        return ANY
    return _top_level(ast.parse(Path(spec.origin).read_bytes()).body)


def _top_level(body: list[ast.stmt]) -> frozenset[str]:
    """Names a module body binds at run time (`if TYPE_CHECKING:` blocks bind nothing)."""
    found: set[str] = set()
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            found.update((alias.asname or alias.name).partition(".")[0] for alias in statement.names)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            found.update(node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name))
        elif isinstance(statement, ast.If) and not _type_checking(statement.test):
            found |= _top_level(statement.body) | _top_level(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody, *(h.body for h in statement.handlers)):
                found |= _top_level(block)
    return ANY if "__getattr__" in found else frozenset(found)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def exists(module: str, name: str) -> bool:
    known = names(module)
    return known is ANY or name in known


def homeless_module(dotted: str) -> bool:
    """Whether `dotted` is an old module the move table does not know (`hpo.utils`, `training.helpers`)."""
    top, _, rest = dotted.partition(".")
    if not rest or dotted in MODULES:
        return False
    if top in LEGACY_ROOTS:
        return True
    first = rest.partition(".")[0]
    return top == "training" and (f"training.{first}" in MODULES or not exists("training", first))


def from_target(module: str, name: str) -> tuple[str, str] | Homeless | None:
    """For `from module import name`: the module and name to import now, `Homeless`, or None if not legacy."""
    submodule = MODULES.get(f"{module}.{name}")
    if submodule is not None:  # a legacy module imported by name: `from training import model`
        package, _, last = submodule.new.rpartition(".")
        return package, last
    if homeless_module(module):
        return Homeless(module)
    if module == "training":
        if name in NAMES:
            return NAMES[name], name
        return None if exists("training", name) else Homeless(f"training.{name}")
    move = MODULES.get(module)
    if move is None:
        return None
    if move.prefer is not None and name in names(move.prefer):
        return move.prefer, name
    return (move.new, name) if exists(move.new, name) else Homeless(f"{module}.{name}")


def use_target(dotted: str) -> tuple[str, str] | Homeless | None:
    """For a use through `import training...` (`training.model`, `training.train_model`): new path and the module
    it needs, `Homeless` (`training.model.gone`), or None when the path is not legacy."""
    if dotted in MODULES:
        return MODULES[dotted].new, MODULES[dotted].new
    package, _, name = dotted.rpartition(".")
    if package == "training" and name in NAMES:
        return f"{NAMES[name]}.{name}", NAMES[name]
    if name.startswith("__"):
        return None
    if package in MODULES and f"{package}.{name}" not in MODULES:
        return None if exists(MODULES[package].new, name) else Homeless(dotted)
    return Homeless(dotted) if package == "training" and not exists("training", name) else None
