"""`sotlat report`: the paper's figures, measurement quality and capacity planning as one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sotlat.cli.app import app
from sotlat.cli.common import Positive, console, err, given_once, user_errors
from sotlat.report.analysis import WHATIF_ANSWER


@app.command()
@user_errors
def report(
    table: Annotated[list[Path], typer.Option(help="Latency table(s); several are compared in every figure.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html, report.md, figures and CSVs.")],
    traces: Annotated[Optional[list[Path]], typer.Option(help="Trace file(s) to estimate on each table.")] = None,
    memory_budget_gb: Annotated[Optional[float], typer.Option(callback=Positive, help="Memory budget (default: the device's memory).")] = None,
    headroom: Annotated[float, typer.Option(min=0, max=0.9, help="Fraction of the budget kept free.")] = 0.1,
    slo_tpot_ms: Annotated[Optional[float], typer.Option(callback=Positive, help="Time per output token objective.")] = None,
    slo_ttft_ms: Annotated[Optional[float], typer.Option(callback=Positive, help="Time to first token objective.")] = None,
    context: Annotated[Optional[int], typer.Option(min=1, help="Context for throughput and TPOT (default: 256, or less where a table's decode ends sooner).")] = None,
    answer_tokens: Annotated[int, typer.Option(min=2, help="Normal answer length for the SoT what-if.")] = WHATIF_ANSWER,
):
    """Write a self-contained HTML report (and report.md, figures, CSVs) from tables and traces."""
    from sotlat.report.build import report as run

    given_once(table, "--table")
    given_once(traces or [], "--traces")
    made = run(table, traces or [], out, memory_budget_gb, headroom, slo_tpot_ms, slo_ttft_ms, context, answer_tokens)
    for line in made["left_out"]:
        err.print(f"note: {line}: it is left out of the latency figures")
    console.print(f"report: {made['index']}")
