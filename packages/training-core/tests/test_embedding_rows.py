"""Training only the word-embedding rows the training split uses (`TrainedRows`): the same training as the whole
matrix, checkpoints in the whole matrix's layout, and the whole matrix where compact rows would differ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertForMaskedLM
from transformers.models.bert.modeling_bert import BertEmbeddings

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset
from training.config import TrainingConfig
from training.core import TrainResult, embedding_rows, train_model
from training.core.callbacks import Callback, TrainerState
from training.core.embedding_rows import TrainedRows
from training.core.features import Collator, encode_documents
from training.core.optimization import Optimization, backward_group, optimizer_step
from training.core.run_context import RunContext
from training.core.run_metrics import Evaluation
from training.core.windowing import Window

ENTITY_TYPES = ("PER", "ORG", "LOC")


@pytest.fixture
def fp32_config(tiny_config: TrainingConfig) -> TrainingConfig:
    """Strong weight decay and a high learning rate from the first step (no warm-up: these steps never move the
    schedule), so that rows outside the training split visibly decay."""
    values = {"training.precision": "fp32", "training.weight_decay": 0.5, "training.learning_rate": 1e-2}
    values["training.warmup_ratio"] = 0.0
    return tiny_config.with_values(values)


class Crash(Exception):
    """Stands for a crash in the middle of a run."""


class CrashInSecondEpoch(Callback):
    """Crashes at the second epoch's evaluation, once the first epoch's checkpoint is written."""

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if state.epoch == 1:
            raise Crash


class ScaledInputsEmbeddings(BertEmbeddings):
    """Scales `inputs_embeds` given to it, not the embeddings it looks up (as a backbone's own scaling may)."""

    def forward(self, *args: Any, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return super().forward(*args, inputs_embeds=None if inputs_embeds is None else inputs_embeds * 2, **kwargs)


def windows_of(documents: tuple[Document, ...], tokenizer: Any) -> tuple[Window, ...]:
    return encode_documents(documents, tokenizer, iob2_tag_names(ENTITY_TYPES), 64, 8).windows


def train_steps(optimization: Optimization, batches: list[dict[str, torch.Tensor]]) -> None:
    ctx = RunContext()
    torch.manual_seed(0)  # the same dropout masks in both runs
    for batch in batches:
        tokens = float((batch["labels"] != -100).sum())
        optimizer_step(optimization, backward_group(optimization, [batch], tokens, ctx), 1.0)


def two_runs(
    config: TrainingConfig, build: Callable[..., tuple], documents: tuple[Document, ...]
) -> tuple[torch.nn.Module, Optimization, torch.nn.Module, Optimization, list[dict[str, torch.Tensor]]]:
    """The same model and batches, trained with compact rows and with the whole matrix."""
    tokenizer, compact_model = build()
    _, whole_model = build()
    windows = windows_of(documents[:8], tokenizer)
    batches = [Collator(tokenizer.pad_token_id)(windows[start : start + 4]) for start in range(0, len(windows), 4)]
    compact = Optimization.build(compact_model, config.training, RunContext(), 8, windows, tokenizer.pad_token_id)
    whole = Optimization.build(whole_model, config.training, RunContext(), 8)
    return compact_model, compact, whole_model, whole, batches


def test_compact_rows_train_the_model_as_the_whole_matrix_does(
    fp32_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    compact_model, compact, whole_model, whole, batches = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
    assert compact.rows is not None and whole.rows is None
    matrix = compact_model.get_input_embeddings().weight
    used = compact.rows.rows
    unused = torch.ones(len(matrix), dtype=torch.bool)
    unused[used] = False
    before = matrix.detach().clone()
    assert 0 < len(used) < len(matrix) and f"{len(used):,} of {len(matrix):,} word-embedding rows" in compact.summary

    train_steps(compact, batches * 2)
    train_steps(whole, batches * 2)
    assert torch.equal(matrix, before)  # nothing writes the matrix until the model is read
    compact.write_model()

    assert not torch.allclose(matrix[unused], before[unused])  # the unused rows decayed
    actual = compact_model.state_dict()
    for name, expected in whole_model.state_dict().items():
        torch.testing.assert_close(actual[name], expected, rtol=1e-5, atol=1e-6, msg=name)


def test_a_checkpoint_holds_the_whole_matrix_state_whichever_way_it_trained(
    fp32_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    compact_model, compact, _, whole, batches = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
    train_steps(compact, batches)
    train_steps(whole, batches)
    compact.write_model()
    saved = compact.checkpointed.state_dict()
    expected = whole.optimizer.state_dict()
    assert saved["param_groups"] == expected["param_groups"]
    for number, moments in expected["state"].items():
        for name, value in moments.items():
            torch.testing.assert_close(saved["state"][number][name], value, rtol=1e-5, atol=1e-7)

    # Resumed compact from either layout: the rows and their moments are those of the run that saved it.
    for state in (saved, expected):
        resumed_model, resumed, _, _, _ = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
        resumed_model.load_state_dict(compact_model.state_dict())
        resumed.checkpointed.load_state_dict(state)
        assert resumed.rows is not None and compact.rows is not None
        torch.testing.assert_close(resumed.rows.weight, compact.rows.weight)
        for mine, theirs in zip(resumed.optimizer.state.values(), compact.optimizer.state.values(), strict=True):
            torch.testing.assert_close(mine["exp_avg"], theirs["exp_avg"], rtol=1e-5, atol=1e-7)


def test_the_whole_matrix_trains_where_compact_rows_would_not_be_the_same_training(
    tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    tokenizer, model = tiny_tokenizer_and_model()
    windows = [window.input_ids for window in windows_of(ner_documents[:8], tokenizer)]
    padding = tokenizer.pad_token_id
    assert TrainedRows.of(model, windows, padding) is not None

    _, model = tiny_tokenizer_and_model()  # every row occurs: nothing to save
    assert TrainedRows.of(model, [list(range(len(tokenizer)))], padding) is None

    _, model = tiny_tokenizer_and_model()  # a row id the model does not have: the model's own error, later
    assert TrainedRows.of(model, [[len(tokenizer) + 5]], padding) is None

    _, model = tiny_tokenizer_and_model()  # tied to an output layer, which the compact rows would not update
    masked_lm = BertForMaskedLM(model.config)
    assert masked_lm.get_output_embeddings().weight is masked_lm.get_input_embeddings().weight
    assert TrainedRows.of(masked_lm, windows, padding) is None

    _, model = tiny_tokenizer_and_model()  # a backbone that reads `inputs_embeds` otherwise than its own ids
    scaled = ScaledInputsEmbeddings(model.config)
    scaled.load_state_dict(model.bert.embeddings.state_dict())
    model.bert.embeddings = scaled
    assert TrainedRows.of(model, windows, padding) is None
    assert model.get_input_embeddings().weight.requires_grad  # left as it was


def test_a_skipped_step_does_not_decay_the_other_rows(
    fp32_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    _, compact, _, _, batches = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
    assert compact.rows is not None and compact.optimizer.defaults["fused"]
    ctx, tokens = RunContext(), float((batches[0]["labels"] != -100).sum())
    train_steps(compact, batches[:1])
    decayed = float(compact.rows.decay)
    optimizer_step(compact, backward_group(compact, batches[:1], tokens, ctx) * float("nan"), 1.0)
    assert float(compact.rows.decay) == decayed < 1.0


WHOLE = {"compact": 0.1, "whole": 1.0}  # `_MIN_UNUSED`: 1.0 trains the whole matrix of every run


def run(
    config: TrainingConfig, dataset: Dataset, folder: Path, layout: str, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> TrainResult:
    monkeypatch.setattr(embedding_rows, "_MIN_UNUSED", WHOLE[layout])
    result = train_model(config, dataset, folder, **options)
    lines = (folder / "train.log").read_text(encoding="utf-8").splitlines()
    first = [line for line in lines if " INFO training " in line][-1]  # this run's (a resumed run's log goes on)
    assert ("word-embedding rows" in first) == (layout == "compact")
    return result


def assert_same_training(first: TrainResult, second: TrainResult) -> None:
    assert [(entry.epoch, entry.step) for entry in first.metrics.history] == [
        (entry.epoch, entry.step) for entry in second.metrics.history
    ]
    for mine, theirs in zip(first.metrics.history, second.metrics.history, strict=True):
        assert mine.loss == pytest.approx(theirs.loss, rel=1e-4)
    saved = [load_file(str(result.output_dir / "model" / "model.safetensors")) for result in (first, second)]
    for name, tensor in saved[0].items():
        torch.testing.assert_close(tensor, saved[1][name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"training.eval_steps": 2, "training.gradient_accumulation_steps": 2, "training.keep": "last"},
        {"training.packing": True},
    ],
)
def test_train_model_trains_the_same_with_compact_rows_as_with_the_whole_matrix(
    options: dict[str, Any],
    fp32_config: TrainingConfig,
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = fp32_config.with_values({"training.num_epochs": 2, "training.batch_size": 4, **options})
    dataset = Dataset({"train": ner_documents[:12], "validation": ner_documents[-4:]}, ENTITY_TYPES)
    compact = run(config, dataset, tmp_path / "compact", "compact", monkeypatch)
    assert_same_training(compact, run(config, dataset, tmp_path / "whole", "whole", monkeypatch))


@pytest.mark.parametrize(("before", "after"), [("compact", "compact"), ("whole", "compact"), ("compact", "whole")])
def test_a_run_resumes_to_the_same_weights_whichever_way_its_checkpoint_was_trained(
    before: str,
    after: str,
    fp32_config: TrainingConfig,
    ner_documents: tuple[Document, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkpoint of the whole matrix is also one written before compact rows existed."""
    config = fp32_config.with_values({"training.num_epochs": 2, "training.batch_size": 4})
    dataset = Dataset({"train": ner_documents[:12], "validation": ner_documents[-4:]}, ENTITY_TYPES)
    straight = run(config, dataset, tmp_path / "straight", "compact", monkeypatch)
    with pytest.raises(Crash):
        run(config, dataset, tmp_path / "resumed", before, monkeypatch, callbacks=[CrashInSecondEpoch()])
    resumed = run(config, dataset, tmp_path / "resumed", after, monkeypatch)
    assert "resuming at epoch 2" in (tmp_path / "resumed" / "train.log").read_text(encoding="utf-8")
    assert_same_training(straight, resumed)


def test_a_checkpoint_whose_moments_do_not_fit_the_matrix_is_refused(
    fp32_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    _, compact, _, _, batches = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
    train_steps(compact, batches)
    state = compact.optimizer.state_dict()  # the compact layout: not what a checkpoint holds
    with pytest.raises(ValueError, match=r"word embedding's exp_avg has shape \(84, 64\), not \(616, 64\)"):
        compact.checkpointed.load_state_dict(state)
