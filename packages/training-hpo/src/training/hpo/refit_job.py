"""`refit`: a best config's final training on this machine, in a process from the trial processes' server.

It is `execute_final_training` with backend `local` (the same run folder, lineage, resume and tracking), run where
the sweep's trials ran: after a sweep in the same Python process that server has torch, transformers and the trainer
imported already (seconds saved), and like a trial the process returns all its memory, GPU memory included, when it
ends. The process starts from the server's state, not the caller's: environment variables set after the sweep
began and the caller's logging set-up do not reach it (its log is the run folder's `train.log`).
`isolation="inprocess"` runs it in this process.
"""

from __future__ import annotations

import functools
import os
from multiprocessing.connection import Connection
from typing import Any

from data.loaders import Dataset
from training.common.errors import ConfigError
from training.common.home import expand_home
from training.config.best import BestConfig
from training.core.run_folder import RunFolder
from training.execution.handle import JobHandle
from training.hpo.processes import Isolation, TrialData, as_in_a_process, call_in_process


def refit(
    best_config: BestConfig | str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str],
    dataset: Dataset | None = None,
    data_path: str | os.PathLike[str] | None = None,
    keep_holdout: bool = False,
    force: bool = False,
    other_data: bool = False,
    tracking_uri: str | None = None,
    registered_model_name: str | None = None,
    isolation: Isolation = "subprocess",
) -> JobHandle:
    """Refit `best_config` into `output_dir` and return the finished job. The arguments are `execute_final_training`'s
    and so are its errors (a CUDA out-of-memory error as `OutOfMemory`; an error of no known kind as a
    `TrainingError` naming `<output_dir>/error.log`); `dataset` is sent to the refit's process."""
    if isolation not in ("subprocess", "inprocess"):
        raise ConfigError(f"isolation: expected 'subprocess' or 'inprocess', got {isolation!r}")
    best = best_config if isinstance(best_config, BestConfig) else BestConfig.load(best_config)
    if dataset is not None:
        Dataset.check(dataset)
    output = expand_home(output_dir).resolve()
    work = functools.partial(
        _final_training,
        best,
        output_dir=output,
        data_path=data_path,
        keep_holdout=keep_holdout,
        force=force,
        other_data=other_data,
        tracking_uri=tracking_uri,
        registered_model_name=registered_model_name,
    )
    if output.is_dir():
        (output / "error.log").unlink(missing_ok=True)  # from an earlier refit that failed here
    passthrough = (OSError, ImportError)  # their messages name the file or module
    if isolation == "inprocess":
        with as_in_a_process("refit", output / "error.log", passthrough):
            return work(dataset, None)
    data = TrialData(dataset) if dataset is not None else None
    # The run's own files only: the output folder may hold other runs, or anything else of the user's
    cut_short = RunFolder(output).remove_leftovers
    return call_in_process("refit", work, output / "error.log", data, passthrough=passthrough, cut_short=cut_short)


def _final_training(
    best: BestConfig, dataset: Dataset | None, _connection: Connection | None, **options: Any
) -> JobHandle:
    """The refit process's work, `refit`'s options passed on (it sends nothing but its result: no connection use)."""
    from training.execution.final import execute_final_training  # imports torch: not in the caller's process

    return execute_final_training(best, dataset=dataset, backend="local", **options)
