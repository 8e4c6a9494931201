"""What one optimizer step of `train_model` means: exact gradient accumulation, windows without labels, non-finite
losses, the position limit checked before training, and a best model that survives a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from data.documents import Document, Span, iob2_tag_names
from data.loaders import Dataset
from training.common.errors import ConfigError, TrainingError
from training.config import TrainingConfig
from training.core import create_model_and_tokenizer, train_model
from training.core.callbacks import Callback, TrainerState
from training.core.features import Collator, encode_documents
from training.core.model import save_model
from training.core.optimization import Optimization, backward_group, optimizer_step
from training.core.run_context import Readback, RunContext
from training.core.run_folder import RunFolder
from training.core.run_metrics import Evaluation

ENTITY_TYPES = ("PER", "ORG", "LOC")


class Interrupt(Exception):
    """Stands for a crash in the middle of a run."""


class StopAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.began = False

    def on_train_begin(self, state: TrainerState) -> None:
        self.began = True

    def on_evaluate(self, state: TrainerState, evaluation: Evaluation) -> None:
        if state.epoch + 1 == self.epoch:
            raise Interrupt


def labelled(text: str, *entities: tuple[str, str]) -> Document:
    """A document of `text` whose entities are the first occurrences of the given (words, type) pairs."""
    spans = tuple(Span(text.index(words), text.index(words) + len(words), label) for words, label in entities)
    return Document.from_spans(f"doc-{len(text)}", text, spans)


def corpus(documents: tuple[Document, ...], train: int, validation: int = 4) -> Dataset:
    return Dataset({"train": documents[:train], "validation": documents[-validation:]}, ENTITY_TYPES)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_batch_8_equals_batch_4_with_accumulation_2_including_a_partial_last_group(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    """20 windows: batches of 8 are [8, 8, 4]; batches of 4 in groups of 2 are [4+4, 4+4, 4], a partial last group.
    In fp32: `auto` is bf16 on a CPU with AVX512-BF16, whose rounding differs between batch shapes."""
    settings = {"training.num_epochs": 1, "training.group_by_length": False, "model.dropout": 0.0, "training.seed": 3}
    base = tiny_config.with_values(settings | {"training.precision": "fp32", "training.warmup_ratio": 0.0})
    dataset = corpus(ner_documents, 20)
    large = train_model(base.with_values({"training.batch_size": 8}), dataset, tmp_path / "large")
    accumulated = base.with_values({"training.batch_size": 4, "training.gradient_accumulation_steps": 2})
    small = train_model(accumulated, dataset, tmp_path / "small")

    assert large.metrics.history[0].step == small.metrics.history[0].step == 3
    one, other = weights(tmp_path / "large"), weights(tmp_path / "small")
    assert max(float((one[name] - other[name]).abs().max()) for name in one) < 1e-5
    untrained, _ = create_model_and_tokenizer(base, labels=ENTITY_TYPES)
    moved = untrained.state_dict()["classifier.weight"] - one["classifier.weight"]
    assert float(moved.abs().max()) > 1e-4  # the runs did train


@pytest.mark.slow
def test_windows_without_a_labelled_token_are_not_trained_on(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    """The middle windows of a very long word hold no word start; trained on, their loss is 0/0 = NaN."""
    name = "Kowalczykowski" * 6  # 84 characters, 54 sub-tokens: two 14-token windows hold none of its starts
    long_word = labelled(f"{name} joined Siemens .", (name, "PER"), ("Siemens", "ORG"))
    dataset = Dataset({"train": (long_word, *ner_documents[:7]), "validation": ner_documents[-4:]}, ENTITY_TYPES)
    config = tiny_config.with_values(
        {"model.max_length": 16, "model.stride": 2, "training.batch_size": 1, "training.num_epochs": 1}
    )

    train_model(config, dataset, tmp_path / "run")

    assert all(bool(torch.isfinite(tensor).all()) for tensor in weights(tmp_path / "run").values())
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["unlabelled_windows"] > 0 and record["skipped_steps"] == 0


def poisoned_backbone(config: TrainingConfig, token: str, folder: Path) -> TrainingConfig:
    """A backbone folder whose embedding of `token` is infinite: every window holding it has a NaN loss."""
    model, tokenizer = create_model_and_tokenizer(config, labels=ENTITY_TYPES)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[tokenizer.convert_tokens_to_ids(token)] = float("inf")
    save_model(model, tokenizer, folder)
    return config.with_values({"model.backbone": str(folder)})


@pytest.mark.slow
def test_a_non_finite_loss_step_is_skipped_and_counted(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    # "!" occurs in no sentence of the corpus: one added training sentence holds it.
    exclaiming = labelled("Anna Smith shouted ! in Paris .", ("Anna Smith", "PER"), ("Paris", "LOC"))
    dataset = Dataset({"train": (exclaiming, *ner_documents[:7]), "validation": ner_documents[-4:]}, ENTITY_TYPES)
    config = poisoned_backbone(tiny_config, "!", tmp_path / "backbone").with_values(
        {"training.batch_size": 1, "training.num_epochs": 2, "training.group_by_length": False}
    )

    result = train_model(config, dataset, tmp_path / "run")

    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["skipped_steps"] == 2 and result.metrics.skipped_steps == 2  # one per epoch
    assert result.metrics.history[-1].step == 2 * 7
    trained = weights(tmp_path / "run")
    assert all(bool(torch.isfinite(tensor).all()) for name, tensor in trained.items() if "word_embeddings" not in name)


def test_training_stops_with_a_clear_error_after_n_non_finite_steps_in_a_row(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = poisoned_backbone(tiny_config, "[CLS]", tmp_path / "backbone").with_values(
        {"training.max_nonfinite_steps": 3, "training.batch_size": 2}
    )
    with pytest.raises(TrainingError, match=r"training.max_nonfinite_steps: 3 optimizer steps in a row .*nan"):
        train_model(config, corpus(ner_documents, 16), tmp_path / "run")


def test_a_non_finite_loss_leaves_weights_and_optimizer_state_as_they_were(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...]
) -> None:
    """The fused AdamW skips the step on the device, from the loss tensor the host has not read."""
    model, tokenizer = create_model_and_tokenizer(tiny_config, labels=ENTITY_TYPES)
    windows = encode_documents(ner_documents[:4], tokenizer, iob2_tag_names(ENTITY_TYPES), 64, 8).windows
    batch = Collator(tokenizer.pad_token_id)(windows)
    tokens = float(sum(label != -100 for window in windows for label in window.labels))
    ctx = RunContext()
    params = tiny_config.with_values({"training.warmup_ratio": 0.0}).training  # steps here never move the schedule
    optimization = Optimization.build(model, params, ctx, total_steps=4)
    assert optimization.optimizer.defaults["fused"] and optimization.precision in ("fp32", "bf16")

    def step(poison: float) -> torch.Tensor:
        loss = backward_group(optimization, [batch], tokens, ctx) * poison
        optimizer_step(optimization, loss, params.max_grad_norm)
        return loss

    assert Readback(step(1.0)).value() > 0  # the first step creates the optimizer's state
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    moments = [state["exp_avg"].clone() for state in optimization.optimizer.state.values()]
    counts = [float(state["step"]) for state in optimization.optimizer.state.values()]

    assert Readback(step(float("nan"))).value() != Readback(step(float("nan"))).value()  # NaN twice

    assert all(torch.equal(tensor, weights[name]) for name, tensor in model.state_dict().items())
    states = list(optimization.optimizer.state.values())
    assert all(torch.equal(state["exp_avg"], moment) for state, moment in zip(states, moments, strict=True))
    assert [float(state["step"]) for state in states] == counts
    step(1.0)
    assert not torch.equal(model.classifier.weight, weights["classifier.weight"])


def test_max_length_above_the_position_limit_fails_before_training(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    config = tiny_config.with_values({"model.max_length": 600})
    watcher = StopAtEpoch(1)
    with pytest.raises(ConfigError, match=r"model.max_length: 600 .* limit of 512 .*max_position_embeddings 512"):
        train_model(config, corpus(ner_documents, 8), tmp_path / "run", callbacks=[watcher])
    assert not watcher.began and not (tmp_path / "run" / "metrics.json").exists()


def test_a_crash_between_the_two_renames_of_model_keeps_the_retired_model(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    retired = run.root / ".model.old"
    retired.mkdir(parents=True)
    (retired / "model.safetensors").write_bytes(b"best")
    (run.root / ".model.x1.tmp").mkdir()

    removed = run.remove_leftovers()

    assert (run.model / "model.safetensors").read_bytes() == b"best"
    assert removed == [run.root / ".model.x1.tmp"] and not retired.exists()


def test_a_best_model_recorded_by_the_checkpoint_is_restored_when_model_was_not_written(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path
) -> None:
    """The checkpoint of epoch 1 records epoch 1 as best; a crash before `model/` was written loses nothing."""
    config = tiny_config.with_values({"training.num_epochs": 2, "training.learning_rate": 1e-12})
    dataset = corpus(ner_documents, 8)
    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        train_model(config, dataset, run, callbacks=[StopAtEpoch(2)])
    best = load_file(str(run / "checkpoint" / "model.safetensors"))
    RunFolder(run).remove(run / "model")

    result = train_model(config, dataset, run)

    assert result.metrics.best_epoch == 1  # a learning rate of 1e-12 changes no prediction: epoch 2 is no better
    restored = weights(run)
    assert all(torch.equal(restored[name], best[name]) for name in best)


def test_each_rank_seeds_its_own_stream_and_no_other_runs() -> None:
    """Ranks above 0 seeded seed + rank: seed 0's rank 1 drew the dropout masks of seed 1's rank 0."""
    seeds = {
        (seed, rank): RunContext(rank=rank, world_size=4).rank_seed(seed) for seed in range(4) for rank in range(4)
    }
    assert len(set(seeds.values())) == len(seeds)
    assert [seeds[seed, 0] for seed in range(4)] == [0, 1, 2, 3]  # one process, and rank 0, as before
    assert seeds[0, 1] == RunContext(rank=1, world_size=4).rank_seed(0)  # the same on every run


def test_a_run_removes_at_start_the_job_spec_a_writer_killed_mid_write_left(
    tiny_config: TrainingConfig, ner_documents: tuple[Document, ...], tmp_path: Path, kill_9_mid_write
) -> None:
    """A refit killed while writing its `job.json` leaves `.job.json.*.tmp`: the next run in the folder removes it."""
    run = tmp_path / "run"
    run.mkdir()
    script = "from training.common.atomic import atomic_write_bytes\nspec = b'{' * 2**25\n"
    script += f"while True:\n    atomic_write_bytes({str(run / 'job.json')!r}, spec)\n"
    left = kill_9_mid_write(script, run, ".job.json.*.tmp")

    train_model(tiny_config.with_values({"training.num_epochs": 1}), corpus(ner_documents, 8), run)

    assert not left.exists() and not list(run.glob(".*.tmp"))
