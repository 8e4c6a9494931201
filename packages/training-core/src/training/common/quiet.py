"""A Hugging Face library's own warnings and progress bars, hidden for the length of our calls into it."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator


class QuietLibrary:
    """Hides the warnings and progress bars of the library whose logging module is `logging_module` (transformers
    and datasets share that API) during a call, where they would cut into our own output. Calls may overlap
    (in-process parallel trials): the first in saves the settings, the last out restores them."""

    def __init__(self, logging_module: str) -> None:
        self._module = logging_module
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[int, bool] = (0, True)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        logging = importlib.import_module(self._module)
        with self._lock:
            if self._depth == 0:
                self._saved = (logging.get_verbosity(), logging.is_progress_bar_enabled())
                logging.set_verbosity_error()
                logging.disable_progress_bar()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    verbosity, bars = self._saved
                    logging.set_verbosity(verbosity)
                    if bars:
                        logging.enable_progress_bar()
