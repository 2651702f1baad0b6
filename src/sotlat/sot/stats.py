"""Token-length statistics of traces, as the paper's Fig. 12: points per question (12a); lengths of
the normal answer (12b), the longest and the mean point (12c, 12d), their balance (12e: longest /
mean point) and the final SoT answer (12f: the points' answers together); the skeleton; per model x category,
as the figure has one column per model."""

from __future__ import annotations

import numpy as np
import pandas as pd

STAT_COLUMNS = ["model", "category", "n", "fallbacks", "points", "skeleton_tokens", "skeleton_at_limit", "point_tokens",
                "longest_point_tokens", "point_imbalance", "sot_answer_tokens", "normal_tokens", "normal_at_limit"]


def per_trace(records: list[tuple[str, dict]]) -> pd.DataFrame:
    rows = []
    for _, t in records:
        points = [p["completion_tokens"] for p in t["sot"]["points"]] if "sot" in t else []
        skeleton = (t.get("sot") or t.get("sot_fallback") or {}).get("skeleton", {})
        normal = t.get("normal", {}).get("completion_tokens")
        limit = t.get("max_new_tokens")
        rows.append({"id": t["id"], "model": t.get("model") or "-", "category": t.get("category") or "-", "fallback": "sot" not in t,
                     "points": len(points) or np.nan, "skeleton_tokens": skeleton.get("completion_tokens", np.nan),
                     "skeleton_at_limit": np.nan if limit is None else skeleton.get("completion_tokens") == limit,  # unknown limit: no count
                     "point_tokens": np.mean(points) if points else np.nan, "longest_point_tokens": max(points, default=np.nan),
                     "point_imbalance": max(points) / np.mean(points) if points and np.mean(points) else np.nan,
                     "sot_answer_tokens": sum(points) if points else np.nan,
                     "normal_tokens": normal if normal is not None else np.nan,
                     "normal_at_limit": np.nan if limit is None else normal == limit})
    return pd.DataFrame(rows)


def summarize_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Means per model x category (then 'all' per model); fallbacks and skeletons or answers cut at
    max-new-tokens are counts, the latter NA where no trace records its limit (a replay of traces
    that did not). Models are never averaged together."""
    counts = {"fallbacks": "fallback", "skeleton_at_limit": "skeleton_at_limit", "normal_at_limit": "normal_at_limit"}

    def agg(group: pd.DataFrame, model: str, category: str) -> dict:
        means = {c: float(group[c].mean()) for c in STAT_COLUMNS[3:] if c not in counts}
        cut = {c: group[src].astype(float).sum(min_count=1) for c, src in counts.items()}
        return {"model": model, "category": category, "n": len(group), **means, **{c: pd.NA if pd.isna(v) else int(v) for c, v in cut.items()}}

    rows = []
    for model, per_model in frame.groupby("model", sort=False):
        rows += [agg(g, model, c) for c, g in per_model.groupby("category", sort=True)] + [agg(per_model, model, "all")]
    return pd.DataFrame(rows, columns=STAT_COLUMNS).astype({c: "Int64" for c in counts})


def stats_files(traces: list) -> pd.DataFrame:
    """`summarize_lengths` of the traces in trace files (every trace checked, one model's id once)."""
    from sotlat.estimator.traces import read_records, traces_frame

    records = [r for p in traces for r in read_records(p)]
    traces_frame(records)  # checks every trace, and refuses one model's trace id twice
    return summarize_lengths(per_trace(records))
