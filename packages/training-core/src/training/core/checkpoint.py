"""Resumable training state: weights, optimizer, scheduler, RNG and progress, saved as one atomic folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from training.common.atomic import atomic_directory, atomic_write_json
from training.common.errors import InputError

STATE_FILE = "trainer_state.json"


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    progress: dict[str, Any],
) -> None:
    """Write the whole state into a temporary folder and swap it in, so a crash leaves the previous one."""
    with atomic_directory(folder) as staging:
        save_model(model, str(staging / "model.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "cpu_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            staging / "optimizer.pt",
        )
        atomic_write_json(staging / STATE_FILE, progress)


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
) -> dict[str, Any]:
    """Restore everything `save_checkpoint` wrote and return the progress record."""
    try:
        progress = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        load_model(model, str(folder / "model.safetensors"), device=str(next(model.parameters()).device))
        state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["cpu_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{folder}: corrupt or incomplete checkpoint ({type(error).__name__}: {error}); "
            "delete the folder to restart the run from scratch"
        ) from error
    return progress
