"""Compatibility layer: legacy import paths with deprecation warnings, and `training migrate`."""

from training_compat._version import __version__

__all__ = ["__version__"]
