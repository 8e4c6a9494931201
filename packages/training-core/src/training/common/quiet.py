"""A library's own output (warnings, progress bars, log lines), hidden for the length of our calls into it."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Quiet:
    """Turns a library's chatter down while any caller is inside: `hush()` turns it down and returns what turns it
    back up. Calls may overlap (in-process parallel trials, a call inside another): the first in hushes, the last
    out restores."""

    def __init__(self, hush: Callable[[], Callable[[], None]]) -> None:
        self._hush = hush
        self._lock = threading.Lock()
        self._depth = 0
        self._restore: Callable[[], None] = lambda: None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._restore = self._hush()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._restore()


class QuietLibrary(Quiet):
    """Hides the warnings and progress bars of the library whose logging module is `logging_module` (transformers
    and datasets share that API) during a call, where they would cut into our own output."""

    def __init__(self, logging_module: str) -> None:
        super().__init__(lambda: _hush_library(importlib.import_module(logging_module)))


def _hush_library(logging: Any) -> Callable[[], None]:
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()

    def restore() -> None:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()

    return restore
