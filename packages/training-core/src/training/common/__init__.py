"""Shared foundations of every layer: errors, lazy names, optional imports, fingerprints, atomic files.

This is the bottom layer: it imports only the standard library.
"""

from training.common.atomic import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    staging_leftovers,
    write_failure,
)
from training.common.errors import ConfigError, DataError, ExecutionError, InputError, TrainingError
from training.common.fingerprint import canonical_json, fingerprint, fingerprint_items
from training.common.lazy import attach
from training.common.optional import MissingDependencyError, require

__all__ = [
    "ConfigError",
    "DataError",
    "ExecutionError",
    "InputError",
    "MissingDependencyError",
    "TrainingError",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "attach",
    "canonical_json",
    "fingerprint",
    "fingerprint_items",
    "require",
    "staging_leftovers",
    "write_failure",
]
