"""The profiler's decode sweep against timing each decode cell alone: same values, and the cost of each.

Sweep (the profiler's method, `decode_sweep`): prefill 1 token, then K single-token steps back to
back, each between timer marks of its own, one host sync at the end; step k is cell (B, k). Isolated:
for one cell (B, k), prefill k tokens, then time one step between two marks, read at once
(`--isolated-warmup` untimed runs first). Both see k cached tokens before the timed step, take the
geometric mean of `--runs` runs, and run in this one process on the same model, taking turns
(a sweep, then one run of each isolated cell, and again).

Usage: python benchmarks/sweep_vs_isolated.py --arch llama-7b --batches 1,8,16 --ks 1,256,512,1024
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sotlat.models.archs import build_model, load_config
from sotlat.models.device import default_device, describe_device
from sotlat.models.dtypes import default_dtype, torch_dtype
from sotlat.profiler.memory import memory_tracker_for
from sotlat.profiler.run import decode_sweep
from sotlat.tables.stats import geomean
from sotlat.models.steps import decode_step, prefill
from sotlat.profiler.timer import timer_for
from sotlat.tables.grid import parse_batches


def isolated_step_ms(model, device: str, vocab: int, batch: int, k: int, timer) -> float:
    """One decode step timed alone against a cache prefilled with k tokens."""
    ids = torch.randint(vocab, (batch, k + 1), device=device)
    cache = prefill(model, ids[:, :k])
    marks = [timer.mark()]
    decode_step(model, ids[:, k : k + 1], cache)
    marks.append(timer.mark())
    return timer.intervals_ms(marks)[0]


def _cv(runs: list[float]) -> float:
    return float(np.std(runs) / np.mean(runs))


def compare(model, device: str, vocab: int, batches: list[int], ks: list[int], runs: int, isolated_warmup: int = 1) -> dict:
    """Per cell (B, k): both methods' latency and CV; and the wall time each method took."""
    timer, memory = timer_for(device), memory_tracker_for(device)
    rows, cost = [], {"sweep_s": 0.0, "isolated_s": 0.0}
    for batch in batches:
        t0 = time.perf_counter()
        for k in ks * isolated_warmup:
            isolated_step_ms(model, device, vocab, batch, k, timer)
        cost["isolated_s"] += time.perf_counter() - t0
        sweeps, alone = [], {k: [] for k in ks}
        for _ in range(runs):  # the methods take turns, so that a drift of the machine's speed touches both alike
            t0 = time.perf_counter()
            sweeps.append(decode_sweep(model, device, vocab, batch, max(ks), timer, memory)[0])
            t1 = time.perf_counter()
            for k in ks:
                alone[k].append(isolated_step_ms(model, device, vocab, batch, k, timer))
            cost["sweep_s"] += t1 - t0
            cost["isolated_s"] += time.perf_counter() - t1
        for k in ks:
            swept = [s[k - 1] for s in sweeps]
            rows.append({"batch": batch, "k": k, "sweep_ms": geomean(swept), "sweep_cv": _cv(swept),
                         "isolated_ms": geomean(alone[k]), "isolated_cv": _cv(alone[k])})
    for r in rows:
        r["ratio"] = r["isolated_ms"] / r["sweep_ms"]
    return {"rows": rows, **cost, "sweep_cells": len(batches) * max(ks), "isolated_cells": len(batches) * len(ks), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--config", default=None, help="An HF config.json instead of --arch.")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, help="Default float16 on GPU, float32 on CPU.")
    parser.add_argument("--batches", default="1,8,16")
    parser.add_argument("--ks", default="1,256,512,1024", help="Decode cells k to compare (the sweep runs to the largest).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--isolated-warmup", type=int, default=1)
    args = parser.parse_args()
    device = args.device or default_device()
    dtype = args.dtype or default_dtype(device)
    name, config = load_config(args.arch, args.config)
    model = build_model(config, device, torch_dtype(dtype))
    ks = parse_batches(args.ks, "--ks")
    r = compare(model, device, config.vocab_size, parse_batches(args.batches), ks, args.runs, args.isolated_warmup)

    print(f"machine: {describe_device(device)['name']}; torch {torch.__version__}; {name} {dtype}; {r['runs']} runs per cell, "
          f"geometric mean; isolated: {args.isolated_warmup} warm-up run(s) per cell")
    print(f"{'batch':>5} {'k':>6} {'sweep ms':>10} {'CV':>6} {'isolated ms':>12} {'CV':>6} {'isolated/sweep':>15}")
    for row in r["rows"]:
        print(f"{row['batch']:>5} {row['k']:>6} {row['sweep_ms']:>10.3f} {row['sweep_cv']:>6.1%} "
              f"{row['isolated_ms']:>12.3f} {row['isolated_cv']:>6.1%} {row['ratio']:>15.3f}")
    diffs = np.abs([row["ratio"] - 1 for row in r["rows"]])
    print(f"|isolated/sweep - 1|: median {np.median(diffs):.1%}, max {diffs.max():.1%}")
    per_sweep_cell = r["sweep_s"] / (r["sweep_cells"] * r["runs"])
    per_isolated_cell = r["isolated_s"] / (r["isolated_cells"] * r["runs"])
    print(f"cost: sweep {r['sweep_s']:.1f} s for {r['sweep_cells']:,} cells x {r['runs']} runs ({per_sweep_cell * 1e3:.2f} ms a cell-run); "
          f"isolated {r['isolated_s']:.1f} s for {r['isolated_cells']} cells x {r['runs']} runs, warm-up included "
          f"({per_isolated_cell * 1e3:.2f} ms a cell-run); ratio {per_isolated_cell / per_sweep_cell:.1f}x a cell-run")


if __name__ == "__main__":
    main()
