"""The toolkit's cache folder, shared by the tokenised-feature cache and the tiny BERT."""

from __future__ import annotations

import os
from pathlib import Path

from training.common.errors import ConfigError


def cache_folder(*parts: str) -> Path:
    """`$XDG_CACHE_HOME/training` (else `~/.cache/training`), or the folder `parts` inside it; a `ConfigError` naming
    the variable where it is a file or lies inside one (it failed later, naming a folder it could not make there)."""
    variable = os.environ.get("XDG_CACHE_HOME")
    root = Path(variable or Path.home() / ".cache", "training")
    found = next((folder for folder in (root, *root.parents) if folder.exists()), root)
    if found.exists() and not found.is_dir():
        where = f"XDG_CACHE_HOME={variable}" if variable else "the cache folder"
        raise ConfigError(f"{where}: {found} is a file; expected a folder to keep the toolkit's cache in")
    return Path(root, *parts)
