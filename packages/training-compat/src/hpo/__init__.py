"""Deprecated top-level `hpo` package; use `training.hpo`."""
