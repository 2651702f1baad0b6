"""estimate() (NumPy prefix sums and gathers) against a plain per-trace Python loop of Eq. 1-4.

Both run in this one process on the same table and traces; the script checks that they agree,
then prints both times and the ratio. Usage: python benchmarks/estimate_vs_loop.py [--n 200000]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import pandas as pd

from sotlat.estimator import estimate, traces_frame
from sotlat.models.device import describe_device
from sotlat.tables.io import empty_cells, with_meta


def paper_grid_table(seed: int = 0) -> pd.DataFrame:
    """A table on the paper's full grid (B 1-16, prefill range(1, 700, 10), decode k 1..1024), random values."""
    rng = np.random.default_rng(seed)
    parts = []
    for phase, lengths in (("prefill", np.arange(1, 700, 10)), ("decode", np.arange(1, 1025))):
        b, l = (x.ravel() for x in np.meshgrid(np.arange(1, 17), lengths, indexing="ij"))
        lat = (20.0 + b + 0.01 * l) * rng.uniform(0.95, 1.05, len(b))
        parts.append(pd.DataFrame({"phase": phase, "batch": b.astype("int32"), "length": l.astype("int32"), "latency_ms": lat,
                                   "runs_ms": [[x] for x in lat], "peak_memory_bytes": (1e9 + 1e6 * b * l).astype("int64"),
                                   "flops": 1e10 * b + 1e6 * b * l, "status": "ok"}))
    table = pd.concat([empty_cells(), *parts], ignore_index=True)
    with_meta(table, {"schema_version": 2, "arch": {"name": "bench", "config": {}}, "device": {"name": "bench"}, "dtype": "float16", "created_at": "",
                      "method": {"grid": {"batches": list(range(1, 17)), "prefill_lengths": {"start": 1, "stop": 700, "step": 10}, "decode_max": 1024}}})
    return table


def random_traces(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 17))
        out.append({"id": f"t{i}", "category": ["generic", "knowledge", "math"][i % 3], "model": "bench",
                    "normal": {"prompt_tokens": int(rng.integers(20, 300)), "completion_tokens": int(rng.integers(50, 700))},
                    "sot": {"skeleton": {"prompt_tokens": int(rng.integers(200, 400)), "completion_tokens": int(rng.integers(10, 100))},
                            "points": [{"prompt_tokens": int(rng.integers(100, 600)), "completion_tokens": int(rng.integers(10, 300))} for _ in range(k)]}})
    return out


def loop_estimate(table: pd.DataFrame, traces: list[dict]) -> list[dict]:
    """Eq. 1-4 the plain way: one trace at a time, one table cell at a time."""
    cells = {(r.phase, r.batch, r.length): (r.latency_ms, r.flops, r.peak_memory_bytes) for r in table.itertuples()}

    def stage(l_in, l_out, b):
        prefill, _, mem = cells[("prefill", b, (l_in // 10) * 10 + 1)]
        decode = flops = 0.0
        for k in range(l_in, l_in + l_out + 1):
            t, f, m = cells[("decode", b, k)]
            decode, flops, mem = decode + t, flops + f, max(mem, m)
        return prefill, decode, flops / (decode * 1e9), mem

    rows = []
    for t in traces:
        n = stage(t["normal"]["prompt_tokens"], t["normal"]["completion_tokens"], 1)
        sk = t["sot"]["skeleton"]
        s = stage(sk["prompt_tokens"], sk["completion_tokens"], 1)
        pts = t["sot"]["points"]
        p = stage(max(x["prompt_tokens"] for x in pts), max(x["completion_tokens"] for x in pts), len(pts))
        normal, sot = n[0] + n[1], s[0] + s[1] + p[0] + p[1]
        rows.append({"normal_ms": normal, "sot_ms": sot, "speedup": normal / sot, "normal_decode_tflops": n[2],
                     "skeleton_decode_tflops": s[2], "points_decode_tflops": p[2],
                     "normal_peak_memory_bytes": n[3], "sot_peak_memory_bytes": max(s[3], p[3])})
    return rows


def compare(n: int) -> dict:
    table = paper_grid_table()
    traces = random_traces(n)
    frame = traces_frame((t["id"], t) for t in traces)  # parsing is not part of either timing
    t0 = time.perf_counter()
    fast = estimate(table, frame)
    t1 = time.perf_counter()
    slow = pd.DataFrame(loop_estimate(table, traces))
    t2 = time.perf_counter()
    for column in slow.columns:
        np.testing.assert_allclose(fast[column].to_numpy(dtype=float), slow[column].to_numpy(dtype=float), rtol=1e-9)
    return {"traces": n, "vectorised_s": t1 - t0, "loop_s": t2 - t1, "ratio": (t2 - t1) / (t1 - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    r = compare(parser.parse_args().n)
    print(f"machine: {describe_device('cpu')['name']}, {os.cpu_count()} logical CPUs, python {platform.python_version()}")
    print(f"{r['traces']:,} traces, same results: estimate() {r['vectorised_s']:.3f} s, "
          f"per-trace loop {r['loop_s']:.2f} s, ratio {r['ratio']:.0f}x ({math.log10(r['ratio']):.1f} orders)")


if __name__ == "__main__":
    main()
