"""What a profile will cost before it runs: the forward passes the profiler makes, at a table's
latencies (simulated for a GPU you are about to profile), and batch shards that fit a time limit.

The profiler's time is its forward passes: `prefill_runs` passes per prefill cell (warm-up
included) and `decode_warmup` + `decode_runs` sweeps over each batch's decode cells. Left out: building the model and
the one-token prefill that starts each sweep. On the repo's measured CPU tables this sum comes
within 2% of the elapsed time the profiler recorded (tests/test_simulator.py).
"""

from __future__ import annotations

import pandas as pd


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
