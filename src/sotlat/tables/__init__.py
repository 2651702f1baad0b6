"""Latency tables: one Parquet file per (architecture x device x dtype), one row per cell."""

from sotlat.tables.grid import PrefillGrid, parse_batches, parse_range
from sotlat.tables.io import empty_cells, load_table, save_table
from sotlat.tables.merge import merge_tables
from sotlat.tables.schema import COLUMNS, SCHEMA

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "PrefillGrid",
    "empty_cells",
    "load_table",
    "merge_tables",
    "parse_batches",
    "parse_range",
    "save_table",
]
