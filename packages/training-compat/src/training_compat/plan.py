"""What to change in a module's legacy imports, and what to leave with a note (why it stays), decided on the
original tree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    ImportAssignment,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from training_compat.moves import MODULES
from training_compat.targets import Homeless, from_target, homeless_module, use_target
from training_compat.targets import root as _root

# Why a legacy import was left as it was: the rows of `training migrate`'s summary.
NO_NEW_HOME = "no new home"
NAME_TAKEN = "its new name is taken"
STAR = "star import"
IN_STRING = "used in a string"


@dataclass(frozen=True)
class Note:
    """A legacy import left as it was, and why: the user migrates it by hand."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What to change, keyed by nodes of the original tree."""

    aliases: dict[cst.ImportAlias, str] = field(default_factory=dict)  # `import old` alias -> new dotted name
    rebinds: dict[cst.ImportAlias, list[str]] = field(default_factory=dict)  # `import hpo` -> statements instead
    # a use through an unaliased import, or the string naming a module to `importlib.import_module` -> new path
    uses: dict[cst.CSTNode, str] = field(default_factory=dict)
    extra: dict[cst.Import, list[str]] = field(default_factory=dict)  # modules to import after a statement
    notes: list[Note] = field(default_factory=list)


def _unaliased(assignment: ImportAssignment) -> bool:
    """Whether an `import a.b.c` binding is the dotted name itself (not `import x as a`)."""
    assert isinstance(assignment.node, cst.Import)
    names = [get_full_name_for_node(alias.name) or "" for alias in assignment.node.names if alias.asname is None]
    return any(dotted == assignment.name or dotted.startswith(f"{assignment.name}.") for dotted in names)


def _bound_module(assignment: ImportAssignment) -> str | None:
    """The legacy module an `import` binds to the assigned name (`import hpo.sweep` binds `hpo`), if any."""
    assert isinstance(assignment.node, cst.Import)
    for alias in assignment.node.names:
        dotted = get_full_name_for_node(alias.name) or ""
        bound = get_full_name_for_node(alias.asname.name) if alias.asname else _root(dotted)
        if bound == assignment.name:
            module = dotted if alias.asname else bound
            return module if module in MODULES else None
    return None


def _rebind(dotted: str) -> list[str]:
    """Statements that import what `import hpo[.sub]` did and bind the same name, `hpo`, to the new package."""
    root = _root(dotted)
    package, _, last = MODULES[root].new.rpartition(".")
    bind = f"from {package} import {last}" + ("" if last == root else f" as {root}")
    return [bind] if dotted == root else [f"import {MODULES[dotted].new}", bind]


def decide(wrapper: MetadataWrapper) -> Plan:
    """Find every legacy import and use, and decide its rewrite (or why it stays)."""
    plan = Plan()
    scope_of = wrapper.resolve(ScopeProvider)
    scopes = {scope for scope in scope_of.values() if scope is not None}
    parents = wrapper.resolve(ParentNodeProvider)
    positions = wrapper.resolve(PositionProvider)

    def note(node: cst.CSTNode, text: str, reason: str) -> None:
        found = Note(positions[node].start.line, text, reason)
        if found not in plan.notes:  # two statements binding `training` see the same uses
            plan.notes.append(found)

    def homeless(node: cst.CSTNode, path: str) -> None:
        note(node, f"{path} has no new home; see docs/migration.md", NO_NEW_HOME)

    bindings: list[ImportAssignment] = []  # unaliased `import training...` bindings, whose uses may need rewriting
    bound: list[tuple[ImportAssignment, str]] = []  # names bound to a legacy module (`import hpo as h`): checked
    taken: set[str] = set()  # names bound by anything else: a new top-level name must not collide with them
    for scope in scopes:
        for assignment in scope.assignments:
            imported = isinstance(assignment, ImportAssignment) and isinstance(assignment.node, cst.Import)
            if imported and (module := _bound_module(assignment)) is not None:
                bound.append((assignment, module))
            if imported and _unaliased(assignment):
                if _root(assignment.name) not in MODULES:  # `import hpo` keeps its name: its uses stay
                    bindings.append(assignment)
                continue
            taken.add(_root(assignment.name))

    def collides(old: str, new: str, node: cst.CSTNode) -> bool:
        if _root(new) != _root(old) and _root(new) in taken:
            note(node, f"'{old}' left as is: '{_root(new)}' names something else here; use '{new}' by hand", NAME_TAKEN)
            return True
        return False

    imports = [node for node in positions if isinstance(node, cst.Import)]
    for node in imports:
        for alias in node.names:
            dotted = get_full_name_for_node(alias.name) or ""
            if homeless_module(dotted):
                homeless(node, dotted)
            if dotted not in MODULES:
                continue
            new = MODULES[dotted].new
            if alias.asname is None and _root(dotted) in MODULES:
                if dotted == _root(dotted) or not collides(dotted, new, alias):
                    plan.rebinds[alias] = _rebind(dotted)
            elif alias.asname is not None or not collides(dotted, new, alias):
                plan.aliases[alias] = new

    for assignment in bindings:
        statement = assignment.node
        assert isinstance(statement, cst.Import)
        for access in assignment.references:
            if all(found.node is not statement for found in access.scope[_root(assignment.name)]):
                continue  # libcst credits the import with `training.model` in `def f(training)`: not its use
            use = access.node
            if not isinstance(use, (cst.Name, cst.Attribute)):
                note(use, f"'{assignment.name}' is used in a string; rewrite that use by hand", IN_STRING)
                continue
            chain = [use]
            while isinstance(parent := parents.get(chain[-1]), cst.Attribute) and parent.value is chain[-1]:
                chain.append(parent)
            needed = None
            for node in reversed(chain):  # the longest legacy path wins: `training.model`, not `training`
                dotted = get_full_name_for_node(node) or ""
                target = use_target(dotted)
                if isinstance(target, Homeless):
                    homeless(node, target.path)
                    break
                if target is not None:
                    if node not in plan.uses and not collides(dotted, target[0], node):
                        plan.uses[node], needed = target
                    break
            else:  # a use that is not legacy keeps the name this statement bound, even if the statement moves
                root = _root(assignment.name)
                if any(_root(plan.aliases.get(alias, root)) != root for alias in statement.names):
                    needed = root
            if needed is not None and needed not in plan.extra.setdefault(statement, []):
                plan.extra[statement].append(needed)

    for assignment, module in bound:  # `hpo.gone` through `import hpo`: no rewrite of the use would help
        for access in assignment.references:
            node = access.node
            while isinstance(parent := parents.get(node), cst.Attribute) and parent.value is node:
                dotted = module + (get_full_name_for_node(parent) or "")[len(assignment.name) :]
                target = use_target(dotted)
                if isinstance(target, Homeless):
                    homeless(parent, target.path)
                if dotted not in MODULES:
                    break
                node = parent

    imported = {
        prefix
        for node in imports
        for alias in node.names
        for name in [plan.aliases.get(alias) or get_full_name_for_node(alias.name) or ""]
        for prefix in _prefixes(MODULES[name].new if alias in plan.rebinds else name)
    }
    for modules in plan.extra.values():
        modules[:] = [module for module in modules if module not in imported]
        imported.update(modules)
    for node in positions:
        if isinstance(node, cst.ImportFrom) and not node.relative:
            _plan_from(node, note, homeless)
        elif isinstance(node, cst.Call) and (string := _module_named(node, scope_of)) is not None:
            module = string.evaluated_value
            if module in MODULES:
                plan.uses[string] = MODULES[module].new
            elif isinstance(module, str) and homeless_module(module):
                homeless(string, module)
    return plan


def _module_named(call: cst.Call, scope_of: Mapping[cst.CSTNode, Scope | None]) -> cst.SimpleString | None:
    """The string literal naming the module in an `importlib.import_module("training.trainer")` call, if any."""
    first = call.args[0] if call.args else None
    if first is None or first.keyword is not None or first.star or not isinstance(first.value, cst.SimpleString):
        return None
    scope = scope_of.get(call)
    names = scope.get_qualified_names_for(call.func) if scope is not None else set()
    named = any(name.name == "importlib.import_module" for name in names)
    return first.value if named else None


def _plan_from(node: cst.ImportFrom, note: Callable[..., None], homeless: Callable[[cst.CSTNode, str], None]) -> None:
    """Notes on a `from ... import` statement: names and modules with no new home, `from training import *`."""
    module = get_full_name_for_node(node.module) or ""
    if isinstance(node.names, cst.ImportStar):
        if module == "training":
            text = "'from training import *' left as is: import the names you use from their new homes"
            note(node, text, STAR)
        elif homeless_module(module):
            homeless(node, module)
        return
    for path in dict.fromkeys(
        target.path
        for alias in node.names
        if isinstance(target := from_target(module, get_full_name_for_node(alias.name) or ""), Homeless)
    ):
        homeless(node, path)


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
