"""The device and numeric precision a run trains and predicts in: `auto` resolved against what the device runs
natively, and kept at bf16 only where an evaluation of the run shows bf16 holding fp32's entity F1."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from training.common.errors import ConfigError, InputError
from training.common.plural import counted
from training.core.cpu_measures import fastest_seconds, measured
from training.core.run_metrics import Precision, PrecisionCheck, Scores

AUTOCAST_DTYPES: dict[Precision, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU instructions under which bf16 outruns fp32: x86 AMX, Arm's BF16 extension. Under AVX512-BF16 alone it depends on
# the CPU: torch's bf16 autocast trained MiniLM at 0.67-0.73x fp32's speed on an Intel Xeon, at 1.5-2.2x on an AMD
# EPYC (docs/benchmarks.md, "bf16 on AVX512-BF16"), so there `auto` measures.
_CPU_BF16 = ("amx_bf16", "bf16")
_CPU_BF16_MEASURED = "avx512_bf16"
BF16_SPEEDUP = 1.2  # how many times fp32's speed a measured bf16 must reach for `auto` to pick it
# How far (absolute) `auto`'s bf16 may fall below fp32 in entity F1 in the run's check before it switches to fp32.
BF16_F1_TOLERANCE = 0.01
# Attention kernels a CUDA autocast may use: all but cuDNN's, which builds a plan for each new sequence length. On an
# H200 (torch 2.11) a MiniLM step in bf16 took 0.31 s at a new length with it (and seconds more the first time)
# against 23-30 ms without, and 19-21 ms at a known length either way (docs/benchmarks.md, "GPU"); batches grouped by
# length bring new lengths all along. A list: torch 2.3's `sdpa_kernel` takes no tuple.
_CUDA_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
_log = logging.getLogger("training.core")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The `device` argument checked against this machine; None: the first CUDA GPU if any, else the CPU.
    Checked here, as torch's own errors ('Expected one of cpu, cuda, ...', 'Torch not compiled with CUDA') name
    neither the argument nor what this machine has."""
    if device is None or device == "":  # "" as None, as `device or ...` read it before
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def here() -> str:  # only for an error: asking CUDA and MPS starts their drivers
        return " or ".join(kind for kind in ("cpu", "cuda", "mps") if _count(kind))

    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise InputError(f"device: {device!r} is not a device; expected {here()} (cuda:<index>: one GPU)") from error
    if chosen.type == "cpu":
        return chosen
    count = _count(chosen.type)
    if count == 0:
        raise InputError(f"device: {device!r}: this machine has no {chosen.type} device; expected {here()}")
    if chosen.index is not None and chosen.index >= count:
        raise InputError(
            f"device: {device!r}: this machine has {counted(count, chosen.type + ' device')}, numbered from 0"
        )
    return chosen


def _count(kind: str) -> int:
    """How many devices of `kind` (cpu, cuda, mps, xpu, ...) this machine has; torch names each backend after it."""
    backend = getattr(torch, kind, None)
    available = hasattr(backend, "device_count") and hasattr(backend, "is_available") and backend.is_available()
    return backend.device_count() if available else 0


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware faster than fp32 (elsewhere it is emulated, or slower)."""
    if device.type == "cuda":  # Ampere (compute capability 8) and later; older GPUs only emulate bf16
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:  # an older torch cannot tell AVX512-BF16 from plain AVX512: fp32 is the safe guess
        return False
    found = capabilities()
    if any(bool(found.get(name, False)) for name in _CPU_BF16):
        return True
    return bool(found.get(_CPU_BF16_MEASURED, False)) and cpu_bf16_speedup() >= BF16_SPEEDUP


@functools.cache
def cpu_bf16_speedup() -> float:
    """How many times faster a training step (forward and backward) of one encoder layer of MiniLM's width runs under
    bf16 autocast than in fp32 on this CPU, at torch's thread count: measured once per machine (`cpu_measures`)."""
    speedup = measured("bf16 over fp32, a step of an encoder layer", _bf16_speedup)
    _log.debug("precision auto: a step of one encoder layer runs %.2fx as fast in bf16 as in fp32 here", speedup)
    return speedup


def _bf16_speedup() -> float:
    """`cpu_bf16_speedup` measured now, in under a second."""
    with torch.inference_mode(False), torch.enable_grad():  # as under evaluation
        torch.manual_seed(0)
        layer = torch.nn.TransformerEncoderLayer(384, 12, 1536, batch_first=True)
        tokens = torch.randn(4, 128, 384)
        fp32 = fastest_seconds(lambda: _step(layer, tokens, None))
        bf16 = fastest_seconds(lambda: _step(layer, tokens, torch.bfloat16))
    return fp32 / bf16


def _step(layer: torch.nn.Module, tokens: torch.Tensor, dtype: torch.dtype | None) -> None:
    """One forward and backward pass of `layer` over `tokens` under `dtype`'s autocast."""
    with autocast(tokens.device, dtype):
        output = layer(tokens)
    output.float().sum().backward()


def resolve_precision(choice: str, device: torch.device, field: str = "training.precision") -> Precision:
    """`choice` (the value of `field`) for `device`: `auto` is bf16 where native (faster than fp32, same F1; a run
    checks that with `check_bf16`), else fp32; fp16 needs a CUDA GPU."""
    if choice == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if choice not in AUTOCAST_DTYPES:
        raise ConfigError(f"{field}: {choice!r} is not a precision; expected auto, fp32, bf16 or fp16")
    if choice == "fp16" and device.type != "cuda":
        raise ConfigError(f"{field}: fp16 needs a CUDA GPU; use bf16 or fp32 on {device.type}")
    return choice  # type: ignore[return-value]  # one of AUTOCAST_DTYPES' keys, checked above


def inference_precision(choice: str | None, device: torch.device, recorded: Precision | None = None) -> Precision:
    """The `precision` argument of prediction and evaluation resolved for `device`; None: a saved run's `recorded`
    precision (the one its evaluations ran in, so its reported F1 is that precision's) where `device` computes it
    natively, else fp32 (also for a model that no run saved)."""
    if choice is not None:
        return resolve_precision(choice, device, "precision")
    if recorded == "bf16" and native_bf16(device):
        return "bf16"
    return "fp16" if recorded == "fp16" and device.type == "cuda" else "fp32"


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for `dtype`, or nothing for fp32; on CUDA without cuDNN's attention (`_CUDA_ATTENTION`). The
    attention settings are the process's: threads that run a CUDA autocast at once may leave cuDNN's attention off
    after them (a choice of kernel, never of results)."""
    if dtype is None:
        return contextlib.nullcontext()
    if device.type != "cuda":
        return torch.autocast(device.type, dtype=dtype)
    return _cuda_autocast(dtype)


@contextlib.contextmanager
def _cuda_autocast(dtype: torch.dtype) -> Iterator[None]:
    with torch.autocast("cuda", dtype=dtype), sdpa_kernel(_CUDA_ATTENTION):
        yield


def check_bf16(bf16: Scores, fp32: Scores, announce: bool = True) -> PrecisionCheck | None:
    """Compare one evaluation in bf16 with the same in fp32: the run switches to fp32 where bf16's entity F1 is more
    than `BF16_F1_TOLERANCE` below; None (no decision: check again later) while fp32 finds no entity. Entity F1 rather
    than `metric_for_best`: a point of F1 means the same on every run, a point of loss does not. Under torchrun every
    rank scores the same gathered predictions: one decision; `announce` logs it (the main process)."""
    if fp32.entity_f1 <= 0:
        return None
    gap = round(fp32.entity_f1 - bf16.entity_f1, 9)  # F1s are ratios of counts: a gap of exactly a point holds
    check = PrecisionCheck(bf16_f1=bf16.entity_f1, fp32_f1=fp32.entity_f1, switched=gap > BF16_F1_TOLERANCE)
    figures, message = (check.bf16_f1, check.fp32_f1), "precision auto: bf16 scored entity F1 %.4f, fp32 %.4f"
    if announce and check.switched:
        _log.warning(message + " (more than %g below); training goes on in fp32", *figures, BF16_F1_TOLERANCE)
    elif announce:
        _log.info(message + "; training goes on in bf16", *figures)
    return check


def take_check(check: PrecisionCheck, announce: bool = True) -> PrecisionCheck:
    """`check`, made by an earlier run of the same model and data, as this run's (marked `taken`); `announce` logs
    it."""
    figures = check.bf16_f1, check.fp32_f1, "fp32" if check.switched else "bf16"
    if announce:
        _log.info("precision auto: an earlier run's check gave entity F1 %.4f in bf16, %.4f in fp32: %s", *figures)
    return check.model_copy(update={"taken": True})
