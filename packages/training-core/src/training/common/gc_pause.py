"""The cyclic garbage collector paused while a block builds many objects that all stay alive."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the collector for the block (also as a decorator): a collection scans every live container, and building
    a large dataset's millions of words set off collections that scanned them again and again with nothing to free
    (half of loading a 100k-document corpus). A collector disabled already stays so."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
