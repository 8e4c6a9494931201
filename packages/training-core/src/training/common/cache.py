"""The toolkit's cache folder, shared by the tokenised-feature cache and the tiny BERT."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder(*parts: str) -> Path:
    """`$XDG_CACHE_HOME/training` (else `~/.cache/training`), or the folder `parts` inside it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "training", *parts)
