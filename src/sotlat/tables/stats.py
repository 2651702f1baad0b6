"""Measurement quality and physical floors read off a table: what the profiler's summary prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sotlat.tables.meta import DecodeDispersion, Dispersion, PhaseDispersion, TableMeta


def geomean(values) -> float:
    """A cell's latency from its runs: their geometric mean, as the paper aggregates them (App. C.2)."""
    return float(np.exp(np.mean(np.log(values))))


def run_cv(table: pd.DataFrame) -> pd.Series:
    """Coefficient of variation (std / mean) of each ok cell's kept runs; NaN for single runs."""
    ok = table[table["status"] == "ok"]
    return ok["runs_ms"].map(lambda r: float(np.std(r) / np.mean(r)) if len(r) > 1 else np.nan)


def _quantiles(cv: pd.Series) -> dict:
    cv = cv.dropna()
    return {"cells": len(cv), "median_cv": float(cv.median()) if len(cv) else None, "p90_cv": float(cv.quantile(0.9)) if len(cv) else None}


def sweep_medians(table: pd.DataFrame) -> dict[int, list[float]]:
    """Per batch, the median over k of each measured decode sweep's step times, in sweep order (a
    decode cell's runs are one per sweep); the sweeps of a batch should agree."""
    decode = table[(table["phase"] == "decode") & (table["status"] == "ok")]
    medians = {}
    for batch, part in decode.groupby("batch"):
        runs = part["runs_ms"].map(len)
        sweeps = int(runs.min())  # a cell of another length: none here, but never a ragged matrix
        if sweeps:
            matrix = np.array([list(r)[:sweeps] for r in part["runs_ms"]])  # [k, sweep]
            medians[int(batch)] = [float(m) for m in np.median(matrix, axis=0)]
    return medians


def dispersion(table: pd.DataFrame) -> Dispersion:
    """How much a table's measurements scatter, as the metadata's `dispersion` records it: per
    phase the median and P90 coefficient of variation of its cells' runs; for decode also each
    batch's per-sweep medians and their spread (largest / smallest - 1)."""
    cv = run_cv(table)
    phase = table.loc[cv.index, "phase"]
    medians = sweep_medians(table)
    spreads = [max(m) / min(m) - 1 for m in medians.values() if len(m) > 1]
    return Dispersion(PhaseDispersion(**_quantiles(cv[phase == "prefill"])),
                      DecodeDispersion(**_quantiles(cv[phase == "decode"]), sweep_medians_ms={str(b): m for b, m in medians.items()},
                                       sweep_spread=max(spreads) if spreads else None))


DECODE_CV_GOAL = 0.05  # a GPU profile's decode cells: median CV of their runs at most this
SWEEP_SPREAD_GOAL = 0.03  # ... and its measured sweeps' medians within this of each other
BUSY_PCT = 25  # other work on the CPUs (GPU) above this when a run starts: its timings include that work


def dispersion_warning(meta: TableMeta) -> str | None:
    """For a GPU profile whose decode runs scatter more than the goals allow, what is off and its
    likely cause; None for one within them, and for CPU profiles (whose noise docs/method.md
    documents)."""
    if meta.simulated:
        return None
    decode = meta.dispersion.decode
    cv, spread = decode.median_cv, decode.sweep_spread
    if meta.device.kind != "cuda" or not ((cv or 0) > DECODE_CV_GOAL or (spread or 0) > SWEEP_SPREAD_GOAL):
        return None
    found = [f"decode median CV {cv:.1%} (goal <= {DECODE_CV_GOAL:.0%})" if (cv or 0) > DECODE_CV_GOAL else "",
             f"measured sweeps' medians {spread:.1%} apart (goal <= {SWEEP_SPREAD_GOAL:.0%})" if (spread or 0) > SWEEP_SPREAD_GOAL else ""]
    load, warmup = meta.host_load or {}, meta.method.decode.warmup
    # a first sweep distinctly slower than the others, which agree: a cold sweep a warm-up should have taken (not a drift)
    first_slowest = [b for b, m in decode.sweep_medians_ms.items()
                     if len(m) > 1 and m[0] / max(m[1:]) - 1 > SWEEP_SPREAD_GOAL and max(m[1:]) / min(m[1:]) - 1 <= SWEEP_SPREAD_GOAL]
    if not warmup:
        cause = "no warm-up sweep: the first sweep of each batch pays a cost on the first sight of each cache length (docs/method.md); use --decode-warmup 1 or more"
    elif first_slowest:
        cause = f"the first measured sweep is still the slowest (B={', '.join(first_slowest)}): raise --decode-warmup"
    elif (load.get("gpu_busy_pct") or 0) > BUSY_PCT:
        cause = f"other work kept the GPU {load['gpu_busy_pct']:.0f}% busy when the profile started"
    elif (load.get("cpu_busy_pct") or 0) > BUSY_PCT:
        cause = f"other work kept the CPUs {load['cpu_busy_pct']:.0f}% busy: the eager loop is host-bound"
    else:
        cause = "host jitter: the eager decode step is bound by the host's launches (CPU clocks, other processes; docs/method.md)"
    return f"{' and '.join(f for f in found if f)}; likely cause: {cause}"


def is_complete(table: pd.DataFrame) -> bool:
    """False for a profile still under way or interrupted (`progress.complete`)."""
    return table.attrs["sotlat"].progress.complete


def label(table: pd.DataFrame) -> str:
    """What a table is, in figures, reports and summaries: architecture, device, dtype, a backend
    other than eager, and whether it is simulated or an unfinished profile; `distinct_labels` may have set one that names the file."""
    if "label" in table.attrs:
        return table.attrs["label"]
    meta = table.attrs["sotlat"]
    sim = " (simulated)" if meta.simulated else ""
    unfinished = "" if is_complete(table) else " · INCOMPLETE profile"
    backend = f" · {meta.method.backend}" if meta.method.backend not in (None, "eager") else ""
    return f"{meta.arch.name} · {meta.device.name}{sim} · {meta.dtype}{backend}{unfinished}"


def distinct_labels(tables: list[pd.DataFrame], files: list) -> None:
    """Where tables would read alike (two profiles of one GPU), label them by file too, so that
    figures and summaries keep them apart."""
    labels = [label(t) for t in tables]
    for table, name, file in zip(tables, labels, files):
        if labels.count(name) > 1:
            table.attrs["label"] = f"{name} [{file}]"


def decode_floor_ms(meta: TableMeta) -> float | None:
    """The bytes of the weights a decode step reads / memory bandwidth: no step can be faster."""
    bandwidth, weights = meta.device.memory_bandwidth_bytes_per_s, meta.arch.read_weight_bytes
    return weights / bandwidth * 1e3 if bandwidth and weights else None


def summary(table: pd.DataFrame) -> dict:
    """Cells, statuses, median CV of the runs, and the B=1 decode step against the floor."""
    meta = table.attrs["sotlat"]
    decode1 = table[(table["phase"] == "decode") & (table["batch"] == 1) & (table["status"] == "ok")]
    return {
        "cells": len(table),
        "status": table["status"].value_counts().to_dict(),
        "median_cv": float(run_cv(table).median()),
        "elapsed_s": meta.progress.elapsed_s,
        "decode_b1_median_ms": float(decode1["latency_ms"].median()) if len(decode1) else None,
        "decode_floor_ms": decode_floor_ms(meta),
        "dispersion": meta.dispersion,
    }


def coverage(table: pd.DataFrame) -> list[dict]:
    """Per phase: the batches and lengths the table holds, its cells and their statuses."""
    return [{"phase": phase, "batches": sorted(int(b) for b in part["batch"].unique()),
             "length_min": int(part["length"].min()), "length_max": int(part["length"].max()), "lengths": int(part["length"].nunique()),
             "cells": len(part), "status": {str(k): int(v) for k, v in part["status"].value_counts().items()}}
            for phase, part in table.groupby("phase")]
