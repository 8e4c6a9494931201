"""Run a trial's cross-validation in a fresh process (`training.hpo.processes`), or in this one for debugging.

Values and progress go over the process's pipe to the sweep's process, which answers prune or continue.
"""

from __future__ import annotations

import functools
import os
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from data.loaders import Dataset
from training.common.atomic import remove_staging_leftovers
from training.common.errors import ConfigError, TrainingError
from training.config.schema import TrainingConfig
from training.hpo.events import TrialProgress
from training.hpo.objective import CVOutcome, Progress, Reporter, TrialSpec, cross_validate
from training.hpo.processes import Isolation, TrialData, as_in_a_process, call_in_process


def run_trial(
    spec: TrialSpec, data: TrialData, reporter: Reporter, isolation: Isolation, progress: Progress | None = None
) -> CVOutcome:
    """Cross-validate one trial in a fresh process (`subprocess`) or in this one (`inprocess`, for debugging)."""
    error_log = Path(spec.trial_dir) / "error.log"
    if isolation == "inprocess":
        with as_in_a_process(f"trial {spec.number}", error_log):
            return cross_validate(spec, data.dataset, reporter, progress)

    def answer(kind: str, payload: Any, connection: Connection) -> None:
        if kind == "report":
            connection.send(reporter.report(*payload))
        elif kind == "progress":
            if progress is not None:
                progress(payload)
        else:
            raise TrainingError(f"trial {spec.number}: its process sent an unexpected {kind!r} message")

    work = functools.partial(_cross_validate, spec)
    cut_short = functools.partial(remove_staging_leftovers, spec.trial_dir)  # the trial's folder is its own alone
    return call_in_process(f"trial {spec.number}", work, error_log, data, answer, cut_short=cut_short)


def check_model(
    config: TrainingConfig, labels: tuple[str, ...], isolation: Isolation, given: str | None, error_log: Path
) -> None:
    """Resolve the backbone's config and tokenizer (not its weights) once, before any trial, in a trial process: a
    backbone that is not here fails every trial alike. `given`: the backbone the caller named (`--backbone`)."""
    work = functools.partial(_check_backbone, config, labels)
    if not error_log.parent.is_dir():  # a study folder the sweep has not made yet is not made for a traceback
        error_log = Path(tempfile.gettempdir()) / f"training-model-check-{os.getpid()}.log"
    try:
        if isolation == "inprocess":
            with as_in_a_process("the model check", error_log):
                work(None, None)
        else:
            call_in_process("the model check", work, error_log)
    except ConfigError as error:
        if given is None or given != config.model.backbone:
            raise
        raise ConfigError(f"backbone {given!r} (--backbone): {error}") from None


def _check_backbone(config: TrainingConfig, labels: tuple[str, ...], dataset: Dataset | None, connection: Any) -> None:
    from training.core.model import check_backbone

    check_backbone(config, labels=labels)


class _PipeReporter:
    """The trial process's side: send the value, wait for the verdict; send step progress without waiting."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def report(self, step: int, value: float) -> bool:
        self.connection.send(("report", (step, value)))
        return bool(self.connection.recv())

    def progress(self, event: TrialProgress) -> None:
        self.connection.send(("progress", event))  # one way: the sweep's process forwards it, nothing comes back


def _cross_validate(spec: TrialSpec, dataset: Dataset, connection: Connection) -> CVOutcome:
    """The trial process's work: its GPU and thread count first (before anything touches CUDA), then its folds."""
    if spec.device is not None:  # this process sees only its own GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = spec.device
    if spec.threads is not None:
        import torch

        torch.set_num_threads(spec.threads)
    reporter = _PipeReporter(connection)
    return cross_validate(spec, dataset, reporter, reporter.progress)
