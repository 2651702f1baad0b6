"""What a profile will cost before it runs: the forward passes the profiler makes, at a table's
latencies (simulated for a GPU you are about to profile), and batch shards that fit a time limit.

The profiler's time is its forward passes: `prefill_runs` passes per prefill cell (warm-up
included) and `decode_warmup` + `decode_runs` sweeps over each batch's decode cells. Left out: building the model and
the one-token prefill that starts each sweep. On the repo's measured CPU tables this sum comes
within 2% of the elapsed time the profiler recorded (tests/test_simulator.py).
"""

from __future__ import annotations

import json
import shlex

import pandas as pd

from sotlat.errors import InputError
from sotlat.simulator.simulate import does_not_fit, simulate_table
from sotlat.tables.grid import check_runs, format_batches


def profile_seconds(table: pd.DataFrame, prefill_runs: int, decode_runs: int, decode_warmup: int) -> pd.DataFrame:
    """Seconds each batch of `table` takes to profile: columns batch, prefill_s, decode_s, total_s."""
    ok = table[table["status"] == "ok"]
    ms = (ok.groupby(["batch", "phase"])["latency_ms"].sum().unstack("phase")
          .reindex(index=sorted(table["batch"].unique()), columns=["prefill", "decode"]).fillna(0.0))
    seconds = pd.DataFrame({"prefill_s": ms["prefill"] * prefill_runs / 1e3, "decode_s": ms["decode"] * (decode_warmup + decode_runs) / 1e3})
    seconds["total_s"] = seconds["prefill_s"] + seconds["decode_s"]
    return seconds.rename_axis("batch").reset_index()


def shards(seconds: pd.DataFrame, limit_s: float) -> list[list[int]]:
    """Consecutive batches grouped so that each group's time stays within `limit_s`; a batch over
    the limit on its own is a group of one (its command is cut short and continued with --resume)."""
    groups, current, used = [], [], 0.0
    for batch, total in zip(seconds["batch"], seconds["total_s"]):
        if current and used + total > limit_s:
            groups.append(current)
            current, used = [], 0.0
        current.append(int(batch))
        used += total
    return groups + [current] if current else groups


def balanced(seconds: pd.DataFrame, n: int) -> list[list[int]]:
    """Consecutive batches in at most `n` groups whose longest takes as little time as it can: the
    least limit under which `shards` makes no more than `n` groups (bisected)."""
    low, high = float(seconds["total_s"].max()), float(seconds["total_s"].sum())
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if len(shards(seconds, middle)) <= n else (middle, high)
    return shards(seconds, high)


def plan_profile(gpu: str, arch: str | None = None, config: str | None = None, dtype: str = "float16", calibration: str = "hf-eager",
                 batches: str = "1-16", prefill_lengths: str = "1:700:10", decode_max: int = 1024, prefill_runs: int = 7,
                 prefill_warmup: int = 2, decode_runs: int = 3, decode_warmup: int = 1, shard_minutes: float = 9.0,
                 peak_tflops: float | None = None, bandwidth_gbps: float | None = None) -> dict:
    """What `sotlat profile` of this grid will cost on `gpu` (simulated): seconds per batch, shards of
    batches within `shard_minutes` each with its `sotlat profile` command, and the merge command."""
    check_runs(prefill_runs, prefill_warmup)
    spec, table = simulate_table(gpu, arch, config, dtype, calibration, batches, prefill_lengths, decode_max, peak_tflops, bandwidth_gbps)
    if too_big := does_not_fit(spec, table):
        raise InputError(f"`gpu` {too_big}; nothing to plan")
    name, seconds = table.attrs["sotlat"].arch.name, profile_seconds(table, prefill_runs, decode_runs, decode_warmup)
    command = (f"sotlat profile {f'--arch {arch}' if arch else f'--config {shlex.quote(str(config))}'} --dtype {dtype} --prefill-lengths {prefill_lengths} "
               f"--decode-max {decode_max} --prefill-runs {prefill_runs} --prefill-warmup {prefill_warmup} --decode-runs {decode_runs} "
               f"--decode-warmup {decode_warmup}")
    planned = []
    for group in shards(seconds, shard_minutes * 60):
        text = format_batches(group)
        out = f"{name}__b{text.replace(',', '_')}.parquet"
        planned.append({"batches": text, "seconds": float(seconds.loc[seconds["batch"].isin(group), "total_s"].sum()), "out": out,
                        "command": f"{command} --batches {text} --out {shlex.quote(out)} --resume"})
    merge = f"sotlat tables merge {' '.join(shlex.quote(s['out']) for s in planned)} -o {shlex.quote(name + '.parquet')}" if len(planned) > 1 else None
    return {"gpu": spec["id"], "gpu_name": spec["name"], "arch": name, "dtype": dtype, "calibration": table.attrs["sotlat"].method.calibration["name"],
            "total_s": float(seconds["total_s"].sum()), "oom_cells": int((table["status"] == "oom").sum()),
            "per_batch": json.loads(seconds.to_json(orient="records")), "shard_limit_s": shard_minutes * 60, "shards": planned, "merge": merge}
