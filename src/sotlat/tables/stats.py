"""Measurement quality and physical floors read off a table: what the profiler's summary prints."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


def run_cv(table: pd.DataFrame) -> pd.Series:
    """Coefficient of variation (std / mean) of each ok cell's kept runs; NaN for single runs."""
    ok = table[table["status"] == "ok"]
    return ok["runs_ms"].map(lambda r: float(np.std(r) / np.mean(r)) if len(r) > 1 else np.nan)


def is_complete(table: pd.DataFrame) -> bool:
    """False for a profile still under way or interrupted (`progress.complete`); tables without it are whole."""
    return bool(table.attrs["sotlat"].get("progress", {}).get("complete", True))


def label(table: pd.DataFrame) -> str:
    """What a table is, in figures, reports and summaries: architecture, device, dtype, and whether
    it is simulated or an unfinished profile; `distinct_labels` may have set one that names the file."""
    if "label" in table.attrs:
        return table.attrs["label"]
    meta = table.attrs["sotlat"]
    sim = " (simulated)" if meta["device"].get("simulated") else ""
    unfinished = "" if is_complete(table) else " · INCOMPLETE profile"
    return f"{meta['arch']['name']} · {meta['device']['name']}{sim} · {meta['dtype']}{unfinished}"


def distinct_labels(tables: list[pd.DataFrame], files: list) -> None:
    """Where tables would read alike (two profiles of one GPU), label them by file too, so that
    figures and summaries keep them apart."""
    labels = [label(t) for t in tables]
    for table, name, file in zip(tables, labels, files):
        if labels.count(name) > 1:
            table.attrs["label"] = f"{name} [{file}]"


def measured_attention(meta: dict) -> str | None:
    """The attention implementation a profile ran ('sdpa' or 'eager', from `method.forward`);
    None for a simulated table, which models none."""
    found = re.search(r"(\w+) attention", meta["method"].get("forward", ""))
    return found[1] if found else None


def decode_floor_ms(meta: dict) -> float | None:
    """The bytes of the weights a decode step reads / memory bandwidth: no step can be faster.
    Tables written before `read_weight_bytes` was recorded fall back to all weights."""
    bandwidth = meta["device"].get("memory_bandwidth_bytes_per_s")
    weights = meta["arch"].get("read_weight_bytes") or meta["arch"].get("weight_bytes")
    return weights / bandwidth * 1e3 if bandwidth and weights else None


def summary(table: pd.DataFrame) -> dict:
    """Cells, statuses, median CV of the runs, and the B=1 decode step against the floor."""
    meta = table.attrs["sotlat"]
    decode1 = table[(table["phase"] == "decode") & (table["batch"] == 1) & (table["status"] == "ok")]
    return {
        "cells": len(table),
        "status": table["status"].value_counts().to_dict(),
        "median_cv": float(run_cv(table).median()),
        "elapsed_s": meta.get("progress", {}).get("elapsed_s"),
        "decode_b1_median_ms": float(decode1["latency_ms"].median()) if len(decode1) else None,
        "decode_floor_ms": decode_floor_ms(meta),
    }


def coverage(table: pd.DataFrame) -> list[dict]:
    """Per phase: the batches and lengths the table holds, its cells and their statuses."""
    return [{"phase": phase, "batches": sorted(int(b) for b in part["batch"].unique()),
             "length_min": int(part["length"].min()), "length_max": int(part["length"].max()), "lengths": int(part["length"].nunique()),
             "cells": len(part), "status": {str(k): int(v) for k, v in part["status"].value_counts().items()}}
            for phase, part in table.groupby("phase")]
