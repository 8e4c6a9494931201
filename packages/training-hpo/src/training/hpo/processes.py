"""Fresh processes for trials and refits, so all their memory (GPU memory included) is returned when they end.

They come from a forkserver that preloaded torch and the trainer (never plain `fork`: the parent's threads could
deadlock the child), so only the first one waits for those imports; where there is none (Windows) each is a fresh
interpreter. A process receives its dataset over a pipe, then works and sends its result, or its error, back. It
ends itself when its parent process is gone or stops listening (interrupted alone: `kill -INT`, SIGTERM), logging no
error for it; a Ctrl-C in it becomes KeyboardInterrupt in the parent.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, TypeVar

from data.loaders import Dataset
from training.common.errors import TrainingError, exit_reason
from training.common.gc_pause import gc_paused
from training.common.malloc import keep_freed_memory
from training.hpo.failures import OutOfMemory
from training.hpo.recovery import alive

Isolation = Literal["subprocess", "inprocess"]
PRELOAD = ["training.hpo.preload"]  # what the forkserver imports, deaf to Ctrl-C meanwhile
_PARENT_POLL_S = 0.5
_ORPHAN_EXIT_CODE = 70
_PIPE_ERRORS = (EOFError, BrokenPipeError, ConnectionResetError)
_T = TypeVar("_T")
_STARTING = threading.Lock()  # parallel trials start their processes from threads: one start at a time


class TrialData:
    """A dataset as processes receive it: the object itself in process; for trial and refit processes the bytes of
    one pickling, made when the first one starts and kept while the sweep runs (not one per trial)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._pickled: bytes | None = None
        self._lock = threading.Lock()  # parallel trials start from threads

    def pickled(self) -> bytes:
        with self._lock:
            if self._pickled is None:
                self._pickled = pickle.dumps(self.dataset, protocol=pickle.HIGHEST_PROTOCOL)
            return self._pickled


def call_in_process(
    name: str,
    work: Callable[[Dataset | None, Connection], _T],
    error_log: Path,
    data: TrialData | None = None,
    answer: Callable[[str, Any, Connection], None] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
    cut_short: Callable[[], object] | None = None,
) -> _T:
    """`work(dataset, connection)` in a fresh process, which receives `data`'s dataset (or None) first; its result,
    or its error: `TrainingError`s and `passthrough` errors as raised, CUDA out of memory as `OutOfMemory`, anything
    else as a `TrainingError` naming `name` and `error_log` (where the traceback is). Other messages the process
    sends go to `answer(kind, payload, connection)`. `cut_short()` clears what the writes the process was cut short
    in left behind (it ends at once when this one stops listening), in the folders only this work writes in."""
    context = _context()
    ours, theirs = context.Pipe()
    # Never written to: the process sees it closed as soon as this one stops listening, even while it trains.
    watched, listening = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(theirs, watched, name, work, error_log, passthrough, os.getpid()),
        name=name.replace(" ", "-"),
        daemon=True,
    )
    with _caller_kept_as_it_was():
        process.start()
    theirs.close()
    watched.close()
    result_sent = False  # then every write of the process ended whole: nothing for `cut_short` to clear
    try:
        # Not a Process argument: the process would keep those bytes to its end.
        with contextlib.suppress(OSError):  # a process that died before reading it: reported below as it ended
            ours.send_bytes(data.pickled() if data is not None else pickle.dumps(None))
        while True:
            try:
                kind, payload = ours.recv()
            except EOFError:
                break
            if kind == "done":
                result_sent = True
                return payload
            if kind == "interrupted":
                raise KeyboardInterrupt(f"{name} was interrupted")
            if kind == "error":
                raise payload
            if answer is None:
                raise TrainingError(f"{name}: its process sent an unexpected {kind!r} message")
            answer(kind, payload, ours)
    finally:
        listening.close()  # first: a process that finds `ours` closed then finds this closed too
        ours.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
        if cut_short is not None and not result_sent:
            with contextlib.suppress(OSError, TrainingError):  # best effort: never instead of why the process ended
                cut_short()
    assert process.exitcode is not None  # None only while it runs, and it was joined above
    raise TrainingError(f"{name}: its process ended without a result: {exit_reason(process.exitcode)}")


def start_trial_processes(isolation: Isolation) -> None:
    """Start the forkserver now (it returns at once): its preloading of torch and the trainer, seconds of imports,
    then overlaps the sweep's data loading and study set-up instead of delaying the first trials."""
    if isolation == "subprocess" and _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver  # not at import: there is none on Windows

        with _caller_kept_as_it_was():
            forkserver.ensure_running()


def out_of_memory(name: str, error: BaseException) -> OutOfMemory | None:
    """The error as `OutOfMemory` when it is torch's CUDA out-of-memory error (else None)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(error, torch.cuda.OutOfMemoryError):
        return None
    return OutOfMemory(f"{name}: CUDA out of memory ({str(error).splitlines()[0]})")


@contextlib.contextmanager
def as_in_a_process(name: str, error_log: Path, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Work in this process whose errors leave it as `call_in_process` gives them: `TrainingError`s and `passthrough`
    errors as raised, CUDA out of memory as `OutOfMemory`, anything else as a `TrainingError` naming `error_log`."""
    try:
        yield
    except (TrainingError, *passthrough):
        raise
    except Exception as error:
        raise out_of_memory(name, error) or _unexpected(name, error, error_log) from error


def _context() -> multiprocessing.context.BaseContext:
    """Processes come from a forkserver; where there is none (Windows), each is a fresh interpreter."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@contextlib.contextmanager
def _caller_kept_as_it_was() -> Iterator[None]:
    """Start a process (or the forkserver) without re-importing the caller's main script (an unguarded script would
    sweep again), and with `multiprocessing`'s default start method left unchosen where the caller had not chosen one:
    preparing the process fixes it for good (CPython reads it), and the caller's own `set_start_method` then failed
    with 'context has already been set'."""
    with _STARTING:
        main, chosen = sys.modules["__main__"], multiprocessing.get_start_method(allow_none=True)
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main
            if chosen is None:
                multiprocessing.set_start_method(None, force=True)


def _child(
    connection: Connection,
    watched: Connection,
    name: str,
    work: Callable[[Dataset | None, Connection], Any],
    error_log: Path,
    passthrough: tuple[type[BaseException], ...],
    parent_pid: int,
) -> None:
    """The process's side of `call_in_process`: receive the dataset, work, send the result or the error."""
    keep_freed_memory()  # this process is the sweep's own: its training reuses freed memory
    working = threading.Event()
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid, watched, working), daemon=True).start()
    # A parent that stopped listening (interrupted alone: `kill -INT`, SIGTERM) closed its end: there is no one to
    # answer, and the pipe's error would only print a traceback on the user's terminal.
    with contextlib.suppress(*_PIPE_ERRORS):
        dataset = _received_dataset(connection)
        try:
            working.set()
            try:
                result = work(dataset, connection)
            finally:
                working.clear()  # before anything is sent: a parent that got it may stop listening
        except BaseException as error:
            # A pipe error comes a moment after the parent stopped listening; it is no failure of the work.
            if not _stopped_listening(watched, 1.0 if isinstance(error, _PIPE_ERRORS) else 0):
                _send_outcome(connection, name, error, error_log, passthrough)
        else:
            connection.send(("done", result))
        finally:
            connection.close()


def _send_outcome(
    connection: Connection,
    name: str,
    error: BaseException,
    error_log: Path,
    passthrough: tuple[type[BaseException], ...],
) -> None:
    """Send how the work ended: interrupted, or its error as `call_in_process` gives it; ours as raised, or where it
    cannot be pickled (another library's error class can refuse) as a `TrainingError` naming its traceback's file."""
    if isinstance(error, KeyboardInterrupt):
        connection.send(("interrupted", None))
    elif not isinstance(error, (TrainingError, *passthrough)):  # a pipe the parent closed is no unpicklable error
        connection.send(("error", out_of_memory(name, error) or _unexpected(name, error, error_log)))
    else:
        try:
            connection.send(("error", error))
        except Exception:
            connection.send(("error", _unexpected(name, error, error_log)))


def _unexpected(name: str, error: BaseException, error_log: Path) -> TrainingError:
    """An error we did not raise on purpose, as a `TrainingError` naming the file its traceback went to."""
    try:
        error_log.parent.mkdir(parents=True, exist_ok=True)
        error_log.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError as unwritable:
        return TrainingError(f"{name} failed: {error!r} (its traceback could not be written: {unwritable})")
    return TrainingError(f"{name} failed: {error!r} (traceback in {error_log})")


def _received_dataset(connection: Connection) -> Dataset | None:
    """The dataset from the parent process (multiprocessing unpickles it, as every message on the pipe), received
    with the garbage collector paused (its objects are all alive); then everything this process holds (the dataset,
    and the forkserver's preloaded modules where there is one) is frozen, so that the collections during training stop
    scanning it again and again (6-12% of a short tiny-BERT run, measured once)."""
    with gc_paused():
        dataset = connection.recv()
    gc.freeze()
    return dataset


def _exit_when_orphaned(parent_pid: int, watched: Connection, working: threading.Event) -> None:
    """End this process once its parent process is gone (or the forkserver, which exits with it: pids get reused),
    or, while it works, once its parent stopped listening: at once, with no error to log (its work is requeued)."""
    server = os.getppid()
    while True:
        if _stopped_listening(watched, _PARENT_POLL_S):
            if working.is_set():
                os._exit(_ORPHAN_EXIT_CODE)
            time.sleep(_PARENT_POLL_S)  # done: its result is on its way, and the pipe reads closed from now on
        if not alive(parent_pid) or os.getppid() != server:
            os._exit(_ORPHAN_EXIT_CODE)


def _stopped_listening(watched: Connection, timeout: float) -> bool:
    """Whether the parent closed its end of `watched` within `timeout` seconds (it never writes: readable = closed)."""
    try:
        return watched.poll(timeout)
    except OSError:  # a closed pipe, as Windows reports it
        return True
