"""The deprecation warning of the legacy paths, its removal schedule, and where it points."""

from __future__ import annotations

import sys
import warnings
from types import FrameType

from training_compat.moves import MODULES

SINCE = "0.1.0"
# The release that deletes the shims. A test fails once training-compat's version reaches it.
REMOVED_IN = "0.3.0"

# Frames of these modules are never the user's: the shims themselves and the import machinery.
_SHIM_MODULES = frozenset({"training", *MODULES})


class TrainingDeprecationWarning(DeprecationWarning):
    """A legacy import path was used; `since` and `expected_removal` are versions of the toolkit."""

    __module__ = "training_compat"  # its public name, the one filters are written with

    def __init__(self, message: str, *, since: str = SINCE, expected_removal: str = REMOVED_IN) -> None:
        super().__init__(message)
        self.message, self.since, self.expected_removal = message, since, expected_removal

    def __str__(self) -> str:
        return f"{self.message} (planned removal: {self.expected_removal})"


def moved_message(old: str, new: str, name: str | None = None) -> str:
    """The guide's wording: what was imported from where, and where it lives now."""
    what = f"Importing {name!r} from {old!r}" if name else f"Importing from {old!r}"
    return f"{what} is deprecated. Please use {new!r} instead. This shim will be removed in a future release."


def _internal(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    module = frame.f_globals.get("__name__", "")
    return (
        ("importlib" in filename and "_bootstrap" in filename)
        or module == "importlib"
        or module.startswith(("importlib.", "training_compat."))
        or module in _SHIM_MODULES
    )


def import_site() -> FrameType:
    """The innermost frame outside the shims and the import machinery: the user's line that asked for the path."""
    frame = sys._getframe(1)
    while _internal(frame) and frame.f_back is not None:
        frame = frame.f_back
    return frame


def warn_at(frame: FrameType, message: str) -> None:
    """Issue the warning as if raised at `frame`'s line: like `stacklevel`, but the import machinery adds a varying
    number of frames. No `module_globals`: `warn_explicit` fails on loaders without sources (`python -c`)."""
    warnings.warn_explicit(
        TrainingDeprecationWarning(message),
        TrainingDeprecationWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", "<string>"),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )
