"""The paper's actual-latency test (App. C.4): replay traces' token counts on this device.

Random weights of an architecture; each trace's recorded lengths forced: normal = prefill l_i,
then exactly l_o generated tokens; SoT = the skeleton at batch 1, then the points as one
left-padded batch up to the longest point. Timed end to end and per stage with the device
timer through the same generation loop a user runs (`generate`), repeated, median taken.
"""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import torch

from sotlat.sot.generate import generate


def _timed(model, vocab, lengths: list[tuple[int, int]], timer) -> float:
    prompts = [torch.randint(1, vocab, (p,)).tolist() for p, _ in lengths]
    return generate(model, prompts, max(c for _, c in lengths), timer).total_ms


def replay_trace(model, vocab: int, trace: dict, repeats: int, timer) -> dict:
    """Median stage latencies (ms) over `repeats` of the trace's normal run and SoT run."""
    runs = {"normal_ms": [], "skeleton_ms": [], "points_ms": []}
    stage = lambda s: (s["prompt_tokens"], s["completion_tokens"])  # noqa: E731
    for _ in range(repeats):
        if "normal" in trace:
            runs["normal_ms"].append(_timed(model, vocab, [stage(trace["normal"])], timer))
        if "sot" in trace:
            runs["skeleton_ms"].append(_timed(model, vocab, [stage(trace["sot"]["skeleton"])], timer))
            runs["points_ms"].append(_timed(model, vocab, [stage(p) for p in trace["sot"]["points"]], timer))
    measured = {k: statistics.median(v) for k, v in runs.items() if v}
    if "sot" in trace:
        sot_runs = [s + p for s, p in zip(runs["skeleton_ms"], runs["points_ms"])]
        measured["sot_ms"] = statistics.median(sot_runs)
        runs["sot_ms"] = sot_runs
    if "normal_ms" in measured and "sot_ms" in measured:
        measured["speedup"] = measured["normal_ms"] / measured["sot_ms"]
    measured["runs"] = {k: v for k, v in runs.items() if v}
    return measured


def stratified(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` traces stratified by model and category: shares proportional to the groups' sizes
    (largest remainders), evenly spaced within each group in file order. Deterministic, in file order."""
    if n >= len(frame):
        return frame
    groups = list(frame.groupby([frame["model"].fillna("-"), frame["category"].fillna("-")], sort=False).indices.values())
    quota = np.array([len(rows) for rows in groups]) * n / len(frame)
    share = np.floor(quota).astype(int)
    share[np.argsort(-(quota - share), kind="stable")[: n - share.sum()]] += 1
    picked = [rows[int((j + 0.5) * len(rows) / k)] for rows, k in zip(groups, share) for j in range(k)]
    return frame.iloc[sorted(picked)]


def measured_record(trace: dict, measured: dict, **about) -> dict:
    """The output line: the trace's id, category and token counts, what was measured, and how."""
    lengths = lambda s: {"prompt_tokens": s["prompt_tokens"], "completion_tokens": s["completion_tokens"]}  # noqa: E731
    line = {"id": trace["id"], "category": trace.get("category"), "model": trace.get("model")}
    if "max_new_tokens" in trace:  # what the recorded answers were cut at: stats counts the ones that reached it
        line["max_new_tokens"] = trace["max_new_tokens"]
    if "normal" in trace:
        line["normal"] = lengths(trace["normal"])
    if "sot" in trace:
        line["sot"] = {"skeleton": lengths(trace["sot"]["skeleton"]), "points": [lengths(p) for p in trace["sot"]["points"]]}
    return {**line, "measured": measured, **about}
