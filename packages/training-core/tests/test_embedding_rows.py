"""Training only the word-embedding rows the training split uses (`TrainedRows`): the same training as the whole
matrix, checkpoints in the whole matrix's layout, and the whole matrix where compact rows would differ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from data.documents import Document, iob2_tag_names
from data.loaders import Dataset
from training.config import TrainingConfig
from training.core import train_model
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
    """Strong weight decay and a high learning rate, so that rows outside the training split visibly decay."""
    values = {"training.precision": "fp32", "training.weight_decay": 0.5, "training.learning_rate": 1e-2}
    return tiny_config.with_values(values)


class Crash(Exception):
    """Stands for a crash in the middle of a run."""


class CrashInSecondEpoch(Callback):
    """Crashes at the second epoch's evaluation, once the first epoch's checkpoint is written."""

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if state.epoch == 1:
            raise Crash


def windows_of(documents: tuple[Document, ...], tokenizer: Any) -> tuple[Window, ...]:
    return encode_documents(documents, tokenizer, iob2_tag_names(ENTITY_TYPES), 64, 8).windows


def train_steps(model: torch.nn.Module, optimization: Optimization, batches: list[dict[str, torch.Tensor]]) -> None:
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

    train_steps(compact_model, compact, batches * 2)
    train_steps(whole_model, whole, batches * 2)
    assert torch.equal(matrix, before)  # nothing writes the matrix until the model is read
    compact.write_model()

    assert not torch.allclose(matrix[unused], before[unused])  # the unused rows decayed
    actual = compact_model.state_dict()
    for name, expected in whole_model.state_dict().items():
        torch.testing.assert_close(actual[name], expected, rtol=1e-5, atol=1e-6, msg=name)


def test_a_checkpoint_holds_the_whole_matrix_state_whichever_way_it_trained(
    fp32_config: TrainingConfig, tiny_tokenizer_and_model: Callable[..., tuple], ner_documents: tuple[Document, ...]
) -> None:
    compact_model, compact, whole_model, whole, batches = two_runs(fp32_config, tiny_tokenizer_and_model, ner_documents)
    train_steps(compact_model, compact, batches)
    train_steps(whole_model, whole, batches)
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
    model.get_output_embeddings = model.get_input_embeddings
    assert TrainedRows.of(model, windows, padding) is None

    _, model = tiny_tokenizer_and_model()  # a backbone that reads `inputs_embeds` otherwise than its own ids
    embeddings, forward = model.bert.embeddings, model.bert.embeddings.forward

    def scaled(*args: Any, inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return forward(*args, inputs_embeds=None if inputs_embeds is None else inputs_embeds * 2, **kwargs)

    embeddings.forward = scaled
    assert TrainedRows.of(model, windows, padding) is None
    assert model.get_input_embeddings().weight.requires_grad  # left as it was


def test_train_model_trains_compact_rows_and_resumes_them_to_the_same_weights(
    fp32_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = fp32_config.with_values({"training.num_epochs": 2, "training.batch_size": 4})
    dataset = Dataset({"train": ner_documents[:12], "validation": ner_documents[-4:]}, ENTITY_TYPES)
    straight = train_model(config, dataset, tmp_path / "straight")
    assert "word-embedding rows" in (tmp_path / "straight" / "train.log").read_text(encoding="utf-8")

    with pytest.raises(Crash):
        train_model(config, dataset, tmp_path / "resumed", callbacks=[CrashInSecondEpoch()])
    resumed = train_model(config, dataset, tmp_path / "resumed")
    assert "resuming at epoch 2" in (tmp_path / "resumed" / "train.log").read_text(encoding="utf-8")
    assert resumed.metrics.history == straight.metrics.history
