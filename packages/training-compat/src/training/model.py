"""Deprecated: `training.model` moved to `training.core.model`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
