"""Training steps of eager PyTorch against `torch.compile`, side by side: compile time, recompiles, steady speed.

Every contender trains the same model (same seed, so identical initial weights) on the same length-grouped
batches of `train_model` (`epoch_batches`, the windows of the `bench_core.py` corpus), with `train_model`'s
optimizer and schedule (fused AdamW, linear warmup and decay), its summed token loss and clipping at 1.0, fp32,
in one process, one after another. Contenders differ in one thing each:

- `eager`: the module as it is;
- `compile`: `torch.compile(module, dynamic=True)` (one graph for every batch shape);
- `/padN`: batches padded to a multiple of N tokens (fewer distinct shapes);
- `static`: `dynamic=False` (a graph per shape; worth it only with few shapes);
- `autotune`: `mode="max-autotune-no-cudagraphs"`.

Each contender's steps are timed one by one (forward, loss, backward, clipping, optimizer and schedule steps).
Steps that compiled something (`torch._dynamo` counters) are compile steps; steady samples/s and padded tokens/s
are those of the last epoch's other steps, the same batches for every contender. Compile seconds: the compile
steps' time beyond what their tokens take at the contender's steady tokens/s. Break-even: compile seconds over the
seconds saved per window at steady speed against the eager contender of the same padding, the windows after which
compiling has paid for itself ("never" when it saves nothing).
Inductor's cache lies in a fresh folder for this process, so the first compiled contender pays a cold compile;
later ones reuse what it built, as later runs and sweep trials on one machine do (name a contender twice to see
both).

Usage: `python benchmarks/bench_compile.py [--epochs 2] [--train-docs 200] [--threads 1]
[--contenders eager,compile,eager/pad16,compile/pad16]`
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="bench-compile-inductor-"))

import torch
import torch._dynamo
import transformers
from core_workload import BACKBONES, Workload, build_workload, fresh_model, workload_args

from training.core import optimization
from training.core.batching import epoch_batches
from training.core.features import Collator

DEFAULT_CONTENDERS = "eager,compile,eager/pad16,compile/pad16"
_CACHE_PREFIX = "bench-compile-inductor-"  # the inductor cache folder made above, removed at the end


@dataclass(frozen=True)
class Contender:
    """How the module is run: eager or compiled (mode, dynamic shapes), and the padding multiple of batches."""

    name: str
    compiled: bool
    mode: str
    dynamic: bool
    pad_to: int | None

    @classmethod
    def parse(cls, name: str) -> Contender:
        kind, _, padding = name.partition("/")
        if kind not in ("eager", "compile", "static", "autotune") or (padding and not padding.startswith("pad")):
            raise SystemExit(f"--contenders: unknown contender {name!r}; expected eager|compile|static|autotune[/padN]")
        mode = "max-autotune-no-cudagraphs" if kind == "autotune" else "default"
        return cls(name, kind != "eager", mode, kind != "static", int(padding[3:]) if padding else None)


@dataclass
class Steps:
    """One contender's run: per step its seconds, padded tokens and whether it compiled; losses of the last epoch."""

    contender: Contender
    seconds: list[float]
    tokens: list[int]
    compiled: list[bool]
    epochs: list[int]
    frames: int
    graph_breaks: int
    last_epoch_loss: float

    def steady(self) -> list[int]:
        """The steps of the last epoch that compiled nothing (of any epoch if every last one did)."""
        last = [i for i, epoch in enumerate(self.epochs) if epoch == max(self.epochs) and not self.compiled[i]]
        return last or [i for i, done in enumerate(self.compiled) if not done]

    def steady_rate(self, per_step: Sequence[int]) -> float:
        """`per_step` (padded tokens, windows) per second over the steady steps."""
        steps = self.steady()
        return sum(per_step[i] for i in steps) / sum(self.seconds[i] for i in steps)

    def compile_seconds(self) -> float:
        """Time of the compile steps beyond what their tokens take at the steady rate."""
        rate = self.steady_rate(self.tokens)
        return sum(self.seconds[i] - self.tokens[i] / rate for i, done in enumerate(self.compiled) if done)

    def samples_per_second(self, windows_per_step: Sequence[int]) -> float:
        """Windows per second over all steps, compile steps included."""
        return sum(windows_per_step) / sum(self.seconds)


def train(workload: Workload, contender: Contender, epochs: int) -> Steps:
    """Train a fresh model for `epochs` epochs as `contender` says, timing every optimizer step."""
    params = workload.params
    torch._dynamo.reset()
    model, tokenizer = fresh_model(workload)
    model.train()
    module = torch.compile(model, dynamic=contender.dynamic, mode=contender.mode) if contender.compiled else model
    collator = Collator(tokenizer.pad_token_id or 0, pad_to_multiple_of=contender.pad_to)
    lengths = [window.length for window in workload.windows]
    batches = [
        epoch_batches(lengths, params.batch_size, seed=params.seed, epoch=epoch, group_by_length=True)
        for epoch in range(epochs)
    ]
    adamw = optimization.optimizer(model, params)
    schedule = optimization.scheduler(adamw, params, sum(len(epoch) for epoch in batches))
    counters = torch._dynamo.utils.counters
    frames, breaks = counters["frames"], sum(counters["graph_break"].values())
    first_frame = frames["ok"]
    run = Steps(contender, [], [], [], [], 0, 0, 0.0)
    for epoch, epoch_batches_ in enumerate(batches):
        losses = []
        for indices in epoch_batches_:
            batch = collator([workload.windows[index] for index in indices])
            frames_before = frames["ok"]
            started = time.perf_counter()
            logits = module(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labelled = int((batch["labels"] != -100).sum())
            loss = optimization.summed_loss(logits, batch["labels"]) / labelled
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm or float("inf"))
            adamw.step()
            schedule.step()
            adamw.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            run.seconds.append(time.perf_counter() - started)
            run.tokens.append(batch["input_ids"].numel())
            run.compiled.append(frames["ok"] != frames_before)
            run.epochs.append(epoch)
        run.last_epoch_loss = statistics.fmean(losses)
    run.frames = frames["ok"] - first_frame
    run.graph_breaks = sum(counters["graph_break"].values()) - breaks
    return run


def report(runs: Sequence[Steps], windows_per_step: Sequence[int]) -> None:
    """A row per contender, and each compiled one against the eager run of the same padding (its reference)."""
    eager = {run.contender.pad_to: run for run in runs if not run.contender.compiled}
    print(
        f"\n{'contender':<16} {'graphs':>6} {'breaks':>6} {'compile s':>9} {'steady tok/s':>12} "
        f"{'steady smp/s':>12} {'all smp/s':>9} {'loss last ep.':>13} {'break-even windows':>18}"
    )
    for run in runs:
        steady = run.steady_rate(windows_per_step)
        compile_s = run.compile_seconds() if run.contender.compiled else 0.0
        reference = eager.get(run.contender.pad_to)
        even = "-"
        if run.contender.compiled and reference is not None:
            saved = 1 / reference.steady_rate(windows_per_step) - 1 / steady  # seconds per window
            even = f"{compile_s / saved:,.0f}" if saved > 0 else "never"
        print(
            f"{run.contender.name:<16} {run.frames:>6} {run.graph_breaks:>6} {compile_s:>9.1f} "
            f"{run.steady_rate(run.tokens):>12.0f} {steady:>12.2f} {run.samples_per_second(windows_per_step):>9.2f} "
            f"{run.last_epoch_loss:>13.4f} {even:>18}"
        )
    for run in runs:
        reference = eager.get(run.contender.pad_to)
        if run.contender.compiled and reference is not None:
            ratio = run.steady_rate(windows_per_step) / reference.steady_rate(windows_per_step)
            print(f"{run.contender.name} / {reference.contender.name}, steady samples/s: {ratio:.3f}")
    if None in eager:
        for run in runs:
            if not run.contender.compiled and run.contender.pad_to is not None:
                ratio = run.steady_rate(windows_per_step) / eager[None].steady_rate(windows_per_step)
                print(f"{run.contender.name} / eager, steady samples/s: {ratio:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per contender (default 2)")
    parser.add_argument("--train-docs", type=int, default=200, help="training documents (default 200)")
    parser.add_argument("--model", choices=sorted(BACKBONES), default="minilm", help="backbone (default minilm)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per batch (default 16)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per window (default 128)")
    parser.add_argument(
        "--contenders", default=DEFAULT_CONTENDERS, help=f"comma-separated (default {DEFAULT_CONTENDERS})"
    )
    args = parser.parse_args(argv)
    contenders = [Contender.parse(name) for name in args.contenders.split(",")]
    began = time.perf_counter()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    settings = {"train_docs": args.train_docs, "model": args.model, "max_length": args.max_length}
    workload = build_workload(
        workload_args(validation_docs=1, epochs=args.epochs, batch_size=args.batch_size, **settings)
    )
    lengths = [window.length for window in workload.windows]
    windows_per_step = [
        len(batch)
        for epoch in range(args.epochs)
        for batch in epoch_batches(lengths, args.batch_size, seed=42, epoch=epoch, group_by_length=True)
    ]
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s), "
        f"capability {torch.backends.cpu.get_cpu_capability()}; {BACKBONES[args.model]}: {len(lengths)} windows "
        f"(mean {statistics.fmean(lengths):.0f} tokens), batch {args.batch_size}, {args.epochs} epochs, "
        f"{len(windows_per_step)} steps; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    runs = []
    for contender in contenders:
        started = time.perf_counter()
        runs.append(train(workload, contender, args.epochs))
        print(
            f"  {contender.name:<16} {time.perf_counter() - started:6.1f} s, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        gc.collect()
    report(runs, windows_per_step)
    print(f"total wall time: {time.perf_counter() - began:.0f} s")
    cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    if cache.name.startswith(_CACHE_PREFIX):  # the folder this script made, not one the caller chose
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
