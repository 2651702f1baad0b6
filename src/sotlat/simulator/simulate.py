"""Write a latency table for a GPU from the analytical model, in the profiler's format."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.profiler.archs import COUNTS, arch_meta, config_from_dict, load_config, meta_model, parameter_counts
from sotlat.profiler.flops import FlopsFit, fit_flops
from sotlat.profiler.run import torch_dtype as torch_dtype_of
from sotlat.simulator.model import MODEL_VERSION, Calibration, Shapes, forward_ms, peak_memory
from sotlat.tables.grid import PrefillGrid, check_grid
from sotlat.tables.schema import COLUMNS, SCHEMA_VERSION
from sotlat.tables.stats import label


def simulate_cells(shapes: Shapes, flops, gpu: dict, cal: Calibration, phase: str, batch, length) -> dict:
    """Latency, FLOPs and peak memory of cells (arrays of batch and length) of one phase."""
    f = flops(phase, batch, length)
    ms = forward_ms(getattr(cal, phase), shapes, phase, batch, length, f, gpu["peak_tflops"], gpu["bandwidth_gbps"])
    return {"latency_ms": ms, "flops": f, "peak_memory_bytes": peak_memory(shapes, phase, batch, length, cal.workspace_bytes)}


def shapes_and_flops(name: str, config, dtype: str) -> tuple[Shapes, FlopsFit, dict]:
    """The model's Shapes, its FLOPs polynomial and the table's `arch` metadata."""
    torch_dtype = torch_dtype_of(dtype)
    model = meta_model(config)
    meta_arch = arch_meta(name, config, model, torch_dtype)
    counts = {k: meta_arch[k] for k in COUNTS}
    return Shapes.from_config(config, dtype_bytes=torch_dtype.itemsize, **counts), fit_flops(model), meta_arch


def shapes_of(table: pd.DataFrame) -> Shapes:
    """The bytes and memory model's Shapes of a table's architecture and dtype, from its metadata."""
    from transformers import __version__

    meta = table.attrs["sotlat"]
    arch = meta["arch"]
    try:
        config = config_from_dict(arch["config"])
    except Exception as exc:  # a model type unknown to this transformers, none recorded, or values its checks refuse
        raise InputError(f"{label(table)}: transformers {__version__} cannot rebuild its config "
                         f"(model type {arch['config'].get('model_type')!r}: {type(exc).__name__})") from None
    counts = {k: arch[k] for k in COUNTS if arch.get(k) is not None}
    if len(counts) < len(COUNTS):  # written by an older sotlat: count them
        counts = parameter_counts(meta_model(config))
    return Shapes.from_config(config, dtype_bytes=torch_dtype_of(meta["dtype"]).itemsize, **counts)


def simulate(arch: str | None, config_path: str | None, gpu: dict, cal: Calibration, dtype: str,
             batches: list[int], prefill_lengths: PrefillGrid, decode_max: int) -> pd.DataFrame:
    """The table `profile` would write for this model on `gpu` over the grid, every cell from the
    analytical model; cells whose peak memory exceeds the GPU's are oom, as the profiler marks them."""
    check_grid(batches, prefill_lengths, decode_max)
    shapes, fit, meta_arch = shapes_and_flops(*load_config(arch, config_path), dtype)
    parts = []
    for phase, lengths in (("prefill", prefill_lengths.lengths), ("decode", range(1, decode_max + 1))):
        b, n = (x.ravel() for x in np.meshgrid(batches, list(lengths), indexing="ij"))
        cells = simulate_cells(shapes, fit, gpu, cal, phase, b, n)
        fits = cells["peak_memory_bytes"] <= gpu["memory_gb"] * 1e9
        parts.append(pd.DataFrame({
            "phase": phase, "batch": b.astype("int32"), "length": n.astype("int32"),
            "latency_ms": np.where(fits, cells["latency_ms"], np.nan),
            "runs_ms": [[] for _ in b], "peak_memory_bytes": cells["peak_memory_bytes"].astype("int64"),
            "flops": cells["flops"], "status": np.where(fits, "ok", "oom"),
        }))
    table = pd.concat(parts, ignore_index=True)[COLUMNS]
    table.attrs["sotlat"] = {
        "schema_version": SCHEMA_VERSION,
        "arch": meta_arch,
        "device": {"name": gpu["name"], "kind": "simulated", "catalogue_id": gpu["id"], "simulated": True,
                   "total_memory_bytes": int(gpu["memory_gb"] * 1e9), "memory_bandwidth_bytes_per_s": gpu["bandwidth_gbps"] * 1e9,
                   "peak_tflops": gpu["peak_tflops"], "sms": gpu["sms"], "l2_mb": gpu["l2_mb"], "unconfirmed": gpu["unconfirmed"]},
        "dtype": dtype,
        "method": {
            "grid": {"batches": batches, "prefill_lengths": prefill_lengths.as_dict(), "decode_max": decode_max},
            "simulated": True,
            "model": f"model {MODEL_VERSION}: max(host, GPU) + tail; host = layers x launch; GPU = per kernel max(FLOPs/(efficiency x peak), "
                     "bytes/(MBU x bandwidth), floor); memory = weights + KV cache + activations + workspace (docs/simulator.md)",
            "calibration": cal.as_dict(),
            "flops": fit.meta(),
            "timer": "none (simulated)",
            "memory": "analytical: weights + KV cache + activations + workspace",
        },
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "progress": {"complete": True},
    }
    return table
