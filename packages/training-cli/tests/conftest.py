"""Fixtures of the CLI tests: a generated corpus, a config folder, trained tiny runs, an ONNX export of one, and a
`cli` runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from data.generate import generate_corpus, write_corpus

CONFIG = {
    "train.yaml": "backbone: tiny-bert\ndata: resumes\ntraining:\n  num_epochs: 1\n  batch_size: 8\n"
    "  learning_rate: 1e-3\n  seed: 0\n",
    "model/tiny-bert.yaml": "backbone: tiny-bert\nmax_length: 64\nstride: 8\n",
    "data/resumes.yaml": "path: resumes\nformat: spans\n",
}


def run_cli(*args: str, input: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`training ARGS...` in a fresh process, as a user would run it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "training.cli", *args],
        capture_output=True,
        text=True,
        input=input,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config folder whose `resumes/` holds 40 generated documents (train/validation/test)."""
    folder = tmp_path_factory.mktemp("configs")
    for name, text in CONFIG.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    write_corpus(folder / "resumes", generate_corpus(40, seed=3, max_sentences=4))
    return folder


@pytest.fixture(scope="session")
def trained_run(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch tiny-BERT run folder made through `training train`."""
    output = tmp_path_factory.mktemp("runs") / "run"
    completed = run_cli("train", "--config-dir", str(config_dir), "--output", str(output), "--quiet")
    assert completed.returncode == 0, completed.stderr
    return output


@pytest.fixture(scope="session")
def tagging_run(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-BERT run trained long enough to find entities, so that comparing them means something."""
    output = tmp_path_factory.mktemp("tagging-run") / "run"
    overrides = ["--set", "training.num_epochs=12", "--set", "training.learning_rate=5e-3"]
    completed = run_cli("train", "--config-dir", str(config_dir), "--output", str(output), "--quiet", *overrides)
    assert completed.returncode == 0, completed.stderr
    return output


@pytest.fixture(scope="session")
def exported_run(tagging_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`training export RUN --quantize` of the tagging run: the exported folder and what the command printed."""
    pytest.importorskip("onnxruntime")
    output = tmp_path_factory.mktemp("exported") / "onnx"
    completed = run_cli("export", str(tagging_run), "--format", "onnx", "--output", str(output), "--quantize")
    assert completed.returncode == 0, completed.stderr
    return output, completed.stdout
