"""Resumable training state: weights, optimizer, scheduler, RNG and progress, saved as one atomic folder.

It keeps every DDP rank's RNG state (each draws its own dropout masks), so a resumed run continues exactly.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from training.common.atomic import atomic_directory, atomic_write_json, write_failure
from training.common.errors import ConfigError, InputError, first_line
from training.config.validation import read_record
from training.core.run_metrics import BestEvaluation, HistoryEntry, PrecisionCheck

STATE_FILE = "trainer_state.json"
# What reading a damaged checkpoint raises (torch.load: EOFError for an empty file, RuntimeError for a cut archive).
_DAMAGED = (ConfigError, OSError, EOFError, ValueError, KeyError, RuntimeError, SafetensorError, pickle.UnpicklingError)


class Progress(BaseModel):
    """Where a run stands between two optimizer steps: exactly what a checkpoint saves and restores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    next_epoch: int = 0
    next_batch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    best_metrics: BestEvaluation = None
    best_step: int = 0
    patience: int = 0
    history: tuple[HistoryEntry, ...] = ()
    stopped_early: bool = False
    skipped_steps: int = 0
    nonfinite_in_row: int = 0
    precision_check: PrecisionCheck | None = None  # kept so that a resumed run stays in the precision it chose
    world_size: int | None = None  # the processes that wrote it (None: written before the count was kept)
    steps_per_epoch: int | None = None  # of the run that wrote it (None: written before the count was kept)


class Stateful(Protocol):
    """What a checkpoint saves and restores of an optimizer: an optimizer, or `Optimization.checkpointed`."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


def rng_state() -> dict[str, Any]:
    """This process's random number generator states (CPU and every CUDA device)."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: Stateful,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    progress: Progress,
    rng_states: list[dict[str, Any]],
) -> None:
    """Write the whole state (`rng_states`: every rank's `rng_state()`) to a staging folder swapped in at once."""
    try:
        with atomic_directory(folder) as staging:
            save_model(model, str(staging / "model.safetensors"))
            torch.save(
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_states,
                },
                staging / "optimizer.pt",
            )
            atomic_write_json(staging / STATE_FILE, progress.model_dump(mode="json"))
    except (OSError, RuntimeError, SafetensorError) as error:  # torch reports a full disk as a RuntimeError
        raise write_failure(folder, "the checkpoint", error) from error


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: Stateful,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    rank: int = 0,
    world_size: int = 1,
    steps_per_epoch: int | None = None,
    batches_per_step: int = 1,
) -> Progress:
    """Restore what `save_checkpoint` wrote and return the progress; `rank` picks the RNG state (rank 0's for ranks
    the saved run did not have); a checkpoint of another `world_size` or `steps_per_epoch` is refused (the schedule
    and the position in an epoch would shift), as is one of several processes whose steps neither were recorded nor
    follow from its counts (`batches_per_step`: the gradient accumulation steps, to count the steps of its epoch)."""
    try:
        progress = read_record(Progress, folder / STATE_FILE, "checkpoint progress record")
        if progress.world_size not in (None, world_size):  # batches per epoch and the schedule depend on the count
            raise InputError(
                f"{folder}: a checkpoint of {progress.world_size} process(es), resumed with {world_size}; resume it "
                "with the same count, or delete the folder to restart the run from scratch"
            )
        recorded = progress.steps_per_epoch  # several processes unrecorded: maybe before the last round was padded
        if recorded is None and world_size > 1 and progress.next_epoch:  # then its finished epochs' steps tell it
            taken = progress.global_step + progress.skipped_steps - progress.next_batch // batches_per_step
            recorded = taken // progress.next_epoch if taken % progress.next_epoch == 0 else None
        if steps_per_epoch is not None and recorded != steps_per_epoch and (recorded is not None or world_size > 1):
            saved = f"of {recorded}" if recorded else "that did not record its"
            raise InputError(
                f"{folder}: a checkpoint {saved} optimizer steps per epoch, resumed with {steps_per_epoch}; delete the "
                "folder to restart the run from scratch"
            )
        load_model(model, str(folder / "model.safetensors"), device=str(next(model.parameters()).device))
        state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        rng = state["rng"][rank if rank < len(state["rng"]) else 0]
        torch.set_rng_state(rng["cpu"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
    except _DAMAGED as error:
        raise InputError(
            f"{folder}: corrupt or incomplete checkpoint ({type(error).__name__}: {first_line(error)}); "
            "delete the folder to restart the run from scratch"
        ) from error
    return progress
