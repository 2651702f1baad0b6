"""`sotlat tables`: list, show, compare and merge latency tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from sotlat.atomic import write_frame
from sotlat.cli import render
from sotlat.cli.app import tables_app
from sotlat.cli.common import check_out, console, count, given_once, ms, num, statuses, user_errors
from sotlat.tables import load_table
from sotlat.tables.grid import format_batches
from sotlat.tables.stats import coverage, is_complete, label, summary


@tables_app.command("show")
@user_errors
def tables_show(
    file: Path,
    cells: Annotated[int, typer.Option(min=0, help="Cells to show per phase (0: none).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata, coverage and summary as JSON.")] = False,
):
    """Metadata, grid coverage and a few cells of a table."""
    table = load_table(file)
    meta, s = table.attrs["sotlat"], summary(table)
    if as_json:
        s = {**s, "median_cv": None if pd.isna(s["median_cv"]) else s["median_cv"], "dispersion": meta.to_dict()["dispersion"]}
        print(json.dumps({"file": str(file), "complete": is_complete(table), "metadata": meta.to_dict(), "coverage": coverage(table), "summary": s}))
        return
    _header(file, table)
    view = Table(title="coverage")
    for c in ("phase", "batches", "lengths", "cells", "statuses"):
        view.add_column(c)
    for c in coverage(table):
        view.add_row(c["phase"], f"{format_batches(c['batches'])} ({len(c['batches'])})", f"{c['length_min']}-{c['length_max']} ({c['lengths']})",
                     f"{c['cells']:,}", statuses(c["status"]))
    console.print(view)
    render.dispersion_lines(meta, per_batch=True)
    render.floor(s)
    if cells:
        _sample(table, cells)


def _header(file: Path, table: pd.DataFrame) -> None:
    """What a table is: schema, architecture, device, dtype, timer (or calibration) and grid."""
    meta = table.attrs["sotlat"]
    console.print(Text.assemble((str(file), "bold"), f"  schema {meta.schema_version}, created {meta.created_at}, "
                                f"{'complete' if is_complete(table) else 'INCOMPLETE (resume it)'}"))
    arch = meta.arch
    moe = f", {arch.expert_parameters:,} of them in routed experts" if arch.expert_parameters else ""
    console.print(f"arch   {arch.name}" + (f" ({arch.parameters:,} parameters{moe})" if arch.parameters else ""))
    device = meta.device
    known = [f"catalogue {device.catalogue_id}" if device.catalogue_id else "", f"peak {device.peak_tflops:g} TFLOPS" if device.peak_tflops else "",
             f"bandwidth {device.memory_bandwidth_bytes_per_s / 1e9:,.0f} GB/s" if device.memory_bandwidth_bytes_per_s else ""]
    known = ", ".join(k for k in known if k)
    calibration = f"   calibration {meta.method.calibration['name']}" if meta.simulated else ""
    backend = f"   backend {meta.method.backend}" if meta.method.backend else ""
    console.print(f"device {device.name}{f' ({known})' if known else ''}   dtype {meta.dtype}   timer {meta.method.timer or '?'}{backend}{calibration}",
                  highlight=False)
    if meta.method.cache_buckets:
        console.print(f"cache  {meta.method.cache_buckets}", highlight=False, soft_wrap=True)
    grid = meta.method.grid
    prefill = grid.prefill_lengths  # as profile's options
    console.print(f"grid   --batches {format_batches(list(grid.batches))} --prefill-lengths {prefill} "
                  f"(l = {prefill.lengths[0]}..{prefill.lengths[-1]}, {len(prefill.lengths)} lengths) --decode-max {grid.decode_max}", highlight=False)
    if c := meta.campaign:
        console.print(f"campaign {c.file}, {c.shards} shard{'s' * (c.shards != 1)}", highlight=False, soft_wrap=True)
        if c.shared_cores:
            console.print(f"warning: measured while {c.cpu_workers} CPU shards shared the cores: a test's timings, not a quiet machine's",
                          style="yellow", highlight=False)


def _sample(table: pd.DataFrame, cells: int) -> None:
    sample = pd.concat([part.head(cells) for _, part in table.groupby("phase")])
    shown = Table(title="cells")
    for c in ("phase", "batch", "length", "latency_ms", "runs", "peak_memory_bytes", "flops", "status"):
        shown.add_column(c)
    for r in sample.itertuples():
        shown.add_row(r.phase, str(r.batch), str(r.length), ms(r.latency_ms), str(len(r.runs_ms)),
                      "-" if pd.isna(r.peak_memory_bytes) else f"{int(r.peak_memory_bytes):,}", "-" if pd.isna(r.flops) else f"{r.flops:.4g}", r.status)
    console.print(shown)


@tables_app.command("list")
@user_errors
def tables_list(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Table files, or folders searched for *.parquet (default: this folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per table.")] = False,
):
    """One line per table: architecture, device, dtype, grid, cells and whether it is complete."""
    from sotlat.tables.listing import list_tables

    found, skipped = list_tables(paths or [Path(".")])
    if as_json:
        for row in found.to_dict("records"):
            print(json.dumps(row))
        return
    for r in found.itertuples():  # two plain lines a table: long paths stay whole at any width
        grid = f"B {r.batches}, l {r.prefill_lengths or '-'}, k {f'1-{r.decode_max}' if r.decode_max else '-'}"
        console.print(r.file, style="bold", soft_wrap=True, highlight=False)
        console.print(f"  {r.arch} · {r.device}{' (simulated)' if r.simulated else ''} · {r.dtype} · {grid} · cells {statuses(r.status)} · "
                      f"median CV {num(r.median_cv, '.1%')} · {'complete' if r.complete else 'INCOMPLETE (resume it)'}",
                      soft_wrap=True, highlight=False)
    console.print(count(len(found), "latency table"))
    for why in skipped:
        console.print(f"not a table: {why}", highlight=False, soft_wrap=True)


@tables_app.command("compare")
@user_errors
def tables_compare(
    table: Path,
    reference: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Per-cell comparison: .jsonl, .csv or .parquet.")] = None,
):
    """Latency of TABLE against REFERENCE over the cells ok in both: % errors per phase and batch."""
    from sotlat.tables.compare import compare_files

    check_out(out, inputs=[table, reference])
    c = compare_files(table, reference)
    if as_json:
        print(json.dumps({"table": str(table), "reference": str(reference), "cells": len(c["cells"]), "only_in_table": c["only_in_table"],
                          "only_in_reference": c["only_in_reference"], **c["summary"]}))
    else:
        console.print(f"{table} ({label(c['table'])})\nagainst {reference} ({label(c['reference'])}):\n{len(c['cells']):,} cells ok in both; "
                      f"{c['only_in_table']:,} ok only in the table, {c['only_in_reference']:,} only in the reference")
        render.errors_table(c["summary"], "% error of the table's latency against the reference's (positive: the table is slower; ratio: table / reference)")
    if out is not None:
        write_frame(c["cells"], out)


@tables_app.command("merge")
@user_errors
def tables_merge(files: list[Path], out: Annotated[Path, typer.Option("--out", "-o")]):
    """Merge shards of one profile (e.g. batch ranges run separately) into one table."""
    from sotlat.tables.merge import merge_files

    check_out(out, (".parquet",), keeps=[out])  # the suffix; whether it may go over a measured table: once merged
    given_once(files, "tables merge")
    merged = merge_files(files, out)
    console.print(f"{out}: {merged['cells']:,} cells from {len(files)} shards")
    for f in merged["unfinished"]:
        console.print(f"warning: {f} is an unfinished profile: resume it and merge again (the merged table says INCOMPLETE)", style="yellow")
