"""`bench_core.py --profile`: where the time of `train_model`'s optimizer steps goes.

The steps are `train_model`'s own (its `Optimization`, `Collator`, `backward_group`, `optimizer_step` and loss
read-back over the batches `epoch_batches` gives, batch 0 onwards), timed by phase on the wall clock and, for the
top operators, by `torch.profiler`. Backward is told from forward by autograd's own events.
"""

from __future__ import annotations

import time
from collections import defaultdict

from core_workload import Workload, fresh_model, our_batches
from torch.profiler import ProfilerActivity, profile

from training.core import optimization
from training.core.features import Collator
from training.core.run_context import Readback, RunContext

WARMUP_STEPS = 2
_BACKWARD = "autograd::engine::evaluate_function"


def profile_steps(workload: Workload, steps: int, rows: int = 12) -> None:
    """Print the phases of `steps` optimizer steps (after `WARMUP_STEPS`) on the wall clock, then the top operators
    of `steps` more under the profiler (which slows them) and the share of their forward + backward that is
    backward."""
    params, ctx = workload.params, RunContext()
    model, tokenizer = fresh_model(workload)
    batches = our_batches(workload, 0)
    order = [batches[number % len(batches)] for number in range(WARMUP_STEPS + 2 * steps)]
    padding = tokenizer.pad_token_id or 0
    run = optimization.Optimization.build(model, params, ctx, len(order), workload.windows, padding)
    collator = Collator(padding)
    model.train()

    def step(indices: list[int], seconds: dict[str, float]) -> None:
        windows = [workload.windows[index] for index in indices]
        began = time.perf_counter()
        batch = collator(windows)
        collated = time.perf_counter()
        labelled = float(sum(optimization.labelled_windows(windows)[1]))
        loss = optimization.backward_group(run, [batch], labelled, ctx)
        backward = time.perf_counter()
        optimization.optimizer_step(run, loss, params.max_grad_norm)
        stepped = time.perf_counter()
        run.scheduler.step()
        Readback(loss).value()
        for name, start, end in (
            ("data (collate)", began, collated),
            ("forward + backward", collated, backward),
            ("optimizer (clip, AdamW, zero grad)", backward, stepped),
            ("schedule and loss read", stepped, time.perf_counter()),
        ):
            seconds[name] += end - start

    wall: dict[str, float] = defaultdict(float)
    profiled: dict[str, float] = defaultdict(float)
    for indices in order[:WARMUP_STEPS]:
        step(indices, defaultdict(float))
    for indices in order[WARMUP_STEPS : WARMUP_STEPS + steps]:
        step(indices, wall)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for indices in order[WARMUP_STEPS + steps :]:
            step(indices, profiled)
    events = profiler.key_averages()
    backward_share = sum(e.cpu_time_total for e in events if e.key.startswith(_BACKWARD)) / 1e6
    backward_share = min(1.0, backward_share / profiled["forward + backward"])
    total = sum(wall.values())
    print(f"\nprofile: {steps} train_model steps of batch {params.batch_size}, {run.summary}: {total:.2f} s")
    for name, value in wall.items():
        print(f"  {name:<36} {1000 * value / steps:8.1f} ms/step  {100 * value / total:5.1f}%")
    print(f"  backward's share of forward + backward (profiled): {100 * backward_share:.0f}%")
    print(f"top operators of {steps} more steps under the profiler, by self CPU time:")
    print(events.table(sort_by="self_cpu_time_total", row_limit=rows))
