"""One sweep trial's parameters trained three ways on `bench_hpo.py --refit`'s split: validation F1 by one scorer.

`train_model` with length-grouped batches (the library's default, as a sweep trial trains), `train_model` with
random batches, and `Trainer` (random batches, its default), each from the same backbone and seed, on the same train
split for the same epochs; each best (`train_model`) or last (`Trainer`, evaluated each epoch) validation F1, and
`Trainer`'s model scored again by `evaluate_model` (word-level strict IOB2), which shows whether the two scorers
agree. It tells a difference of batch order from one of search or scoring when `bench_hpo.py --refit` reports a
validation gap at the same parameters. One thread, so the three trainings do not compete for the cores.

Usage: `python benchmarks/bench_batch_order.py [--model minilm] [--documents 240] [--epochs 2]
[--learning-rates 2e-4 5e-4] [--batch-size 8]`
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hf_search
import hpo_contenders as contenders
import torch
import transformers
from transformers import DataCollatorForTokenClassification

from data.loaders import Dataset
from training.config.schema import TrainingConfig
from training.core.model import create_model_and_tokenizer
from training.core.trainer import train_model


def ours(config: TrainingConfig, dataset: Dataset, folder: Path, group_by_length: bool) -> float:
    config = config.with_values({"training.group_by_length": group_by_length})
    fixed = Dataset({"train": dataset["train"], "validation": dataset["validation"]}, labels=dataset.labels)
    best = train_model(config, fixed, folder, resume=False).metrics.best
    return best.entity_f1 if best is not None else float("nan")


def huggingface(config: TrainingConfig, dataset: Dataset, folder: Path) -> tuple[float, float]:
    _, tokenizer = create_model_and_tokenizer(config)
    train, validation = (hf_search.Windows(dataset[name], tokenizer, config) for name in ("train", "validation"))
    overrides = {"learning_rate": config.training.learning_rate}
    overrides["per_device_train_batch_size"] = config.training.batch_size
    trainer = hf_search.TimedTrainer(
        model_init=hf_search.Timing().model_init(config),
        args=hf_search.arguments(config, folder, **overrides),
        train_dataset=train,
        eval_dataset=validation,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=hf_search.entity_f1,
    )
    trainer.train()
    own = trainer.evaluate()["eval_entity_f1"]
    trainer.save_model(str(folder / "model"))
    tokenizer.save_pretrained(str(folder / "model"))
    return own, contenders.split_f1(folder / "model", dataset, config, "validation")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny-bert", "minilm"), default="minilm")
    parser.add_argument("--documents", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[2e-4, 5e-4])
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="bench-batch-order-") as tmp:
        folder = Path(tmp)
        base, dataset = contenders.split_workload(args.documents, args.epochs, folder, args.model)
        print(
            f"# {args.model}, {args.documents} generated documents (train {len(dataset['train'])}, validation "
            f"{len(dataset['validation'])}), {args.epochs} epochs, batch size {args.batch_size}; best validation F1"
        )
        print(f"{'learning rate':>14}{'length-grouped':>16}{'random':>10}{'Trainer':>10}{'Trainer, our scorer':>21}")
        for rate in args.learning_rates:
            config = base.with_values({"training.learning_rate": rate, "training.batch_size": args.batch_size})
            grouped = ours(config, dataset, folder / f"grouped-{rate}", group_by_length=True)
            shuffled = ours(config, dataset, folder / f"random-{rate}", group_by_length=False)
            own, scored = huggingface(config, dataset, folder / f"hf-{rate}")
            print(f"{rate:>14g}{grouped:>16.4f}{shuffled:>10.4f}{own:>10.4f}{scored:>21.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
