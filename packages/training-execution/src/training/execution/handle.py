"""Job handles: one interface over every backend (id, status, output folders, `wait`, `logs`)."""

from __future__ import annotations

import contextlib
import re
import shlex
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from training.common.errors import ExecutionError, exit_reason

if TYPE_CHECKING:
    from training.execution.tracking import TrackedRun

JobStatus = Literal["queued", "running", "completed", "failed"]
TAIL_BYTES = 64 * 1024
# torchrun exits 1 whatever ended a worker; its summary's "Root Cause" section names the first failed worker's code.
_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.DOTALL)
# A child's error line: the runner's one-line `error: ...` (argparse's `prog: error: ...`) or a traceback's last line
# (`ValueError: ...`, `ValueError: error: ...` too), bare or behind a torchrun rank prefix (`[rank1]:`, `[default1]: `);
# torchrun's own ChildFailedError is not a worker's.
_ERROR_LINE = re.compile(
    r"^(?:\[(?:rank|default)?(\d+)\]: ?)?(?:(?:(?![\w.]*(?:Error|Exception): )[^\s:][^:\n]*: )?error: (.*)|"
    r"((?!torch\.distributed\.elastic\.)[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?))$",
    re.MULTILINE,
)
# Last lines that are no message: indented (a traceback's, a warning's source line), a warning, a progress bar, a log
# record (stamped with its date, torch's `W1205 16:10:48...`, or the CLI's `INFO training.core: ...`).
_NOT_A_MESSAGE = re.compile(r"^\s|Warning: |\d%\||^\d{4}-\d\d-\d\d|^\[?[IWEF]\d{4} \d\d:|^(?:DEBUG|INFO|WARNING) \S+: ")
# Seconds an interrupted job's child gets to end on its own (a terminal's Ctrl-C reaches it too) before it is stopped.
INTERRUPT_GRACE_S = 5.0


class JobHandle(ABC):
    """A submitted job: `id`, `backend`, `status`, its outputs `output_dir` (the run folder) and `model_dir`, `wait()`
    and `logs()`."""

    def __init__(self, id: str, backend: str, output_dir: Path, log_file: Path, command: list[str]) -> None:
        self.id, self.backend, self.output_dir, self.log_file = id, backend, output_dir, log_file
        self.command = command
        # Where execute_final_training logged the finished run (MLflow), when tracking was asked for.
        self.tracked_run: TrackedRun | None = None

    @property
    @abstractmethod
    def status(self) -> JobStatus:
        """`queued`, `running`, `completed` or `failed`."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job ends; returns `completed`, raises `ExecutionError` if it failed or `timeout` passed."""

    @property
    def model_dir(self) -> Path:
        return self.output_dir / "model"

    @property
    def command_line(self) -> str:
        """The command as one shell line (what a user would type to run the job by hand)."""
        return shlex.join(self.command)

    def logs(self, lines: int = 40) -> str:
        """The last `lines` lines of the job's log ('' before it has written any)."""
        return tail(self.log_file, lines)

    def lineage_updates(self) -> dict[str, str | None]:
        """Lineage fields only the handle knows (remote job ids); empty for local jobs."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, backend={self.backend!r}, status={self.status!r})"


class CompletedJob(JobHandle):
    """A job that already ran to the end in this process."""

    @property
    def status(self) -> JobStatus:
        return "completed"

    def wait(self, timeout: float | None = None) -> JobStatus:
        return "completed"


class PreparedJob(JobHandle):
    """A dry run: the job's files are written and its command is known, but nothing was started."""

    @property
    def status(self) -> JobStatus:
        return "queued"

    def wait(self, timeout: float | None = None) -> JobStatus:
        raise ExecutionError(f"job {self.id} was prepared as a dry run and never started; run: {self.command_line}")


class ProcessJob(JobHandle):
    """A job running in a child process (the runner, or torchrun launching it); output goes to `log_file`."""

    def __init__(self, id: str, backend: str, output_dir: Path, log_file: Path, command: list[str]) -> None:
        super().__init__(id, backend, output_dir, log_file, command)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # The log's line that starts this launch's output (a log may hold earlier launches' too).
        self._launch_line = f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {self.command_line}"
        with log_file.open("a", encoding="utf-8") as log:
            log.write(f"{self._launch_line}\n")
            log.flush()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def status(self) -> JobStatus:
        code = self.process.poll()
        return "running" if code is None else "completed" if code == 0 else "failed"

    def wait(self, timeout: float | None = None) -> JobStatus:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ExecutionError(
                f"job {self.id} ({self.backend}) is still running after {timeout:g} s (pid {self.process.pid}); "
                f"call wait() again or see {self.log_file}"
            ) from None
        if code != 0:  # one line: the exit code (a torchrun worker's too), the child's last error, where the rest is
            run = tail(self.log_file, 400).rpartition(self._launch_line)[2]  # this launch's output
            found = _ERROR_LINE.findall(run)  # each rank's last runner error, else its last exception (one that a
            # `__del__` raised at exit, after the runner's error, is printed as "Exception ignored" and ended nothing)
            said = {rank: raised for rank, _, raised in found if raised} | {rank: ran for rank, ran, _ in found if ran}
            reason, worker = exit_reason(code), _ROOT_CAUSE.search(run)
            last = run.rstrip().rpartition("\n")[2]  # a child's own last line: `SystemExit("...")`'s text ends it
            if code == 1 and not (said or worker) and last and not _NOT_A_MESSAGE.search(last):
                said[""] = last
            rank, ended = (worker[1], int(worker[2])) if worker else ("", code)
            line = (said.get(rank) or said.get("")) if ended > 0 else None  # one killed by a signal raised nothing
            detail = f": {line}" if line else ""
            if worker:  # the worker's code (2: bad input) is the job's, not torchrun's 1
                reason += f" (worker rank {rank}: {exit_reason(ended)}{detail})"
                code = ended if ended > 0 else code
            else:
                reason += detail
            raise ExecutionError(
                f"job {self.id} ({self.backend}) failed: {reason}; its whole output is in {self.log_file}",
                returncode=code,
            )
        return "completed"

    def stop(self, grace: float = INTERRUPT_GRACE_S) -> None:
        """End the child: `grace` seconds to end on its own (a terminal's Ctrl-C reaches it too), then terminated and
        waited for (torchrun passes that on to its workers and gives them time to end: killing it early would leave
        them running). An interrupt meanwhile (a second Ctrl-C) moves on to the next step at once, the last a kill:
        it never leaves the child running on its own."""
        for step in (None, self.process.terminate, self.process.kill):
            try:
                if step is not None:
                    step()
                self.process.wait(grace if step is None else None)
                return
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                continue


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends, then deliver the first one to the handler it would have
    met: a child started in the block is bound to its handle before any interrupt can leave it running alone."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():  # None: a handler set outside Python, put back as default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if received:
            signal.raise_signal(received[0])  # its handler runs now: KeyboardInterrupt raises here


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a text file, or '' when it does not exist yet."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
