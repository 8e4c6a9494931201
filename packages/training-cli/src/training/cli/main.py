"""`training`: the command-line entry point; commands come from this package and from plugins."""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import io
import logging
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NoReturn

from training.cli._version import __version__
from training.common.arguments import home_path, non_empty
from training.common.errors import TrainingError, print_error
from training.common.optional import MissingDependencyError

PLUGIN_GROUP = "training.cli.commands"
_UNRECOGNIZED = "_unrecognized"  # the namespace attribute: (parser, its unknown arguments), innermost parser first
_RAN = "_ran"  # the namespace attribute: the innermost parser's prog (`training hpo run`), which errors are under


class CommandParser(argparse.ArgumentParser):
    """The parser of `training` and of its commands, taking options anywhere among positionals (`predict RUN --json "a"
    "b"`): plain argparse ends a nargs='*' or '+' positional at the first option and refuses the values after it."""

    _intermixing = False

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        text = args[0].startswith("-") and kwargs.get("action", "store") in ("store", "append") and "type" not in kwargs
        if kwargs.get("type") in (Path, os.path.expanduser):  # `--output ""` was the working directory
            kwargs["type"] = non_empty(home_path if kwargs["type"] is Path else os.path.expanduser)
        elif text and "choices" not in kwargs:  # `--host ""` listened on every interface (a choice refuses "" itself)
            kwargs["type"] = non_empty(str, "a value")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A usage error: printed by each host's local rank 0 only under torchrun (every rank parses the same command
        line); exits 2."""
        if _reporting_rank():
            super().error(message)
        self.exit(2)

    def _intermixed(
        self, arguments: list[str], namespace: argparse.Namespace | None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Options among positionals. After `--` all is positional: plain argparse reads that right where `--` comes
        first (the intermixed parse drops it), the intermixed parse where options come before it (`RUN --json -- -x`:
        plain argparse fills the positionals at RUN and leaves `-- -x` over)."""
        if "--" in arguments:
            parsed, extras = super().parse_known_args(arguments, copy.copy(namespace))
            if not extras:
                return parsed, extras
        self._intermixing = True  # parse_known_intermixed_args calls back to parse_known_args for its two passes
        try:
            return self.parse_known_intermixed_args(arguments, namespace)
        finally:
            self._intermixing = False

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        lists = any(action.nargs in ("*", "+") for action in self._get_positional_actions())
        arguments = list(sys.argv[1:] if args is None else args)
        if self._intermixing or not lists:
            parsed, extras = super().parse_known_args(arguments, namespace)
            if self._intermixing:  # one of the two passes of `_intermixed`: its leftovers are not final
                return parsed, extras
        else:
            parsed, extras = self._intermixed(arguments, namespace)
        if not hasattr(parsed, _RAN):  # argparse copies the command's namespace up before its parent gets here
            setattr(parsed, _RAN, self.prog)
        # argparse lists a parser's own unknown arguments first, then those its command's parser left: each parser notes
        # its own in the namespace (argparse copies it up), so that the parser given them refuses them, under its usage.
        below = getattr(parsed, _UNRECOGNIZED, [])
        if own := extras[: len(extras) - sum(len(arguments) for _, arguments in below)]:
            setattr(parsed, _UNRECOGNIZED, [*below, (self, own)])
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    """The full parser: built-in commands, then every installed plugin command."""
    parser = CommandParser(
        prog="training",
        description="Fine-tune transformers for named-entity recognition, tune them, run them anywhere.",
    )
    parser.add_argument("--version", action="version", version=f"training {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    from training.cli.commands import BUILTIN

    for register in BUILTIN:
        register(commands)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit codes: 0 ok, 1 run failed, 2 bad input or usage."""
    parser = build_parser()
    args, unknown = _parse(parser, argv)
    if unknown:  # refused by the outermost parser given one (`training --bogus lineage` by `training`)
        refusing, arguments = vars(args).pop(_UNRECOGNIZED)[-1]
        # `training lineage RUN --debug`: argparse takes training's own options before the command only
        misplaced = [a for a in arguments if refusing is not parser and a in parser._option_string_actions]
        hint = f"; {' '.join(misplaced)}: an option of training, which goes before the command" if misplaced else ""
        refusing.error(f"unrecognized arguments: {' '.join(arguments)}{hint}")
    if args.command is None:
        parser.print_help()
        return 2
    ran = vars(args).pop(_RAN)
    if hasattr(sys.stdout, "reconfigure"):  # a text a file's encoding lacks (cp1252, Windows' `> out.txt`): escaped
        sys.stdout.reconfigure(errors="backslashreplace")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:
        # Our own bars and tables say what happens; the libraries' download and save bars are noise here.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    terminated: list[int] = []
    undo = _terminate_as_interrupt(terminated)
    stdout = sys.stdout
    sys.stdout = named = _NamedStdout(stdout)  # type: ignore[assignment]
    try:
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a reader gone (`| head`) shows here, not as a warning at exit
            return code
        except (TrainingError, MissingDependencyError, OSError) as error:
            if isinstance(error, BrokenPipeError) and _reader_gone():  # stop quietly, as SIGPIPE would (128 + 13)
                _to_null_device(sys.stdout)
                return 141
            # Our errors carry their code; a missing extra is the setup, a name too long for the file system is the
            # input (2: the message names the `pip install` or the path); another OSError is the machine (a full
            # disk, a missing permission), not the input.
            if isinstance(error, MissingDependencyError) or getattr(error, "errno", None) == errno.ENAMETOOLONG:
                code = 2
            else:
                code = getattr(error, "exit_code", TrainingError.exit_code)
            if args.debug:  # the traceback instead of the line; the exit status stays the error's
                traceback.print_exc()
            # torchrun starts the same command once per rank, each finding the same bad input: one per host says it
            elif code != 2 or _reporting_rank():
                print_error(f"{ran}: error: {error}")
            return code
        except Exception as error:  # a bug, not bad input: one line here, the traceback with --debug
            if args.debug:
                raise
            internal = f"{type(error).__name__}: {error}"
            print_error(f"{ran}: internal error: {internal} (rerun with --debug for the traceback)")
            return 1
    except KeyboardInterrupt:  # in the command or while its error above was being reported
        if threading.current_thread() is threading.main_thread():  # a second signal would cut this line short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        how = "terminated" if terminated else "interrupted"
        # a command that picks up what it wrote when run again sets `resumable` (a run's checkpoint, a study)
        kept = "; state written so far is kept and resumable" if getattr(args, "resumable", False) else ""
        print_error(f"{ran}: {how}{kept}")
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        sys.stdout = stdout
        named.release()
        undo()


class _NamedStdout:
    """Standard output whose failed writes say so: `> file` on a full disk said only "[Errno 27] File too large".
    Unbuffered (`PYTHONUNBUFFERED`), Python writes to the file itself and drops unseen what a short write (a full
    disk) left out, so that `evaluate --json > file` could end truncated with exit 0: here a buffer, flushed after
    each write, writes the rest and raises the error."""

    def __init__(self, stream: Any) -> None:
        raw = getattr(stream, "buffer", None)
        self._raw = raw if isinstance(raw, io.RawIOBase) else None
        if self._raw is not None:
            stream = io.TextIOWrapper(io.BufferedWriter(self._raw), encoding=stream.encoding, errors=stream.errors)
        self._stream = stream

    def write(self, text: str) -> int:
        with self._named():
            written = self._stream.write(text)
            if self._raw is not None:
                self._stream.flush()
            return written

    def release(self) -> None:
        """Let go of an unbuffered stream's file, which the original stream goes on writing to."""
        if self._raw is not None:
            with contextlib.suppress(OSError, ValueError):  # what a failed write left was dropped with it
                self._stream.detach().detach()

    def flush(self) -> None:
        with self._named():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:  # a reader gone: `main` stops quietly
            raise
        except OSError as error:  # a machine's error (exit 1), as any other OSError
            with contextlib.suppress(OSError, ValueError):  # no file under it (a test's capture)
                _to_null_device(self._stream)
            raise TrainingError(f"standard output: {error.strerror or error}") from error


def _to_null_device(stream: Any) -> None:
    """Point `stream`'s file at the null device: what it still holds, flushed at exit, would fail again there (an
    "Exception ignored" report, exit status 120)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command line parsed, its unknown arguments left to refuse before any missing required one, as the first
    mistake in the line: argparse checks a command's required arguments before the parser above it gets to its own
    unknown ones (`training --bogus train` was told that `--output` is required). So the line is parsed with nothing
    required first, and again as it is where it holds no unknown argument (or asks for help, whose usage line shows
    what is required)."""
    line = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(line):
        return parser.parse_known_args(line)
    required = [action for each in _parsers(parser) for action in each._actions if action.required]
    try:
        for action in required:
            action.required = False
        args, unknown = parser.parse_known_args(line)
    finally:
        for action in required:
            action.required = True
    return (args, unknown) if unknown else parser.parse_known_args(line)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and the parsers of its commands, all the way down."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):  # an alias names the same parser again
                yield from _parsers(command)


def _reporting_rank() -> bool:
    """Whether this process reports bad input: the only one, or local rank 0 of those torchrun started on its host
    (one line per host: an error that one host alone meets, such as no GPU there, is still seen)."""
    return os.environ.get("LOCAL_RANK", "0") in ("", "0")


def _terminate_as_interrupt(received: list[int]) -> Callable[[], object]:
    """Make SIGTERM (`kill`, a scheduler stopping the job) interrupt the command as Ctrl-C does, so that the same
    clean-up runs (a job's child process stopped, running trials queued again) instead of this process vanishing and
    leaving its children to go on alone; `received` records it. Returns the undo, which also puts back Ctrl-C's
    handler (the last line of an interrupted command is printed with both ignored)."""
    if threading.current_thread() is not threading.main_thread():  # signals are only handled there
        return lambda: None

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, interrupt)

    def undo() -> None:
        for signum, handler in previous.items():  # None: a handler set outside Python, put back as the default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    return undo


def _reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (`| head` having read enough)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no file under sys.stdout
        return False
