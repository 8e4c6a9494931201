"""Deprecated top-level `training_exec` package; use `training.execution`."""
