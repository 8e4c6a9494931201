"""`refit`: a best config's final training on this machine, in a process from the trial processes' server.

It is `execute_final_training` with backend `local` (the same run folder, lineage, resume and tracking), run where
the sweep's trials ran: after a sweep in the same Python process that server has torch, transformers and the trainer
imported already (seconds saved), and like a trial the process returns all its memory, GPU memory included, when it
ends. `isolation="inprocess"` runs it in this process.
"""

from __future__ import annotations

import functools
import os
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from data.loaders import Dataset
from training.config.best import BestConfig
from training.execution.handle import JobHandle
from training.hpo.trial_runner import Isolation, TrialData, call_in_process


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
    """Refit `best_config` into `output_dir` and return the finished job; the arguments are
    `execute_final_training`'s (its errors too), `dataset` is sent to the refit's process."""
    best = best_config if isinstance(best_config, BestConfig) else BestConfig.load(best_config)
    options: dict[str, Any] = {
        "output_dir": Path(output_dir).expanduser().resolve(),
        "data_path": data_path,
        "keep_holdout": keep_holdout,
        "force": force,
        "other_data": other_data,
        "tracking_uri": tracking_uri,
        "registered_model_name": registered_model_name,
    }
    if isolation == "inprocess":
        return _final_training(best, options, dataset)
    work = functools.partial(_final_training, best, options)
    data = TrialData(dataset) if dataset is not None else None
    return call_in_process("refit", work, options["output_dir"] / "error.log", data)


def _final_training(
    best: BestConfig, options: dict[str, Any], dataset: Dataset | None, connection: Connection | None = None
) -> JobHandle:
    from training.execution.final import execute_final_training  # imports torch: not in the caller's process

    return execute_final_training(best, dataset=dataset, backend="local", **options)
