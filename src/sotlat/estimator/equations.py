"""The paper's Eq. 1-4 (App. C.2), vectorised over traces with NumPy gathers on a `Lookup`.

Eq. 1  T(l_i, l_o, B) = t~^P_B(l_i) + sum_{k=l_i}^{l_i+l_o} t^D_B(k)   (l_o + 1 decode terms, as printed)
Eq. 2  L^s  = T(l_i^s, l_o^s, 1)
Eq. 3  L^pe = T(max_b l_i^pe, max_b l_o^pe, B),  B = number of points
Eq. 4  P^D  = sum f^D_B(k) / sum t^D_B(k)   over the same k as Eq. 1
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.estimator.lookup import EXTRAPOLATION_REACH, Lookup, build_lookup, range_max
from sotlat.estimator.traces import STAGE_COLUMNS, longest_context, trace_names, traces_frame
from sotlat.tables.grid import format_batches

OUTPUT_COLUMNS = [
    "id", "category", "model", "num_points",
    "normal_ms", "normal_prefill_ms", "normal_decode_ms",
    "skeleton_prefill_ms", "skeleton_decode_ms", "points_prefill_ms", "points_decode_ms",
    "sot_ms", "speedup",
    "normal_decode_tflops", "skeleton_decode_tflops", "points_decode_tflops",
    "normal_peak_memory_bytes", "sot_peak_memory_bytes", "extrapolated",
]
OK, NO_BATCH, PREFILL_RANGE, PREFILL_CELL, DECODE_RANGE, DECODE_CELL = range(6)
# Last decode k of Eq. 1 relative to l_i + l_o: as printed (l_o + 1 terms), or the l_o - 1 steps a
# generation loop runs after the prefill has produced the first token (k = l_i .. l_i + l_o - 2).
DECODE_TERMS = {"printed": 0, "loop": -2}


def check_decode_terms(decode_terms: str) -> None:
    """Refuse a reading of Eq. 1 other than DECODE_TERMS' before any lookup."""
    if decode_terms not in DECODE_TERMS:
        raise InputError(f"expected one of {', '.join(DECODE_TERMS)}, got {decode_terms!r}", param="decode_terms")


def stage(lk: Lookup, l_in, l_out, batch, active, decode_terms: str = "printed") -> dict[str, np.ndarray]:
    """Eq. 1 and Eq. 4 for arrays of stages; `problem` says why a stage cannot be looked up."""
    l_in = np.where(active, l_in, 1)
    hi = np.maximum(l_in + np.where(active, l_out, 0) + DECODE_TERMS[decode_terms], l_in - 1)
    batch = np.where(active, batch, 1)
    problem = np.zeros(len(l_in), dtype=np.int64)

    b_ok = (batch <= lk.b_cap) & np.isin(batch, lk.batches)
    b = np.where(b_ok, batch, 0)
    j = lk.grid.index(l_in)
    j_ok = j < lk.prefill_ms.shape[1]
    j = np.where(j_ok, j, 0)
    prefill = lk.prefill_ms[b, j]
    prefill_mem = lk.prefill_mem[b, j]

    covered = (hi <= lk.decode_last[b]) | ((hi <= lk.k_cap) & (lk.first_extrapolated[b] <= lk.decode_last[b] + 1))
    first, h = np.where(covered, l_in, 1), np.where(covered, hi, 1)
    decode = lk.decode_cum_ms[b, h] - lk.decode_cum_ms[b, first - 1]
    bad = lk.decode_cum_bad[b, h] - lk.decode_cum_bad[b, first - 1]
    flops = lk.decode_cum_flops[b, h] - lk.decode_cum_flops[b, first - 1]
    no_flops = lk.decode_cum_noflops[b, h] - lk.decode_cum_noflops[b, first - 1]
    decode_mem = np.where(h >= first, range_max(lk.decode_mem_levels, b, first, np.maximum(h, first)), np.nan)

    problem[bad > 0] = DECODE_CELL
    problem[~covered] = DECODE_RANGE
    problem[np.isnan(prefill)] = PREFILL_CELL
    problem[~j_ok] = PREFILL_RANGE
    problem[~b_ok] = NO_BATCH
    problem[~active] = OK
    nan = ~active | (problem != OK)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tflops = flops / decode / 1e9
    out = {
        "prefill_ms": prefill,
        "decode_ms": decode,
        "decode_tflops": np.where(no_flops > 0, np.nan, tflops),
        "peak_memory_bytes": np.fmax(prefill_mem, decode_mem),
    }
    out = {k: np.where(nan, np.nan, v) for k, v in out.items()}
    out["problem"] = problem
    out["extrapolated"] = active & (hi >= lk.first_extrapolated[b])
    out["hi"] = hi
    return out


def estimate(table: pd.DataFrame, traces, extrapolate: bool = False, peak_tflops: float | None = None,
             decode_terms: str = "printed") -> pd.DataFrame:
    """Normal vs SoT latency, speed-up, decode TFLOPS and peak memory per trace (Eq. 1-4).

    `decode_terms`: "printed" (Eq. 1 as printed, l_o + 1 decode terms) or "loop" (l_o - 1).
    Raises InputError naming the first trace the table cannot answer.
    """
    out, unanswered = estimate_answerable(table, traces, extrapolate, peak_tflops, decode_terms)
    if len(unanswered):
        raise unanswered_error(unanswered)
    return out


def unanswered_error(unanswered: pd.DataFrame) -> InputError:
    """The error naming the first trace a table cannot answer and why, and how many more fail."""
    n = len(unanswered) - 1
    more = f" ({n} more trace{'s' if n > 1 else ''} fail{'' if n > 1 else 's'})" if n else ""
    return InputError(f"trace {unanswered['trace'].iloc[0]}: {unanswered['reason'].iloc[0]}{more}")


def estimate_answerable(table: pd.DataFrame, traces, extrapolate: bool = False, peak_tflops: float | None = None,
                        decode_terms: str = "printed") -> tuple[pd.DataFrame, pd.DataFrame]:
    """`estimate` of the traces the table answers, and the others as (id, model, trace: how to name
    it, reason): a batch it lacks, a prompt past its prefill grid, an oom cell, decode past its k
    (without `extrapolate`)."""
    check_decode_terms(decode_terms)
    if not isinstance(traces, pd.DataFrame):
        traces = traces_frame((f"trace {i}", t) for i, t in enumerate(traces))
    col = lambda name: traces[name].fillna(0).to_numpy(dtype=np.int64)  # noqa: E731
    has_normal = traces["normal_prompt"].notna().to_numpy()
    has_sot = traces["skeleton_prompt"].notna().to_numpy()
    lk = build_lookup(table, longest_context(traces), extrapolate)

    stages = {
        "normal": stage(lk, col("normal_prompt"), col("normal_completion"), 1, has_normal, decode_terms),
        "skeleton": stage(lk, col("skeleton_prompt"), col("skeleton_completion"), 1, has_sot, decode_terms),
        "points": stage(lk, col("points_prompt"), col("points_completion"), col("num_points"), has_sot, decode_terms),
    }
    failing = np.any([st["problem"] != OK for st in stages.values()], axis=0)
    unanswered = pd.DataFrame({"id": traces["id"][failing].to_numpy(), "model": traces["model"][failing].to_numpy(),
                               "trace": np.array(trace_names(traces), dtype=object)[failing],
                               "reason": [_problem(traces, stages, lk, col("num_points"), row) for row in np.flatnonzero(failing)]},
                              columns=["id", "model", "trace", "reason"])

    n, s, p = stages["normal"], stages["skeleton"], stages["points"]
    out = pd.DataFrame({"id": traces["id"], "category": traces["category"], "model": traces["model"]})
    out["num_points"] = traces["num_points"]
    out["normal_prefill_ms"], out["normal_decode_ms"] = n["prefill_ms"], n["decode_ms"]
    out["normal_ms"] = n["prefill_ms"] + n["decode_ms"]
    for name, st in (("skeleton", s), ("points", p)):
        out[f"{name}_prefill_ms"], out[f"{name}_decode_ms"] = st["prefill_ms"], st["decode_ms"]
    out["sot_ms"] = s["prefill_ms"] + s["decode_ms"] + p["prefill_ms"] + p["decode_ms"]
    out["speedup"] = out["normal_ms"] / out["sot_ms"]
    for name, st in stages.items():
        out[f"{name}_decode_tflops"] = st["decode_tflops"]
    out["normal_peak_memory_bytes"] = n["peak_memory_bytes"]
    out["sot_peak_memory_bytes"] = np.fmax(s["peak_memory_bytes"], p["peak_memory_bytes"])
    out["extrapolated"] = n["extrapolated"] | s["extrapolated"] | p["extrapolated"]
    out = out[OUTPUT_COLUMNS]
    peak = peak_tflops or table.attrs["sotlat"].device.peak_tflops
    if peak:
        for name in stages:
            out[f"{name}_decode_utilization"] = out[f"{name}_decode_tflops"] / peak
    for name in ("normal", "sot"):
        if traces[f"recorded_{name}_ms"].notna().any():
            out[f"recorded_{name}_ms"] = traces[f"recorded_{name}_ms"].to_numpy()
    return out[~failing].reset_index(drop=True), unanswered


def _problem(traces, stages, lk: Lookup, num_points, row: int) -> str:
    """Why the table cannot answer trace `row`: its first stage (normal, skeleton, points) that fails."""
    name = next(name for name, st in stages.items() if st["problem"][row] != OK)
    st = stages[name]
    l_in = int(traces[STAGE_COLUMNS[name][0]].iloc[row])
    batch = int(num_points[row]) if name == "points" else 1
    return f"{name} stage needs {missing_cells(lk, int(st['problem'][row]), l_in, int(st['hi'][row]), batch)}"


def missing_cells(lk: Lookup, code: int, l_in: int, hi: int, batch: int) -> str:
    """What a stage (prompt `l_in`, decode up to k = `hi`, at `batch`) needs that the table lacks,
    for a `problem` code of `stage`."""
    j = int(lk.grid.index(l_in))
    cell = lk.grid.start + j * lk.grid.step
    if code == NO_BATCH:
        return f"batch {batch}, but the table has batches {format_batches(lk.batches)}"
    if code == PREFILL_RANGE:
        return f"t^P_{batch}({cell}) for a {l_in}-token prompt, but the prefill grid ends at {lk.grid.lengths[-1]}"
    if code == PREFILL_CELL:
        status = lk.prefill_status[batch, j] or "not measured"
        return f"t^P_{batch}({cell}) for a {l_in}-token prompt, which is {status} in the table"
    if code == DECODE_RANGE:
        profiled = int(lk.decode_last.max())
        reach = EXTRAPOLATION_REACH * profiled
        extending = lk.k_cap > profiled  # extrapolating already, and still short
        return (f"t^D_{batch}(k) up to k={hi}, but the table's decode for batch {batch} ends at k={int(lk.decode_last[batch])} "
                + (f"(extrapolated, it reaches k={reach} at most)" if extending else f"(`extrapolate` extends it to k={reach} at most)"))
    k = next(k for k in range(l_in, hi + 1) if (batch, k) in lk.decode_status or k > lk.decode_last[batch])
    return f"t^D_{batch}({k}), which is {lk.decode_status.get((batch, k), 'not measured')} in the table"
