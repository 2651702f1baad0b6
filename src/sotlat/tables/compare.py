"""Two latency tables cell by cell: a GPU against another, a simulated table against a measured one,
a profile against its repeat. What is compared is the latency of the cells that are ok in both."""

from __future__ import annotations

import pandas as pd

from sotlat.errors import InputError
from sotlat.pct_errors import error_stats, relative_pct
from sotlat.tables.schema import CELL_KEY


def compare_tables(table: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The cells ok in both, with both latencies and `error_pct`: table against reference, in %."""
    ok = [t[t["status"] == "ok"][[*CELL_KEY, "latency_ms"]] for t in (table, reference)]
    cells = ok[0].merge(ok[1], on=CELL_KEY, suffixes=("", "_reference")).sort_values(CELL_KEY, ignore_index=True)
    cells["error_pct"] = relative_pct(cells["latency_ms"], cells["latency_ms_reference"])
    return cells


def compare_summary(cells: pd.DataFrame) -> dict:
    """`error_stats` per phase, and per phase and batch."""
    if cells.empty:
        raise InputError("the tables have no ok cell in common (phase, batch, length): nothing to compare")
    return {phase: {**error_stats(part["error_pct"]),
                    "by_batch": {int(b): error_stats(g["error_pct"]) for b, g in part.groupby("batch")}}
            for phase, part in cells.groupby("phase")}


def compare_files(table, reference) -> dict:
    """`compare_tables` of two table files: {table, reference (the frames), cells, summary, only_in_table,
    only_in_reference (their ok cells the other lacks)}."""
    from sotlat.tables.io import load_table

    a, b = load_table(table), load_table(reference)
    cells = compare_tables(a, b)
    only = {name: int((t["status"] == "ok").sum()) - len(cells) for name, t in (("only_in_table", a), ("only_in_reference", b))}
    return {"table": a, "reference": b, "cells": cells, "summary": compare_summary(cells), **only}
