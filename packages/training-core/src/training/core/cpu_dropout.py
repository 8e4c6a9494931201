"""Dropout for training on a CPU. torch's `bernoulli_` draws every mask element on its own: a third of a MiniLM step in
bf16 on a 2-core CPU, most of it the attention probabilities' mask (batch x heads x length x length). Here four mask
elements come from each 64-bit random integer (16 bits each: a keep probability exact to 1/65536, the kept values
scaled by its inverse): a MiniLM bf16 step ran 1.45x as fast (docs/benchmarks.md, "Dropout on a CPU"). The masks come
from torch's generator, so a seed repeats a run; evaluation and prediction, which drop nothing, are untouched. GPUs
keep torch's own dropout, fused into their kernels."""

from __future__ import annotations

import logging
from typing import Any

import torch

ATTENTION = "training_cpu_dropout"  # the name the attention below is registered under with transformers
_log = logging.getLogger("training.core")


def keep_mask(shape: torch.Size, keep: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A random mask of `shape`, True with probability `keep` rounded to 1/65536, and that probability."""
    kept = round(keep * 65536)
    if kept == 65536:  # no int16 is below 32768, which int16 cannot even hold
        return torch.ones(shape, dtype=torch.bool, device=device), 1.0
    count = shape.numel()
    bits = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    return bits.view(torch.int16)[:count].view(shape) < kept - 32768, kept / 65536


def drop(values: torch.Tensor, p: float) -> torch.Tensor:
    """`values` with each element zeroed with probability `p` and the others scaled to keep the expectation."""
    if p <= 0:
        return values
    mask, kept = keep_mask(values.shape, 1 - p, values.device)
    return torch.where(mask, values * (1 / kept), 0) if kept else torch.zeros_like(values)


class Dropout(torch.nn.Module):
    """`torch.nn.Dropout` drawing its masks as `drop` does."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return drop(values, self.p) if self.training else values

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_cpu_dropout(model: torch.nn.Module, device: torch.device) -> None:
    """On a CPU, swap `model`'s dropout layers for `Dropout` and its SDPA attention for one dropping its
    probabilities the same way (where the model takes attention functions from transformers' registry)."""
    if device.type != "cpu":
        return
    layers = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is torch.nn.Dropout and child.p > 0:
                setattr(parent, name, Dropout(child.p))
                layers += 1
    sdpa = getattr(getattr(model, "config", None), "_attn_implementation", None) == "sdpa"
    attention = sdpa and _swap_attention(model)
    if layers or attention:
        also = " and the attention's" if attention else ""
        _log.info("dropout on the CPU: %d dropout layers%s draw 4 mask elements per random number", layers, also)


def _swap_attention(model: torch.nn.Module) -> bool:
    """Whether `model` now attends through `_attention` (transformers too old, or a model with attention of its own:
    it keeps SDPA)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

        AttentionInterface.register(ATTENTION, _attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
        model.set_attn_implementation(ATTENTION)  # type: ignore[operator]
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return False
    return True


def _attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA's attention, its probabilities dropped as `drop` drops; SDPA itself where nothing is dropped, and for
    causal or grouped-query attention."""
    if dropout == 0 or kwargs.get("is_causal") or getattr(module, "is_causal", False) or key.shape[1] != query.shape[1]:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scores = torch.matmul(query, key.transpose(-1, -2)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is not None and attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    elif attention_mask is not None:
        scores = scores + attention_mask
    return torch.matmul(drop(scores.softmax(-1), dropout), value).transpose(1, 2).contiguous(), None
