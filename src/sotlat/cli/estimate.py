"""`sotlat estimate` and `sotlat latency`: the paper's Eq. 1-4 over traces, or over one request shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sotlat.cli import render
from sotlat.cli.app import app
from sotlat.cli.common import DecodeTerms, Extrapolate, UtilizationPeak, check_out, console, given_once, ms, num, user_errors


@app.command()
@user_errors
def estimate(
    table: Annotated[Path, typer.Option(help="Latency table (.parquet).")],
    traces: Annotated[list[Path], typer.Option(help="Trace file(s), JSONL; repeat for several.")],
    out: Annotated[Optional[Path], typer.Option(help="Per-trace estimates: .jsonl, .csv or .parquet.")] = None,
    extrapolate: Extrapolate = False,
    peak_tflops: UtilizationPeak = None,
    decode_terms: DecodeTerms = "printed",
    skip_unanswerable: Annotated[bool, typer.Option(help="Estimate the traces the table answers and list the others, instead of stopping.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries (and the traces outside the table) as JSON.")] = False,
):
    """Normal vs SoT latency and speed-up per trace (Eq. 1-4), summarised per model x category."""
    from sotlat.atomic import write_frame
    from sotlat.estimator.answer import answering_advice, estimate_files

    check_out(out, inputs=[table, *traces])
    given_once(traces, "--traces")
    r = estimate_files(table, traces, extrapolate, peak_tflops, decode_terms, skip_unanswerable)
    if out is not None:
        write_frame(r["estimates"], out)
    if as_json:
        print(json.dumps(_as_json(r)))
        return
    advice = answering_advice(r["traces"], r["table"], f"all {len(r['traces'])}")
    render.estimates(r["table"], r["estimates"], r["unanswered"], advice, peak_tflops)
    if out is not None:
        console.print(f"per-trace estimates: {out}")


def _as_json(r: dict) -> dict:
    """What `estimate` prints, as data: the summaries, what was extrapolated, and the traces outside the table."""
    from sotlat.estimator import performance_summary, summarize
    from sotlat.estimator.answer import answering_grid
    from sotlat.tables.grid import as_options
    from sotlat.tables.stats import label

    records = lambda frame: json.loads(frame.to_json(orient="records"))  # noqa: E731  NaN as null
    estimates, unanswered = r["estimates"], r["unanswered"]
    grid = answering_grid(r["traces"], r["table"]) if len(unanswered) else None
    return {"table": label(r["table"]), "traces": len(r["traces"]), "estimated": len(estimates), "extrapolated": int(estimates["extrapolated"].sum()),
            "summary": records(summarize(estimates)), "performance": records(performance_summary(estimates)),
            "unanswered": records(unanswered[["id", "model", "reason"]]), "answering_grid": as_options(grid) if grid else None}


@app.command()
@user_errors
def latency(
    table: Annotated[Path, typer.Option(help="Latency table (.parquet), profiled or simulated.")],
    prompt: Annotated[int, typer.Option(min=1, help="Prompt tokens l_i.")],
    output: Annotated[int, typer.Option(min=1, help="Generated tokens l_o per sequence.")],
    batches: Annotated[Optional[str], typer.Option(help="Batch sizes B, e.g. 1-16 or 1,4,16 (default: the table's).")] = None,
    extrapolate: Extrapolate = False,
    peak_tflops: UtilizationPeak = None,
    decode_terms: DecodeTerms = "printed",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
):
    """What-if for one request shape: T(l_i, l_o, B) per batch (Eq. 1), tokens/s, TFLOPS (Eq. 4), memory."""
    from sotlat.estimator.equations import DECODE_TERMS
    from sotlat.estimator.request import request_latency_file
    from sotlat.tables.stats import label

    table_frame, rows = request_latency_file(table, prompt, output, batches, extrapolate, decode_terms, peak_tflops)
    if as_json:
        print(json.dumps({"table": label(table_frame), "decode_terms": decode_terms, "rows": json.loads(rows.to_json(orient="records"))}))
        return
    last = prompt + output + DECODE_TERMS[decode_terms]
    t = Table(title=f"T(l_i={prompt}, l_o={output}, B) (Eq. 1: t~^P_B({prompt}) + t^D_B(k), k = {prompt}..{last}) on {label(table_frame)}")
    util = "decode_utilization" in rows
    for c in ("B", "prefill ms", "decode ms", "total ms", "tokens/s", "decode TFLOPS") + ("of peak",) * util + ("peak memory GB",):
        t.add_column(c, justify="right")
    shown, missing = rows[rows["missing"].isna()], rows[rows["missing"].notna()]
    for r in shown.itertuples():
        t.add_row(str(r.batch) + "*" * r.extrapolated, ms(r.prefill_ms), ms(r.decode_ms), ms(r.latency_ms), num(r.tokens_per_s, ",.1f"),
                  num(r.decode_tflops, ".3g"), *([num(r.decode_utilization, ".2%")] if util else []), num(r.peak_memory_bytes / 1e9, ".2f"))
    console.print(t)
    if shown["extrapolated"].any():
        console.print("* decode extrapolated past the table", style="yellow")
    for r in missing.head(10).itertuples():
        console.print(f"B={r.batch} needs {r.missing}", style="yellow", highlight=False, soft_wrap=True)
    if len(missing) > 10:
        console.print(f"  ... and {len(missing) - 10} more batches")
