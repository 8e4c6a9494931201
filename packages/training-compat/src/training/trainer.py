"""Deprecated: `training.trainer` moved to `training.core.trainer`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
