"""Dropout for training on a CPU. torch's `bernoulli_` draws every mask element on its own: a third of a MiniLM step in
bf16 on a 2-core CPU, most of it the attention probabilities' mask (batch x heads x length x length). Here four mask
elements come from each 64-bit random integer (16 bits each: a keep probability exact to 1/65536, the kept values
scaled by its inverse): a MiniLM bf16 step ran 1.45x as fast (docs/benchmarks.md, "Dropout on a CPU"). The masks come
from torch's generator, so a seed repeats a run; evaluation and prediction, which drop nothing, are untouched. GPUs
keep torch's own dropout, fused into their kernels."""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch

from training.core.cpu_measures import fastest_seconds, measured

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


def use_cpu_dropout(model: torch.nn.Module, device: torch.device) -> str:
    """On a CPU where `drop` measures faster than torch's dropout, swap `model`'s dropout layers for `Dropout` and its
    SDPA attention for one dropping its probabilities the same way (where the model takes attention functions from
    transformers' registry); returns what was swapped, for the run's log ("" for nothing)."""
    if device.type != "cpu" or not faster_than_torch():
        return ""
    layers = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is torch.nn.Dropout and child.p > 0:
                setattr(parent, name, Dropout(child.p))
                layers += 1
    attention = _swap_attention(model)
    if not (layers or attention):
        return ""
    also = " and the attention" if attention else ""
    return f"dropout: {layers} dropout layers{also} draw 4 mask elements per random number"


@functools.cache
def faster_than_torch() -> bool:
    """Whether `drop` masks an attention layer's probabilities (8 x 12 x 128 x 128) at least 1.2x as fast as torch's
    dropout on this CPU, at torch's thread count: measured once per machine (`cpu_measures`; about 0.1 s). torch
    draws its masks with MKL's parallel generator on Intel CPUs, one element at a time elsewhere; `drop` on one
    thread."""
    speedup = measured("dropout drawn 4 per random number over torch's, an attention mask", _speedup)
    _log.debug("dropout on the CPU: masks drawn 4 per random number take 1/%.2f of torch's time here", speedup)
    return speedup >= 1.2


def _speedup() -> float:
    """`faster_than_torch`'s ratio measured now."""
    probabilities = torch.rand(8, 12, 128, 128)
    return fastest_seconds(lambda: torch.nn.functional.dropout(probabilities, 0.1)) / fastest_seconds(
        lambda: drop(probabilities, 0.1)
    )


def _swap_attention(model: torch.nn.Module) -> bool:
    """Whether `model` now attends through `_attention`: not where it attends otherwise than through SDPA or takes no
    attention function from transformers' registry (its own attention, or BERT's in transformers 4)."""
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not getattr(model, "_supports_attention_backend", 0):
        return False
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

        AttentionInterface.register(ATTENTION, _attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
        model.set_attn_implementation(ATTENTION)  # type: ignore[operator]
    except (ImportError, AttributeError, KeyError, ValueError):
        return False
    return getattr(config, "_attn_implementation", None) == ATTENTION


# What SDPA's attention takes and ignores (kernels of other attentions read them); any other argument it is given
# (T5's `position_bias`, a `softcap`) sends a call to SDPA itself.
_IGNORED = frozenset(
    {"is_causal", "position_ids", "output_attentions", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"}
)


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
    causal, grouped-query or biased attention."""
    plain = getattr(module, "is_causal", True) is False and not kwargs.get("is_causal")  # SDPA: causal unless said
    plain = plain and key.shape[1] == query.shape[1] and all(v is None or k in _IGNORED for k, v in kwargs.items())
    if not (dropout > 0 and plain):
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
