"""Deprecated: `hpo.best_config` moved to `training.hpo.best_config`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
