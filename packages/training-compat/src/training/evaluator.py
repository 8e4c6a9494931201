"""Deprecated: `training.evaluator` moved to `training.core.evaluator`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
