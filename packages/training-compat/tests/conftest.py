"""Fixtures: the guide's legacy imports and a fresh interpreter to run code in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The guide's "Old (deprecated)" imports, exactly as written, with the module of the guide's "New" import.
GUIDE = (
    ("from training.trainer import train_model", "training.core"),
    ("from training.model import create_model_and_tokenizer", "training.core"),
    ("from training.metrics import compute_metrics", "training.core"),
    ("from training.evaluator import evaluate_model", "training.core"),
    ("from hpo import run_local_hpo_sweep", "training.hpo"),
    ("from hpo import extract_best_config_from_study", "training.hpo"),
    ("from hpo import create_search_space", "training.hpo"),
    ("from training_exec import execute_final_training", "training.execution"),
    ("from training_exec import extract_lineage_from_best_model", "training.execution"),
    ("from training.distributed import create_run_context", "training.execution"),
    ("from training.cv_utils import create_kfold_splits", "training.core.cv_utils"),
    ("from training.data import load_dataset", "data.loaders"),
    ("from training import train_model", "training.core"),
    ("from training import create_model_and_tokenizer", "training.core"),
    ("from training import run_local_hpo_sweep", "training.hpo"),
)

Python = Callable[..., subprocess.CompletedProcess[str]]


def run_python(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """This interpreter in a fresh process (offline for Hugging Face): legacy modules warn on first import only."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=timeout,
        check=False,
    )


def last_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a successful run printed on its last line."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def guide() -> tuple[tuple[str, str], ...]:
    return GUIDE


@pytest.fixture
def python() -> Python:
    return run_python


@pytest.fixture
def probe() -> Callable[..., Any]:
    """Run code in a fresh process and return the JSON it printed last."""

    def run(code: str, *options: str, cwd: Path | None = None) -> Any:
        return last_json(run_python(*options, "-c", code, cwd=cwd))

    return run
