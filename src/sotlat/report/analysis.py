"""The numbers behind the report's figures, as plain DataFrames (one row per table x point).

Every latency here is a lookup through the estimator (`build_lookup` / `stage`: Eq. 1 and 4), so
the report and `sotlat estimate` can never disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.estimator import estimate_answerable, request_latency, traces_frame
from sotlat.estimator.lookup import build_lookup
from sotlat.estimator.equations import stage
from sotlat.estimator.traces import frame_keys, with_keys
from sotlat.estimator.request import TABLE1_OUTPUT, TABLE1_PROMPT
from sotlat.tables.stats import decode_floor_ms, dispersion_warning, label, run_cv

HIGH_CV = 0.10
# The SoT what-if's requests: prompt tokens of the normal request, the skeleton request (the paper's
# Prompt 1 and the question) and each point's (Prompt 2, the question and the skeleton); the skeleton
# writes SKELETON_TOKENS_PER_POINT tokens a point; the longest point is (1 + imbalance) x the mean.
WHATIF_PROMPTS = {"normal": 50, "skeleton": 300, "point": 200}
SKELETON_TOKENS_PER_POINT = 8
WHATIF_ANSWER = 400  # tokens of the normal answer the what-if splits into points
WHATIF_IMBALANCE = (0.0, 0.5, 1.0)


def batches(table: pd.DataFrame) -> np.ndarray:
    return np.array(sorted(table["batch"].unique()))


def fig3(table: pd.DataFrame, prompt: int = TABLE1_PROMPT, decoded: int = TABLE1_OUTPUT) -> pd.DataFrame:
    """The paper's Fig. 3 per batch: T(128, 64, B) split into prefill and decode, P^D (Eq. 4), peak
    memory, as `sotlat latency` computes them; `missing` names the cells a batch lacks."""
    r = request_latency(table, prompt, decoded)
    return pd.DataFrame({"table": label(table), "batch": r["batch"], "prefill_ms": r["prefill_ms"], "decode_ms": r["decode_ms"],
                         "total_ms": r["latency_ms"], "decode_tflops": r["decode_tflops"],
                         "decode_utilization": r["decode_utilization"] if "decode_utilization" in r else np.nan,
                         "peak_memory_gb": r["peak_memory_bytes"] / 1e9, "missing": r["missing"]})


def decode_grid(table: pd.DataFrame) -> pd.DataFrame:
    d = table[table["phase"] == "decode"]
    return d.pivot(index="batch", columns="length", values="latency_ms")


def shown_batches(table: pd.DataFrame, most: int = 8) -> np.ndarray:
    """The batches one line each can show legibly: all of them up to `most`, else `most` spread
    evenly from the smallest to the largest."""
    b = batches(table)
    return b if len(b) <= most else b[np.unique(np.round(np.linspace(0, len(b) - 1, most)).astype(int))]


def prefill_curves(table: pd.DataFrame) -> pd.DataFrame:
    p = table[(table["phase"] == "prefill") & table["batch"].isin(shown_batches(table))]
    return p[["batch", "length", "latency_ms", "status"]].assign(table=label(table))


def floor_curve(table: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    d = table[(table["phase"] == "decode") & (table["batch"] == 1)]
    return d[["length", "latency_ms"]].assign(table=label(table)), decode_floor_ms(table.attrs["sotlat"])


def quality(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The coefficient of variation of each ok cell with repeated runs (a simulated table has none);
    the cells above HIGH_CV and the OOM cells."""
    ok = table[table["status"] == "ok"].assign(cv=run_cv(table), table=label(table)).dropna(subset=["cv"])
    flagged = pd.concat([ok[ok["cv"] > HIGH_CV].assign(flag="high CV"),
                         table[table["status"] != "ok"].assign(table=label(table), flag=lambda x: x["status"])])
    return ok[["table", "phase", "batch", "length", "cv"]], flagged[["table", "phase", "batch", "length", "flag"]]


def measurement_quality(table: pd.DataFrame) -> pd.DataFrame:
    """Per phase of a measured table: the median and P90 CV of its cells' runs, for decode the decode
    warm-up and how far its measured sweeps' medians lie apart, and the profile's warning if any."""
    meta = table.attrs["sotlat"]
    d, warning = meta.dispersion, dispersion_warning(meta)
    warmup = meta.method.decode.warmup if meta.method.decode else None
    pct = lambda x: None if x is None else round(100 * x, 1)  # noqa: E731
    return pd.DataFrame([{"table": label(table), "phase": phase, "cells": getattr(d, phase).cells, "median_cv_pct": pct(getattr(d, phase).median_cv),
                          "p90_cv_pct": pct(getattr(d, phase).p90_cv),
                          "decode_warmup": ("none recorded" if warmup is None else str(warmup)) if phase == "decode" else "",
                          "sweeps_apart_pct": pct(d.decode.sweep_spread) if phase == "decode" else None,
                          "warning": (warning or "") if phase == "decode" else ""}
                         for phase in ("prefill", "decode") if getattr(d, phase).cells])


def why_sot(table: pd.DataFrame, estimates: pd.DataFrame, traces: pd.DataFrame) -> str:
    """Why SoT pays off or not for the estimated traces on this table, in the two numbers it turns on:
    how much more a decode step of the traces' usual point batch costs than one of a single sequence
    on this device, and how long the longest point runs against the normal answer."""
    sot = with_keys(traces, frame_keys(estimates))
    sot = sot[sot["num_points"].notna()]
    if estimates.empty or sot.empty:
        return ""
    decode = table[(table["phase"] == "decode") & (table["status"] == "ok")].set_index(["batch", "length"])["latency_ms"]
    batch, k = int(sot["num_points"].mode().iloc[0]), min(TABLE1_PROMPT, int(table.loc[table["phase"] == "decode", "length"].max()))
    skeleton, longest, normal = (float(sot[c].mean()) for c in ("skeleton_completion", "points_completion", "normal_completion"))
    median, faster = float(estimates["speedup"].median()), float((estimates["speedup"] > 1).mean())
    text = ""
    if (1, k) in decode.index and (batch, k) in decode.index:
        growth = decode[(batch, k)] / decode[(1, k)]
        text = (f"On this table a decode step of {batch} sequences (the point count most of these traces have) takes {growth:.2f}x one of a "
                f"single sequence (t^D_{batch}({k}) = {decode[(batch, k)]:.1f} ms, t^D_1({k}) = {decode[(1, k)]:.1f} ms). ")
        steps = f"about {skeleton:.0f} + {growth:.2f} x {longest:.0f} = {skeleton + growth * longest:,.0f} single steps' time against {normal:.0f}"
    else:
        steps = f"{skeleton:.0f} + {longest:.0f} steps against {normal:.0f}"
    text += (f"SoT's point stage decodes as long as its longest point: {longest:.0f} tokens on average in these traces, against {normal:.0f} "
             f"for the normal answer, after a skeleton of {skeleton:.0f}; so SoT takes {steps} for normal generation. ")
    verdict = "slower for most" if median < 1 else "faster for most"
    return (text + f"It is {verdict} of these questions (median speed-up {median:.2f}x, faster on {faster:.0%}). SoT pays off where the "
            "points are short against the answer and a batched step costs little more than one, as the what-if shows.")


def capacity(table: pd.DataFrame, budget_gb: float | None, headroom: float) -> pd.DataFrame:
    """Per batch: the longest context whose measured peak memory fits the budget, and the
    weights + KV-cache arithmetic beside it."""
    meta = table.attrs["sotlat"]
    total = budget_gb * 1e9 if budget_gb else meta.device.total_memory_bytes
    usable = total * (1 - headroom) if total else np.nan
    shapes = _shapes(table)
    weights = meta.arch.weight_bytes or np.nan
    d = table[(table["phase"] == "decode") & (table["status"] == "ok")]
    rows = []
    for b in batches(table):
        cells = d[(d["batch"] == b) & (d["peak_memory_bytes"] <= usable)]
        rows.append({"table": label(table), "batch": b, "usable_gb": usable / 1e9,
                     "measured_max_context": int(cells["length"].max()) if len(cells) else np.nan,
                     "profiled_max_context": int(d.loc[d["batch"] == b, "length"].max()) if (d["batch"] == b).any() else np.nan,
                     # weights beyond the budget: no context fits, not a negative one; inf: sliding windows bound the cache
                     "arithmetic_max_context": shapes.max_cached(b, usable - weights) if shapes and np.isfinite(usable - weights) else np.nan})
    return pd.DataFrame(rows)


def _shapes(table: pd.DataFrame):
    """The simulator's model of the table's architecture (KV bytes under any HF config's names,
    grouped-query, latent and sliding-window attention); None where this transformers cannot
    rebuild the table's config."""
    from sotlat.models.shapes import shapes_of  # transformers: only when a report needs it

    try:
        return shapes_of(table)
    except InputError:
        return None


def throughput(table: pd.DataFrame, context: int, prompt: int, slo_tpot_ms: float | None, slo_ttft_ms: float | None) -> pd.DataFrame:
    """Per batch: TPOT = t^D_B(context), TTFT = t~^P_B(prompt), decode tokens/s, and whether both objectives hold."""
    b = batches(table)
    step = table[(table["phase"] == "decode") & (table["length"] == context)].set_index("batch")["latency_ms"]
    tpot = step.reindex(b).to_numpy(dtype=float)
    ttft = stage(build_lookup(table), np.full(len(b), prompt), np.zeros(len(b), int), b, np.ones(len(b), bool))["prefill_ms"]
    meets = np.isfinite(tpot) & np.isfinite(ttft)
    if slo_tpot_ms:
        meets &= tpot <= slo_tpot_ms
    if slo_ttft_ms:
        meets &= ttft <= slo_ttft_ms
    return pd.DataFrame({"table": label(table), "batch": b, "context": context, "prompt": prompt, "tpot_ms": tpot,
                         "ttft_ms": ttft, "tokens_per_s": b / tpot * 1e3, "meets_slo": meets})


def estimate_all(table: pd.DataFrame, traces: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimates (decode extrapolated where needed) of every trace the table can answer, and the
    traces it cannot (batch not profiled, oom cells, prompt past the prefill grid) with the reason."""
    estimates, failed = estimate_answerable(table, traces, extrapolate=True)
    return estimates.assign(table=label(table)), failed.assign(table=label(table))[["table", "id", "model", "reason"]]


def sot_whatif(table: pd.DataFrame, answer: int, normal_prompt: int = WHATIF_PROMPTS["normal"], skeleton_prompt: int = WHATIF_PROMPTS["skeleton"],
               point_prompt: int = WHATIF_PROMPTS["point"], imbalance=WHATIF_IMBALANCE) -> pd.DataFrame:
    """Speed-up vs number of points for a normal answer of `answer` tokens split into n points whose
    longest is (1 + imbalance) x the mean; the skeleton is 8 tokens per point."""
    longest_prompt = int(max(table.loc[table["phase"] == "prefill", "length"].max(), 1))
    normal_prompt, skeleton_prompt, point_prompt = (min(p, longest_prompt) for p in (normal_prompt, skeleton_prompt, point_prompt))
    rows, traces = [], []
    for n in batches(table):
        if n < 2:
            continue
        for imb in imbalance:
            longest = int(np.ceil(answer / n * (1 + imb)))
            trace = {"id": f"n{n}-i{imb}", "normal": {"prompt_tokens": normal_prompt, "completion_tokens": answer},
                     "sot": {"skeleton": {"prompt_tokens": skeleton_prompt, "completion_tokens": SKELETON_TOKENS_PER_POINT * int(n)},
                             "points": [{"prompt_tokens": point_prompt, "completion_tokens": longest}] * int(n)}}
            traces.append(trace)
            rows.append({"table": label(table), "answer_tokens": answer, "points": int(n), "imbalance": imb, "longest_point": longest,
                         "normal_prompt": normal_prompt, "skeleton_prompt": skeleton_prompt, "point_prompt": point_prompt})
    frame = pd.DataFrame(rows, columns=["table", "answer_tokens", "points", "imbalance", "longest_point",
                                        "normal_prompt", "skeleton_prompt", "point_prompt"])
    est, failed = estimate_all(table, traces_frame((t["id"], t) for t in traces))
    ids = [t["id"] for t in traces]
    est = est.set_index("id").reindex(ids)  # what the table cannot answer stays NaN, and says why in `missing`
    return frame.assign(speedup=est["speedup"].to_numpy(), extrapolated=est["extrapolated"].to_numpy(),
                        missing=failed.set_index("id")["reason"].reindex(ids).to_numpy())
