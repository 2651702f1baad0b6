"""Simulate the published batch-1 LLaMA-7B latencies collected in the project's GPU reference and
print the model's error on each: how far the shipped calibrations are from engines nobody here ran.

The figures and their sources are quoted from shared/reference/gpu-limits.md §2c (copied below, as
nothing may read ../shared at run time). Decode figures are per token, averaged over the steps of
the stated generation; prefill figures are one forward pass over the prompt. The model is
Llama-7B's architecture (`llama-7b`; Llama-2-7B has the same shapes) in float16.

Usage: python scripts/simulator_published_check.py
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sotlat.pct_errors import error_stats, relative_pct
from sotlat.profiler.archs import load_config
from sotlat.simulator.catalogue import gpu_spec
from sotlat.simulator.model import load_calibration
from sotlat.simulator.simulate import shapes_and_flops, simulate_cells


class Figure(NamedTuple):
    """One published figure: decode = ms per token over `generated` steps after a `prompt`-token
    prompt; prefill = one pass over `prompt` tokens. `peak_tflops` overrides the catalogue's rate."""

    source: str
    engine: str
    gpu: str
    calibration: str
    phase: str
    prompt: int
    generated: int
    published_ms: float
    peak_tflops: float | None = None


PUBLISHED = [
    Figure("PyTorch blog 'GPT, Fast' (A100 at 330 W)", "eager PyTorch", "a100-80gb-sxm", "hf-eager", "decode", 5, 200, 1000 / 25.5),
    Figure("PyTorch blog 'GPT, Fast' (A100 at 330 W)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 107.0),
    Figure("gpt-fast README, Llama-2-7B (A100 at 330 W)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 104.9),
    Figure("torchao README, Llama-2-7B (A100 variant unstated)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 107.38),
    Figure("llama.cpp PR #4766, tg128", "llama.cpp F16", "rtx-4090", "default", "decode", 0, 128, 1000 / 61.03),
    Figure("llama.cpp PR #4766, pp512", "llama.cpp F16", "rtx-4090", "default", "prefill", 512, 0, 512 * 1000 / 11048),
    # ggml-cuda multiplies F16 matrices with cuBLAS in FP16 accumulate: the 4090's 330.3 TFLOPS, not 165.2
    Figure("llama.cpp PR #4766, pp512, FP16-accumulate peak", "llama.cpp F16", "rtx-4090", "default", "prefill", 512, 0, 512 * 1000 / 11048, 330.3),
    Figure("TensorRT-LLM performance.md v0.5, first token", "TensorRT-LLM", "a100-80gb-sxm", "default", "prefill", 128, 0, 16.0),
    Figure("TensorRT-LLM performance.md v0.5, first token", "TensorRT-LLM", "a100-80gb-sxm", "default", "prefill", 2048, 0, 133.0),
]


def simulated_ms(shapes, flops, f: Figure) -> float:
    """The model's value of one published figure (decode steps see k = prompt+1 .. prompt+generated cached tokens)."""
    gpu, cal = gpu_spec(f.gpu, f.peak_tflops), load_calibration(f.calibration)
    if f.phase == "prefill":
        return float(simulate_cells(shapes, flops, gpu, cal, "prefill", [1], [f.prompt])["latency_ms"][0])
    k = np.arange(f.prompt + 1, f.prompt + f.generated + 1)
    return float(simulate_cells(shapes, flops, gpu, cal, "decode", np.ones_like(k), k)["latency_ms"].mean())


def main() -> None:
    shapes, flops, _ = shapes_and_flops(*load_config("llama-7b", None), "float16")
    print(f"{'source':<50} {'engine':<15} {'GPU':<14} {'calibration':<11} {'what':<22} {'published':>9} {'model':>7} {'error':>7}")
    errors = {}
    for f in PUBLISHED:
        ms = simulated_ms(shapes, flops, f)
        what = f"prefill {f.prompt}" if f.phase == "prefill" else f"decode ms/token ({f.generated})"
        err = float(relative_pct(ms, f.published_ms))
        errors.setdefault((f.calibration, f.phase), []).append(err)
        print(f"{f.source:<50} {f.engine:<15} {f.gpu:<14} {f.calibration:<11} {what:<22} {f.published_ms:>9.2f} {ms:>7.2f} {err:>+6.1f}%")
    for (calibration, phase), errs in errors.items():
        e = error_stats(errs)
        print(f"{calibration} {phase}: {e['n']} figures, median |error| {e['median_abs_pct']:.1f}%, max {e['max_abs_pct']:.1f}%")


if __name__ == "__main__":
    main()
