"""Deprecated: `hpo.sweep` moved to `training.hpo.sweep`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
