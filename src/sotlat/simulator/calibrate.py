"""Fit the model's MFU, MBU and per-layer overhead to a measured table.

Least squares on log latency (scipy), separately for prefill and decode, over the table's ok
cells. From one architecture the per-layer and fixed overheads cannot be told apart (every cell
has the same number of layers), so the whole constant is attributed to the layers, which is what
transfers to a model with more of them. A phase without a compute-bound cell (decode on a GPU)
says nothing of its MFU, and one without a memory-bound cell nothing of its MBU: such a parameter
takes the other phase's fitted value, else the default's, raised if need be so that every cell
stays bound as fitted (the fit's predictions do not change). The memory workspace is the median
of measured minus modelled peak memory.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from sotlat.errors import InputError
from sotlat.pct_errors import error_stats
from sotlat.simulator.model import DEFAULT, Calibration, PhaseParams, Shapes, forward_ms, pass_bytes, peak_memory
from sotlat.simulator.simulate import shapes_of

MIN_CELLS = 3  # as many as the parameters fitted per phase
_STARTS = [(0.5, 0.5, 0.01), (0.1, 0.2, 0.5), (0.8, 0.9, 0.0), (0.02, 0.05, 2.0)]


def fit_phase(cells: pd.DataFrame, shapes: Shapes, phase: str, peak_tflops: float, bandwidth_gbps: float) -> tuple[PhaseParams, np.ndarray, dict]:
    """Best (MFU, MBU, per-layer overhead) for one phase; returns them, the relative errors, and
    how many cells each bound holds with the least MFU and MBU that would keep them so."""
    flops, nbytes = cells["flops"].to_numpy(), pass_bytes(shapes, phase, cells["batch"].to_numpy(), cells["length"].to_numpy())
    measured = cells["latency_ms"].to_numpy()

    def predict(x):
        return forward_ms(PhaseParams(np.exp(x[0]), np.exp(x[1]), x[2]), flops, nbytes, shapes.layers, peak_tflops, bandwidth_gbps)

    best = None
    for mfu, mbu, overhead in _STARTS:
        res = least_squares(lambda x: np.log(predict(x)) - np.log(measured), [np.log(mfu), np.log(mbu), overhead],
                            bounds=([np.log(1e-5), np.log(1e-5), 0.0], [0.0, 0.0, np.inf]))
        if best is None or res.cost < best.cost:
            best = res
    x = best.x
    p = PhaseParams(float(np.exp(x[0])), float(np.exp(x[1])), float(x[2]))
    compute_s, memory_s = flops / (p.mfu * peak_tflops * 1e12), nbytes / (p.mbu * bandwidth_gbps * 1e9)
    seconds = measured / 1e3
    bound = {"compute_bound_cells": int((compute_s > memory_s).sum()), "memory_bound_cells": int((compute_s <= memory_s).sum()),
             # passes faster than the whole peak or bandwidth allows: that figure is too low for the device
             "faster_than_peak_cells": int((seconds < flops / (peak_tflops * 1e12)).sum()),
             "faster_than_bandwidth_cells": int((seconds < nbytes / (bandwidth_gbps * 1e9)).sum()),
             "mfu_at_least": float(np.max(flops / (peak_tflops * 1e12 * memory_s))),
             "mbu_at_least": float(np.max(nbytes / (bandwidth_gbps * 1e9 * compute_s)))}
    return p, predict(x) / measured - 1, bound


def _unidentified(fitted: dict, bounds: dict) -> tuple[dict, dict]:
    """The fitted parameters with those a phase's cells say nothing of set as the module docstring
    says, and {phase: {parameter: where its value came from}}. A stand-in always comes from the
    other phase's fitted value, which that phase's cells do show, so the order does not matter."""
    params, chosen = dict(fitted), {}
    for phase, other in (("prefill", "decode"), ("decode", "prefill")):
        chosen[phase] = {}
        for name, cells in (("mfu", "compute_bound_cells"), ("mbu", "memory_bound_cells")):
            if bounds[phase][cells]:
                continue
            source = other if bounds[other][cells] else "default"
            proxy = getattr(fitted[other] if source == other else DEFAULT.decode, name)
            params[phase] = replace(params[phase], **{name: max(proxy, bounds[phase][f"{name}_at_least"])})
            chosen[phase][name] = source
    return params, chosen


def calibrate(table: pd.DataFrame, peak_tflops: float, bandwidth_gbps: float, name: str) -> tuple[Calibration, dict]:
    """A calibration fitted to `table`, and the fit's % errors per phase (`error_stats`)."""
    shapes = shapes_of(table)
    ok = table[(table["status"] == "ok") & table["flops"].notna()]
    params, errors, bounds = {}, {}, {}
    for phase in ("prefill", "decode"):
        cells = ok[ok["phase"] == phase]
        if len(cells) < MIN_CELLS:
            raise InputError(f"the table has {len(cells)} {phase} cell{'s' * (len(cells) != 1)} with a latency and FLOPs; calibrating needs at least {MIN_CELLS} per phase")
        params[phase], rel, bounds[phase] = fit_phase(cells, shapes, phase, peak_tflops, bandwidth_gbps)
        errors[phase] = error_stats(rel * 100)
    params, unidentified = _unidentified(params, bounds)
    for phase, chosen in unidentified.items():
        errors[phase].update({k: bounds[phase][k] for k in ("compute_bound_cells", "memory_bound_cells", "faster_than_peak_cells",
                                                           "faster_than_bandwidth_cells")}, unidentified=chosen)
    mem = ok[ok["peak_memory_bytes"].notna()]
    workspace = 0.0
    if len(mem):
        modelled = np.concatenate([peak_memory(shapes, ph, g["batch"].to_numpy(), g["length"].to_numpy()) for ph, g in mem.groupby("phase")])
        measured = np.concatenate([g["peak_memory_bytes"].to_numpy(float) for _, g in mem.groupby("phase")])
        workspace = float(np.median(measured - modelled))
    meta = table.attrs["sotlat"]
    cal = Calibration(name, params["prefill"], params["decode"], workspace,
                      about=f"fitted to {meta['arch']['name']} on {meta['device']['name']} ({meta['dtype']}), "
                            f"peak {peak_tflops} TFLOPS, bandwidth {bandwidth_gbps} GB/s")
    return cal, errors
