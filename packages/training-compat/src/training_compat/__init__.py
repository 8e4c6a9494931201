"""Compatibility layer: legacy import paths with deprecation warnings, and `training migrate`."""

from training_compat._version import __version__
from training_compat.deprecation import REMOVED_IN, TrainingDeprecationWarning

__all__ = ["REMOVED_IN", "TrainingDeprecationWarning", "__version__"]
