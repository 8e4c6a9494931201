"""The toolkit's exception hierarchy; the CLI shows each once, without a traceback."""

from __future__ import annotations

import signal
import sys
from typing import TypeVar

T = TypeVar("T")
# json and PyYAML read lists and mappings by recursion: `[[[[...` hundreds deep raises RecursionError, which each
# reader reports as malformed content in these words
TOO_DEEP = "nested too deeply to read, hundreds of lists or mappings inside one another"


def first_line(error: BaseException) -> str:
    """The first line of an error's message, for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


def print_error(line: str) -> None:
    """Write one line to stderr in a single write: processes sharing a log (torchrun's workers failing together)
    never cut into each other's line, as `print` does where stderr is unbuffered (two writes: the text, then its
    newline)."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def exit_reason(returncode: int) -> str:
    """How a child process ended, in words: `exit code N`, or the signal that killed it (a negative code)."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"killed by signal {-returncode}"
    # The kernel's out-of-memory killer sends SIGKILL, and says so only in the system log.
    hint = " (the system may have run out of memory)" if name == "SIGKILL" else ""
    return f"killed by signal {name}{hint}"


class TrainingError(Exception):
    """Base of every error the toolkit raises on purpose (CLI exit code 1)."""

    exit_code = 1


class InputError(TrainingError):
    """Something the user gave us is wrong: a file, a field, a value (CLI exit code 2)."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration file or override is invalid; the message names file, key path and value."""


class DataError(InputError):
    """A data set is unreadable or inconsistent; the message names file, line and problem."""


class TagNamesNeeded(DataError):
    """Tags given as integer ids without their names. The message says how a config names them (`data.tag_names`);
    `naming_with` words it for an entry point that names them otherwise (a command's option)."""

    def __init__(self, problem: str, how: str = "set data.tag_names to", after: str = "") -> None:
        super().__init__(problem, how, after)
        self.problem, self.how, self.after = problem, how, after

    def __str__(self) -> str:
        return f"{self.problem}; {self.how} the tag names in id order{self.after}"

    def naming_with(self, how: str) -> TagNamesNeeded:
        return TagNamesNeeded(self.problem, how, self.after)


class ExecutionError(TrainingError):
    """A job failed or did not finish: the message names the job, its exit code or status, its last error, its log."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode
        if returncode == InputError.exit_code:  # the job stopped on bad input: report it as such
            self.exit_code = InputError.exit_code


def expect_instance(
    value: object, kind: type[T] | tuple[type, ...], name: str, expected: str, error: type[InputError] = InputError
) -> T:
    """`value` if it is a `kind`, else `error` naming the argument `name`, what was `expected` and the value: a public
    function given a path, a dict or None where it takes a record (or a path) otherwise fails deep inside."""
    if not isinstance(value, kind):
        shown = " ".join(repr(value).split())  # a `datasets.DatasetDict`'s repr spans lines
        raise error(f"{name}: expected {expected}, got {type(value).__name__} {shown:.60}")
    return value  # type: ignore[return-value]
