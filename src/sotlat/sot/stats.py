"""Token-length statistics of traces, as the paper's Fig. 12: points per question; lengths of the
skeleton, the points and the normal answer; per category."""

from __future__ import annotations

import numpy as np
import pandas as pd

STAT_COLUMNS = ["category", "n", "fallbacks", "points", "skeleton_tokens", "point_tokens", "longest_point_tokens",
                "normal_tokens", "normal_at_limit"]


def per_trace(records: list[tuple[str, dict]]) -> pd.DataFrame:
    rows = []
    for _, t in records:
        points = [p["completion_tokens"] for p in t["sot"]["points"]] if "sot" in t else []
        skeleton = (t.get("sot") or t.get("sot_fallback") or {}).get("skeleton", {})
        normal = t.get("normal", {}).get("completion_tokens")
        rows.append({"id": t["id"], "category": t.get("category") or "-", "fallback": "sot" not in t,
                     "points": len(points) or np.nan, "skeleton_tokens": skeleton.get("completion_tokens", np.nan),
                     "point_tokens": np.mean(points) if points else np.nan, "longest_point_tokens": max(points, default=np.nan),
                     "normal_tokens": normal if normal is not None else np.nan,
                     "normal_at_limit": normal is not None and normal == t.get("max_new_tokens")})
    return pd.DataFrame(rows)


def summarize_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """Means per category (then 'all'); fallbacks and answers cut at max-new-tokens are counts."""
    means = ["points", "skeleton_tokens", "point_tokens", "longest_point_tokens", "normal_tokens"]

    def agg(group: pd.DataFrame, category: str) -> dict:
        return {"category": category, "n": len(group), "fallbacks": int(group["fallback"].sum()),
                **{c: float(group[c].mean()) for c in means}, "normal_at_limit": int(group["normal_at_limit"].sum())}

    rows = [agg(g, c) for c, g in frame.groupby("category", sort=True)] + [agg(frame, "all")]
    return pd.DataFrame(rows, columns=STAT_COLUMNS)
