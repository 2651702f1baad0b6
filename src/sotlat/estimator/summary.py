"""Per model x category means of the estimates: the paper's Figs. 4-6 as a table."""

from __future__ import annotations

import pandas as pd

SUMMARY_COLUMNS = [
    "model", "category", "n", "speedup", "median_speedup", "total_speedup", "sot_faster", "normal_ms", "sot_ms",
    "skeleton_prefill_ms", "skeleton_decode_ms", "points_prefill_ms", "points_decode_ms",
]


def summarize(estimates: pd.DataFrame) -> pd.DataFrame:
    """Mean speed-up (mean of per-question ratios, as the paper averages), and - since a few large
    ratios can carry a mean - the median, the total speed-up (all the questions' normal latency over
    their SoT latency: whether SoT shortens answering them all, App. C.3's remark on math) and the
    share of questions SoT makes faster; mean latencies.

    One row per model x category, then one 'all' row per model over all its categories.
    """
    frame = _labelled(estimates, "model", "category")
    values = ["speedup", *SUMMARY_COLUMNS[7:]]

    def agg(groups) -> pd.DataFrame:
        means = groups[values].mean()
        means.insert(0, "n", groups.size())
        means.insert(2, "median_speedup", groups["speedup"].median())
        means.insert(3, "total_speedup", groups[["speedup", "normal_ms", "sot_ms"]].apply(total_speedup))
        means.insert(4, "sot_faster", groups["speedup"].apply(lambda s: (s.dropna() > 1).mean()))
        return means.reset_index()

    by_category = agg(frame.groupby(["model", "category"], sort=True))
    overall = agg(frame.groupby("model", sort=True)).assign(category="all")
    table = pd.concat([by_category, overall], ignore_index=True)[SUMMARY_COLUMNS]
    order = table["category"].eq("all")
    return table.assign(_all=order).sort_values(["model", "_all", "category"], kind="stable").drop(columns="_all").reset_index(drop=True)


def total_speedup(estimates: pd.DataFrame) -> float:
    """All the questions' normal latency over their SoT latency, over the traces with both: whether
    SoT shortens answering them all, where a mean of ratios can say 1.2x while it does not (App. C.3)."""
    both = estimates.dropna(subset=["speedup"])
    return float(both["normal_ms"].sum() / both["sot_ms"].sum()) if len(both) else float("nan")


def performance_summary(estimates: pd.DataFrame) -> pd.DataFrame:
    """Per model: each stage's decode performance (Eq. 4, TFLOPS, and utilization where the peak is
    known) as the mean over its traces, and the largest peak memory of normal and SoT - what must fit."""
    frame = _labelled(estimates, "model")
    groups = frame.groupby("model", sort=True)
    stages = ("normal", "skeleton", "points")
    out = groups.size().rename("n").to_frame()
    for stage in stages:
        out[f"{stage}_decode_tflops"] = groups[f"{stage}_decode_tflops"].mean()
    for stage in stages:
        if f"{stage}_decode_utilization" in frame:
            out[f"{stage}_decode_utilization"] = groups[f"{stage}_decode_utilization"].mean()
    for what in ("normal", "sot"):
        out[f"{what}_peak_memory_bytes"] = groups[f"{what}_peak_memory_bytes"].max()
    return out.reset_index()


def _labelled(estimates: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Group keys as text, '-' where a trace did not say (traces may omit model and category)."""
    return estimates.assign(**{c: estimates[c].fillna("-").astype(str) for c in columns})
