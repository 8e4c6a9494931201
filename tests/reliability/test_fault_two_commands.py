"""Two commands on one run folder at once: its writer lock lets one of them write it, from its training to its lineage;
a second `training train` there meanwhile stops at once, naming the folder, and the first finishes as it would alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.common.file_lock import file_lock
from training.core.run_folder import RunFolder


def test_train_holds_its_run_folder_from_training_to_lineage(
    spawn: Callable[..., Any],
    training_command: Callable[..., list[str]],
    training_config: Path,
    tmp_path: Path,
    record_figure: Callable[[str, object], None],
) -> None:
    """`training train` keeps its run folder's writer lock until its lineage is written, so a second `train` there never
    finds it free in between (it was, for 10-20 ms: a `train --restart` then trained over the finished run, and the
    first ended with exit 2, "holds no finished run", instead of writing its lineage)."""
    run = RunFolder(tmp_path / "run")
    one_epoch = ("--set", "training.num_epochs=1", "--set", "training.eval_steps=null")
    child = spawn(training_command("train", "--config-dir", training_config, "--output", run.root, *one_epoch), "train")
    child.wait_for(run.config.exists, "the run's config.yaml (written once the run holds its folder)")
    checks, free = 0, 0
    while child.process.poll() is None and not run.lineage.exists():
        checks += 1
        with contextlib.suppress(BlockingIOError), file_lock(run.lock, wait=False):
            free += not run.lineage.exists()
        time.sleep(0.001)  # the gap it had lasted milliseconds
    assert child.finish() == 0, child.output()[-3000:]
    assert free == 0, f"the run folder was free for a second writer at {free} of {checks} checks before its lineage"
    assert run.lineage.is_file()
    record_figure("checks of the writer lock while the run trained", checks)
