"""Padding-free batches: windows packed into rows give the loss and gradients of padded batches, never see each
other, train as well, and a backbone that cannot pack is refused in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import (
    BertForTokenClassification,
    ModernBertConfig,
    ModernBertForTokenClassification,
    RobertaConfig,
    RobertaForTokenClassification,
    RoFormerConfig,
    RoFormerForTokenClassification,
)

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset
from training.common.errors import ConfigError
from training.config import TrainingConfig
from training.core import train_model
from training.core.batching import pack_rows
from training.core.callbacks import Callback, TrainerState
from training.core.features import Collator, encode_documents
from training.core.optimization import summed_loss
from training.core.packing import PackedCollator, packing_problem, training_collator
from training.core.windowing import Window

ENTITY_TYPES = ("PER", "ORG", "LOC")
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


class Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, state: TrainerState) -> None:
        self.losses.append(state.loss)


def windows_of(tokenizer, documents: tuple[Document, ...], count: int) -> list[Window]:
    """The first `count` windows of the documents, of mixed lengths."""
    encoded = encode_documents(documents, tokenizer, iob2_tag_names(ENTITY_TYPES), max_length=64, stride=8)
    return list(encoded.windows[:count])


def logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's logits for a collated batch: every key but the labels is a model input."""
    return model(**{key: value for key, value in batch.items() if key != "labels"}).logits


def loss_and_gradients(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, dict]:
    model.zero_grad()
    loss = summed_loss(logits(model, batch), batch["labels"])
    loss.backward()
    return float(loss.detach()), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_rows_are_packed_first_fit_decreasing_within_the_capacity() -> None:
    lengths = [5, 3, 7, 2, 6, 12]
    rows = pack_rows(lengths, 10)
    # 12 is over the capacity: a row alone; then 7, 6, 5 open rows, 3 joins 7's and 2 joins 6's.
    assert rows == [[5], [2, 1], [4, 3], [0]]
    assert sorted(index for row in rows for index in row) == list(range(len(lengths)))
    assert pack_rows([4, 4, 4], 8) == [[0, 1], [2]]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_and_padded_batches_give_the_same_summed_loss_and_gradients(
    attention: str, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    tokenizer, model = tiny_tokenizer_and_model()
    model.set_attn_implementation(attention)
    model.eval()  # no dropout: both layouts must compute the same function
    windows = windows_of(tokenizer, ner_documents, 12)
    padded = Collator(tokenizer.pad_token_id)
    packed_batch = PackedCollator.for_model(model, padded, capacity=64)(windows)
    padded_batch = padded(windows)
    assert packed_batch["input_ids"].shape[0] < len(windows)  # several windows share a row
    assert packed_batch["attention_mask"].dtype == (torch.float32 if attention == "eager" else torch.bool)

    packed_loss, packed_grads = loss_and_gradients(model, packed_batch)
    padded_loss, padded_grads = loss_and_gradients(model, padded_batch)

    assert packed_loss > 1.0
    assert abs(packed_loss - padded_loss) < 1e-5 * max(1.0, padded_loss)
    assert packed_grads.keys() == padded_grads.keys()
    for name, gradient in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_a_packed_window_never_sees_another(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    tokenizer, model = tiny_tokenizer_and_model()
    model.eval()
    first, second = windows_of(tokenizer, ner_documents, 2)
    changed = Window(
        first.doc_index,
        (first.input_ids[0], tokenizer.unk_token_id, *first.input_ids[2:]),
        first.labels,
        first.word_ids,
    )
    collator = PackedCollator.for_model(model, Collator(tokenizer.pad_token_id), capacity=64)

    def row_logits(windows: list[Window]) -> torch.Tensor:
        batch = collator(windows)
        assert batch["input_ids"].shape[0] == 1  # both windows in one row
        with torch.no_grad():
            return logits(model, batch)[0]

    before, after = row_logits([first, second]), row_logits([changed, second])
    starts, position = {}, 0
    for index in pack_rows([first.length, second.length], 64)[0]:
        starts[index], position = position, position + (first, second)[index].length
    a, b = slice(starts[0], starts[0] + first.length), slice(starts[1], starts[1] + second.length)
    assert not torch.allclose(before[a], after[a])  # the change reaches window A
    torch.testing.assert_close(before[b], after[b], rtol=0, atol=1e-6)  # and not window B


def test_roberta_positions_start_after_its_padding_id(tiny_tokenizer_and_model: Callable[..., tuple]) -> None:
    """RoBERTa numbers positions from padding_idx + 1: packing uses that offset; positions from 0 would change the
    logits, which is what the probe of `packing_problem` looks for."""
    tokenizer, _ = tiny_tokenizer_and_model()
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), pad_token_id=1, max_position_embeddings=130, **SMALL)
    model = RobertaForTokenClassification(config).eval()
    assert packing_problem(model, 32) is None
    windows = [
        Window(0, (0, 5, 6, 7, 2), (-100, 1, 0, 0, -100), (None, 0, 1, 2, None)),
        Window(1, (0, 8, 2), (-100, 3, -100), (None, 0, None)),
    ]
    collator = PackedCollator.for_model(model, Collator(1), capacity=32)
    batch = collator(windows)
    assert batch["position_ids"][0].tolist() == [2, 3, 4, 5, 6, 2, 3, 4]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([w.input_ids])).logits[0] for w in windows])
        packed = logits(model, batch)[0]
        batch["position_ids"] -= 2
        from_zero = logits(model, batch)[0]
    torch.testing.assert_close(packed, alone, rtol=0, atol=1e-5)
    assert not torch.allclose(from_zero, alone, atol=1e-3)


def test_local_attention_packs_only_where_a_full_window_fits_its_span() -> None:
    """ModernBERT's local layers see 8 tokens each side; a prepared mask turns them global. A window of `capacity`
    tokens is what packed rows hold at most: it must fit that span, so 9 tokens pack and 10 do not."""
    torch.manual_seed(0)
    specials = {"pad_token_id": 0, "bos_token_id": 1, "cls_token_id": 1, "eos_token_id": 2, "sep_token_id": 2}
    config = ModernBertConfig(
        vocab_size=100, local_attention=16, global_attn_every_n_layers=2, num_labels=3, **specials, **SMALL
    )
    model = ModernBertForTokenClassification(config).eval()
    assert packing_problem(model, 9) is None
    assert "gives packed windows other logits than windows alone" in packing_problem(model, 10)
    window = Window(0, tuple(range(1, 11)), (0,) * 10, (0,) * 10)  # 10 tokens: global packed, local padded
    with torch.no_grad():
        packed = logits(model, PackedCollator.for_model(model, Collator(0), capacity=10)([window]))
        padded = logits(model, Collator(0)([window]))
    assert not torch.allclose(packed, padded, atol=1e-4)


def test_a_backbone_without_position_ids_cannot_pack(tiny_tokenizer_and_model: Callable[..., tuple]) -> None:
    tokenizer, _ = tiny_tokenizer_and_model()
    config = RoFormerConfig(vocab_size=len(tokenizer), embedding_size=64, num_labels=7, **SMALL)
    model = RoFormerForTokenClassification(config)
    padded = Collator(tokenizer.pad_token_id)
    assert packing_problem(model, 64) == "roformer (RoFormerForTokenClassification) takes no position_ids"
    with pytest.raises(ConfigError, match=r"^training.packing: true, but roformer .* takes no position_ids; set"):
        training_collator(model, padded, 64, True)
    assert training_collator(model, padded, 64, "auto") is padded
    assert training_collator(model, padded, 64, False) is padded


def test_auto_packs_a_batch_only_where_that_is_cheaper_than_padding(
    tiny_tokenizer_and_model: Callable[..., tuple],
) -> None:
    _, model = tiny_tokenizer_and_model()
    collator = training_collator(model, Collator(0), 64, "auto")
    assert isinstance(collator, PackedCollator) and isinstance(model, BertForTokenClassification)

    def window(length: int) -> Window:
        return Window(0, (5,) * length, (0,) * length, (0,) * length)

    alike = collator([window(30), window(30), window(29)])  # padding wastes 1 token; packing would not help
    assert alike["attention_mask"].ndim == 2 and "position_ids" not in alike
    mixed = collator([window(60), *[window(8)] * 7])  # padded to 60: 480 tokens; packed: 2 rows of 60
    assert mixed["attention_mask"].ndim == 4 and mixed["input_ids"].shape == (2, 60)


@pytest.mark.slow
def test_training_with_packing_learns_as_padded_training_does(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    dataset = Dataset({"train": ner_documents[:32], "validation": ner_documents[32:]}, ENTITY_TYPES)
    base = tiny_config.with_values(
        {
            "training.num_epochs": 4,
            "training.learning_rate": 1e-3,
            "training.group_by_length": False,
            "model.dropout": 0.0,
        }
    )
    curves = {}
    for packing in (True, False):
        losses = Losses()
        train_model(
            base.with_values({"training.packing": packing}), dataset, tmp_path / str(packing), callbacks=[losses]
        )
        curves[packing] = losses.losses
    packed, padded = curves[True], curves[False]
    assert len(packed) == len(padded) == 16
    assert sum(packed[-4:]) < 0.8 * sum(packed[:4])  # the loss falls
    for one, other in zip(packed, padded, strict=True):  # step by step, as padded training
        assert one == pytest.approx(other, rel=1e-3)
