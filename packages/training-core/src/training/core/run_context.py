"""The run context every trainer step consults: rank, world size, device and collective operations; built from
torchrun's environment by `create_run_context` (public in `training.execution`), or `RunContext()` for one CPU process.
"""

from __future__ import annotations

import atexit
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field

from training.common.cores import usable_cores
from training.common.errors import ConfigError, expect_instance
from training.config.validation import validate


@dataclass
class RunContext:
    """Where this process stands in a run: rank, world size, device, and the collective operations it needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    _owns_group: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files and prints."""
        return self.rank == 0

    def rank_seed(self, seed: int) -> int:
        """This rank's seed of a run seeded `seed`: `seed` on rank 0, else one drawn from `seed:rank` (`seed + rank`
        would be another run's rank 0: seed 0's rank 1 is seed 1's)."""
        return seed if self.rank == 0 else random.Random(f"{seed}:{self.rank}").getrandbits(32)

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.is_distributed:
            dist.barrier()

    def all_gather_object(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order (a one-element list in a single process)."""
        if not self.is_distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of `values` over ranks."""
        if not self.is_distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device if self.backend == "nccl" else "cpu")
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def any_rank_later(self, flag: bool) -> Readback:
        """Whether `flag` holds on any rank (its readback's value above 0): the reduction is queued, and reading it
        waits for it alone (on GPUs not for the work queued after it, as a step's `all_reduce_sum` would)."""
        tensor = torch.full((1,), float(flag), device=self.device if self.backend == "nccl" else "cpu")  # no copy
        if self.is_distributed:
            dist.all_reduce(tensor)  # queued on the device's stream under nccl
        return Readback(tensor)

    def broadcast_object(self, value: Any, src: int = 0) -> Any:
        """`value` from rank `src` on every rank."""
        if not self.is_distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def close(self) -> None:
        """Tear down the process group this context created (idempotent)."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Readback:
    """A value (a step's loss, a vote) on its way to the host: `value` waits for that copy alone, not later work."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.host = tensor.detach().to("cpu", non_blocking=True)
        self.ready = torch.cuda.Event() if tensor.is_cuda else None
        if self.ready is not None:
            self.ready.record(torch.cuda.current_stream(tensor.device))

    def value(self) -> float:
        if self.ready is not None:
            self.ready.synchronize()
        return float(self.host)


class StopVote:
    """A stop that one rank's callback asks for, agreed by every rank (the others would wait at the next collective
    for good): `agree` at once (a collective); `after_step` without waiting for the device (the next step is queued):
    each rank votes now, and every rank stops at the next step, once the vote is read."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx, self.asked, self.vote = ctx, False, Readback(torch.zeros(()))

    def agree(self, should_stop: bool) -> bool:
        return self.ctx.all_reduce_sum([float(should_stop or self.asked)])[0] > 0

    def after_step(self, should_stop: bool) -> bool:
        if not self.ctx.is_distributed:
            return should_stop
        self.asked = self.asked or should_stop
        agreed, self.vote = self.vote.value() > 0, self.ctx.any_rank_later(self.asked)
        return agreed


class DistributedSettings(BaseModel):
    """What `create_run_context`'s `distributed_config` may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["gloo", "nccl"] | None = None
    device: Literal["cpu", "cuda"] | None = None
    timeout_s: float = Field(default=1800, gt=0, le=7 * 24 * 3600)  # a week: a larger one overflows torch's clock


def create_run_context(
    distributed_config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> RunContext:
    """A context from torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), else one process;
    `distributed_config` may set `backend` (default gloo on CPU, nccl on GPUs), `device` ("cpu"/"cuda"), `timeout_s`."""
    given = {} if distributed_config is None else distributed_config
    expect_instance(given, Mapping, "distributed_config", "a mapping such as {'backend': 'gloo'}", ConfigError)
    settings = validate(DistributedSettings, dict(given), "distributed_config")
    env = os.environ if environ is None else environ
    world_size = _int_variable(env, "WORLD_SIZE", 1)
    wants_cuda = (settings.device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if wants_cuda and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use device 'cpu'")
    if world_size <= 1:  # one process: its LOCAL_RANK's GPU if set, else the current CUDA device
        if not wants_cuda:
            return RunContext(device=torch.device("cpu"))
        local = _int_variable(env, "LOCAL_RANK", 0) if env.get("LOCAL_RANK") else None
        return RunContext(device=torch.device("cuda", local) if local is not None else torch.device("cuda"))
    if "RANK" not in env:
        raise ConfigError(f"WORLD_SIZE={world_size} is set but RANK is not; launch with torchrun, which sets both")
    rank = _int_variable(env, "RANK", 0)
    local_rank = _int_variable(env, "LOCAL_RANK", rank)
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} is outside the world of WORLD_SIZE={world_size} processes")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in env:
            raise ConfigError(f"{name} is not set for a {world_size}-process run; launch with torchrun")
    backend = settings.backend or ("nccl" if wants_cuda else "gloo")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError("backend 'nccl' needs CUDA GPUs and none is available; use backend 'gloo' on CPU")
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        timeout = timedelta(seconds=settings.timeout_s)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timeout)
        atexit.unregister(_end_process_group)  # once, however many groups this process starts and ends
        atexit.register(_end_process_group)
    return RunContext(rank, world_size, local_rank, device, backend, owns)


def _end_process_group() -> None:
    """End a group still open as the process exits (`train_model` called without a context keeps its group for the
    next call): torn down later, in the interpreter's finalization, gloo's threads aborted a rank one time in three."""
    if dist.is_initialized():
        dist.destroy_process_group()


def process_slots() -> tuple[int, str]:
    """How many processes of one run this machine holds, and what each takes, as `create_run_context` places them:
    one CUDA GPU each (nccl) where there is any, else one CPU core each (gloo)."""
    if torch.cuda.is_available():
        return torch.cuda.device_count(), "CUDA GPU"
    return usable_cores(), "CPU core"


def _int_variable(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} must be an integer") from None
