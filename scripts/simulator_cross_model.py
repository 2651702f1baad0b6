"""Calibrate the simulator on one measured table and predict another architecture's measured table
on the same device; print the median and P90 absolute error per phase.

Usage: python scripts/simulator_cross_model.py --fit A.parquet --predict B.parquet
           (--gpu ID | --peak-tflops P --bandwidth-gbps W)
For a device outside the catalogue (a CPU), give nominal peak and bandwidth: MFU and MBU are fitted
relative to them, so only their ratio (the ridge point) shapes the fit.
"""

from __future__ import annotations

import argparse

from transformers import AutoConfig

from sotlat.pct_errors import error_stats, relative_pct
from sotlat.simulator.calibrate import calibrate
from sotlat.simulator.catalogue import gpu_spec
from sotlat.simulator.simulate import shapes_and_flops, simulate_cells
from sotlat.tables import load_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", required=True)
    parser.add_argument("--predict", required=True)
    parser.add_argument("--gpu")
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--bandwidth-gbps", type=float)
    args = parser.parse_args()
    peak, bandwidth = args.peak_tflops, args.bandwidth_gbps
    fit, target = load_table(args.fit), load_table(args.predict)
    if args.gpu:
        spec = gpu_spec(args.gpu, fit.attrs["sotlat"]["dtype"], peak, bandwidth)
        peak, bandwidth = spec["peak_tflops"], spec["bandwidth_gbps"]
    cal, errors = calibrate(fit, peak, bandwidth, "cross-model")
    print(f"calibrated on {fit.attrs['sotlat']['arch']['name']} ({args.fit}), nominal peak {peak} TFLOPS, bandwidth {bandwidth} GB/s")
    for phase in ("prefill", "decode"):
        p, e = getattr(cal, phase), errors[phase]
        print(f"  {phase:<8} MFU {p.mfu:.3g} MBU {p.mbu:.3g} overhead {p.layer_overhead_ms:.3f} ms/layer; "
              f"fit: median |error| {e['median_abs_pct']:.1f}%, P90 {e['p90_abs_pct']:.1f}%")
    meta = target.attrs["sotlat"]
    shapes, flops, _ = shapes_and_flops(meta["arch"]["name"], AutoConfig.for_model(**meta["arch"]["config"]), meta["dtype"])
    device = {"peak_tflops": peak, "bandwidth_gbps": bandwidth}
    print(f"predicting {target.attrs['sotlat']['arch']['name']} ({args.predict}):")
    for phase in ("prefill", "decode"):
        cells = target[(target["phase"] == phase) & (target["status"] == "ok")]
        predicted = simulate_cells(shapes, flops, device, cal, phase, cells["batch"].to_numpy(), cells["length"].to_numpy())["latency_ms"]
        e = error_stats(relative_pct(predicted, cells["latency_ms"]))
        print(f"  {phase:<8} {e['n']} cells: median |error| {e['median_abs_pct']:.1f}%, "
              f"P90 {e['p90_abs_pct']:.1f}%, median signed {e['median_signed_pct']:+.1f}%")


if __name__ == "__main__":
    main()
