"""Fit model 2's parameters to a measured table.

Least squares on log latency (scipy), separately for prefill and decode, over the table's ok
cells, every parameter in log space within its bounds and held lightly to its prior (`model.PRIOR`,
each with its source), so that a parameter the cells say nothing of keeps that value instead of
wandering: a penalty of PRIOR_WEIGHT per unit of log distance from it, beside the cells' RMS log
error. A GPU-side parameter that one phase's cells cannot show (decode's GEMM efficiency, where
every decode step is host-bound) takes the other phase's fitted value as its prior, and the phase is
fitted again. From one architecture the host's per-layer and fixed times cannot be told apart
(every cell has the same number of layers): the whole of it is attributed to the layers, which is
what transfers to a model with more of them (`host_fixed_ms` stays 0). The memory workspace is the
median of measured minus modelled peak memory.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from sotlat.errors import InputError
from sotlat.pct_errors import error_stats
from sotlat.models.shapes import Shapes, shapes_of
from sotlat.simulator.model import FRACTIONS, HOST, PRIOR, Calibration, PhaseParams, forward_ms, pass_bytes, peak_memory

MIN_CELLS = 3
FITTED = tuple(f.name for f in fields(PhaseParams) if f.name != "host_fixed_ms")
PRIOR_WEIGHT = 0.01  # a factor e away from the prior costs as much as an RMS log error of 1%
SHOWN = 0.01  # a parameter whose factor-e change moves the cells' RMS log latency by less than this is not shown by them
# what is physically possible: a kernel's floor is microseconds (a launch on the device), not a tenth of a millisecond; a
# layer's few dozen small kernels stay under a third of a millisecond
_BOUNDS = {**{name: (1e-4, 1.0) for name in FRACTIONS}, "gemm_half_tokens": (1e-3, 1e5), "kernel_floor_ms": (1e-4, 0.02),
           "elementwise_floor_ms": (1e-4, 0.3)}
_TIME_BOUNDS = (1e-7, 1e4)  # ms


def _bounds(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    low, high = zip(*(_BOUNDS.get(name, _TIME_BOUNDS) for name in names))
    return np.log(low), np.log(high)


def fit_phase(cells: pd.DataFrame, shapes: Shapes, phase: str, peak_tflops: float, bandwidth_gbps: float,
              prior: PhaseParams = PRIOR) -> tuple[PhaseParams, np.ndarray, dict]:
    """The phase's parameters, the cells' relative errors, and per parameter how much the cells show
    it: the RMS change of their log latency for a factor-e change of the parameter."""
    batch, length, flops = cells["batch"].to_numpy(), cells["length"].to_numpy(), cells["flops"].to_numpy()
    log_measured = np.log(cells["latency_ms"].to_numpy())
    low, high = _bounds(list(FITTED))
    x0 = np.clip(np.log([max(getattr(prior, name), 1e-7) for name in FITTED]), low, high)
    scale = 1 / np.sqrt(len(cells))

    def params(x) -> PhaseParams:
        return replace(prior, **dict(zip(FITTED, (float(v) for v in np.exp(x)))))

    def residuals(x):
        predicted = forward_ms(params(x), shapes, phase, batch, length, flops, peak_tflops, bandwidth_gbps)
        return np.concatenate([(np.log(predicted) - log_measured) * scale, PRIOR_WEIGHT * (x - x0)])

    # from the prior, and from a start without host time: a fit begun host-bound cannot see the GPU's parameters
    starts = [x0, np.where(np.array(FITTED) == "launch_ms", low, x0)]
    best = min((least_squares(residuals, x, bounds=(low, high), diff_step=1e-5, ftol=1e-12, xtol=1e-12, gtol=1e-12) for x in starts),
               key=lambda r: r.cost)
    fitted = params(best.x)
    shown = np.linalg.norm(best.jac[: len(cells)], axis=0)
    predicted = forward_ms(fitted, shapes, phase, batch, length, flops, peak_tflops, bandwidth_gbps)
    return fitted, predicted / cells["latency_ms"].to_numpy() - 1, dict(zip(FITTED, (float(v) for v in shown)))


def _diagnostics(cells: pd.DataFrame, shapes: Shapes, phase: str, p: PhaseParams, peak_tflops: float, bandwidth_gbps: float) -> dict:
    """How many cells the host bounds and how many the GPU, and the cells faster than the whole peak or
    bandwidth allows (that figure is then too low for the device)."""
    batch, length, flops = cells["batch"].to_numpy(), cells["length"].to_numpy(), cells["flops"].to_numpy()
    from sotlat.simulator.model import gpu_ms

    gpu = gpu_ms(p, shapes, phase, batch, length, flops, peak_tflops, bandwidth_gbps)
    host = shapes.layers * p.launch_ms + p.host_fixed_ms
    seconds = cells["latency_ms"].to_numpy() / 1e3
    return {"host_bound_cells": int((host >= gpu).sum()), "gpu_bound_cells": int((host < gpu).sum()),
            "faster_than_peak_cells": int((seconds < flops / (peak_tflops * 1e12)).sum()),
            "faster_than_bandwidth_cells": int((seconds < pass_bytes(shapes, phase, batch, length) / (bandwidth_gbps * 1e9)).sum())}


def calibrate(table: pd.DataFrame, peak_tflops: float, bandwidth_gbps: float, name: str) -> tuple[Calibration, dict]:
    """A calibration fitted to `table`, and per phase the fit's % errors (`error_stats`), its bound
    cells, and `unidentified`: {parameter: where its value came from ("prior" or the other phase)}."""
    shapes = shapes_of(table)
    ok = table[(table["status"] == "ok") & table["flops"].notna()]
    cells = {}
    for phase in ("prefill", "decode"):
        cells[phase] = ok[ok["phase"] == phase]
        if len(cells[phase]) < MIN_CELLS:
            raise InputError(f"the table has {len(cells[phase])} {phase} cell{'s' * (len(cells[phase]) != 1)} with a latency and FLOPs; "
                             f"calibrating needs at least {MIN_CELLS} per phase")
    first = {phase: fit_phase(cells[phase], shapes, phase, peak_tflops, bandwidth_gbps) for phase in cells}
    unshown = {phase: {n for n, v in first[phase][2].items() if v < SHOWN} for phase in first}
    fit, unidentified = {}, {}
    for phase, other in (("prefill", "decode"), ("decode", "prefill")):
        # a GPU-side parameter this phase's cells barely show, the other's may: its fitted value becomes this phase's prior
        borrowed = {n: getattr(first[other][0], n) for n in unshown[phase] if n not in HOST and n not in unshown[other]}
        unidentified[phase] = {n: other if n in borrowed else "prior" for n in sorted(unshown[phase])}
        fit[phase] = fit_phase(cells[phase], shapes, phase, peak_tflops, bandwidth_gbps, replace(PRIOR, **borrowed))[0] if borrowed else first[phase][0]
    errors = {}
    for phase, params in fit.items():
        c = cells[phase]
        predicted = forward_ms(params, shapes, phase, c["batch"].to_numpy(), c["length"].to_numpy(), c["flops"].to_numpy(), peak_tflops, bandwidth_gbps)
        errors[phase] = {**error_stats((predicted / c["latency_ms"].to_numpy() - 1) * 100),
                         **_diagnostics(c, shapes, phase, params, peak_tflops, bandwidth_gbps), "unidentified": unidentified[phase]}
    mem = ok[ok["peak_memory_bytes"].notna()]
    workspace = 0.0
    if len(mem):
        modelled = np.concatenate([peak_memory(shapes, ph, g["batch"].to_numpy(), g["length"].to_numpy()) for ph, g in mem.groupby("phase")])
        measured = np.concatenate([g["peak_memory_bytes"].to_numpy(float) for _, g in mem.groupby("phase")])
        workspace = float(np.median(measured - modelled))
    meta = table.attrs["sotlat"]
    cal = Calibration(name, fit["prefill"], fit["decode"], workspace,
                      about=f"fitted to {meta.arch.name} on {meta.device.name} ({meta.dtype}), "
                            f"peak {peak_tflops} TFLOPS, bandwidth {bandwidth_gbps} GB/s")
    return cal, errors


def calibrate_table(table: pd.DataFrame, name: str, gpu: str | None = None, peak_tflops: float | None = None,
                    bandwidth_gbps: float | None = None) -> dict:
    """`calibrate` against `device_figures`: {calibration, errors, peak_tflops, bandwidth_gbps, note}."""
    peak_tflops, bandwidth_gbps, note = device_figures(table, gpu, peak_tflops, bandwidth_gbps)
    cal, errors = calibrate(table, peak_tflops, bandwidth_gbps, name)
    return {"calibration": cal, "errors": errors, "peak_tflops": peak_tflops, "bandwidth_gbps": bandwidth_gbps, "note": note}


def save_calibration(cal: Calibration, errors: dict, path) -> None:
    """The calibration file (docs/formats.md), written atomically, the fit's errors with it."""
    import json

    from sotlat.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**cal.as_dict(), "fit_errors": errors}, indent=1) + "\n")


def device_figures(table: pd.DataFrame, gpu: str | None = None, peak_tflops: float | None = None,
                   bandwidth_gbps: float | None = None) -> tuple[float, float, str | None]:
    """(peak TFLOPS, bandwidth GB/s) a measured table is calibrated against: the catalogue entry `gpu`'s,
    else the table's own device's, each replaced by a figure given; and a note where `gpu` is not the
    table's device (the fitted efficiencies are then fractions of that entry's figures)."""
    from sotlat.models.catalogue import gpu_spec

    meta = table.attrs["sotlat"]
    device, note = meta.device, None
    if gpu:
        spec = gpu_spec(gpu, meta.dtype, peak_tflops, bandwidth_gbps)
        peak_tflops, bandwidth_gbps = spec["peak_tflops"], spec["bandwidth_gbps"]
        if device.catalogue_id != spec["id"]:
            note = (f"the table is of {device.name}, not {spec['name']} (`gpu` {spec['id']}): "
                    "its efficiencies are fractions of the figures given, not of that device's own")
    peak_tflops = peak_tflops or device.peak_tflops
    bandwidth = device.memory_bandwidth_bytes_per_s
    bandwidth_gbps = bandwidth_gbps or (bandwidth / 1e9 if bandwidth else None)
    if not peak_tflops or not bandwidth_gbps:
        raise InputError("the device's peak TFLOPS or bandwidth is unknown; give `gpu`, or `peak_tflops` and `bandwidth_gbps`")
    return peak_tflops, bandwidth_gbps, note
