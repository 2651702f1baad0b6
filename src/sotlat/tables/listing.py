"""The tables in files and folders, one row each: which model, device and dtype, over what grid."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from sotlat.errors import InputError
from sotlat.tables.grid import format_batches
from sotlat.tables.io import load_table
from sotlat.tables.stats import coverage, is_complete, summary

LIST_COLUMNS = ["file", "arch", "device", "simulated", "dtype", "batches", "prefill_lengths", "decode_max", "cells", "status",
                "median_cv", "complete", "created_at"]


def list_tables(paths: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    """A row per table in `paths` (files, or folders searched for *.parquet), and why each other
    Parquet file found in a folder is not a table. A file named directly must be a table."""
    rows, skipped = [], []
    for path in paths:
        if path.is_dir():
            for found in _parquet_files(path):
                try:
                    rows.append(_row(found))
                except InputError as exc:
                    skipped.append(str(exc))
        elif path.exists():
            rows.append(_row(path))
        else:
            raise InputError(f"{path}: no such file or folder")
    return pd.DataFrame(rows, columns=LIST_COLUMNS), skipped


def _parquet_files(folder: Path) -> list[Path]:
    """*.parquet files below `folder`, leaving out hidden folders (.git, .venv) and virtual
    environments, whose packages ship Parquet test data."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(root, d) / "pyvenv.cfg").exists())
        found += [Path(root, f) for f in sorted(files) if f.endswith(".parquet")]
    return found


def _row(path: Path) -> dict:
    table = load_table(path)
    meta, s = table.attrs["sotlat"], summary(table)
    phases = {c["phase"]: c for c in coverage(table)}
    prefill, decode = phases.get("prefill"), phases.get("decode")
    return {
        "file": str(path), "arch": meta.arch.name, "device": meta.device.name, "simulated": meta.simulated, "dtype": meta.dtype,
        "batches": format_batches(sorted({b for c in phases.values() for b in c["batches"]})) if phases else "",
        "prefill_lengths": f"{prefill['length_min']}-{prefill['length_max']}" if prefill else "",
        "decode_max": decode["length_max"] if decode else 0,
        "cells": s["cells"], "status": s["status"], "median_cv": None if pd.isna(s["median_cv"]) else s["median_cv"],
        "complete": is_complete(table), "created_at": meta.created_at,
    }
