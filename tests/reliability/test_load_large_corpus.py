"""A corpus 50 times the demo's (12,000 generated resumes instead of 240) goes through tokenisation and one training
epoch of `training train` within a stated memory bound.

The bound is 2 GiB of peak resident memory for the training process. Measured on the CPU build of torch: about
0.55 GiB for the interpreter, torch, transformers and the tiny BERT; about 0.2 GiB for the 12,000 documents and their
words; about 0.25 GiB for the tokenised windows (about 1.4 million sub-tokens, with word ids and labels); the rest is
the training step's working set and the allocator's growth over 255 steps of varying batch shapes: 1.1 to 1.3 GiB in
all on an AMD EPYC training in fp32, where the bound leaves about 50 % headroom; 1.9 GiB on an Intel Xeon with AMX
(bf16 and the CPU dropout: docs/reliability.md), where it leaves about 5 %. It fails if the corpus is held twice (as
padded tensors, or a copy per split or per epoch) or if memory grows with the number of steps.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from data.generate import generate_corpus, write_corpus

pytestmark = pytest.mark.slow
DOCUMENTS = 12_000
PEAK_RSS_BOUND_MIB = 2048
TRAIN_YAML = """\
backbone: tiny-bert
data: resumes
training: {num_epochs: 1, batch_size: 64, eval_batch_size: 128, learning_rate: 1.0e-3, seed: 0}
"""


def run_measured(command: list[str], env: dict[str, str], log: Path, timeout: float) -> tuple[int, float]:
    """Run `command` to its end; returns its exit code and its peak resident memory in MiB (from its rusage)."""
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            pytest.fail(f"still running after {timeout} s: {command}")
        time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024  # KiB on Linux


def test_fifty_times_the_demo_corpus_trains_within_the_memory_bound(
    training_command: Callable[..., list[str]],
    env: dict[str, str],
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """12,000 resumes: tokenised (and cached) and trained for one epoch with a peak RSS under 2 GiB."""
    config = tmp_path / "config"
    files = {
        "train.yaml": TRAIN_YAML,
        "model/tiny-bert.yaml": "backbone: tiny-bert\nmax_length: 128\nstride: 32\n",
        "data/resumes.yaml": "path: corpus\nformat: spans\n",
    }
    for name, text in files.items():
        (config / name).parent.mkdir(parents=True, exist_ok=True)
        (config / name).write_text(text, encoding="utf-8")
    write_corpus(config / "corpus", generate_corpus(DOCUMENTS, seed=7, max_sentences=12))  # as the demo, 50 times
    record_figure("corpus MiB", sum(path.stat().st_size for path in (config / "corpus").iterdir()) / 2**20)
    cache = Path(env["XDG_CACHE_HOME"]) / "training" / "features"
    cached_before = set(cache.glob("features-*.npz"))

    run = tmp_path / "run"
    started = time.monotonic()
    command = training_command("train", "--config-dir", config, "--output", run, "--quiet")
    code, peak = run_measured(command, env, tmp_path / "train.log", timeout=600)
    assert code == 0, (tmp_path / "train.log").read_text()[-3000:]
    record_figure("seconds", time.monotonic() - started)
    record_figure("peak RSS MiB", peak)
    windows = re.search(r"training (\d+) windows", (run / "train.log").read_text(encoding="utf-8"))
    assert windows is not None
    record_figure("training windows", int(windows.group(1)))
    assert len(set(cache.glob("features-*.npz")) - cached_before) == 2  # train and validation went through the cache
    assert peak < PEAK_RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB is above the bound of {PEAK_RSS_BOUND_MIB} MiB"
