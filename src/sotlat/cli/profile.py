"""`sotlat profile` and `sotlat demo`: measure a table on this machine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from sotlat.cli import render
from sotlat.cli.app import app
from sotlat.cli.common import (Arch, Attention, Batches, Config, DecodeMax, DecodeRuns, DecodeWarmup, Device, Dtype, PrefillLengths, PrefillRuns,
                               PrefillWarmup, TableOut, arch_or_config, check_out, console, progress_bar, user_errors)


@app.command()
@user_errors
def profile(
    out: TableOut,
    arch: Arch = None,
    config: Config = None,
    device: Device = None,
    dtype: Dtype = None,
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    prefill_runs: PrefillRuns = 7,
    prefill_warmup: PrefillWarmup = 2,
    decode_runs: DecodeRuns = 3,
    decode_warmup: DecodeWarmup = 1,
    attention: Attention = "sdpa",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted profile in --out.")] = False,
):
    """Measure prefill t^P_B(l) and decode t^D_B(k) latency, peak memory and FLOPs into a table."""
    from sotlat.models.device import resolve_device
    from sotlat.models.dtypes import default_dtype
    from sotlat.profiler.run import ProfileSpec, profile as run
    from sotlat.tables.grid import parse_batches, parse_range

    check_out(out, (".parquet",), keeps=[out])  # an existing table: refused below without --resume, continued with it
    config_path = arch_or_config(arch, config)
    device = resolve_device(device)
    spec = ProfileSpec(arch=arch, config_path=config_path, device=device, dtype=dtype or default_dtype(device), batches=parse_batches(batches),
                       prefill_lengths=parse_range(prefill_lengths), decode_max=decode_max, prefill_runs=prefill_runs,
                       prefill_warmup=prefill_warmup, decode_runs=decode_runs, decode_warmup=decode_warmup, attention=attention)
    started, continued = time.monotonic(), resume and out.exists()  # measuring time then spans the earlier runs too
    with progress_bar("forward passes", width=24) as tracker:
        table = run(spec, str(out), resume, tracker)
    render.profile_summary(table, str(out), time.monotonic() - started, continued)


@app.command()
@user_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where the table and estimates go.")] = Path("out/demo"),
    resume: Annotated[bool, typer.Option(help="Reuse or continue the demo's table; --no-resume measures again.")] = True,
):
    """Profile this machine on a grid sized to a few minutes, then estimate the repo's real Vicuna-80 traces on it."""
    from sotlat.demo import run_demo

    started = time.monotonic()
    with progress_bar("forward passes", width=24) as tracker:
        result = run_demo(out_dir, resume, tracker)
    render.profile_summary(result["table"], str(result["table_path"]), time.monotonic() - started, False)
    render.estimates(result["table"], result["estimates"], result["unanswered"])
    console.print(f"table: {result['table_path']}\nestimates: {result['estimates_path']}\ntraces: {result['traces']}\nreport: {result['report']}")
