"""Model FLOPs utilisation (MFU) of training steps of a base-size BERT encoder: the library's step against a bare loop.

The contenders train `BertForTokenClassification` with a BERT-base shape (12 layers, hidden 768, 12 heads, random
initial weights: throughput does not depend on them) on random full-length sequences in bf16 autocast:

- `train_model step`: the library's own step, as `train_model` runs it: `Optimization.build` (fused AdamW, the
  precision resolved for the device), `backward_group` (the token-weighted summed loss) and `optimizer_step`
  (clipping, the fused step that skips non-finite losses on the device), batches handed over on the host as the
  `Collator` makes them.
- `train_model step, compiled`: the same as `training.compile: true` runs it (`torch.compile` of the model).
- `bare loop`: `model(**batch).loss.backward()` under the library's autocast (the same attention kernels),
  clipping, a fused AdamW step, batches already on the device; for reference.

Each runs `--warmup` steps, then `--steps` timed steps between two device synchronisations. Model FLOPs per token
follow PaLM (Chowdhery et al. 2022, appendix B): 6 x N + 12 x layers x hidden x sequence length, where N counts the
parameters that take part in matrix products (all but the embedding tables, which are lookups) and the second term
is the attention scores and their weighted sum (forward and backward). MFU is the achieved model FLOP/s over the
device's dense bf16 peak.

Usage: `python benchmarks/bench_mfu.py [--batch-size 64] [--seq-len 512] [--steps 30] [--contenders NAME ...]
[--smoke]`
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers import BertConfig, BertForTokenClassification

from training.config.schema import OptimizationConfig
from training.core.optimization import Optimization, backward_group, optimizer_step
from training.core.precision import AUTOCAST_DTYPES, autocast, resolve_precision
from training.core.run_context import RunContext

# Dense (no sparsity) bf16 tensor-core peaks in FLOP/s, by a part of the name the device reports. NVIDIA's H200 and
# H100 SXM datasheets give 1,979 TFLOP/s bf16 "with sparsity"; dense is half: 989 TFLOP/s (the H200 has the H100
# SXM's SMs and clocks, with more and faster memory; "H100 80GB HBM3" is the SXM part's name). A100 (SXM and PCIe):
# 312 TFLOP/s dense bf16 (NVIDIA A100 datasheet). Other devices: `--peak-tflops`.
DENSE_BF16_PEAKS = {"H200": 989e12, "H100 80GB HBM3": 989e12, "A100": 312e12}
LABELS = 9  # the B-/I- tags of four entity types and O, as the generated resumes have


@dataclass(frozen=True)
class Shape:
    """The encoder and batch one run trains."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    seq_len: int
    batch_size: int

    def config(self) -> BertConfig:
        return BertConfig(
            num_hidden_layers=self.layers,
            hidden_size=self.hidden,
            num_attention_heads=self.heads,
            intermediate_size=self.intermediate,
            max_position_embeddings=max(512, self.seq_len),
            num_labels=LABELS,
            attn_implementation="sdpa",
        )


BERT_BASE = {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072}
SMOKE = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128}


@dataclass(frozen=True)
class StepRate:
    """One contender's timed steps and what they amount to."""

    contender: str
    precision: str
    steps: int
    warmup_seconds: float
    seconds: float
    tokens_per_second: float
    tflops: float
    mfu: float | None


def model_flops_per_token(model: torch.nn.Module, shape: Shape) -> tuple[float, int, int]:
    """(training FLOPs per token, all parameters, parameters in matrix products): 6 N + 12 L h s."""
    total = sum(parameter.numel() for parameter in model.parameters())
    embeddings = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Embedding))
    dense = total - embeddings
    return 6 * dense + 12 * shape.layers * shape.hidden * shape.seq_len, total, dense


def dense_bf16_peak(device: torch.device, override_tflops: float | None) -> float | None:
    """The device's dense bf16 peak in FLOP/s: `override_tflops` if given, else from its name; None if unknown."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DENSE_BF16_PEAKS.items() if key in name), None)


def random_batch(shape: Shape, vocab: int, generator: torch.Generator, mask: bool = True) -> dict[str, torch.Tensor]:
    """Full-length sequences (no padding) with a label on every token, on the host as the `Collator` gives them;
    without `mask`, no attention mask (a mask of ones means the same)."""
    size = (shape.batch_size, shape.seq_len)
    batch = {
        "input_ids": torch.randint(1, vocab, size, generator=generator),
        "attention_mask": torch.ones(size, dtype=torch.long),
        "labels": torch.randint(0, LABELS, size, generator=generator),
    }
    return batch if mask else {key: value for key, value in batch.items() if key != "attention_mask"}


def fresh_model(shape: Shape, device: torch.device) -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(shape.config()).to(device).train()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], torch.Tensor], warmup: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Seconds for `warmup` steps (a compile included) and for the `steps` after them; the last loss must be finite."""
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize(device)
    warmup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    synchronize(device)
    seconds = time.perf_counter() - started
    if not torch.isfinite(loss).item():
        raise SystemExit(f"the last loss is {loss.item()}: the measured steps did not train")
    return warmup_seconds, seconds


Steps = tuple[Callable[[], torch.Tensor], str]


def library_steps(
    args: argparse.Namespace, shape: Shape, device: torch.device, *, compile: bool = False, mask: bool = True
) -> Steps:
    """A step of `train_model` (`backward_group` then `optimizer_step`) on one batch, and its resolved precision;
    without `mask`, the batch has no attention mask, which lets a compiled step's SDPA take flash attention."""
    model = fresh_model(shape, device)
    params = OptimizationConfig(precision=args.precision, compile=compile, learning_rate=1e-4, warmup_ratio=0.0)
    ctx = RunContext(device=device)
    optimization = Optimization.build(model, params, ctx, total_steps=args.warmup + args.steps)
    batch = random_batch(shape, model.config.vocab_size, torch.Generator().manual_seed(1), mask)
    tokens = float(batch["labels"].numel())

    def step() -> torch.Tensor:
        loss = backward_group(optimization, [batch], tokens, ctx)
        optimizer_step(optimization, loss, params.max_grad_norm)
        return loss

    return step, optimization.precision


def bare_steps(args: argparse.Namespace, shape: Shape, device: torch.device) -> Steps:
    """Forward, backward, clip and a fused AdamW step under the library's autocast (on CUDA, SDPA without cuDNN's
    attention, as `train_model`'s step), on a batch already on the device."""
    model = fresh_model(shape, device)
    precision = resolve_precision(args.precision, device)
    dtype = AUTOCAST_DTYPES[precision]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    host = random_batch(shape, model.config.vocab_size, torch.Generator().manual_seed(1))
    batch = {key: value.to(device) for key, value in host.items()}

    def step() -> torch.Tensor:
        with autocast(device, dtype):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step, precision


CONTENDERS: dict[str, Callable[[argparse.Namespace, Shape, torch.device], Steps]] = {
    "train_model step": library_steps,
    "train_model step, compiled": functools.partial(library_steps, compile=True),
    "train_model step, compiled, no mask": functools.partial(library_steps, compile=True, mask=False),
    "bare loop": bare_steps,
}


def measure(
    args: argparse.Namespace, shape: Shape, device: torch.device, flops_per_token: float, peak: float | None
) -> list[StepRate]:
    """Each of `args.contenders`' timed steps, printed as they come."""
    rates = []
    for name in args.contenders:
        build = CONTENDERS[name]
        step, precision = build(args, shape, device)
        warmup, seconds = timed(step, args.warmup, args.steps, device)
        tokens_per_second = args.steps * shape.batch_size * shape.seq_len / seconds
        achieved = tokens_per_second * flops_per_token
        mfu = achieved / peak if peak else None
        rate = StepRate(name, precision, args.steps, warmup, seconds, tokens_per_second, achieved / 1e12, mfu)
        rates.append(rate)
        shown = f"{100 * mfu:5.1f}%" if mfu is not None else "  n/a"
        print(
            f"{name:<35} {precision:<5} warmup {warmup:6.1f} s, {args.steps} steps in {seconds:7.2f} s  "
            f"{tokens_per_second:10.0f} tokens/s  {rate.tflops:7.3g} TFLOP/s  MFU {shown}",
            flush=True,
        )
        del step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per step (default 64)")
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="bf16", help="(default bf16)")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=CONTENDERS,
        default=["train_model step", "bare loop"],
        metavar="NAME",
        help=f"contenders to run, one after another (default the eager two; all: {', '.join(CONTENDERS)})",
    )
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the device (default: known GPUs)")
    parser.add_argument("--smoke", action="store_true", help="a tiny encoder, seq 64, batch 4: checks the code paths")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seq_len, args.batch_size = min(args.seq_len, 64), min(args.batch_size, 4)
    shape = Shape(**(SMOKE if args.smoke else BERT_BASE), seq_len=args.seq_len, batch_size=args.batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    transformers.logging.set_verbosity_error()
    peak = dense_bf16_peak(device, args.peak_tflops)
    flops_per_token, total, dense = model_flops_per_token(BertForTokenClassification(shape.config()), shape)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"{name}: torch {torch.__version__}, transformers {transformers.__version__}; encoder {shape.layers} layers, "
        f"hidden {shape.hidden}, seq {shape.seq_len}, batch {shape.batch_size}; {total / 1e6:.1f} M parameters, "
        f"{dense / 1e6:.1f} M in matrix products; {flops_per_token / 1e9:.3f} GFLOP per token "
        f"(6 x {dense / 1e6:.1f} M + 12 x {shape.layers} x {shape.hidden} x {shape.seq_len}); dense bf16 peak "
        + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown (MFU n/a; --peak-tflops sets it)"),
        flush=True,
    )
    rates = measure(args, shape, device, flops_per_token, peak)
    if args.json:
        facts = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__}
        facts |= {"shape": asdict(shape), "flops_per_token": flops_per_token, "parameters": total}
        facts |= {"matmul_parameters": dense, "peak_flops": peak}
        args.json.write_text(json.dumps({**facts, "rates": [asdict(rate) for rate in rates]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
