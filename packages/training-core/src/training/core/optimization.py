"""How a run optimises: precision, AdamW with decoupled weight decay, the schedule, and the exact token-weighted loss
of an accumulation group."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
from transformers import PreTrainedModel, get_scheduler

from training.common.errors import TrainingError
from training.config.schema import OptimizationConfig
from training.core.cpu_dropout import use_cpu_dropout
from training.core.embedding_rows import CheckpointedOptimizer, TrainedRows
from training.core.precision import AUTOCAST_DTYPES, autocast, resolve_precision
from training.core.run_context import RunContext
from training.core.run_metrics import Precision, PrecisionCheck
from training.core.windowing import IGNORE_INDEX, Window

SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
_log = logging.getLogger("training.core")


@dataclass
class NonFiniteSteps:
    """Optimizer steps skipped because their loss was not finite: in all, and in a row (an error at `limit`)."""

    limit: int
    skipped: int = 0
    in_row: int = 0

    def finite(self, loss: float, step: int) -> bool:
        """Whether to apply a step of this loss; counts it when not, and raises after `limit` in a row."""
        if math.isfinite(loss):
            self.in_row = 0
            return True
        self.skipped += 1
        self.in_row += 1
        _log.warning("skipped an optimizer step: the loss is %s (%d in a row)", loss, self.in_row)
        if self.in_row >= self.limit:
            raise TrainingError(
                f"training.max_nonfinite_steps: {self.in_row} optimizer steps in a row had a non-finite loss ({loss}) "
                f"after step {step}; lower training.learning_rate, use training.precision fp32 or bf16, or check the "
                "model's weights"
            )
        return False


@dataclass(frozen=True)
class Optimization:
    """What updates one run's weights; `module` is the model, DDP-wrapped and compiled where asked."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    precision: Precision
    autocast_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    cpu_dropout: str = ""  # what `use_cpu_dropout` swapped
    rows: TrainedRows | None = None  # the word-embedding rows trained in the matrix's place

    @property
    def summary(self) -> str:
        """The precision, how dropout draws its masks where not torch's way, and the embedding rows trained: for the
        run's first log line (logged only once a checkpoint is read, so that a refused resume writes nothing)."""
        rows = self.rows and f"{len(self.rows.rows):,} of {self.rows.embedding.num_embeddings:,} word-embedding rows"
        return "; ".join(part for part in (self.precision, self.cpu_dropout, rows) if part)

    @property
    def checkpointed(self) -> torch.optim.Optimizer | CheckpointedOptimizer:
        """The optimizer as checkpoints hold it (with compact rows, as if it trained the whole matrix)."""
        return self.optimizer if self.rows is None else self.rows.checkpointed(self.optimizer)

    def model_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the model is called with for a batch on the device: all but its labels, token ids read from the
        compact rows where they train."""
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        return self.rows.inputs(inputs) if self.rows is not None else inputs

    def write_model(self) -> None:
        """Bring the model's weights up to date before it is read (evaluated, saved): compact rows written back."""
        if self.rows is not None:
            self.rows.write()

    @classmethod
    def build(
        cls,
        model: PreTrainedModel,
        params: OptimizationConfig,
        ctx: RunContext,
        total_steps: int,
        windows: Sequence[Window] = (),
        padding_id: int = 0,
    ) -> Optimization:
        """`windows` (padded with `padding_id`): what the run trains on, whose tokens' word-embedding rows alone are
        trained where that pays (`TrainedRows`; one process, no fp16 scaler)."""
        resolved = resolve_precision(params.precision, ctx.device)
        if params.precision == "auto" and ctx.device.type == "cpu":  # a CPU's bf16 may be measured
            resolved = ctx.broadcast_object(resolved)  # (`cpu_bf16_speedup`): every rank takes rank 0's choice
        scaler = torch.amp.GradScaler("cuda") if resolved == "fp16" else None
        compact = windows and not ctx.is_distributed and resolved != "fp16"
        rows = TrainedRows.of(model, [window.input_ids for window in windows], padding_id) if compact else None
        adamw = optimizer(model, params, rows)
        # Not compiled: dynamo breaks its graph at `random_`, and inductor fuses torch's own dropout. After the
        # trainer's packing check, which reads the model's attention.
        dropout = "" if params.compile else use_cpu_dropout(model, ctx.device)
        module = model
        if ctx.is_distributed:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            module = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        if params.compile:
            module = torch.compile(module)
        schedule = scheduler(adamw, params, total_steps)
        return cls(module, adamw, schedule, resolved, AUTOCAST_DTYPES[resolved], scaler, dropout, rows)

    def after(self, check: PrecisionCheck | None) -> Optimization:
        """This optimization, in fp32 from now on where `check` switched the run to it (bf16 has no scaler to drop)."""
        return replace(self, precision="fp32", autocast_dtype=None) if check and check.switched else self


def optimizer(
    model: torch.nn.Module, params: OptimizationConfig, rows: TrainedRows | None = None
) -> torch.optim.Optimizer:
    """AdamW (fused where the device has the kernels); biases, norms and vectors get no weight decay. `rows` train in
    their matrix's place."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if rows is not None and parameter is rows.embedding.weight:
            parameter = rows.weight
        if parameter.requires_grad:
            plain = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
            (no_decay if plain else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=params.learning_rate, fused=True)
    except (RuntimeError, TypeError):  # fused kernels missing for this device or dtype
        return torch.optim.AdamW(groups, lr=params.learning_rate)


def scheduler(optimizer: torch.optim.Optimizer, params: OptimizationConfig, total_steps: int) -> Any:
    """The learning-rate schedule over `total_steps` optimizer steps, with linear warmup over the ratio's share of
    them, rounded up as `Trainer` rounds it (a ratio above 0 always warms up)."""
    return get_scheduler(
        SCHEDULES[params.scheduler],
        optimizer,
        num_warmup_steps=math.ceil(params.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )


def labelled_windows(windows: Sequence[Window]) -> tuple[list[Window], list[int]]:
    """The windows holding a labelled token (a word's first sub-token), and how many each holds: a window inside a
    very long word holds none, and so no loss to learn from."""
    counts = [sum(label != IGNORE_INDEX for label in window.labels) for window in windows]
    kept = [index for index, count in enumerate(counts) if count]
    return [windows[index] for index in kept], [counts[index] for index in kept]


def summed_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed (not averaged) over the labelled tokens, in float32: divided by a whole accumulation
    group's token count, it gives the gradient of one large batch whatever the split."""
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )


def backward_group(
    optimization: Optimization, batches: Sequence[dict[str, torch.Tensor]], tokens: float, ctx: RunContext
) -> torch.Tensor:
    """Back-propagate one accumulation group; returns its loss over all ranks as a scalar left on the device.
    `tokens` counts the group's labelled tokens on all ranks; as DDP averages gradients, each rank scales its summed
    loss by world size / tokens. Gradients synchronise on the last batch only."""
    module, scaler = optimization.module, optimization.scaler
    scale = ctx.world_size / tokens
    total = torch.zeros((), device=ctx.device)
    for position, batch in enumerate(batches):
        inputs = {key: value.to(ctx.device, non_blocking=True) for key, value in batch.items()}
        last = position == len(batches) - 1
        sync = contextlib.nullcontext() if last or not ctx.is_distributed else module.no_sync()
        with sync:
            with autocast(ctx.device, optimization.autocast_dtype):
                output = module(**optimization.model_inputs(inputs))
            summed = summed_loss(output.logits, inputs["labels"])
            scaled = summed * scale
            (scaler.scale(scaled) if scaler else scaled).backward()
        total += summed.detach()
    if ctx.is_distributed:  # a non-finite loss on one rank makes every rank skip the step
        dist.all_reduce(total)
    return total / tokens


def optimizer_step(optimization: Optimization, loss: torch.Tensor, max_grad_norm: float | None) -> None:
    """Clip, step the optimizer (through the scaler for fp16) unless `loss` is not finite, and clear the gradients.

    The fused AdamW skips a non-finite step on the device (its `found_inf` input, which the fp16 scaler feeds the
    same way), so no step waits for the loss; other optimizers read it first. fp16's scaler skips steps whose
    gradients overflow, a non-finite loss among them. The schedule steps once the loss is known to be finite (a step
    the fp16 scaler skips for overflowing gradients with a finite loss still counts, as in `GradScaler`'s own use).
    """
    optimizer, scaler, rows = optimization.optimizer, optimization.scaler, optimization.rows
    skipped: torch.Tensor | float = 1.0
    if scaler:
        scaler.unscale_(optimizer)
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], max_grad_norm)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    elif optimizer.defaults.get("fused"):
        optimizer.found_inf = skipped = (~torch.isfinite(loss)).float()  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]
    elif math.isfinite(float(loss)):
        optimizer.step()
        skipped = 0.0
    if rows is not None:  # no fp16 scaler then
        rows.stepped(optimizer, skipped)
    optimizer.zero_grad(set_to_none=True)
