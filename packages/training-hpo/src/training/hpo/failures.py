"""Failed trials: a trial that raises, runs out of memory or whose process dies is marked FAIL with its reason, and
the sweep goes on; only `max_failed_trials` failures in a row (a broken setup, not a bad guess) stop it."""

from __future__ import annotations

import logging
import threading

from training.common.errors import TrainingError
from training.common.plural import counted

logger = logging.getLogger(__name__)  # a child of "training.hpo"


class TrialFailed(Exception):
    """A trial failed for `reason` (one line); Optuna marks it FAIL and the sweep continues."""


class OutOfMemory(TrainingError):
    """A trial or a refit ran out of GPU memory (`torch.cuda.OutOfMemoryError`)."""


class SweepStopped(TrainingError):
    """Too many trials failed in a row: the sweep stopped, since the next trial would most likely fail too."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message, prefixed by its type unless it is one of ours."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if isinstance(error, TrainingError) and text else f"{type(error).__name__}: {text}".rstrip(": ")


class FailureStreak:
    """Counts the failures in a row of one sweep process (its parallel trials included); thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit, self.count, self.last, self.exit_code = limit, 0, "", TrainingError.exit_code
        self._lock = threading.Lock()

    def failed(self, number: int, reason: str, exit_code: int) -> bool:
        """Count trial `number`'s failure (`exit_code`: 2 for bad input); True once `limit` failed in a row."""
        logger.warning("trial %d failed: %s", number, reason)
        with self._lock:
            self.count += 1
            self.last, self.exit_code = reason, exit_code
            return self.count >= self.limit

    def succeeded(self) -> None:
        with self._lock:
            self.count = 0

    def error(self) -> SweepStopped:
        """The error that ends the sweep; bad input (such as a backbone that is nowhere) keeps its exit code 2."""
        stopped = SweepStopped(
            f"the sweep stopped: {counted(self.count, 'trial')} failed in a row (hpo.max_failed_trials {self.limit}); "
            f"last reason: {self.last}"
        )
        stopped.exit_code = self.exit_code
        return stopped
