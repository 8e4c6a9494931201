"""Deprecated: `training.cv_utils` moved to `training.core.cv_utils`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
