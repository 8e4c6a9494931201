"""Packed vs padded training batches: forward + backward (fp32) over the batches `train_model` trains on
(length-grouped) and over random-order batches, with `training.packing` off, on and auto, interleaved in one process.

    hatch run test:python benchmarks/bench_packing.py --rounds 2 --batches 12 --threads 1

Prints per contender samples/s, real (unpadded) tokens/s, the padded share of the positions computed and how many
batches were packed; the summary gives each against padding the same batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_workload import build_workload, fresh_model, workload_args

from training.core.batching import epoch_batches
from training.core.features import Collator
from training.core.optimization import summed_loss
from training.core.packing import PackedCollator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, default=12, help="batches per order and contender in each round")
    parser.add_argument("--train-docs", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--model", choices=("minilm", "tiny-bert"), default="minilm")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workload = build_workload(workload_args(train_docs=args.train_docs, model=args.model, max_length=args.max_length))
    model, tokenizer = fresh_model(workload)
    model.train()
    windows = workload.windows
    lengths = [window.length for window in windows]
    padded = Collator(tokenizer.pad_token_id)
    collators = {
        "padded": padded,
        "packed": PackedCollator.for_model(model, padded, args.max_length),
        "auto": PackedCollator.for_model(model, padded, args.max_length, only_when_cheaper=True),
    }
    print(
        f"windows {len(windows)}, mean length {statistics.mean(lengths):.1f}, max {max(lengths)}, "
        f"attention {model.config._attn_implementation}, torch threads {torch.get_num_threads()}"
    )
    results: dict[str, list[tuple[float, int, int, int, int]]] = {}
    for round_number in range(args.rounds):
        for grouped in (True, False):
            batches = epoch_batches(lengths, 16, seed=42, epoch=round_number, group_by_length=grouped)[: args.batches]
            for name, collator in collators.items():
                key = f"{'grouped' if grouped else 'random'}/{name}"
                collated = [collator([windows[i] for i in batch]) for batch in batches]
                positions = sum(batch["input_ids"].numel() for batch in collated)
                real = sum(lengths[i] for batch in batches for i in batch)
                packed = sum(batch["attention_mask"].ndim == 4 for batch in collated)
                started = time.perf_counter()
                for batch in collated:
                    model.zero_grad(set_to_none=True)
                    output = model(**{key: value for key, value in batch.items() if key != "labels"})
                    summed_loss(output.logits, batch["labels"]).backward()
                seconds = time.perf_counter() - started
                samples = sum(len(batch) for batch in batches)
                results.setdefault(key, []).append((seconds, samples, real, positions, packed))
                print(
                    f"round {round_number} {key:16s} {seconds:6.2f}s {samples / seconds:6.1f} samples/s "
                    f"{real / seconds:7.0f} tokens/s padded share {1 - real / positions:.3f} "
                    f"packed batches {packed}/{len(batches)}",
                    flush=True,
                )
    print("\nsummary (sums over rounds)")
    base: dict[str, float] = {}
    for key, rows in results.items():
        seconds = sum(row[0] for row in rows)
        samples, real, positions, packed = (sum(row[i] for row in rows) for i in range(1, 5))
        group = key.split("/")[0]
        base.setdefault(group, samples / seconds)
        print(
            f"{key:16s} {samples / seconds:6.1f} samples/s {real / seconds:7.0f} real tokens/s  "
            f"padded share {1 - real / positions:.3f}  vs padded {samples / seconds / base[group]:.2f}x  "
            f"packed batches {packed}"
        )


if __name__ == "__main__":
    main()
