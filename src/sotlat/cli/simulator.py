"""The simulator's commands: the GPU catalogue, simulated tables, calibrations, cross-model checks,
profile plans, and the FLOPs of one pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from sotlat.cli import render
from sotlat.cli.app import app
from sotlat.cli.common import (Arch, Bandwidth, Batches, Calibration, Config, DecodeMax, DecodeRuns, DecodeWarmup, GpuDtype, PeakTflops,
                               PrefillLengths, PrefillRuns, PrefillWarmup, TableOut, arch_or_config, check_out, console, count, duration, err,
                               flags, given_once, user_errors)


@app.command()
@user_errors
def gpus(as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue, sources included, as JSON.")] = False):
    """The GPU catalogue: figures the simulator uses, with unconfirmed ones marked."""
    from sotlat.models.catalogue import FIELDS, load_catalogue

    if as_json:
        print(json.dumps(load_catalogue()))
        return
    t = Table(title="GPU catalogue (dense FP16/BF16 tensor TFLOPS, FP32 without tensor cores; ? = unconfirmed; sources: sotlat gpus --json)")
    for c in ("id", "name", "memory GB", "bandwidth GB/s", "FP16 TFLOPS", "FP32 TFLOPS", "SMs", "L2 MB"):
        t.add_column(c, justify="left" if c in ("id", "name") else "right")
    for gid, entry in load_catalogue().items():
        cells = [("-" if entry[f]["value"] is None else f"{entry[f]['value']:g}") + ("" if entry[f]["confirmed"] else " ?") for f in FIELDS]
        t.add_row(gid, entry["name"], *cells)
    console.print(t)


@app.command()
@user_errors
def simulate(
    gpu: Annotated[str, typer.Option(help="A catalogue id (sotlat gpus).")],
    out: TableOut,
    arch: Arch = None,
    config: Config = None,
    dtype: GpuDtype = "float16",
    calibration: Calibration = "default",
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """Write a latency table for a GPU from the analytical model (same format as profile)."""
    from sotlat.simulator.simulate import does_not_fit, simulate_table
    from sotlat.tables import save_table

    check_out(out, (".parquet",))
    config_path = arch_or_config(arch, config)
    # seconds for llama-33b, minutes for a Mamba hybrid, whose reference scan runs token by token
    with console.status(f"simulating {arch or config} on {gpu}: counting its FLOPs on the meta device"):
        spec, table = simulate_table(gpu, arch, config_path, dtype, calibration, batches, prefill_lengths, decode_max, peak_tflops, bandwidth_gbps)
    _converted(table, calibration)
    save_table(table, out)
    oom = int((table["status"] == "oom").sum())
    console.print(f"{out}: {len(table):,} simulated cells for {table.attrs['sotlat'].arch.name} on {spec['name']}"
                  + (f" ({oom:,} over the GPU's memory: oom)" if oom else "")
                  + (f"; it rests on unconfirmed catalogue figures: {', '.join(spec['unconfirmed'])}" if spec["unconfirmed"] else ""))
    if too_big := does_not_fit(spec, table):
        console.print(f"warning: --gpu {too_big}", style="yellow", highlight=False)
    render.flops_warning(table)


def _converted(table, calibration: str) -> None:
    """Say so where the calibration was written for an earlier model of the simulator (and converted)."""
    version = table.attrs["sotlat"].method.calibration.get("converted_from")
    if version:
        console.print(f"note: --calibration {calibration}: written for the simulator's model {version}; converted to model 2 "
                      "(efficiencies from its MFU, host time per layer from its overhead, no floors): refit it with sotlat calibrate",
                      style="yellow", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def plan(
    gpu: Annotated[str, typer.Option(help="The GPU to be profiled: a catalogue id (sotlat gpus).")],
    arch: Arch = None,
    config: Config = None,
    dtype: GpuDtype = "float16",
    calibration: Calibration = "hf-eager",
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    prefill_runs: PrefillRuns = 7,
    prefill_warmup: PrefillWarmup = 2,
    decode_runs: DecodeRuns = 3,
    decode_warmup: DecodeWarmup = 1,
    shard_minutes: Annotated[float, typer.Option(min=0.1, help="Time limit of one command: group batches into shards within it.")] = 9.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan (per-batch seconds, shards and their commands) as JSON.")] = False,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """How long `profile` will take on a GPU (simulated, hf-eager by default), and batch shards that fit a time limit."""
    from sotlat.simulator.plan import plan_profile

    config_path = arch_or_config(arch, config)
    p = plan_profile(gpu, arch, config_path, dtype, calibration, batches, prefill_lengths, decode_max, prefill_runs, prefill_warmup, decode_runs,
                     decode_warmup, shard_minutes, peak_tflops, bandwidth_gbps)
    if as_json:
        print(json.dumps({k: v for k, v in p.items() if k != "gpu_name"}))
    else:
        _print_plan(p)


def _print_plan(p: dict) -> None:
    """Seconds per batch, the total, and each shard's command."""
    console.print(f"profiling {p['arch']} ({p['dtype']}) on {p['gpu_name']}, simulated with the {p['calibration']} calibration:")
    view = Table()
    for col in ("batch", "prefill", "decode", "total"):
        view.add_column(col, justify="right")
    for row in p["per_batch"]:
        view.add_row(str(row["batch"]), duration(row["prefill_s"]), duration(row["decode_s"]), duration(row["total_s"]))
    console.print(view)
    console.print(f"total {duration(p['total_s'])} of forward passes (model build not included)"
                  + (f"; {p['oom_cells']} cells over the GPU's memory (oom)" if p["oom_cells"] else ""))
    console.print(f"shards of at most {duration(p['shard_limit_s'])}, one command each:")
    for shard in p["shards"]:
        console.print(f"  {shard['command']}   # ~{duration(shard['seconds'])}"
                      + ("; over the limit: --resume continues it" if shard["seconds"] > p["shard_limit_s"] else ""), highlight=False, soft_wrap=True)
    if p["merge"]:
        console.print(f"then merge the shards into one table:\n  {p['merge']}", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def calibrate(
    table: Annotated[Path, typer.Option(help="A measured latency table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (.json).")],
    gpu: Annotated[Optional[str], typer.Option(help="Catalogue id of the table's device, for its peak and bandwidth.")] = None,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """Fit the simulator's model 2 (host launches, GEMM and attention efficiency, MBU, floors) to a measured table; print the fit's errors."""
    from sotlat.errors import InputError
    from sotlat.simulator.calibrate import calibrate_table, save_calibration
    from sotlat.tables import load_table

    check_out(out, (".json",))
    measured = load_table(table)
    try:
        fit = calibrate_table(measured, out.stem, gpu, peak_tflops, bandwidth_gbps)
    except InputError as exc:  # what the table lacks, named with it
        raise exc if exc.param else InputError(f"{table}: {exc.message}") from None
    if fit["note"]:  # fitted against another device's figures: said, then done as asked
        err.print(f"note: {table}: {flags(fit['note'])}")
    save_calibration(fit["calibration"], fit["errors"], out)
    render.calibration(fit["calibration"], fit["errors"])
    console.print(f"{out}: workspace {fit['calibration'].workspace_bytes / 1e6:,.0f} MB")
    given = {"faster_than_peak_cells": f"peak {fit['peak_tflops']:g} TFLOPS (--peak-tflops)",
             "faster_than_bandwidth_cells": f"bandwidth {fit['bandwidth_gbps']:g} GB/s (--bandwidth-gbps)"}
    for phase in ("prefill", "decode"):
        for key, figure in given.items():
            if fit["errors"][phase][key]:
                console.print(f"warning: {count(fit['errors'][phase][key], f'{phase} cell')} ran faster than the {figure} allows: "
                              "that figure is too low for this device", style="yellow", highlight=False)


@app.command("cross-model")
@user_errors
def cross_model(
    table: Annotated[Path, typer.Argument(help="A measured table of one model.")],
    other: Annotated[Path, typer.Argument(help="A measured table of another model on the same device.")],
    gpu: Annotated[Optional[str], typer.Option(help="Catalogue id of the tables' device, for its peak and bandwidth.")] = None,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
    decode_skip_runs: Annotated[int, typer.Option(min=0, help="Leave out each decode cell's first N runs (a table measured without a decode warm-up).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print both directions as JSON.")] = False,
):
    """Calibrate on each table, predict the other model on the cells both hold: % error per phase and batch."""
    from sotlat.simulator.crosscheck import cross_model_files
    from sotlat.simulator.model import Calibration

    given_once([table, other], "cross-model")
    check = cross_model_files(table, other, gpu, peak_tflops, bandwidth_gbps, decode_skip_runs)
    if check["note"]:
        err.print(f"note: {table}: {flags(check['note'])}")
    if as_json:
        print(json.dumps({k: v for k, v in check.items() if k != "note"}))
        return
    for d in check["directions"]:
        console.print(Text.assemble("calibrated on ", (d["fitted_on"], "bold"), ", predicting ", (d["predicted"], "bold"),
                                    f" (peak {check['peak_tflops']:g} TFLOPS, bandwidth {check['bandwidth_gbps']:g} GB/s)"))
        render.calibration(Calibration.from_dict(d["calibration"]), d["fit_errors"])
        render.errors_table(d["prediction"], f"% error of the prediction against {d['predicted']} on the cells both tables hold (positive: predicted slower)")


@app.command()
@user_errors
def flops(
    phase: Annotated[str, typer.Option(help="prefill or decode.")],
    batch: Annotated[int, typer.Option(min=1, help="Batch size B.")],
    length: Annotated[int, typer.Option(min=1, help="Prompt length l (prefill) or cached tokens k (decode).")],
    arch: Arch = None,
    config: Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
):
    """FLOPs of one forward pass (DeepSpeed's profiler on the meta device, 2 x MACs)."""
    from sotlat.models.flops import flops_of

    name, value = flops_of(arch, arch_or_config(arch, config), phase, batch, length)
    if as_json:
        print(json.dumps({"arch": name, "phase": phase, "batch": batch, "length": length, "flops": value}))
    else:
        console.print(f"{name} {phase} B={batch} length={length}: {value:,.0f} FLOPs ({value / 1e9:.4g} GFLOP)", highlight=False)
