"""`sotlat profile` and `sotlat demo`: measure a table on this machine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from sotlat.cli import render
from sotlat.cli.app import app
from sotlat.report.analysis import WHATIF_ANSWER
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
    backend: Annotated[str, typer.Option(help="eager (transformers with a growing cache, the paper's), cuda-graph (a static cache in "
                                              "buckets, each shape captured in a CUDA graph: an engine without host overhead) or static "
                                              "(that static cache without graphs, also on CPU); docs/method.md.")] = "eager",
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
                       prefill_warmup=prefill_warmup, decode_runs=decode_runs, decode_warmup=decode_warmup, attention=attention,
                       backend=backend)
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
    """Profile this machine on a grid sized to a few minutes, estimate the repo's real Vicuna-80 traces on it, and say why SoT pays off or not."""
    from sotlat.demo import run_demo

    started = time.monotonic()
    with progress_bar("forward passes", width=24) as tracker:
        d = run_demo(out_dir, resume, tracker)
    render.profile_summary(d["table"], str(d["table_path"]), time.monotonic() - started, False)
    _demo_estimates(d)
    _demo_whatif(d)
    console.print(f"\nopen: {d['report']} (the report: every figure, and each trace left out with why)\n"
                  f"data: {d['table_path']} (the table), {d['estimates_path']} (per question), {d['traces_path']} (the traces estimated)\n"
                  f"next: sotlat latency --table {d['table_path']} --prompt 128 --output 64   (one request's latency at each batch)",
                  highlight=False, soft_wrap=True)


def _demo_estimates(d: dict) -> None:
    """The estimates, the traces left out counted by reason, and why SoT pays off or not."""
    from sotlat.demo import skipped_summary
    from sotlat.estimator import performance_summary, summarize
    from sotlat.tables.stats import label

    render.speedup_table(summarize(d["estimates"]), label(d["table"]))
    render.performance(performance_summary(d["estimates"]), d["table"].attrs["sotlat"].device.peak_tflops)
    total = len(d["estimates"]) + len(d["unanswered"]) + len(d["skipped"])
    console.print(f"{len(d['estimates'])} of the {total} recorded traces estimated; left out (the report lists each):", highlight=False)
    for line in skipped_summary(d["skipped"], d["budget"]) + [f"{len(d['unanswered'])} traces the table cannot answer"] * bool(len(d["unanswered"])):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"\nWhy: {d['why']}", highlight=False, soft_wrap=True)


def _demo_whatif(d: dict) -> None:
    """SoT's mechanism on this table beside the paper's setting: an answer split into equal points."""
    w = d["whatif"]
    view = Table(title=f"What-if: a {WHATIF_ANSWER}-token answer split into n equal points, SoT's speed-up (normal / SoT latency)")
    for column in ("points n", "longest point", "this table", "llama-7b, A100 80GB, HF eager (simulated)"):
        view.add_column(column, justify="right")
    for r in w.itertuples():
        view.add_row(str(r.points), str(int(r.longest_point)), "-" if pd.isna(r.this_table) else f"{r.this_table:.2f}x" + "*" * r.extrapolated,
                     f"{r.paper_setting:.2f}x")
    console.print(view)
    if w["extrapolated"].any():
        console.print("* decode extended past what this table measured", highlight=False)
