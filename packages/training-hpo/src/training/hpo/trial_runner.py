"""Run a trial's cross-validation in a fresh process, so all its memory is returned when it ends.

Processes come from a forkserver that preloaded torch and the trainer (never plain `fork`: the parent's threads could
deadlock the child); the sweep's dataset is pickled once and each trial process unpickles it. Values and progress go
over a pipe to the sweep's process, which answers prune or continue. A trial process ends itself when the sweep's
process is gone; a Ctrl-C in it becomes KeyboardInterrupt in the sweep.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from data.loaders import Dataset
from training.common.errors import TrainingError
from training.hpo.events import TrialProgress
from training.hpo.failures import OutOfMemory
from training.hpo.objective import CVOutcome, Progress, Reporter, TrialSpec, cross_validate
from training.hpo.recovery import alive

Isolation = Literal["subprocess", "inprocess"]
PRELOAD = ["torch", "transformers", "training.core.trainer", "training.hpo.objective"]
_PARENT_POLL_S = 0.5
_ORPHAN_EXIT_CODE = 70
T = TypeVar("T")
_MAIN_SWAP = threading.Lock()  # parallel trials start their processes from threads: one swap of __main__ at a time


class TrialData:
    """A sweep's dataset as its trials receive it: the object itself in process, and for trial processes the bytes
    of one pickling, made when the first one starts (not once per trial, in the sweep's process, which keeps this one
    copy while the sweep runs)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._pickled: bytes | None = None
        self._lock = threading.Lock()  # parallel trials start from threads

    def pickled(self) -> bytes:
        with self._lock:
            if self._pickled is None:
                self._pickled = pickle.dumps(self.dataset, protocol=pickle.HIGHEST_PROTOCOL)
            return self._pickled


def run_trial(
    spec: TrialSpec, data: TrialData, reporter: Reporter, isolation: Isolation, progress: Progress | None = None
) -> CVOutcome:
    """Cross-validate one trial in a fresh process (`subprocess`) or in this one (`inprocess`, for debugging)."""
    if isolation == "inprocess":
        try:
            return cross_validate(spec, data.dataset, reporter, progress)
        except Exception as error:
            oom = _out_of_memory(f"trial {spec.number}", error)
            if oom is not None:
                raise oom from error
            raise

    def answer(kind: str, payload: Any, connection: Connection) -> None:
        if kind == "report":
            connection.send(reporter.report(*payload))
        elif kind == "progress" and progress is not None:
            progress(payload)

    work = functools.partial(_cross_validate, spec)
    return call_in_process(f"trial {spec.number}", work, Path(spec.trial_dir) / "error.log", data, answer)


def call_in_process(
    name: str,
    work: Callable[[Dataset | None, Connection], T],
    error_log: Path,
    data: TrialData | None = None,
    answer: Callable[[str, Any, Connection], None] | None = None,
) -> T:
    """`work(dataset, connection)` in a fresh trial process, which receives `data`'s dataset (or None) first; its
    result, or its error: `TrainingError`s as raised, CUDA out of memory as `OutOfMemory`, anything else as a
    `TrainingError` naming `name` and `error_log` (where the traceback is). Other messages the process sends go to
    `answer(kind, payload, connection)`."""
    context = _context()
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_child, args=(theirs, name, work, error_log, os.getpid()), name=name.replace(" ", "-"), daemon=True
    )
    with _main_script_hidden():
        process.start()
    theirs.close()
    try:
        with contextlib.suppress(OSError):  # a process that died before reading it: reported below as it ended
            ours.send_bytes(data.pickled() if data is not None else pickle.dumps(None))  # not a Process argument:
            # the process would keep those bytes to its end
        while True:
            try:
                kind, payload = ours.recv()
            except EOFError:
                break
            if kind == "done":
                return cast(T, payload)
            if kind == "interrupted":
                raise KeyboardInterrupt(f"{name} was interrupted")
            if kind == "error":
                raise payload
            if answer is not None:
                answer(kind, payload, ours)
    finally:
        ours.close()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    raise TrainingError(f"{name}: its process {_ended(process.exitcode)} without a result")


def start_trial_processes(isolation: Isolation) -> None:
    """Start the forkserver now (it returns at once): its preloading of torch and the trainer, seconds of imports,
    then overlaps the sweep's data loading and study set-up instead of delaying the first trials."""
    if isolation == "subprocess" and _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver  # not at import: there is none on Windows

        forkserver.ensure_running()


def _context() -> multiprocessing.context.BaseContext:
    """Trial processes come from a forkserver; where there is none (Windows), each is a fresh interpreter."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _ended(exitcode: int | None) -> str:
    """How a trial process ended, in words: a signal (kill -9 is often the kernel's out-of-memory killer) or a code."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (killed: out of memory, or kill -9)" if name == "SIGKILL" else ""
        return f"was ended by {name}{hint}"
    return f"exited with code {exitcode}"


def _out_of_memory(name: str, error: BaseException) -> OutOfMemory | None:
    """The error as `OutOfMemory` when it is torch's CUDA out-of-memory error (else None)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(error, torch.cuda.OutOfMemoryError):
        return None
    return OutOfMemory(f"{name}: CUDA out of memory ({str(error).splitlines()[0]})")


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start a trial process without re-importing the caller's main script (an unguarded script would sweep again)."""
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _PipeReporter:
    """The trial process's side: send the value, wait for the verdict; send step progress without waiting."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def report(self, step: int, value: float) -> bool:
        self.connection.send(("report", (step, value)))
        return bool(self.connection.recv())

    def progress(self, event: TrialProgress) -> None:
        self.connection.send(("progress", event))  # one way: the sweep's process forwards it, nothing comes back


def _cross_validate(spec: TrialSpec, dataset: Dataset, connection: Connection) -> CVOutcome:
    if spec.device is not None:  # before anything touches CUDA: this process sees only its own GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.device
    if spec.threads is not None:
        import torch

        torch.set_num_threads(spec.threads)
    reporter = _PipeReporter(connection)
    return cross_validate(spec, dataset, reporter, reporter.progress)


def _child(connection: Connection, name: str, work: Callable[..., Any], error_log: Path, parent_pid: int) -> None:
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    dataset = _received_dataset(connection)
    try:
        result = work(dataset, connection)
    except TrainingError as error:
        connection.send(("error", error))
    except KeyboardInterrupt:
        connection.send(("interrupted", None))
    except BaseException as error:
        oom = _out_of_memory(name, error)
        if oom is not None:
            connection.send(("error", oom))
            return
        error_log.parent.mkdir(parents=True, exist_ok=True)
        error_log.write_text(traceback.format_exc(), encoding="utf-8")
        connection.send(("error", TrainingError(f"{name} failed: {error!r} (traceback in {error_log})")))
    else:
        connection.send(("done", result))
    finally:
        connection.close()


def _received_dataset(connection: Connection) -> Dataset | None:
    """The dataset from the sweep's process (multiprocessing unpickles it, as every message on the pipe), received
    with the garbage collector paused (its objects are all alive); then everything this process holds (the dataset,
    and the forkserver's preloaded modules where there is one) is frozen, so that the collections during training stop
    scanning it again and again (6-12% of a short tiny-BERT run, measured once)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        dataset = connection.recv()
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return dataset


def _exit_when_orphaned(parent_pid: int) -> None:
    """End this process once the sweep's process is gone (or the forkserver, which exits with it: pids get reused)."""
    server = os.getppid()
    while True:
        time.sleep(_PARENT_POLL_S)
        if not alive(parent_pid) or os.getppid() != server:
            os._exit(_ORPHAN_EXIT_CODE)
