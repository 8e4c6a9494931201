"""Deprecated: `training.metrics` moved to `training.core.metrics`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
