"""Merge shards of one profile (e.g. batch ranges profiled separately) into one table."""

from __future__ import annotations

import copy

import pandas as pd

from sotlat.errors import InputError
from sotlat.tables.difference import first_difference, short
from sotlat.tables.schema import CELL_KEY, arch_identity
from sotlat.tables.stats import dispersion, is_complete

# Metadata that may differ between shards of one profile: when and in what order they ran, and
# what their runs show (recomputed over the merged cells).
_PER_SHARD = ("created_at", "progress", "shards", "host_load", "dispersion")


def _identity(meta: dict) -> dict:
    """What must agree between shards: everything but the batches, per-run bookkeeping and what is
    derived from the architecture's config."""
    ident = {k: v for k, v in meta.items() if k not in _PER_SHARD}
    ident["arch"] = arch_identity(ident["arch"])
    ident["method"] = copy.deepcopy(ident["method"])
    ident["method"]["grid"].pop("batches")
    ident["device"] = {k: v for k, v in ident["device"].items() if k not in ("clocks", "driver_state")}
    return ident


def merge_tables(tables: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """One table from shards; refuse incompatible metadata or a cell measured twice."""
    if len(tables) < 2:
        raise InputError("tables merge: give at least two tables")
    first = _identity(tables[0].attrs["sotlat"])
    for table, name in zip(tables[1:], names[1:]):
        other = _identity(table.attrs["sotlat"])
        path, ours, theirs = first_difference("", first, other)
        if path:
            raise InputError(f"{name}: not a shard of the same profile as {names[0]}: {path} is {short(theirs)} there, {short(ours)} in {names[0]}")
    cells = pd.concat(tables, ignore_index=True)
    dup = cells.duplicated(CELL_KEY, keep=False)
    if dup.any():
        row = cells[dup].iloc[0]
        owners = [n for t, n in zip(tables, names) if ((t.phase == row.phase) & (t.batch == row.batch) & (t.length == row.length)).any()]
        raise InputError(
            f"cell ({row.phase}, batch {row.batch}, length {row.length}) is in both {owners[0]} and {owners[1]}: shards overlap"
        )
    meta = copy.deepcopy(tables[0].attrs["sotlat"])
    meta["arch"] = copy.deepcopy(max((t.attrs["sotlat"]["arch"] for t in tables), key=len))  # the shard that recorded most of it
    meta["method"]["grid"]["batches"] = sorted({b for t in tables for b in t.attrs["sotlat"]["method"]["grid"]["batches"]})
    meta["shards"] = [{"file": n, "created_at": t.attrs["sotlat"]["created_at"]} for t, n in zip(tables, names)]
    meta["progress"] = {"complete": all(is_complete(t) for t in tables)}
    meta["dispersion"] = dispersion(cells)
    cells.attrs["sotlat"] = meta
    return cells


def keeps_all_of(merged: pd.DataFrame, table: pd.DataFrame) -> bool:
    """Whether a merge holds every cell of `table`, a profile of the same model and device (one of its
    shards, or an earlier merge of them): writing the merge over it loses no measurement."""
    return (_identity(merged.attrs["sotlat"]) == _identity(table.attrs["sotlat"])
            and bool(table.set_index(CELL_KEY).index.isin(merged.set_index(CELL_KEY).index).all()))
