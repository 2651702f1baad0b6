"""FLOPs of one forward pass: DeepSpeed's flops profiler on the meta device (no GPU time).

FLOPs = 2 x MACs: DeepSpeed's element-wise counts are partial, its MACs cover the matrix
products (linear layers, attention). Counting every cell would take long, so a handful of
cells are counted and the rest come from the exact polynomial the architecture implies:
decode f(B, k) = a0 + a1 k + B (b0 + b1 k); prefill f(B, l) = c(l) + B d(l), c and d quadratic.
The fit is checked against held-out counted cells: it is `exact` when it reproduces them to
rounding (every LLaMA-like config); for an architecture whose FLOPs are not that polynomial the
table records how far off the fill is and the profile says so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from sotlat.models.steps import decode_step, prefill

FIT_CHECK_RTOL = 1e-9  # held-out cells reproduced to rounding: the fill is exact


@contextlib.contextmanager
def _disabled_autocast_is_a_no_op():
    """Older transformers (4.50) open `torch.autocast(device_type="meta", enabled=False)` in the rotary
    embedding, which newer torch rejects for the meta device. A disabled autocast does nothing, so
    during counting it is replaced by a null context."""
    original = torch.autocast

    def autocast(*args, enabled: bool = True, **kwargs):
        return contextlib.nullcontext() if not enabled else original(*args, enabled=enabled, **kwargs)

    torch.autocast = autocast
    try:
        yield
    finally:
        torch.autocast = original


def _flops_profiler() -> type:
    """DeepSpeed's FlopsProfiler, its accelerator named before the import: its auto-detection logs a
    warning on every CPU-only import."""
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
    from deepspeed.profiling.flops_profiler.profiler import FlopsProfiler

    return FlopsProfiler


def count_flops(meta_model: torch.nn.Module, phase: str, batch: int, length: int) -> float:
    """2 x MACs of one prefill of `length` tokens, or one decode step with `length` tokens cached."""
    FlopsProfiler = _flops_profiler()  # noqa: N806

    ids = torch.zeros((batch, length), dtype=torch.long, device="meta")
    with _disabled_autocast_is_a_no_op(), _unsupported_on_meta(meta_model):
        cache = prefill(meta_model, ids) if phase == "decode" else None
        profiler = FlopsProfiler(meta_model)
        profiler.start_profile()
        try:  # an exception inside would otherwise leave torch functions patched
            if phase == "prefill":
                cache = prefill(meta_model, ids)
            else:
                decode_step(meta_model, ids[:, :1], cache)
            macs = profiler.get_total_macs()
        finally:
            profiler.end_profile()
    if cache is None:  # BERT built as a causal LM without is_decoder; Mamba before transformers 5.24
        from sotlat.errors import InputError

        raise InputError(f"config ({meta_model.config.model_type}): the model keeps no KV cache, so it has no decode steps to "
                         "profile (a BERT-like config needs is_decoder: true)")
    return 2.0 * macs


@contextlib.contextmanager
def _unsupported_on_meta(model: torch.nn.Module):
    """A model whose forward pass fails on the meta device (transformers' Mixtral experts, in float32)
    has no FLOPs count here, and so no table: one line, not a traceback."""
    try:
        yield
    except Exception as exc:  # raised inside transformers' forward, whatever the model
        from sotlat.errors import InputError

        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"config ({model.config.model_type}): its FLOPs cannot be counted: its forward pass fails on the "
                         f"meta device ({type(exc).__name__}: {first})") from None


def _features(phase: str, batch, length) -> np.ndarray:
    """Per-sequence terms times B, plus batch-independent terms (e.g. a rotary-embedding matmul
    over position ids shared by the batch, as transformers 4.50 computes it)."""
    b, x = np.broadcast_arrays(np.asarray(batch, dtype=np.float64), np.asarray(length, dtype=np.float64))
    powers = [np.ones_like(x), x] if phase == "decode" else [np.ones_like(x), x, x * x]
    return np.stack([*powers, *(b * p for p in powers)], axis=-1)


@dataclass(frozen=True)
class FlopsFit:
    """Exact polynomial FLOPs per phase, fitted to counted cells and checked on held-out ones."""

    decode: tuple[float, ...]
    prefill: tuple[float, ...]
    max_rel_error: float  # on the held-out cells

    @property
    def exact(self) -> bool:
        return self.max_rel_error <= FIT_CHECK_RTOL

    def meta(self) -> dict:
        """How the FLOPs column was made, for table metadata."""
        return {
            "counter": "deepspeed flops profiler on the meta device, FLOPs = 2 x MACs",
            "fill": "exact polynomial fitted to counted cells: decode a0 + a1 k + B(b0 + b1 k), prefill c(l) + B d(l) with c, d quadratic",
            "decode_coefficients": [float(c) for c in self.decode],
            "prefill_coefficients": [float(c) for c in self.prefill],
            "held_out_max_rel_error": self.max_rel_error,
            "exact": self.exact,
        }

    def __call__(self, phase: str, batch, length) -> np.ndarray:
        coef = np.asarray(self.decode if phase == "decode" else self.prefill)
        return np.rint(_features(phase, batch, length) @ coef)  # FLOPs are whole numbers; rounding drops the solve's last-bit noise


# (batch, length) cells counted to fit, and held out to check, per phase.
_FIT_CELLS = {"decode": [(b, n) for b in (1, 2) for n in (1, 512)], "prefill": [(b, n) for b in (1, 2) for n in (1, 64, 512)]}
_CHECK_CELLS = {"decode": [(3, 100), (2, 1024)], "prefill": [(2, 100), (3, 691)]}


def fit_flops(meta_model: torch.nn.Module, count=count_flops) -> FlopsFit:
    """Count a handful of cells, fit the polynomials, check them on held-out counted cells."""
    coefs, worst = {}, 0.0
    for phase, cells in _FIT_CELLS.items():
        y = np.array([count(meta_model, phase, b, n) for b, n in cells])
        x = _features(phase, *zip(*cells))
        coefs[phase] = tuple(np.linalg.solve(x, y))  # square: as many cells as terms
        check = _CHECK_CELLS[phase]
        want = np.array([count(meta_model, phase, b, n) for b, n in check])
        got = _features(phase, *zip(*check)) @ np.asarray(coefs[phase])
        worst = max(worst, float(np.max(np.abs(got - want) / want)))
    return FlopsFit(decode=coefs["decode"], prefill=coefs["prefill"], max_rel_error=worst)


def flops_of(arch: str | None, config: str | None, phase: str, batch: int, length: int) -> tuple[str, float]:
    """(the model's name, FLOPs of one forward pass) of a named architecture or a config file."""
    from sotlat.errors import InputError
    from sotlat.models.archs import load_config, meta_model

    if phase not in ("prefill", "decode"):
        raise InputError(f"expected prefill or decode, got {phase!r}", param="phase")
    name, cfg = load_config(arch, config)
    return name, count_flops(meta_model(cfg), phase, batch, length)
