"""Fit the `hf-eager` calibration to one row of the paper's Table 1 and predict the other two.

Table 1 (Ning et al.): one A100 80GB, HF transformers 4.28, PyTorch 2.0.1, batch 1, float16:
prefill of 128 tokens and 64 decoded tokens. Kernel efficiency is held at the uncalibrated
defaults (MFU 0.6, MBU 0.75); the per-layer overhead of each phase is solved from the fitting row,
since eager mode's excess over the roofline grows with the number of layers. The A100's variant
is not stated; the SXM part is used. Writes src/sotlat/data/calibrations/hf-eager.json.

Usage: python scripts/hf_eager_calibration.py [--fit-row llama-7b] [--out FILE]
Also prints the cross-model check of one GPU: fitted on each row in turn, the other two predicted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sotlat.pct_errors import error_stats, relative_pct
from sotlat.profiler.archs import load_config
from sotlat.simulator.catalogue import gpu_spec
from sotlat.simulator.model import DEFAULT, Calibration, PhaseParams
from sotlat.simulator.simulate import shapes_and_flops, simulate_cells

TABLE_1 = {"llama-7b": (40.0, 2735.0), "llama-13b": (54.0, 3725.0), "llama-33b": (100.0, 5506.0)}  # ms
PROMPT, DECODED = 128, 64
OUT = Path(__file__).resolve().parents[1] / "src" / "sotlat" / "data" / "calibrations" / "hf-eager.json"


def row_ms(arch: str, gpu: dict, cal: Calibration) -> tuple[float, float]:
    """Table 1's two figures under the model: one prefill of 128 tokens; decode steps k = 128..191."""
    shapes, flops, _ = shapes_and_flops(*load_config(arch, None), "float16")
    prefill = simulate_cells(shapes, flops, gpu, cal, "prefill", [1], [PROMPT])["latency_ms"][0]
    decode = simulate_cells(shapes, flops, gpu, cal, "decode", [1] * DECODED, np.arange(PROMPT, PROMPT + DECODED))["latency_ms"].sum()
    return float(prefill), float(decode)


def fit(arch: str, gpu: dict) -> Calibration:
    """Hold MFU and MBU at the defaults; solve each phase's per-layer overhead from `arch`'s row."""
    layers = load_config(arch, None)[1].num_hidden_layers
    no_overhead = Calibration("none", PhaseParams(DEFAULT.prefill.mfu, DEFAULT.prefill.mbu, 0.0), PhaseParams(DEFAULT.decode.mfu, DEFAULT.decode.mbu, 0.0))
    base_prefill, base_decode = row_ms(arch, gpu, no_overhead)
    want_prefill, want_decode = TABLE_1[arch]
    return Calibration(
        "hf-eager",
        PhaseParams(DEFAULT.prefill.mfu, DEFAULT.prefill.mbu, (want_prefill - base_prefill) / layers),
        PhaseParams(DEFAULT.decode.mfu, DEFAULT.decode.mbu, (want_decode - base_decode) / DECODED / layers),
        about=f"HF transformers 4.28 eager on an A100 80GB: per-layer overheads solved from the paper's Table 1 {arch} row "
              f"(MFU {DEFAULT.prefill.mfu}, MBU {DEFAULT.decode.mbu} held); scripts/hf_eager_calibration.py",
    )


def errors_pct(cal: Calibration, gpu: dict, name: str) -> tuple[float, float]:
    """Signed % errors of the model against the paper for `name`'s prefill and decode figures."""
    return tuple(float(e) for e in relative_pct(row_ms(name, gpu, cal), TABLE_1[name]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-row", default="llama-7b", choices=list(TABLE_1))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    arch, gpu = args.fit_row, gpu_spec("a100-80gb-sxm", "float16")
    cal = fit(arch, gpu)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cal.as_dict(), indent=1) + "\n")
    print(f"fitted on {arch}: prefill {cal.prefill.layer_overhead_ms:.3f} ms/layer, decode {cal.decode.layer_overhead_ms:.3f} ms/layer -> {args.out.name}")
    print(f"{'model':<10} {'prefill (paper)':>16} {'model':>8} {'error':>7} {'decode 64 (paper)':>18} {'model':>8} {'error':>7}")
    for name, (p_ms, d_ms) in TABLE_1.items():
        (p, d), (ep, ed) = row_ms(name, gpu, cal), errors_pct(cal, gpu, name)
        print(f"{name:<10} {p_ms:>16.0f} {p:>8.1f} {ep:>+6.1f}% {d_ms:>18.0f} {d:>8.1f} {ed:>+6.1f}%" + ("   (fitting row)" if name == arch else ""))
    print("\ncross-model on one GPU: fitted on each row in turn, |error| over the other two models' four figures")
    print(f"{'fitted on':<10} {'median':>7} {'P90':>7} {'max':>7}")
    every = {fitted: [e for name in TABLE_1 if name != fitted for e in errors_pct(fit(fitted, gpu), gpu, name)] for fitted in TABLE_1}
    every["all"] = [e for errors in every.values() for e in errors]
    for fitted, errors in every.items():
        e = error_stats(errors)
        print(f"{fitted:<10} {e['median_abs_pct']:>6.1f}% {e['p90_abs_pct']:>6.1f}% {e['max_abs_pct']:>6.1f}%")


if __name__ == "__main__":
    main()
