"""IPython syntax in a notebook cell, hidden from the Python parser and put back byte for byte.

Each line IPython would transform (`%magic`, `!cmd`, `x = !cmd`, `obj?`, a `%%magic` header) where a statement
starts becomes a numbered `pass` at its indentation, so the cell parses and keeps its line numbers.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

# Characters that start an IPython command where a statement starts; none can start a Python statement.
_ESCAPES = ("%", "!", "?", "/", ",", ";")
_TARGET = r"[\w.\[\]()'\"]+"
_ASSIGNED = re.compile(rf"{_TARGET}(?:[ \t]*,[ \t]*{_TARGET})*[ \t]*=[ \t]*[!%]")  # `x = !ls`, `t = %timeit f()`
_HELP = re.compile(r"[\w.]+\?\??[ \t]*$")  # `obj?`, `obj.method??`
_MARKER = "pass  # training-migrate: ipython line {}"
_MARKED = re.compile(r"^[ \t]*pass  # training-migrate: ipython line (\d+)(?=\r\n|\n|\r|\Z)", re.MULTILINE)
# Cell magics whose body is Python; the body of any other (`%%bash`, `%%html`, `%%sql`) is left alone.
PYTHON_CELL_MAGICS = frozenset({"capture", "debug", "prun", "python", "python3", "time", "timeit"})


@dataclass(frozen=True)
class Masked:
    """A cell as Python the parser accepts, and the IPython lines its markers stand for (by number)."""

    code: str
    lines: tuple[str, ...]

    def unmask(self, code: str) -> str:
        """`code` (this cell's code, rewritten) with every marker replaced by the line it hid."""
        return _MARKED.sub(lambda match: self.lines[int(match.group(1))].rstrip("\r\n"), code)

    def hidden(self) -> Iterator[tuple[int, str]]:
        """(line number from 1, the IPython line) of every line hidden."""
        for match in _MARKED.finditer(self.code):
            yield self.code.count("\n", 0, match.start()) + 1, self.lines[int(match.group(1))]


def cell_magic(source: str) -> str | None:
    """The name of the cell magic that heads `source` (`%%time` -> "time"), or None."""
    head = source.lstrip()
    if not head.startswith("%%"):
        return None
    words = head[2:].split(maxsplit=1)
    return words[0] if words else ""


def mask(source: str) -> Masked:
    """Hide the IPython lines of `source` behind numbered `pass` statements (see the module's docstring)."""
    hidden: list[str] = []
    code: list[str] = []
    continued = False  # a command continued with a backslash is one command: its lines are hidden alike
    for line in source.splitlines(keepends=True):
        if not continued:
            if not (_ipython(line) and _between_statements("".join(code))):
                code.append(line)
                continue
            indent = line[: len(line) - len(line.lstrip(" \t"))]
        ending = line[len(line.rstrip("\r\n")) :]
        code.append(indent + _MARKER.format(len(hidden)) + ending)
        hidden.append(line)
        continued = line.rstrip("\r\n").endswith("\\")
    return Masked("".join(code), tuple(hidden))


def _ipython(line: str) -> bool:
    statement = line.lstrip(" \t")
    return statement.startswith(_ESCAPES) or bool(_ASSIGNED.match(statement) or _HELP.match(statement))


def _between_statements(code: str) -> bool:
    """Whether `code` ends where a new statement may start: no open bracket, string or backslash continuation."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(code).readline):
            pass
    except (tokenize.TokenError, SyntaxError):
        return False
    return True
