"""Padding-free training batches: a batch's windows packed into few rows, kept apart by position ids that restart
per window and a block-diagonal 4D attention mask (transformers detects packing from position ids only for causal
masks). Whether a backbone honours both is probed once (`packing_problem`), not assumed from its name.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedModel

from training.common.errors import ConfigError, first_line
from training.core.batching import pack_rows
from training.core.features import Collator, evaluation_mode
from training.core.positions import position_offset
from training.core.windowing import IGNORE_INDEX, Window, round_up

_log = logging.getLogger("training.core")
_ATTENTION = ("eager", "sdpa")  # implementations that apply a prepared 4D mask as given
_PROBE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class PackedCollator:
    """Packs a batch's windows into rows of at most `capacity` tokens (`pack_rows`): input ids, labels, position ids
    from the backbone's first position, and a `[rows, 1, width, width]` mask in which a token sees only its own
    window (padding sees padding, so no mask row is empty). With `only_when_cheaper`, a batch is packed only where
    its estimated cost (tokens, plus attention growing with width) is below that of padding it.
    """

    collator: Collator
    capacity: int
    _: KW_ONLY
    position_offset: int = 0
    additive_mask: bool = False
    attention_width: float = float("inf")
    only_when_cheaper: bool = False

    @classmethod
    def for_model(cls, model: PreTrainedModel, collator: Collator, capacity: int, **options: bool) -> PackedCollator:
        """The packing that `model` reads: its first position id, its attention's mask form and cost."""
        config = model.config
        hidden, intermediate = getattr(config, "hidden_size", None), getattr(config, "intermediate_size", None)
        width = 2 * hidden + intermediate if isinstance(hidden, int) and isinstance(intermediate, int) else float("inf")
        return cls(
            collator,
            capacity,
            position_offset=position_offset(config),
            additive_mask=config._attn_implementation == "eager",
            attention_width=width,
            **options,
        )

    def __call__(self, windows: Sequence[Window]) -> dict[str, torch.Tensor]:
        lengths = [window.length for window in windows]
        rows = pack_rows(lengths, self.capacity)
        multiple = self.collator.pad_to_multiple_of
        width = round_up(max(sum(lengths[index] for index in row) for row in rows), multiple)
        padded_cost = self._cost(len(windows), round_up(max(lengths), multiple))
        if self.only_when_cheaper and self._cost(len(rows), width) >= padded_cost:
            return self.collator(windows)
        input_ids = np.full((len(rows), width), self.collator.pad_token_id, dtype=np.int64)
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        positions = np.full((len(rows), width), self.position_offset, dtype=np.int64)
        segments = np.zeros((len(rows), width), dtype=np.int64)  # 0: padding, k: the row's k-th window
        for row, indices in enumerate(rows):
            start = 0
            for segment, index in enumerate(indices, start=1):
                window, end = windows[index], start + lengths[index]
                input_ids[row, start:end] = window.input_ids
                labels[row, start:end] = window.labels
                positions[row, start:end] = np.arange(self.position_offset, self.position_offset + lengths[index])
                segments[row, start:end] = segment
                start = end
        kept = torch.from_numpy(segments)
        mask = kept[:, None, :, None] == kept[:, None, None, :]
        if self.additive_mask:  # eager attention adds its mask to the scores
            mask = torch.zeros(mask.shape).masked_fill_(~mask, torch.finfo(torch.float32).min)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": mask,
            "position_ids": torch.from_numpy(positions),
            "labels": torch.from_numpy(labels),
        }

    def _cost(self, rows: int, width: int) -> float:
        """Work of `rows` rows of `width` tokens: per-token layers, plus attention's share, width / attention_width."""
        return rows * width * (1.0 + width / self.attention_width)


def packing_problem(model: PreTrainedModel, capacity: int) -> str | None:
    """Why `model` cannot train on packed rows of `capacity` tokens, or None: it must take position ids, apply a
    prepared 4D mask, and give the same logits packed as alone to two short windows that share a row (which also
    checks its first position id) and to a window as long as such a row: a prepared mask may change attention only in
    long windows (ModernBERT's local attention, which it turns global)."""
    config = model.config
    name = f"{config.model_type} ({type(model).__name__})"
    if "position_ids" not in inspect.signature(model.forward).parameters:
        return f"{name} takes no position_ids"
    attention = config._attn_implementation
    if attention not in _ATTENTION:
        return f"{name} uses {attention} attention; packed rows need one of {', '.join(_ATTENTION)}"
    pad = config.pad_token_id if isinstance(config.pad_token_id, int) else 0
    size = config.vocab_size if isinstance(getattr(config, "vocab_size", None), int) else 12
    tokens = torch.tensor([token for token in range(1, size) if token != pad])
    # Varied tokens: a repeated few would read alike through any attention span.
    ids = tokens[torch.randint(len(tokens), (capacity + 8,), generator=torch.Generator().manual_seed(0))].tolist()
    long, first, second = (
        Window(0, tuple(part), (0,) * len(part), (None,) * len(part))
        for part in (ids[:capacity], ids[capacity : capacity + 4], ids[capacity + 4 :])
    )
    collator = PackedCollator.for_model(model, Collator(pad), capacity)
    try:
        with evaluation_mode(model), torch.no_grad():
            difference = max(_packed_difference(model, collator, row) for row in ([first, second], [long]))
    except (RuntimeError, ValueError, TypeError) as error:
        return f"{name} rejects packed rows ({type(error).__name__}: {first_line(error)})"
    if difference > _PROBE_TOLERANCE:
        return f"{name} gives packed windows other logits than windows alone (they differ by {difference:.2g})"
    return None


def _packed_difference(model: PreTrainedModel, collator: PackedCollator, windows: Sequence[Window]) -> float:
    """The largest difference between the logits of `windows` packed in one row and theirs alone."""
    device = next(model.parameters()).device
    packed = {key: value.to(device) for key, value in collator(windows).items() if key != "labels"}
    together = model(**packed).logits[0]
    alone = [model(input_ids=torch.tensor([window.input_ids], device=device)).logits[0] for window in windows]
    return float((together - torch.cat(alone)).abs().max())


def training_collator(
    model: PreTrainedModel, collator: Collator, capacity: int, packing: bool | Literal["auto"]
) -> Collator | PackedCollator:
    """The collator for `training.packing`: padded (`false`), packed (`true`; a `ConfigError` for a backbone that
    cannot pack) or, for `auto`, packed where that is cheaper than padding."""
    if packing is False:
        return collator
    problem = packing_problem(model, capacity)
    if problem is not None:
        if packing is True:
            raise ConfigError(f"training.packing: true, but {problem}; set training.packing to auto or false")
        _log.info("training.packing auto: padding batches, as %s", problem)
        return collator
    return PackedCollator.for_model(model, collator, capacity, only_when_cheaper=packing == "auto")
