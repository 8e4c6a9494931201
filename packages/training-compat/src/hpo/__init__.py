"""Deprecated: the top-level `hpo` package moved to `training.hpo`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
