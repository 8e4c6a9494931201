"""Rewrite legacy imports in Python source to their new homes, keeping layout and comments (libcst).

`from old import a, b` gets the new module(s); `import old as x` the new name; `import hpo` keeps the name it binds
(`from training import hpo`); `import training.model` and its uses get `training.core.model`. What cannot be
rewritten safely stays, with a note.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper

from training.common.errors import InputError
from training_compat.moves import MODULES
from training_compat.plan import Note, Plan, decide
from training_compat.targets import Homeless, from_target


class UnparsableSource(InputError):
    """The source is not valid Python; nothing in it was rewritten."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Result:
    """The rewritten source (equal to the input when nothing was legacy), the notes, the import statements changed,
    and the encoding both are in (the coding declaration's, else UTF-8)."""

    source: bytes
    notes: tuple[Note, ...]
    imports: int = 0
    encoding: str = "utf-8"


def rewrite(source: bytes) -> Result:
    """Rewrite the legacy imports of one Python module; raise `UnparsableSource` when it does not parse."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise _unparsable(source, error) from None
    except UnicodeDecodeError as error:
        line = source[: error.start].count(b"\n") + 1
        raise UnparsableSource(line, f"not {error.encoding} text ({error.reason}), and no coding declaration") from None
    except SyntaxError as error:  # the encoding cannot be told: UTF-16, an unknown coding declaration
        raise UnparsableSource(error.lineno or 1, error.msg) from None
    wrapper = MetadataWrapper(module)
    plan = decide(wrapper)
    rewriter = _Rewriter(plan)
    rewritten = wrapper.visit(rewriter)
    notes = tuple(sorted(plan.notes, key=lambda note: note.line))
    return Result(rewritten.bytes, notes, rewriter.imports, module.encoding)


def _unparsable(source: bytes, error: cst.ParserSyntaxError) -> UnparsableSource:
    """Python's own message when it has one (shorter than libcst's list of expected tokens)."""
    try:
        ast.parse(source)
    except SyntaxError as python_error:
        message = python_error.msg  # Python's own may already say "invalid syntax"
        reason = message if message.startswith("invalid syntax") else f"invalid syntax: {message}"
        return UnparsableSource(python_error.lineno or error.raw_line, reason)
    return UnparsableSource(error.raw_line, "syntax the rewriter (libcst) does not support")


def _dotted(name: str) -> cst.Attribute | cst.Name:
    node = cst.parse_expression(name)
    assert isinstance(node, (cst.Attribute, cst.Name))
    return node


class _Rewriter(cst.CSTTransformer):
    """Applies a `Plan`; statements that split are returned at the `SimpleStatementLine` level."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self.imports = 0  # import statements changed

    def _use(self, original: cst.Name | cst.Attribute, updated: cst.Name | cst.Attribute) -> cst.BaseExpression:
        new = self.plan.uses.get(original)
        return updated if new is None else _dotted(new).with_changes(lpar=updated.lpar, rpar=updated.rpar)

    leave_Name = leave_Attribute = _use  # a use of a legacy path, by name or attribute

    def leave_SimpleString(self, original_node: cst.SimpleString, updated_node: cst.SimpleString) -> cst.SimpleString:
        """A legacy module named to `importlib.import_module`, in the same quotes."""
        new = self.plan.uses.get(original_node)
        if new is None:
            return updated_node
        self.imports += 1
        quote = updated_node.quote
        return updated_node.with_changes(value=f"{updated_node.prefix}{quote}{new}{quote}")

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names = [
            alias.with_changes(name=_dotted(self.plan.aliases[before])) if before in self.plan.aliases else alias
            for before, alias in zip(original_node.names, updated_node.names, strict=True)
        ]
        return updated_node.with_changes(names=names)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        statements: list[tuple[cst.BaseSmallStatement, cst.TrailingWhitespace | None]] = []  # and its own line end
        for before, statement in zip(original_node.body, updated_node.body, strict=True):
            if isinstance(before, cst.Import) and isinstance(statement, cst.Import):
                extra = self.plan.extra.get(before, [])
                statements += [(part, None) for part in self._split_import(before, statement)]
                statements += [(cst.Import([cst.ImportAlias(_dotted(module))]), None) for module in extra]
                moved = (alias in self.plan.aliases or alias in self.plan.rebinds for alias in before.names)
                self.imports += bool(extra) or any(moved)
            elif isinstance(statement, cst.ImportFrom):
                split = _split_from(statement)
                statements += split
                self.imports += split != [(statement, None)]
            else:
                statements.append((statement, None))
        if len(statements) == len(updated_node.body):
            return updated_node.with_changes(body=[statement for statement, _ in statements])
        end = updated_node.trailing_whitespace
        lines = [
            updated_node.with_changes(
                body=[statement.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)],
                trailing_whitespace=_line_end(end, own),
            )
            for statement, own in statements
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


def _line_end(end: cst.TrailingWhitespace, own: cst.TrailingWhitespace | None) -> cst.TrailingWhitespace:
    """A split line's end: the statement's, or the comment after its last name."""
    return end if own is None else end.with_changes(whitespace=own.whitespace, comment=own.comment)


def _import(node: cst.Import, aliases: list[cst.ImportAlias]) -> cst.Import:
    """`node` with only `aliases`, the last one without a comma."""
    if aliases[-1] is node.names[-1]:
        return node.with_changes(names=aliases)
    return node.with_changes(names=[*aliases[:-1], aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)])


def _split_from(node: cst.ImportFrom) -> list[tuple[cst.ImportFrom, cst.TrailingWhitespace | None]]:
    """`from old import a, b` as one statement per new module, in the names' order, each with the comment after its
    last name when that comment must end its line."""
    if node.relative or node.module is None:
        return [(node, None)]
    module = get_full_name_for_node(node.module) or ""
    if isinstance(node.names, cst.ImportStar):
        move = MODULES.get(module)
        return [(node.with_changes(module=_dotted(move.new)) if move else node, None)]
    groups: dict[str, list[cst.ImportAlias]] = {}
    for alias in node.names:
        name = get_full_name_for_node(alias.name) or ""
        target = from_target(module, name)
        new_module, new_name = (module, name) if target is None or isinstance(target, Homeless) else target
        if new_name != name:  # a legacy module imported by name keeps the name it was bound to
            alias = alias.with_changes(name=cst.Name(new_name), asname=alias.asname or cst.AsName(name=cst.Name(name)))
        groups.setdefault(new_module, []).append(alias)
    if list(groups) == [module]:
        return [(node, None)]
    last = node.names[-1]
    return [
        _close(node.with_changes(module=_dotted(new_module), names=aliases), last)
        for new_module, aliases in groups.items()
    ]


def _close(node: cst.ImportFrom, last: cst.ImportAlias) -> tuple[cst.ImportFrom, cst.TrailingWhitespace | None]:
    """End a split group as the original statement ended, keeping the comment after its own last name: inside the
    parentheses when `)` had a line of its own, else at the end of the group's line."""
    assert not isinstance(node.names, cst.ImportStar)
    end = node.names[-1]
    if end is last or not isinstance(end.comma, cst.Comma):
        return node, None
    names = list(node.names)
    own = end.comma.whitespace_after
    if node.rpar is None or not isinstance(own, cst.ParenthesizedWhitespace):
        names[-1] = end.with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return node.with_changes(names=names), None
    if isinstance(last.comma, cst.Comma) and isinstance(last.comma.whitespace_after, cst.ParenthesizedWhitespace):
        closing = last.comma.whitespace_after.last_line  # a trailing comma, then `)` on its own line
        names[-1] = end.with_changes(comma=end.comma.with_changes(whitespace_after=own.with_changes(last_line=closing)))
        return node.with_changes(names=names), None
    names[-1] = end.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    before = node.rpar.whitespace_before  # no trailing comma: the newline before `)`, if any, is the parenthesis's
    if not isinstance(before, cst.ParenthesizedWhitespace):
        return node.with_changes(names=names), own.first_line if own.first_line.comment else None
    rpar = node.rpar.with_changes(whitespace_before=own.with_changes(last_line=before.last_line))
    return node.with_changes(names=names, rpar=rpar), None
