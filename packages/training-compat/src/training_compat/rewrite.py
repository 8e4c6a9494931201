"""Rewrite legacy imports in Python source to their new homes, keeping layout and comments (libcst).

`from old import name` statements get the new module (split in one statement per new module when the names now
live apart). `import old as alias` gets the new dotted name. An unaliased `import hpo` keeps the name it binds
(`from training import hpo`), so no use of it changes; an unaliased `import training.model` becomes
`import training.core.model` and its uses (`training.model.x`) are rewritten to match. Relative imports are left
alone. What cannot be rewritten safely is left as it was, with a note.
"""

from __future__ import annotations

import ast
import functools
import importlib
from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    ImportAssignment,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    ScopeProvider,
)

from training.common.errors import InputError
from training_compat.moves import MODULES, NAMES


class UnparsableSource(InputError):
    """The source is not valid Python; nothing in it was rewritten."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Note:
    """A legacy import left as it was, and why: the user migrates it by hand."""

    line: int
    text: str


@dataclass(frozen=True)
class Result:
    """The rewritten source (equal to the input when nothing was legacy) and the notes."""

    source: bytes
    notes: tuple[Note, ...]


def rewrite(source: bytes) -> Result:
    """Rewrite the legacy imports of one Python module; raise `UnparsableSource` when it does not parse."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise _unparsable(source, error) from None
    except UnicodeDecodeError as error:
        line = source[: error.start].count(b"\n") + 1
        raise UnparsableSource(line, f"not {error.encoding} text ({error.reason}), and no coding declaration") from None
    wrapper = MetadataWrapper(module)
    plan = _plan(wrapper)
    rewritten = wrapper.visit(_Rewriter(plan))
    return Result(rewritten.bytes, tuple(sorted(plan.notes, key=lambda note: note.line)))


def _unparsable(source: bytes, error: cst.ParserSyntaxError) -> UnparsableSource:
    """Python's own message when it has one (shorter than libcst's list of expected tokens)."""
    try:
        ast.parse(source)
    except SyntaxError as python_error:
        return UnparsableSource(python_error.lineno or error.raw_line, f"invalid syntax: {python_error.msg}")
    return UnparsableSource(error.raw_line, "syntax the rewriter (libcst) does not support")


@functools.cache
def _exports(package: str) -> frozenset[str]:
    """Public names of a new package (its lazy `__all__`: importing it is light)."""
    return frozenset(getattr(importlib.import_module(package), "__all__", ()))


def _from_target(module: str, name: str) -> tuple[str, str] | None:
    """For `from module import name`: the module and name to import now, or None when it is not legacy."""
    submodule = MODULES.get(f"{module}.{name}")
    if submodule is not None:  # a legacy module imported by name: `from training import model`
        package, _, last = submodule.new.rpartition(".")
        return package, last
    if module == "training":
        return (NAMES[name], name) if name in NAMES else None
    move = MODULES.get(module)
    if move is None:
        return None
    if move.prefer is not None and name in _exports(move.prefer):
        return move.prefer, name
    return move.new, name


def _use_target(dotted: str) -> tuple[str, str] | None:
    """For a use through `import training...` (`training.model`, `training.train_model`): new path, module needed."""
    if dotted in MODULES:
        return MODULES[dotted].new, MODULES[dotted].new
    package, _, name = dotted.rpartition(".")
    if package == "training" and name in NAMES:
        return f"{NAMES[name]}.{name}", NAMES[name]
    return None


def _root(dotted: str) -> str:
    return dotted.partition(".")[0]


def _dotted(name: str) -> cst.Attribute | cst.Name:
    node = cst.parse_expression(name)
    assert isinstance(node, (cst.Attribute, cst.Name))
    return node


@dataclass
class _Plan:
    """What to change, keyed by nodes of the original tree."""

    aliases: dict[cst.ImportAlias, str] = field(default_factory=dict)  # `import old` alias -> new dotted name
    rebinds: dict[cst.ImportAlias, list[str]] = field(default_factory=dict)  # `import hpo` -> statements instead
    uses: dict[cst.CSTNode, str] = field(default_factory=dict)  # a use through an unaliased import -> new path
    extra: dict[cst.Import, list[str]] = field(default_factory=dict)  # modules to import after a statement
    notes: list[Note] = field(default_factory=list)


def _unaliased(assignment: ImportAssignment) -> bool:
    """Whether an `import a.b.c` binding is the dotted name itself (not `import x as a`)."""
    assert isinstance(assignment.node, cst.Import)
    for alias in assignment.node.names:
        dotted = get_full_name_for_node(alias.name) or ""
        if alias.asname is None and (dotted == assignment.name or dotted.startswith(f"{assignment.name}.")):
            return True
    return False


def _rebind(dotted: str) -> list[str]:
    """Statements that import what `import hpo[.sub]` did and bind the same name, `hpo`, to the new package."""
    root = _root(dotted)
    package, _, last = MODULES[root].new.rpartition(".")
    bind = f"from {package} import {last}" + ("" if last == root else f" as {root}")
    return [bind] if dotted == root else [f"import {MODULES[dotted].new}", bind]


def _plan(wrapper: MetadataWrapper) -> _Plan:
    """Find every legacy import and use, and decide its rewrite (or why it stays)."""
    plan = _Plan()
    scopes = {scope for scope in wrapper.resolve(ScopeProvider).values() if scope is not None}
    parents = wrapper.resolve(ParentNodeProvider)
    positions = wrapper.resolve(PositionProvider)

    def note(node: cst.CSTNode, text: str) -> None:
        plan.notes.append(Note(positions[node].start.line, text))

    bindings: list[ImportAssignment] = []  # unaliased `import training...` bindings, whose uses may need rewriting
    taken: set[str] = set()  # names bound by anything else: a new top-level name must not collide with them
    for scope in scopes:
        for assignment in scope.assignments:
            imported = isinstance(assignment, ImportAssignment) and isinstance(assignment.node, cst.Import)
            if imported and _unaliased(assignment):
                if _root(assignment.name) not in MODULES:  # `import hpo` keeps its name: its uses stay
                    bindings.append(assignment)
                continue
            taken.add(_root(assignment.name))

    def collides(old: str, new: str, node: cst.CSTNode) -> bool:
        if _root(new) != _root(old) and _root(new) in taken:
            note(node, f"'{old}' left as is: '{_root(new)}' names something else here; use '{new}' by hand")
            return True
        return False

    imports = [node for node in positions if isinstance(node, cst.Import)]
    for node in imports:
        for alias in node.names:
            dotted = get_full_name_for_node(alias.name) or ""
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
            use = access.node
            if not isinstance(use, (cst.Name, cst.Attribute)):
                note(use, f"'{assignment.name}' is used in a string; rewrite that use by hand")
                continue
            chain = [use]
            while isinstance(parent := parents.get(chain[-1]), cst.Attribute) and parent.value is chain[-1]:
                chain.append(parent)
            needed = None
            for node in reversed(chain):  # the longest legacy path wins: `training.model`, not `training`
                dotted = get_full_name_for_node(node) or ""
                target = _use_target(dotted)
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
        star = isinstance(node, cst.ImportFrom) and not node.relative and isinstance(node.names, cst.ImportStar)
        if star and get_full_name_for_node(node.module) == "training":
            note(node, "'from training import *' left as is: import the names you use from their new homes")
    return plan


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


class _Rewriter(cst.CSTTransformer):
    """Applies a `_Plan`; statements that split are returned at the `SimpleStatementLine` level."""

    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        return self._use(original_node, updated_node)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        return self._use(original_node, updated_node)

    def _use(self, original: cst.Name | cst.Attribute, updated: cst.Name | cst.Attribute) -> cst.BaseExpression:
        new = self.plan.uses.get(original)
        if new is None:
            return updated
        return _dotted(new).with_changes(lpar=updated.lpar, rpar=updated.rpar)

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = [
            alias.with_changes(name=_dotted(self.plan.aliases[before])) if before in self.plan.aliases else alias
            for before, alias in zip(original_node.names, updated_node.names, strict=True)
        ]
        return updated_node.with_changes(names=names)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        statements: list[cst.BaseSmallStatement] = []
        for before, statement in zip(original_node.body, updated_node.body, strict=True):
            if isinstance(before, cst.Import) and isinstance(statement, cst.Import):
                statements += self._split_import(before, statement)
                statements += [cst.Import(names=[cst.ImportAlias(_dotted(m))]) for m in self.plan.extra.get(before, [])]
            elif isinstance(statement, cst.ImportFrom):
                statements += _split_from(statement)
            else:
                statements.append(statement)
        if len(statements) == len(updated_node.body):
            return updated_node.with_changes(body=statements)
        lines = [
            updated_node.with_changes(body=[statement.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
            for statement in statements
        ]
        lines[1:] = [line.with_changes(leading_lines=[]) for line in lines[1:]]
        return cst.FlattenSentinel(lines)

    def _split_import(self, before: cst.Import, node: cst.Import) -> list[cst.BaseSmallStatement]:
        """`import os, hpo` as `import os` and `from training import hpo`, in the original order."""
        parts: list[cst.BaseSmallStatement] = []
        kept: list[cst.ImportAlias] = []
        for original, alias in zip(before.names, node.names, strict=True):
            if original not in self.plan.rebinds:
                kept.append(alias)
                continue
            if kept:
                parts.append(_import(node, kept))
                kept = []
            parts += [
                cst.ensure_type(cst.parse_statement(code), cst.SimpleStatementLine).body[0]
                for code in self.plan.rebinds[original]
            ]
        if kept:
            parts.append(_import(node, kept))
        return parts


def _import(node: cst.Import, aliases: list[cst.ImportAlias]) -> cst.Import:
    """`node` with only `aliases`, the last one without a comma."""
    if aliases[-1] is node.names[-1]:
        return node.with_changes(names=aliases)
    return node.with_changes(names=[*aliases[:-1], aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)])


def _split_from(node: cst.ImportFrom) -> list[cst.ImportFrom]:
    """`from old import a, b` as one statement per new module, in the order the names came."""
    if node.relative or node.module is None:
        return [node]
    module = get_full_name_for_node(node.module) or ""
    if isinstance(node.names, cst.ImportStar):
        move = MODULES.get(module)
        return [node.with_changes(module=_dotted(move.new))] if move else [node]
    groups: dict[str, list[cst.ImportAlias]] = {}
    for alias in node.names:
        name = get_full_name_for_node(alias.name) or ""
        target = _from_target(module, name)
        if target is None:
            groups.setdefault(module, []).append(alias)
            continue
        new_module, new_name = target
        if new_name != name:  # a legacy module imported by name keeps the name it was bound to
            alias = alias.with_changes(name=cst.Name(new_name), asname=alias.asname or cst.AsName(name=cst.Name(name)))
        groups.setdefault(new_module, []).append(alias)
    if list(groups) == [module]:
        return [node]
    last = node.names[-1]
    return [
        _close(node.with_changes(module=_dotted(new_module), names=aliases), last)
        for new_module, aliases in groups.items()
    ]


def _close(node: cst.ImportFrom, last: cst.ImportAlias) -> cst.ImportFrom:
    """End a split group as the original statement ended, keeping the comment after its own last name."""
    assert not isinstance(node.names, cst.ImportStar)
    end = node.names[-1]
    if end is last or not isinstance(end.comma, cst.Comma):
        return node
    names = list(node.names)
    own = end.comma.whitespace_after
    if node.rpar is None or not isinstance(own, cst.ParenthesizedWhitespace):
        names[-1] = end.with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return node.with_changes(names=names)
    if isinstance(last.comma, cst.Comma) and isinstance(last.comma.whitespace_after, cst.ParenthesizedWhitespace):
        closing = last.comma.whitespace_after.last_line  # a trailing comma, then `)` on its own line
        names[-1] = end.with_changes(comma=end.comma.with_changes(whitespace_after=own.with_changes(last_line=closing)))
        return node.with_changes(names=names)
    names[-1] = end.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    before = node.rpar.whitespace_before  # no trailing comma: the newline before `)`, if any, is the parenthesis's
    if not isinstance(before, cst.ParenthesizedWhitespace):
        return node.with_changes(names=names)
    return node.with_changes(
        names=names, rpar=node.rpar.with_changes(whitespace_before=own.with_changes(last_line=before.last_line))
    )
