"""Merge shards of one profile (e.g. batch ranges profiled separately) into one table."""

from __future__ import annotations

import pandas as pd

from sotlat.errors import InputError
from sotlat.tables.difference import first_difference, short
from sotlat.tables.meta import Progress, TableMeta
from sotlat.tables.schema import CELL_KEY
from sotlat.tables.stats import dispersion, is_complete

# Metadata that may differ between shards of one profile: when and in what order they ran, what
# their runs show (recomputed over the merged cells), and the campaign that ran them.
_PER_SHARD = ("created_at", "progress", "shards", "host_load", "dispersion", "campaign")


def _identity(meta: TableMeta) -> dict:
    """What must agree between shards: everything but the batches, per-run bookkeeping and what is
    derived from the architecture's config."""
    ident = {k: v for k, v in meta.to_dict().items() if k not in _PER_SHARD}
    ident["arch"] = meta.arch.identity()
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
    metas = [t.attrs["sotlat"] for t in tables]
    meta = metas[0].with_(arch=max((m.arch for m in metas), key=lambda a: sum(v is not None for v in vars(a).values())),  # recorded most
                          shards=tuple({"file": n, "created_at": m.created_at} for m, n in zip(metas, names)),
                          progress=Progress(complete=all(is_complete(t) for t in tables)), dispersion=dispersion(cells),
                          **{"method.grid.batches": tuple(sorted({b for m in metas for b in m.method.grid.batches}))})
    cells.attrs["sotlat"] = meta
    return cells


def keeps_all_of(merged: pd.DataFrame, table: pd.DataFrame) -> bool:
    """Whether a merge holds every cell of `table`, a profile of the same model and device (one of its
    shards, or an earlier merge of them): writing the merge over it loses no measurement."""
    return (_identity(merged.attrs["sotlat"]) == _identity(table.attrs["sotlat"])
            and bool(table.set_index(CELL_KEY).index.isin(merged.set_index(CELL_KEY).index).all()))


def merge_files(files: list, out) -> dict:
    """`merge_tables` of table files into `out`, which may be one of them, or an earlier merge of them
    (merged again once a shard is resumed): nothing it holds is lost; any other measured table there
    is refused. Returns {cells, unfinished (the shards still to resume)}."""
    from sotlat.tables.io import holds_measured_table, load_table, save_table

    shards = [load_table(f) for f in files]
    merged = merge_tables(shards, [str(f) for f in files])
    if holds_measured_table(out) and not keeps_all_of(merged, load_table(out)):
        raise InputError(f"{out} holds a measured latency table, and writing it would replace it; choose another `out`, "
                         "or delete the file first", param="out")
    save_table(merged, out)
    return {"cells": len(merged), "unfinished": [str(f) for f, shard in zip(files, shards) if not is_complete(shard)]}
