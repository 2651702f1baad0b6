"""Derive the `default` calibration (an engine without host overhead) from published figures, then
simulate every published batch-1 latency collected in the project's GPU reference and print the
model's error on each: how far the shipped calibrations are from engines nobody here ran. Then the
one published pair of two models measured by one source on one GPU (torchao's README: Llama-2-7B
and Llama-3-8B on an A100): calibrated on either, the other predicted.

`default` under model 2: host time zero (no launches, no tail: a compiled engine replaying CUDA
graphs); MBU the median of the values that give each of the four compiled-PyTorch A100 decode
figures exactly; GEMM efficiency the value that gives TensorRT-LLM's 2048-token prefill (its
128-token "first-token latency" includes more than one forward pass, so it is a check, not a fit);
the rest the named priors of `model.PRIOR`, but for the per-layer element-wise floor, one fused kernel
at the kernel floor (DEFAULT_ELEMENTWISE_KERNELS). `--write-default` writes it to
src/sotlat/data/calibrations/default.json.

The figures and their sources are quoted from shared/reference/gpu-limits.md §2c (copied below, as
nothing may read ../shared at run time). Decode figures are per token, averaged over the steps of
the stated generation; prefill figures are one forward pass over the prompt. The models are
Llama-7B's architecture (`llama-7b`; Llama-2-7B has the same shapes) and Llama-3-8B's (its config
below, as meta-llama/Meta-Llama-3-8B's config.json gives it), 2 bytes per weight.

Usage: python scripts/simulator_published_check.py [--write-default]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq
from transformers import LlamaConfig

from sotlat.pct_errors import error_stats, relative_pct
from sotlat.models.archs import load_config
from sotlat.models.catalogue import gpu_spec
from sotlat.simulator.model import PRIOR, Calibration, load_calibration
from sotlat.models.shapes import shapes_and_flops
from sotlat.simulator.simulate import simulate_cells

LLAMA_3_8B = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
                         rms_norm_eps=1e-5, tie_word_embeddings=False)


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
    arch: str = "llama-7b"


PUBLISHED = [
    Figure("PyTorch blog 'GPT, Fast' (A100 at 330 W)", "eager PyTorch", "a100-80gb-sxm", "hf-eager", "decode", 5, 200, 1000 / 25.5),
    Figure("PyTorch blog 'GPT, Fast' (A100 at 330 W)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 107.0),
    Figure("gpt-fast README, Llama-2-7B (A100 at 330 W)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 104.9),
    Figure("torchao README, Llama-2-7B (A100 variant unstated)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 107.38),
    Figure("torchao README, Llama-3-8B (same machine)", "torch.compile", "a100-80gb-sxm", "default", "decode", 5, 200, 1000 / 95.64, arch="llama-3-8b"),
    Figure("llama.cpp PR #4766, tg128", "llama.cpp F16", "rtx-4090", "default", "decode", 0, 128, 1000 / 61.03),
    Figure("llama.cpp PR #4766, pp512", "llama.cpp F16", "rtx-4090", "default", "prefill", 512, 0, 512 * 1000 / 11048),
    # ggml-cuda multiplies F16 matrices with cuBLAS in FP16 accumulate: the 4090's 330.3 TFLOPS, not 165.2
    Figure("llama.cpp PR #4766, pp512, FP16-accumulate peak", "llama.cpp F16", "rtx-4090", "default", "prefill", 512, 0, 512 * 1000 / 11048, 330.3),
    Figure("TensorRT-LLM performance.md v0.5, first token", "TensorRT-LLM", "a100-80gb-sxm", "default", "prefill", 128, 0, 16.0),
    Figure("TensorRT-LLM performance.md v0.5, first token", "TensorRT-LLM", "a100-80gb-sxm", "default", "prefill", 2048, 0, 133.0),
]


def simulated_ms(shapes, flops, f: Figure, cal=None) -> float:
    """The model's value of one published figure (decode steps see k = prompt+1 .. prompt+generated cached
    tokens), with the figure's calibration or `cal`."""
    gpu, cal = gpu_spec(f.gpu, "bfloat16", f.peak_tflops), cal or load_calibration(f.calibration)
    if f.phase == "prefill":
        return float(simulate_cells(shapes, flops, gpu, cal, "prefill", [1], [f.prompt])["latency_ms"][0])
    k = np.arange(f.prompt + 1, f.prompt + f.generated + 1)
    return float(simulate_cells(shapes, flops, gpu, cal, "decode", np.ones_like(k), k)["latency_ms"].mean())


OUT = Path(__file__).resolve().parents[1] / "src" / "sotlat" / "data" / "calibrations" / "default.json"
DEFAULT_ELEMENTWISE_KERNELS = 1  # assumed: a compiled engine fuses a layer's norms, rotary, activation and adds into about one kernel's floor
ENGINE = dataclasses.replace(PRIOR, launch_ms=0.0, tail_ms=0.0, host_fixed_ms=0.0,
                             elementwise_floor_ms=DEFAULT_ELEMENTWISE_KERNELS * PRIOR.kernel_floor_ms)


def solved(models: dict, f: Figure, name: str, base=ENGINE, low: float = 0.05, high: float = 1.0) -> float:
    """The value of parameter `name` (both phases) at which the model gives figure f exactly, the rest as `base`."""
    def off(value):
        params = dataclasses.replace(base, **{name: value})
        return simulated_ms(*models[f.arch], f, Calibration("solve", params, params)) - f.published_ms

    return float(brentq(off, low, high, xtol=1e-6))


def fit_default(models: dict) -> Calibration:
    """`default` from the published figures (module docstring)."""
    compiled = [f for f in PUBLISHED if f.engine == "torch.compile"]
    mbu = float(np.median([solved(models, f, "mbu") for f in compiled]))
    prefill = next(f for f in PUBLISHED if f.engine == "TensorRT-LLM" and f.prompt == 2048)
    params = dataclasses.replace(ENGINE, mbu=mbu)
    params = dataclasses.replace(params, gemm_efficiency=solved(models, prefill, "gemm_efficiency", params))
    return Calibration("default", params, params, about=(
        f"an engine without host overhead (model 2): MBU {mbu:.3f}, the median over the four compiled-PyTorch A100 llama-7b / "
        f"Llama-3-8B decode figures; GEMM efficiency {params.gemm_efficiency:.3f} from TensorRT-LLM's 2048-token A100 prefill; "
        "the rest model.PRIOR's; scripts/simulator_published_check.py"))


def predicted(models: dict, fit: Figure, other: Figure) -> tuple[float, float]:
    """(decode MBU fitted on figure `fit`, the model's value of figure `other` at that MBU)."""
    default = load_calibration("default").decode
    mbu = solved(models, fit, "mbu", default)
    params = dataclasses.replace(default, mbu=mbu)
    return mbu, simulated_ms(*models[other.arch], other, Calibration("pair", params, params))


def cross_model(models: dict) -> None:
    """torchao's pair: the decode MBU fitted on one model's figure, the other's predicted; and the same
    with the bytes a pass reads counting the whole embedding tables, as the model once did."""
    whole = {a: (dataclasses.replace(s, embedding_parameters=0), fl) for a, (s, fl) in models.items()}
    pair = [f for f in PUBLISHED if f.source.startswith("torchao")]
    print("\ncross-model on one GPU (torchao README, A100, torch.compile): decode MBU fitted on one model, the other predicted")
    print(f"{'fitted on':<11} {'MBU':>6} {'predicted':<11} {'published':>9} {'model':>7} {'error':>7}   whole embedding read: MBU, error")
    for fit, other in (pair, pair[::-1]):
        (mbu, ms), (mbu_whole, ms_whole) = predicted(models, fit, other), predicted(whole, fit, other)
        err, err_whole = (float(relative_pct(x, other.published_ms)) for x in (ms, ms_whole))
        print(f"{fit.arch:<11} {mbu:>6.3f} {other.arch:<11} {other.published_ms:>9.2f} {ms:>7.2f} {err:>+6.1f}%   {mbu_whole:.3f}, {err_whole:+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-default", action="store_true", help=f"write the derived default calibration to {OUT.name}")
    args = parser.parse_args()
    models = {name: shapes_and_flops(name, config, "bfloat16")[:2]
              for name, config in (load_config("llama-7b"), ("llama-3-8b", LLAMA_3_8B))}
    default = fit_default(models)
    print(f"default: {default.about}")
    if args.write_default:
        OUT.write_text(json.dumps(default.as_dict(), indent=1) + "\n")
        print(f"-> {OUT.name}")
    print(f"{'source':<50} {'engine':<15} {'GPU':<14} {'calibration':<11} {'what':<22} {'published':>9} {'model':>7} {'error':>7}")
    errors = {}
    for f in PUBLISHED:
        ms = simulated_ms(*models[f.arch], f)
        what = f"prefill {f.prompt}" if f.phase == "prefill" else f"decode ms/token ({f.generated})"
        err = float(relative_pct(ms, f.published_ms))
        errors.setdefault((f.calibration, f.phase), []).append(err)
        print(f"{f.source:<50} {f.engine:<15} {f.gpu:<14} {f.calibration:<11} {what:<22} {f.published_ms:>9.2f} {ms:>7.2f} {err:>+6.1f}%")
    for (calibration, phase), errs in errors.items():
        e = error_stats(errs)
        print(f"{calibration} {phase}: {e['n']} figures, median |error| {e['median_abs_pct']:.1f}%, max {e['max_abs_pct']:.1f}%")
    cross_model(models)


if __name__ == "__main__":
    main()
