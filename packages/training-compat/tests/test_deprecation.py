"""The warning class and the removal schedule: the shims cannot outlive the release that promised to drop them."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
from packaging.version import Version

import training_compat
from training_compat import REMOVED_IN, TrainingDeprecationWarning
from training_compat._version import __version__
from training_compat.deprecation import SINCE, moved_message

DOCS = Path(__file__).resolve().parents[3] / "docs" / "migration.md"


def test_the_shims_are_gone_before_the_planned_removal() -> None:
    assert Version(__version__) < Version(REMOVED_IN), (
        f"training-compat {__version__} reached the planned removal {REMOVED_IN}: delete the shims, or move "
        "REMOVED_IN (training_compat/deprecation.py) and the timeline in docs/migration.md"
    )
    assert Version(SINCE) <= Version(__version__)


def test_the_migration_guide_states_the_removal_release() -> None:
    if not DOCS.parent.is_dir():
        pytest.skip("run from a source distribution: the repository's docs/ is not here")
    assert f"`{REMOVED_IN}`" in DOCS.read_text(encoding="utf-8")


def test_the_warning_is_a_deprecation_warning_with_its_schedule() -> None:
    warning = TrainingDeprecationWarning(moved_message("hpo", "training.hpo"))
    assert isinstance(warning, DeprecationWarning)
    assert (warning.since, warning.expected_removal) == (SINCE, REMOVED_IN)
    assert str(warning) == (
        "Importing from 'hpo' is deprecated. Please use 'training.hpo' instead. "
        f"This shim will be removed in a future release. (planned removal: {REMOVED_IN})"
    )
    assert str(pickle.loads(pickle.dumps(warning))) == str(warning)  # survives a trip to a worker process


def test_filters_use_the_public_name() -> None:
    assert training_compat.TrainingDeprecationWarning.__module__ == "training_compat"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=training_compat.TrainingDeprecationWarning)
        try:
            warnings.warn(TrainingDeprecationWarning("x"), stacklevel=1)
        except TrainingDeprecationWarning as error:
            assert error.expected_removal == REMOVED_IN
        else:
            raise AssertionError("the filter did not match")
