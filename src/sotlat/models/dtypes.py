"""The compute dtypes tables are measured and simulated in, under the names tables record."""

from __future__ import annotations

import torch

from sotlat.errors import InputError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32", "float": "float32"}


def canonical_dtype(name: str) -> str:
    """The dtype's name as tables record it (fp16 and half are float16), so that tables of one dtype
    compare, merge and resume as one; integer and complex types are no model's compute type here."""
    canonical = DTYPE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if canonical not in DTYPES:
        raise InputError(f"unknown dtype {name!r}; expected {', '.join(DTYPES)} (or {', '.join(DTYPE_ALIASES)})", param="dtype")
    return canonical


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[canonical_dtype(name)]


def default_dtype(device: str) -> str:
    """float16 on a GPU, as the paper profiled; float32 on a CPU, whose half-precision kernels are slow or missing."""
    return "float16" if device.startswith("cuda") else "float32"
