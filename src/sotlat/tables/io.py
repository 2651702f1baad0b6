"""Read and write latency tables: Parquet, one row per cell, metadata under the key `sotlat`.

A table is a pandas DataFrame with the columns of `schema.SCHEMA`; its metadata, a `meta.TableMeta`,
lives in `df.attrs["sotlat"]`. Loading checks everything and names exactly what is wrong, and
upgrades a table of schema version 1 to version 2's shape (`meta.upgrade`).
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sotlat.atomic import atomic_path
from sotlat.errors import InputError
from sotlat.tables.meta import SCHEMA_VERSION, TableMeta
from sotlat.tables.schema import CELL_KEY, COLUMNS, META_KEY, PHASES, REQUIRED_META, SCHEMA
from sotlat.tables.stats import dispersion


def empty_cells() -> pd.DataFrame:
    """A table with no cells, in the documented column types."""
    return SCHEMA.empty_table().to_pandas()


def with_meta(cells: pd.DataFrame, meta: TableMeta | dict) -> pd.DataFrame:
    """The cells as a table: `meta` (a TableMeta, or its dict of schema version 1 or 2) as its metadata,
    with the dispersion its cells show."""
    meta = meta if isinstance(meta, TableMeta) else TableMeta.from_dict(meta)
    cells.attrs["sotlat"] = meta.with_(dispersion=dispersion(cells))
    return cells


def to_arrow(table: pd.DataFrame) -> pa.Table:
    """The table as Arrow, cells sorted, metadata attached."""
    cells = table[COLUMNS].sort_values(CELL_KEY, kind="stable")
    cells.attrs = {}  # the metadata goes under its own key, below, not into pandas' own
    arrow = pa.Table.from_pandas(cells, schema=SCHEMA, preserve_index=False)
    return arrow.replace_schema_metadata({META_KEY: json.dumps(table.attrs["sotlat"].to_dict()).encode()})


def save_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the table atomically: readers see the old file or the new one, never half of one."""
    arrow = to_arrow(table)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """Load and check a table; raise InputError naming the file and what is wrong."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise InputError(f"{name}: no such file")
    if os.path.isdir(name):
        raise InputError(f"{name}: a folder, not a table file (`sotlat tables list {name}` lists the tables in it)")
    try:
        with open(name, "rb") as fh:
            parquet = fh.read(4) == b"PAR1"
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not parquet:  # a trace, a calibration, a CSV given where a table goes
        raise InputError(f"{name}: not a Parquet file, so not a latency table (docs/formats.md)")
    try:
        arrow = pq.read_table(name)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from None
    meta = _check_meta(name, arrow.schema.metadata or {})
    _check_columns(name, arrow.schema)
    table = arrow.select(COLUMNS).cast(SCHEMA).to_pandas()
    _check_cells(name, table)
    if meta.dispersion is None:  # schema version 1 did not record it
        return with_meta(table, meta)
    table.attrs["sotlat"] = meta
    return table


def holds_measured_table(path: str | os.PathLike) -> bool:
    """Whether a file is a sotlat table measured on a device (not simulated): device time to redo,
    so never to be written over. Reads only the Parquet footer."""
    try:
        return not TableMeta.from_dict(json.loads((pq.read_schema(path).metadata or {})[META_KEY])).simulated
    except Exception:  # no file, not Parquet, not a sotlat table: nothing measured to lose
        return False


def _check_meta(name: str, raw: dict) -> TableMeta:
    if META_KEY not in raw:
        raise InputError(f"{name}: no 'sotlat' metadata: not a sotlat latency table")
    try:
        meta = json.loads(raw[META_KEY])
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: metadata 'sotlat' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{name}: metadata 'sotlat' must be a JSON object")
    missing = [k for k in ("schema_version", *REQUIRED_META) if k not in meta]
    if missing:
        raise InputError(f"{name}: metadata 'sotlat' lacks {', '.join(missing)}")
    if meta["schema_version"] not in (1, SCHEMA_VERSION):
        raise InputError(f"{name}: metadata schema_version is {meta['schema_version']!r}, expected 1 or {SCHEMA_VERSION}")
    for key in ("arch", "device"):
        if not isinstance(meta[key], dict) or "name" not in meta[key]:
            raise InputError(f"{name}: metadata '{key}' must be an object with a 'name'")
    if not isinstance(meta["arch"].get("config"), dict):
        raise InputError(f"{name}: metadata 'arch.config' must be an object (the HF config)")
    grid = meta["method"].get("grid") if isinstance(meta["method"], dict) else None
    if not isinstance(grid, dict) or not {"batches", "prefill_lengths", "decode_max"} <= set(grid):
        raise InputError(f"{name}: metadata 'method.grid' must give batches, prefill_lengths and decode_max")
    try:
        return TableMeta.from_dict(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: metadata 'sotlat' does not hold a table's metadata ({type(exc).__name__}: {exc})") from None


# Same values, other Arrow layouts: accepted and cast on load.
_EQUIVALENT = {pa.large_string(): pa.string(), pa.large_list(pa.float64()): pa.list_(pa.float64())}


def _check_columns(name: str, schema: pa.Schema) -> None:
    for field in SCHEMA:
        if field.name not in schema.names:
            raise InputError(f"{name}: column '{field.name}' is missing")
        actual = schema.field(field.name).type
        if _EQUIVALENT.get(actual, actual) != field.type:
            raise InputError(f"{name}: column '{field.name}' has type {actual}, expected {field.type}")


def _check_cells(name: str, table: pd.DataFrame) -> None:
    def fail(i: int, what: str):
        row = table.iloc[i]
        raise InputError(f"{name}: row {i} ({row.phase}, batch {row.batch}, length {row.length}): {what}")

    bad_phase = ~table["phase"].isin(PHASES)
    if bad_phase.any():
        fail(int(bad_phase.to_numpy().argmax()), f"phase must be one of {', '.join(PHASES)}")
    for column in ("batch", "length"):
        bad = table[column].isna() | (table[column] < 1)
        if bad.any():
            fail(int(bad.to_numpy().argmax()), f"{column} must be a positive integer")
    ok = table["status"] == "ok"
    no_latency = ok & table["latency_ms"].isna()
    if no_latency.any():
        fail(int(no_latency.to_numpy().argmax()), "status is 'ok' but latency_ms is null")
    negative = table["latency_ms"] <= 0
    if negative.any():
        fail(int(negative.to_numpy().argmax()), "latency_ms must be positive")
    no_status = table["status"].isna() | (table["status"] == "")
    if no_status.any():
        fail(int(no_status.to_numpy().argmax()), "status is empty")
    dup = table.duplicated(CELL_KEY)
    if dup.any():
        fail(int(dup.to_numpy().argmax()), "cell appears more than once")
