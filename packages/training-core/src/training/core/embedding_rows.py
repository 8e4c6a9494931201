"""The word-embedding rows a run's training split uses, trained as a compact parameter of their own.

A row of the word embedding gets a gradient only from the tokens in a batch, so the rows of tokens that never occur
in the training split never get one: under AdamW their moments stay zero and each step only decays them by
`1 - lr * weight_decay`. Training the whole matrix still costs, at every step, a dense gradient of every row and a
pass of the optimizer and of gradient clipping over it (MiniLM: 30,522 rows; XLM-R: 250,002, most of its weights).
`TrainedRows` trains the rows that occur as a compact parameter, which the model reads through `inputs_embeds`, and
folds the decay of the others into the matrix whenever the model is read (evaluation, saving): the same updates, up
to the order of floating-point sums. Checkpoints keep the optimizer state of the whole matrix (zero for the rows
that never occur), so a run resumes whether or not its rows are compact.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from training.common.errors import first_line
from training.core.features import evaluation_mode

_log = logging.getLogger("training.core")
_MIN_UNUSED = 0.1  # below this share of rows that never occur, the whole matrix is trained
_PROBE_TOKENS = 64  # of the first window, to compare the two ways of reading it
_MOMENTS = ("exp_avg", "exp_avg_sq")  # AdamW's per-element state


@dataclass
class TrainedRows:
    """`weight`: the rows `rows` (vocabulary ids, sorted) of `embedding`'s matrix, trained in its place; `index` maps
    a vocabulary id to its compact row, `padding_idx` is the padding row's; `decay`: what the other rows' weight
    decay multiplied them by since the matrix was last written."""

    embedding: torch.nn.Embedding
    rows: torch.Tensor
    index: torch.Tensor
    padding_idx: int | None
    weight: torch.nn.Parameter
    decay: torch.Tensor

    @classmethod
    def of(cls, model: PreTrainedModel, windows: Sequence[Sequence[int]], padding_id: int) -> TrainedRows | None:
        """The compact rows for training `model` on `windows` (token ids) padded with `padding_id`, or None where they
        would not pay or not be the same training: an input embedding other than a plain, trainable `nn.Embedding`
        (no `max_norm`, sparse or frequency-scaled gradients), one tied to an output layer, a model that takes no
        `inputs_embeds` or whose output from the first window differs when given it so."""
        try:
            embedding, output = model.get_input_embeddings(), model.get_output_embeddings()
        except NotImplementedError:  # a model that does not say which its embeddings are
            return None
        if "inputs_embeds" not in inspect.signature(model.forward).parameters:
            return None
        if type(embedding) is not torch.nn.Embedding or not embedding.weight.requires_grad:
            return None
        if embedding.max_norm is not None or embedding.scale_grad_by_freq or embedding.sparse:
            return None
        if output is not None and output.weight is embedding.weight:
            return None
        vocabulary, device = embedding.num_embeddings, embedding.weight.device
        used = np.zeros(vocabulary + 1, dtype=bool)  # the last: any id out of the model's range (its own error)
        used[min(padding_id, vocabulary)] = True
        for ids in windows:
            used[np.minimum(ids, vocabulary)] = True
        rows = torch.from_numpy(np.flatnonzero(used[:vocabulary]))
        if used[vocabulary] or not windows or len(rows) > (1 - _MIN_UNUSED) * vocabulary:
            return None
        index = torch.full((vocabulary,), -1, dtype=torch.long)
        index[rows] = torch.arange(len(rows))
        padding = embedding.padding_idx  # its row gets no gradient: nor may its compact row
        compact_padding = int(index[padding]) if padding is not None and index[padding] >= 0 else None
        rows = rows.to(device)
        weight = torch.nn.Parameter(embedding.weight.detach()[rows].clone())
        decay = torch.ones((), dtype=torch.float64, device=device)
        trained = cls(embedding, rows, index.to(device), compact_padding, weight, decay)
        problem = trained._probe(model, torch.tensor(windows[0][:_PROBE_TOKENS]))
        if problem:
            _log.info("the whole word-embedding matrix trains: %s", problem)
            return None
        embedding.weight.requires_grad_(False)
        return trained

    def inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Model inputs with their token ids read from the compact rows (as `inputs_embeds`)."""
        embeds = self._embed(inputs["input_ids"])
        return {**{key: value for key, value in inputs.items() if key != "input_ids"}, "inputs_embeds": embeds}

    def stepped(self, optimizer: torch.optim.Optimizer, skipped: torch.Tensor | float) -> None:
        """Count one optimizer step's weight decay of the rows outside (none where `skipped`, 0 or 1, is 1: a tensor
        where the fused optimizer decided on the device)."""
        group = next(group for group in optimizer.param_groups if any(p is self.weight for p in group["params"]))
        rate = float(group["lr"]) * float(group["weight_decay"])
        if rate:
            taken = 1.0 - torch.as_tensor(skipped, dtype=torch.float64)  # in float64, as the decay builds up
            self.decay *= 1.0 - rate * taken

    @torch.no_grad()
    def write(self) -> None:
        """Bring the model's matrix up to date: the other rows decayed, the trained rows copied in."""
        matrix = self.embedding.weight
        if float(self.decay) != 1.0:
            matrix.mul_(self.decay.to(matrix.dtype))
            self.decay.fill_(1.0)
        matrix.index_copy_(0, self.rows, self.weight.detach().to(matrix.dtype))

    @torch.no_grad()
    def read(self) -> None:
        """Take the trained rows from the model's matrix (restored from a checkpoint)."""
        self.weight.copy_(self.embedding.weight[self.rows])
        self.decay.fill_(1.0)

    def checkpointed(self, optimizer: torch.optim.Optimizer) -> CheckpointedOptimizer:
        """`optimizer` as a checkpoint saves and restores it."""
        return CheckpointedOptimizer(optimizer, self)

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(self.index[input_ids], self.weight, padding_idx=self.padding_idx)

    @torch.no_grad()
    def _probe(self, model: PreTrainedModel, ids: torch.Tensor) -> str | None:
        """Why the model's output from `ids` differs from that of their compact rows (in evaluation mode), or None."""
        input_ids = ids.to(self.weight.device).unsqueeze(0)
        try:
            with evaluation_mode(model):
                expected = model(input_ids=input_ids).logits
                given = model(inputs_embeds=self._embed(input_ids)).logits
        except (RuntimeError, ValueError, TypeError) as error:
            return f"the model rejects inputs_embeds ({type(error).__name__}: {first_line(error)})"
        if not torch.allclose(expected, given, rtol=1e-4, atol=1e-5):
            return f"its output differs from inputs_embeds by {float((expected - given).abs().max()):.2g}"
        return None


@dataclass(frozen=True)
class CheckpointedOptimizer:
    """An optimizer that trains compact rows, with the state it would have training the whole matrix (zero moments
    for the other rows), so that a checkpoint is the same whether the rows were compact or not."""

    optimizer: torch.optim.Optimizer
    rows: TrainedRows

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, the compact rows' moments spread over the whole matrix (on the CPU, where
        `torch.save` takes them: no second copy of the matrix's moments on a GPU)."""
        shape, rows = self.rows.embedding.weight.shape, self.rows.rows.cpu()

        def whole(name: str, compact: torch.Tensor) -> torch.Tensor:
            return compact.new_zeros(shape, device="cpu").index_copy_(0, rows, compact.cpu())

        return self._moments_mapped(self.optimizer.state_dict(), whole)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The optimizer's state, and the trained rows from the model's matrix (`load_checkpoint` restores the
        weights first). A ValueError where the moments are not the matrix's shape."""
        shape = self.rows.embedding.weight.shape

        def compact(name: str, whole: torch.Tensor) -> torch.Tensor:
            if whole.shape != shape:
                raise ValueError(f"the word embedding's {name} has shape {tuple(whole.shape)}, not {tuple(shape)}")
            return whole[self.rows.rows.to(whole.device)]

        self.optimizer.load_state_dict(self._moments_mapped(state, compact))
        self.rows.read()

    def _moments_mapped(self, state: dict[str, Any], convert: Callable[[str, torch.Tensor], torch.Tensor]) -> dict:
        """`state` (an optimizer's state dict) with the compact rows' moments converted by `convert(name, moment)`."""
        moments = dict(state["state"].get(self._position, {}))
        for name in filter(moments.__contains__, _MOMENTS):
            moments[name] = convert(name, moments[name])
        return {**state, "state": {**state["state"], self._position: moments}} if moments else state

    @property
    def _position(self) -> int:
        """The compact rows' number among the optimizer's parameters (the key of their state)."""
        params = [parameter for group in self.optimizer.param_groups for parameter in group["params"]]
        return next(number for number, parameter in enumerate(params) if parameter is self.rows.weight)
