"""The numeric precision a run trains and predicts in: `auto` resolved against what the device runs natively."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from training.common.errors import ConfigError
from training.core.run_metrics import Precision

AUTOCAST_DTYPES: dict[Precision, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU instructions that compute in bf16 natively (x86 AVX512-BF16 and AMX, Arm's BF16 extension).
_CPU_BF16 = ("avx512_bf16", "amx_bf16", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (elsewhere it is emulated and slower than fp32)."""
    if device.type == "cuda":  # Ampere (compute capability 8) and later; older GPUs only emulate bf16
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:  # an older torch cannot tell AVX512-BF16 from plain AVX512: fp32 is the safe guess
        return False
    found = capabilities()
    return any(bool(found.get(name, False)) for name in _CPU_BF16)


def resolve_precision(choice: str, device: torch.device, field: str = "training.precision") -> Precision:
    """`choice` (the value of `field`) for `device`: `auto` is bf16 where native (about twice fp32's speed, same F1),
    else fp32; fp16 needs a CUDA GPU."""
    if choice == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if choice not in AUTOCAST_DTYPES:
        raise ConfigError(f"{field}: {choice!r} is not a precision; expected auto, fp32, bf16 or fp16")
    if choice == "fp16" and device.type != "cuda":
        raise ConfigError(f"{field}: fp16 needs a CUDA GPU; use bf16 or fp32 on {device.type}")
    return choice  # type: ignore[return-value]  # one of AUTOCAST_DTYPES' keys, checked above


def precision_dtype(choice: str, device: torch.device, field: str = "training.precision") -> torch.dtype | None:
    """The autocast dtype of `choice` resolved for `device` (None: fp32)."""
    return AUTOCAST_DTYPES[resolve_precision(choice, device, field)]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for `dtype`, or nothing for fp32."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
