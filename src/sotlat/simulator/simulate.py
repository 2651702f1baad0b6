"""Write a latency table for a GPU from the analytical model, in the profiler's format."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from sotlat.models.archs import load_config
from sotlat.models.flops import FlopsFit
from sotlat.models.shapes import Shapes, shapes_and_flops
from sotlat.simulator.model import MODEL_VERSION, Calibration, forward_ms, peak_memory
from sotlat.tables.grid import PrefillGrid, check_grid
from sotlat.tables.meta import Arch, Device, Grid, Method, TableMeta
from sotlat.tables.schema import COLUMNS
from sotlat.tables.stats import dispersion


def simulate_cells(shapes: Shapes, flops, gpu: dict, cal: Calibration, phase: str, batch, length) -> dict:
    """Latency, FLOPs and peak memory of cells (arrays of batch and length) of one phase."""
    f = flops(phase, batch, length)
    ms = forward_ms(getattr(cal, phase), shapes, phase, batch, length, f, gpu["peak_tflops"], gpu["bandwidth_gbps"])
    return {"latency_ms": ms, "flops": f, "peak_memory_bytes": peak_memory(shapes, phase, batch, length, cal.workspace_bytes)}


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
    device = Device(name=gpu["name"], kind="simulated", catalogue_id=gpu["id"], total_memory_bytes=int(gpu["memory_gb"] * 1e9),
                    memory_bandwidth_bytes_per_s=gpu["bandwidth_gbps"] * 1e9, peak_tflops=gpu["peak_tflops"], sms=gpu["sms"], l2_mb=gpu["l2_mb"],
                    unconfirmed=tuple(gpu["unconfirmed"]))
    method = Method(grid=Grid(tuple(batches), prefill_lengths, decode_max), timer="none (simulated)", flops=fit.meta(), calibration=cal.as_dict(),
                    memory="analytical: weights + KV cache + activations + workspace",
                    model=f"model {MODEL_VERSION}: max(host, GPU) + tail; host = layers x launch; GPU = per kernel max(FLOPs/(efficiency x peak), "
                          "bytes/(MBU x bandwidth), floor); memory = weights + KV cache + activations + workspace (docs/simulator.md)")
    table.attrs["sotlat"] = TableMeta(arch=Arch(**meta_arch), device=device, dtype=dtype, method=method, simulated=True,
                                      created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), dispersion=dispersion(table))
    return table


def simulate_table(gpu: str, arch: str | None = None, config: str | None = None, dtype: str = "float16", calibration: str = "default",
                   batches: str = "1-16", prefill_lengths: str = "1:700:10", decode_max: int = 1024, peak_tflops: float | None = None,
                   bandwidth_gbps: float | None = None) -> tuple[dict, pd.DataFrame]:
    """The catalogue entry `gpu` (figures given replacing its own) and the table `simulate` writes:
    the grid as `profile` takes it (batches '1-16', prefill lengths 'START:STOP:STEP'), `calibration`
    a shipped one's name or a file."""
    from sotlat.models.catalogue import gpu_spec
    from sotlat.simulator.model import load_calibration
    from sotlat.tables.grid import parse_batches, parse_range

    spec = gpu_spec(gpu, dtype, peak_tflops, bandwidth_gbps)
    cal = load_calibration(calibration)
    return spec, simulate(arch, config, spec, cal, dtype, parse_batches(batches), parse_range(prefill_lengths), decode_max)


def does_not_fit(spec: dict, table: pd.DataFrame) -> str | None:
    """Why a simulated table has no latency at all, when its model does not fit the GPU."""
    if not (table["status"] == "oom").all():
        return None
    return (f"{spec['id']}: {table.attrs['sotlat'].arch.name} does not fit in its {spec['memory_gb']:g} GB: the smallest cell "
            f"needs {table['peak_memory_bytes'].min() / 1e9:.1f} GB, so every cell is oom")
