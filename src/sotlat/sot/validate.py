"""Estimated vs measured latency (App. C.4 against App. C.2): per trace, overall, by category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sotlat.estimator import estimate
from sotlat.estimator.equations import DECODE_TERMS
from sotlat.estimator.traces import by_key
from sotlat.errors import InputError
from sotlat.pct_errors import error_stats, relative_pct
from sotlat.tables.meta import TableMeta

QUANTITIES = ("normal", "sot", "speedup")
SAME = "validate compares a replay with a table of the same architecture, dtype and attention"


def mismatch(meta: TableMeta, arch: str | None, dtype: str | None, attention: str) -> tuple[str, str, str | None] | None:
    """(field, the table's value, the replay's) of the first of architecture, dtype, attention and
    backend in which a replay differs from a table; None if it may be compared. A simulated table
    models no attention; a replay runs transformers' generate(), the eager backend."""
    for field, table_value, replay_value in (("arch", meta.arch.name, arch), ("dtype", meta.dtype, dtype),
                                             ("attention", meta.method.attention or attention, attention),
                                             ("backend", meta.method.backend or "eager", "eager")):
        if replay_value != table_value:
            return field, table_value, replay_value
    return None


def compare(table: pd.DataFrame, traces: pd.DataFrame, measured: pd.DataFrame, decode_terms: str = "printed",
            extrapolate: bool = False) -> pd.DataFrame:
    """Per trace: estimated, measured and % errors (signed: estimate above measurement is positive),
    and whether the estimate extrapolates decode past the table."""
    est = by_key(estimate(table, traces, extrapolate=extrapolate, decode_terms=decode_terms))
    meas = by_key(measured)
    out = by_key(traces[["id", "model", "category"]])  # a trace is (model, id): several models' traces of one question are several
    for q in QUANTITIES:
        column = "speedup" if q == "speedup" else f"{q}_ms"
        out[f"{q}_estimated"] = est[column].reindex(out.index)
        out[f"{q}_measured"] = meas[column].reindex(out.index)
        out[f"{q}_error_pct"] = relative_pct(out[f"{q}_estimated"], out[f"{q}_measured"])
    out["extrapolated"] = est["extrapolated"].reindex(out.index)
    return out.reset_index(drop=True)


def validate(table: pd.DataFrame, traces: pd.DataFrame, measured: pd.DataFrame, decode_terms: str = "printed",
             extrapolate: bool = False) -> dict:
    """Error statistics overall and by category, and which reading of Eq. 1 fits better."""
    if len(measured) == 0:
        raise InputError("no measured traces to validate")
    per_trace = compare(table, traces, measured, decode_terms, extrapolate)
    result = {q: error_stats(per_trace[f"{q}_error_pct"]) for q in QUANTITIES}
    result["by_category"] = {
        str(cat): {q: error_stats(group[f"{q}_error_pct"]) for q in QUANTITIES}
        for cat, group in per_trace.groupby(per_trace["category"].fillna("-"))
    }
    readings = {}
    for terms in DECODE_TERMS:
        errs = compare(table, traces, measured, terms, extrapolate)
        readings[terms] = float(np.nanmedian(np.abs(np.concatenate([errs["normal_error_pct"], errs["sot_error_pct"]]))))
    result["eq1_readings_median_abs_pct"] = readings
    result["better_eq1_reading"] = min(readings, key=readings.get)
    result["decode_terms"] = decode_terms
    result["extrapolated_traces"] = int(per_trace["extrapolated"].sum())
    return {"per_trace": per_trace, "summary": result}


def validate_file(table: Path, measured: Path, decode_terms: str = "printed", extrapolate: bool = False) -> dict:
    """`validate` of a replay's output file against a table file: {per_trace, summary, traces (how
    many), note (where the replay ran on another device than the table's)}. A line that is no
    replay's, or a replay of another architecture, dtype or attention than the table's, is refused."""
    from sotlat.estimator.traces import read_records, traces_frame
    from sotlat.tables import load_table
    from sotlat.tables.stats import label

    records = read_records(measured)
    traces = traces_frame(records)
    table_frame = load_table(table)
    meta = table_frame.attrs["sotlat"]
    rows, devices = [], set()
    for where, t in records:
        m = t.get("measured")
        if not isinstance(m, dict):
            raise InputError(f"{where}: measured is missing: not an output of sotlat replay")
        differs = mismatch(meta, t.get("arch"), t.get("dtype"), t.get("attention", "sdpa"))  # older replays ran sdpa
        if differs:
            field, theirs, ours = differs
            raise InputError(f"{where}: {field} is {ours!r}, the table's is {theirs!r}: {SAME}")
        devices.add(t.get("device"))
        rows.append({"id": t["id"], "model": t.get("model"), **{k: m.get(k) for k in ("normal_ms", "sot_ms", "speedup")}})
    note = None if devices == {meta.device.name} else f"measured on {', '.join(sorted(map(str, devices)))}; the table is of {label(table_frame)}"
    return {**validate(table_frame, traces, pd.DataFrame(rows), decode_terms, extrapolate), "traces": len(rows), "note": note}
