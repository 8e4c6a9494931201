"""Training throughput of `train_model` against Hugging Face `Trainer` and a bare PyTorch loop, side by side.

All contenders train the same model (identical initial weights, checked) on the same pre-tokenised windows
of a generated resume corpus (`data.generate`, mixed lengths) with the same batch size, learning rate, epochs,
linear schedule and warmup steps, weight decay (not on biases and LayerNorm), gradient clipping (1.0), fused
`AdamW` and seed, in one process, one after another; the order rotates every round:

- `train_model`: the whole call with the library's defaults for everything the workload does not set (so
  `precision: auto`: bf16 where the CPU computes it natively, else fp32); it also evaluates on the validation
  split after every epoch, keeps the best model folder and writes checkpoints.
- `train_model, fp32` (only when named in `--contenders`): the same with `precision: fp32`.
- `Trainer, best settings`: `AutoModelForTokenClassification` with `DataCollatorForTokenClassification` over a
  torch `Dataset` of the windows `encode_documents` made, length-grouped sampling, fused AdamW, and `bf16=True`
  where the CPU computes bf16 natively (the probe `precision: auto` uses; `--best-precision` overrides it); its
  evaluation, saving, logging and progress bar are off.
- `Trainer`: the same in fp32.
- `Trainer, defaults`: the same with Trainer's default sampler (random order, no length grouping), as most
  `Trainer` scripts run.
- bare loop: forward, backward, clip, fused `AdamW` step and scheduler step over the batches `epoch_batches`
  gives (the very batches `train_model` trains on), padded by the same `Collator`, in fp32.

"Loop" time is the epochs' batch loops only (no model loading, evaluation or checkpoints): `train_model`'s own
`train_samples_per_second`, `Trainer` from `on_epoch_begin` to `on_epoch_end`, the bare loop timed around its
epochs. "Wall" runs from loading the model to holding a trained one (for `train_model` it includes its per-epoch
evaluation, checkpoints and saved model folder; `Trainer` and the bare loop do none of these). Samples are
windows; tokens are the windows' tokens, padding left out; the padding share is padding over all tokens in the
batches. Entity F1 is computed the same way for every contender, after its run and outside every timing:
`evaluate_model` (word level, strict IOB2) on the validation documents. Round r trains with seed `seed + r - 1`
(all contenders alike), so the F1 medians span several seeds. Ratios are taken within a round and shown as
median [min-max] over rounds. On a machine other jobs share, `--threads 1` gives far steadier ratios.
`--profile` prints where the time of `train_model`'s steps goes before the rounds (`--repeats 0`: only that).

Usage: `python benchmarks/bench_core.py [--epochs 3] [--repeats 2] [--train-docs 200] [--model minilm] [--threads 2]
[--contenders NAME ...] [--best-precision auto|fp32|bf16] [--profile STEPS]`
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from core_contenders import CONTENDERS, OPTIONAL, runners
from core_profile import profile_steps
from core_workload import BACKBONES, Measurement, Workload, build_workload, fresh_model, hugging_face_model

from training.core.features import Collator
from training.core.precision import native_bf16

TRAINER_ROWS = ("Trainer, best settings", "Trainer", "Trainer, defaults")
TARGETS = {"Trainer, best settings": 1.3, "Trainer": 1.15, "bare loop": 0.95}


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
    """`args.repeats` rounds of the chosen contenders; the order rotates so that no contender always goes first."""
    chosen, run = tuple(args.contenders), runners(args.best_precision)
    measurements = []
    for index in range(args.repeats):
        seeded = workload.with_seed(args.seed + index)
        shift = index % len(chosen)
        for name in chosen[shift:] + chosen[:shift]:
            torch.set_num_threads(args.threads)
            with tempfile.TemporaryDirectory(dir=scratch) as folder:
                measurement = run[name](seeded, index + 1, Path(folder))
            measurement.load_average = os.getloadavg()[0]
            measurements.append(measurement)
            print(
                f"  round {index + 1} {name:<22} {measurement.samples_per_second:6.1f} samples/s  "
                f"{measurement.tokens_per_second:7.0f} tokens/s  padding {100 * measurement.padding_share:4.1f}%  "
                f"loop {measurement.loop_seconds:6.1f} s  wall {measurement.wall_seconds:6.1f} s  "
                f"F1 {measurement.entity_f1:.4f}  {measurement.notes.get('precision', 'fp32')}  "
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


def in_round_pairs(
    measurements: Sequence[Measurement], value: str, other: str, ours: str = "train_model"
) -> list[tuple[float, float]]:
    """(`ours`'s `value`, `other`'s) in each round that ran both."""
    by_round: dict[int, dict[str, float]] = {}
    for item in measurements:
        by_round.setdefault(item.round, {})[item.contender] = getattr(item, value)
    return [(values[ours], values[other]) for values in by_round.values() if ours in values and other in values]


def in_round_ratios(
    measurements: Sequence[Measurement], value: str, other: str, ours: str = "train_model"
) -> list[float]:
    """`ours`'s `value` over `other`'s, within each round that ran both."""
    return [mine / theirs for mine, theirs in in_round_pairs(measurements, value, other, ours)]


def summarise(measurements: Sequence[Measurement], facts: dict[str, Any]) -> dict[str, Any]:
    table = {}
    names = [name for name in CONTENDERS + OPTIONAL if any(item.contender == name for item in measurements)]
    for name in names:
        mine = [item for item in measurements if item.contender == name]
        table[name] = {
            "samples_per_second": [item.samples_per_second for item in mine],
            "tokens_per_second": [item.tokens_per_second for item in mine],
            "padding_share": [item.padding_share for item in mine],
            "loop_seconds": [item.loop_seconds for item in mine],
            "wall_seconds": [item.wall_seconds for item in mine],
            "entity_f1": [item.entity_f1 for item in mine],
            "tokens": [item.tokens for item in mine],
            "padded_tokens": [item.padded_tokens for item in mine],
            "load_average": [item.load_average for item in mine],
            "seeds": [item.seed for item in mine],
            "notes": [item.notes for item in mine],
        }
    ratios = {
        other: {
            "samples_per_second": in_round_ratios(measurements, "samples_per_second", other),
            "padded_tokens_per_second": in_round_ratios(measurements, "padded_tokens_per_second", other),
            "wall_seconds": in_round_ratios(measurements, "wall_seconds", other),
            "f1_gap_points": [
                100 * (ours - theirs) for ours, theirs in in_round_pairs(measurements, "entity_f1", other)
            ],
        }
        for other in names
        if other != "train_model" and "train_model" in table
    }
    targets = {
        f"vs {other} >= {target}": statistics.median(ratios[other]["samples_per_second"]) >= target
        for other, target in TARGETS.items()
        if other in ratios
    }
    for other in ("Trainer, best settings", "Trainer"):
        if other in ratios:
            gap = 100 * (
                statistics.median(table["train_model"]["entity_f1"]) - statistics.median(table[other]["entity_f1"])
            )
            targets[f"F1 within 1 point of {other}"] = abs(gap) <= 1.0
    best_over_fp32 = in_round_ratios(measurements, "samples_per_second", "Trainer", "Trainer, best settings")
    return {
        **facts,
        "contenders": table,
        "ratios": ratios,
        "best_settings_vs_trainer": best_over_fp32,
        "targets": targets,
    }


def print_summary(result: dict[str, Any]) -> None:
    print(
        f"\n{result['model']}: {result['windows']} windows (mean {result['mean_window_tokens']:.0f} tokens) from "
        f"{result['train_docs']} documents, batch {result['batch_size']}, {result['epochs']} epoch(s) per run, "
        f"{result['repeats']} rounds, {result['threads']} threads; native bf16 on this CPU: {result['native_bf16']}"
    )
    print(f"same initial weights for train_model and Trainer: {result['same_initial_weights']}")
    print(
        f"{'contender':<22} {'samples/s':>18} {'tokens/s':>22} {'padding %':>10} {'loop s':>18} {'wall s':>18} "
        f"{'entity F1':>24}  precision"
    )
    for name, row in result["contenders"].items():
        precision = "/".join(sorted({str(notes.get("precision", "fp32")) for notes in row["notes"]}))
        print(
            f"{name:<22} {spread(row['samples_per_second']):>18} {spread(row['tokens_per_second'], 0):>22} "
            f"{100 * statistics.median(row['padding_share']):>10.1f} {spread(row['loop_seconds']):>18} "
            f"{spread(row['wall_seconds']):>18} {spread(row['entity_f1'], 4):>24}  {precision}"
        )
    for other, ratio in result["ratios"].items():
        target = f"  (target >= {TARGETS[other]})" if other in TARGETS else ""
        gaps = ", ".join(f"{gap:+.2f}" for gap in ratio["f1_gap_points"])
        print(
            f"train_model / {other:<22} samples/s {spread(ratio['samples_per_second'], 3)}{target}; "
            f"padded tokens/s {spread(ratio['padded_tokens_per_second'], 3)}; "
            f"wall s {spread(ratio['wall_seconds'], 3)}; F1 gap per round {gaps} points"
        )
    if result["best_settings_vs_trainer"]:
        print(f"Trainer, best settings / Trainer samples/s: {spread(result['best_settings_vs_trainer'], 3)}")
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
    parser.add_argument("--repeats", type=int, default=2, help="alternation rounds (default 2; 0 with --profile)")
    parser.add_argument("--train-docs", type=int, default=200, help="training documents (default 200)")
    parser.add_argument("--validation-docs", type=int, default=50, help="validation documents (default 50)")
    parser.add_argument("--model", choices=sorted(BACKBONES), default="minilm", help="backbone (default minilm)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: all)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per batch (default 16)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak learning rate (default 3e-4)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per window (default 128)")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed and first round's training seed")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=CONTENDERS + OPTIONAL,
        default=list(CONTENDERS),
        metavar="NAME",
        help=f"contenders to run (default: {', '.join(CONTENDERS)}; also {', '.join(OPTIONAL)})",
    )
    parser.add_argument(
        "--best-precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="precision of 'Trainer, best settings' (default auto: bf16 where the CPU computes it natively)",
    )
    parser.add_argument("--profile", type=int, metavar="STEPS", help="profile STEPS train_model steps first")
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    workload = build_workload(args)
    if args.profile:
        profile_steps(workload, args.profile)
    if args.repeats < 1:
        return 0
    same_start = check_same_start(workload)
    setup = time.perf_counter() - began
    print(f"same initial weights for train_model and Trainer: {same_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-core-") as folder:
        measurements = rounds(args, workload, Path(folder))
    facts = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(torch.device("cpu")),
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
