"""Deprecated: `training.distributed` moved to `training.execution`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
