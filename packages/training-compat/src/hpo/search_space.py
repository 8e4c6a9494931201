"""Deprecated: `hpo.search_space` moved to `training.hpo.search_space`."""

from training_compat.shim import forward as _forward

__getattr__, __dir__ = _forward(__name__)
