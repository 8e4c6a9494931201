"""`training.core.cpu_dropout`: masks of the asked keep probability, the expectation kept, a seed repeating them, the
swapped model computing what SDPA computes, and a run on the CPU using it while its saved model folder knows nothing
of it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import BertForTokenClassification

from data.documents import Document
from data.loaders import Dataset
from training.config import TrainingConfig
from training.core import cpu_dropout, train_model
from training.core.cpu_dropout import ATTENTION, Dropout, drop, keep_mask, use_cpu_dropout

CPU = torch.device("cpu")


def test_a_mask_keeps_the_asked_share() -> None:
    mask, kept = keep_mask(torch.Size((1000, 1000)), 0.9, CPU)
    assert kept == 58982 / 65536
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert abs(mask.float().mean().item() - kept) < 0.002  # 3 standard deviations: 0.0009
    rows, columns = mask.float().mean(1), mask.float().mean(0)  # no lane of the 16-bit view is biased
    assert abs(columns[0::4].mean().item() - kept) < 0.003 and abs(columns[3::4].mean().item() - kept) < 0.003
    assert rows.min() > 0.8


def test_drop_scales_the_kept_values_and_repeats_under_a_seed() -> None:
    values = torch.rand(64, 128, requires_grad=True)
    torch.manual_seed(3)
    dropped = drop(values, 0.25)
    kept = dropped != 0
    assert 0.7 < kept.float().mean().item() < 0.8
    scale = 65536 / round(0.75 * 65536)
    assert torch.allclose(dropped[kept], values[kept] * scale)
    dropped.sum().backward()
    assert torch.allclose(values.grad, kept.float() * scale)  # type: ignore[arg-type]
    torch.manual_seed(3)
    assert torch.equal(drop(values, 0.25), dropped)
    assert drop(values, 0.0) is values
    assert not drop(values, 1.0).any()
    assert torch.equal(drop(values, 1e-9), values)  # a keep probability that rounds to 1


def test_the_layer_drops_only_in_training() -> None:
    layer = Dropout(0.5)
    values = torch.ones(100, 100)
    assert layer.eval()(values) is values
    assert 0.4 < (layer.train()(values) == 0).float().mean().item() < 0.6
    assert repr(layer) == "Dropout(p=0.5)"


@pytest.fixture
def always(monkeypatch: pytest.MonkeyPatch) -> None:
    """The swap whether or not this CPU measures `drop` faster than torch's dropout."""
    monkeypatch.setattr(cpu_dropout, "faster_than_torch", lambda: True)


def dropping_nothing(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in training mode with every dropout probability so small that the keep probability rounds to 1: the
    swapped paths run and drop nothing."""
    for module in model.modules():
        if isinstance(module, Dropout):
            module.p = 1e-9
        for name in ("dropout", "dropout_prob"):  # attention that keeps its rate as a number (BERT's in transformers 4)
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 1e-9)
    return model.train()


@pytest.mark.usefixtures("always")
def test_a_swapped_model_computes_what_sdpa_computes(
    tiny_tokenizer_and_model: Callable[..., tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluation is the same to the bit; training that drops nothing gives SDPA's logits through the attention
    written out (padding masked). transformers 4 has BERT attend on its own: only the dropout layers are swapped."""
    tokenizer, stock = tiny_tokenizer_and_model()
    _, swapped = tiny_tokenizer_and_model()
    use_cpu_dropout(swapped, CPU)
    registry = getattr(type(swapped), "_supports_attention_backend", False)
    assert swapped.config._attn_implementation == (ATTENTION if registry else "sdpa")
    assert not [m for m in swapped.modules() if type(m) is torch.nn.Dropout and m.p > 0]
    assert sum(isinstance(m, Dropout) for m in swapped.modules()) >= 3
    batch = tokenizer(["Anna lives in Paris", "Bob"], padding=True, return_tensors="pt")
    assert batch["attention_mask"].min() == 0
    dropped: list[int] = []  # the dimensions of each tensor dropped: 4 for the attention's probabilities
    monkeypatch.setattr(cpu_dropout, "drop", lambda values, p: dropped.append(values.dim()) or drop(values, p))
    with torch.no_grad():
        expected = stock.eval()(**batch).logits
        assert torch.equal(swapped.eval()(**batch).logits, expected) and not dropped
        assert torch.allclose(dropping_nothing(swapped)(**batch).logits, expected, atol=1e-5)
    assert dropped.count(4) == (swapped.config.num_hidden_layers if registry else 0) and 3 in dropped


@pytest.mark.parametrize("extra", [{"position_bias": torch.randn(1, 4, 6, 6)}, {}])
def test_the_attention_is_sdpa_s_and_leaves_what_it_cannot_do_to_sdpa(
    extra: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing dropped the written-out attention is SDPA's (a float mask); a relative position bias (T5's), which
    it would not add, sends the call to SDPA itself."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    module.is_causal = False
    query, key, value = (torch.randn(2, 4, 6, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 6, 6).masked_fill(torch.arange(6) >= 4, float("-inf"))
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, dropout=0.0, **extra)
    dropped: list[int] = []
    monkeypatch.setattr(cpu_dropout, "drop", lambda values, p: dropped.append(values.dim()) or drop(values, p))
    ours, _ = cpu_dropout._attention(module, query, key, value, mask, dropout=1e-9, **extra)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert dropped == ([] if extra else [4])  # written out, except where it would leave the bias out


@pytest.mark.usefixtures("always")
def test_other_devices_keep_torch_s_dropout(tiny_tokenizer_and_model: Callable[..., tuple]) -> None:
    _, model = tiny_tokenizer_and_model()
    use_cpu_dropout(model, torch.device("cuda"))
    assert model.config._attn_implementation == "sdpa"
    assert not any(isinstance(m, Dropout) for m in model.modules())


def test_a_cpu_run_drops_this_way_where_faster_and_saves_a_plain_model(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = tiny_config.with_values({"training.num_epochs": 1})
    train_model(config, Dataset({"train": ner_documents[:16], "validation": ner_documents[-4:]}), tmp_path / "run")
    log = (tmp_path / "run" / "train.log").read_text()
    faster = cpu_dropout.faster_than_torch()
    registry = getattr(BertForTokenClassification, "_supports_attention_backend", False)  # transformers 5
    swapped = re.search(r"optimizer steps in (fp32|bf16); dropout: \d+ dropout layers( and the attention)? draw", log)
    assert bool(swapped) == faster
    assert bool(swapped and swapped[2]) == (faster and registry)
    saved = (tmp_path / "run" / "model" / "config.json").read_text()
    assert ATTENTION not in saved and json.loads(saved)["attention_probs_dropout_prob"] > 0


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_the_dropped_share_matches_torch_s(p: float) -> None:
    values = torch.ones(400, 400)
    ours = (drop(values, p) == 0).float().mean().item()
    torch_s = (torch.nn.functional.dropout(values, p) == 0).float().mean().item()
    assert abs(ours - torch_s) < 0.01
