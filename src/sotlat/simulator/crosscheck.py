"""Does a calibration transfer across models? For two measured tables of one device: calibrate on
each, simulate the other's architecture on the cells both tables hold, and compare with what was
measured, per phase and batch (docs/simulator.md, "Cross-model validation")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.simulator.calibrate import calibrate
from sotlat.simulator.model import forward_ms
from sotlat.models.shapes import shapes_of
from sotlat.tables.compare import compare_summary
from sotlat.tables.schema import CELL_KEY
from sotlat.tables.stats import geomean


def without_first_runs(table: pd.DataFrame, runs: int) -> pd.DataFrame:
    """The table with each decode cell's first `runs` runs left out and its latency the geometric mean
    of the rest (a table measured without a decode warm-up: its first sweep is cold); a cell left
    without a run has no latency (status `no runs left`)."""
    if not runs:
        return table
    out = table.copy()
    out.attrs = table.attrs
    decode = (out["phase"] == "decode") & (out["status"] == "ok") & (out["runs_ms"].map(len) > 0)  # a simulated cell has no runs
    kept = out.loc[decode, "runs_ms"].map(lambda r: list(r)[runs:])
    out.loc[decode, "runs_ms"] = kept
    out.loc[decode, "latency_ms"] = kept.map(lambda r: geomean(r) if len(r) else np.nan)
    out.loc[decode & out["latency_ms"].isna(), "status"] = "no runs left"
    return out


def predict_cells(table: pd.DataFrame, cells: pd.DataFrame, cal, peak_tflops: float, bandwidth_gbps: float) -> np.ndarray:
    """Model 2's latency of `cells` (of `table`'s architecture and FLOPs) under calibration `cal`."""
    shapes = shapes_of(table)
    out = np.empty(len(cells))
    for phase in ("prefill", "decode"):
        mask = (cells["phase"] == phase).to_numpy()
        part = cells[mask]
        out[mask] = forward_ms(getattr(cal, phase), shapes, phase, part["batch"].to_numpy(), part["length"].to_numpy(),
                               part["flops"].to_numpy(), peak_tflops, bandwidth_gbps)
    return out


def cross_model(a: pd.DataFrame, b: pd.DataFrame, peak_tflops: float, bandwidth_gbps: float, names=("a", "b")) -> list[dict]:
    """Both directions: calibrated on one table (all its ok cells), the other predicted on the ok cells
    both hold; per direction its calibration, the fit's errors, and the prediction's `compare_summary`
    with the batches each phase could test."""
    ok = [t[(t["status"] == "ok") & t["flops"].notna()] for t in (a, b)]
    common = ok[0][CELL_KEY].merge(ok[1][CELL_KEY], on=CELL_KEY)
    if common.empty:
        raise InputError(f"{names[0]} and {names[1]} have no ok cell in common (phase, batch, length): nothing to predict")
    out = []
    for (fit, fit_name), (target, target_name) in (((a, names[0]), (b, names[1])), ((b, names[1]), (a, names[0]))):
        cal, fit_errors = calibrate(fit, peak_tflops, bandwidth_gbps, f"{fit_name}")
        cells = target[target["status"] == "ok"].merge(common, on=CELL_KEY)
        predicted = cells.assign(latency_ms=predict_cells(target, cells, cal, peak_tflops, bandwidth_gbps))
        compared = predicted[[*CELL_KEY, "latency_ms"]].merge(cells[[*CELL_KEY, "latency_ms"]], on=CELL_KEY, suffixes=("", "_reference"))
        compared["error_pct"] = (compared["latency_ms"] / compared["latency_ms_reference"] - 1) * 100
        out.append({"fitted_on": fit_name, "predicted": target_name, "calibration": cal.as_dict(), "fit_errors": fit_errors,
                    "prediction": compare_summary(compared)})
    return out


def cross_model_files(table, other, gpu: str | None = None, peak_tflops: float | None = None, bandwidth_gbps: float | None = None,
                      decode_skip_runs: int = 0) -> dict:
    """`cross_model` of two table files of one device (each decode cell's first `decode_skip_runs`
    runs left out), against the figures `device_figures` finds for the first: {peak_tflops,
    bandwidth_gbps, decode_skip_runs, directions, note}."""
    from sotlat.simulator.calibrate import device_figures
    from sotlat.tables.io import load_table

    tables = [without_first_runs(load_table(t), decode_skip_runs) for t in (table, other)]
    try:
        peak_tflops, bandwidth_gbps, note = device_figures(tables[0], gpu, peak_tflops, bandwidth_gbps)
    except InputError as exc:
        raise exc if exc.param else InputError(f"{table}: {exc.message}") from None
    return {"peak_tflops": peak_tflops, "bandwidth_gbps": bandwidth_gbps, "decode_skip_runs": decode_skip_runs,
            "directions": cross_model(*tables, peak_tflops, bandwidth_gbps, names=(str(table), str(other))), "note": note}
