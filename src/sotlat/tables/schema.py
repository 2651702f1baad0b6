"""What a latency table is: its columns, their Arrow types, and the metadata it must carry."""

from __future__ import annotations

import pyarrow as pa

META_KEY = b"sotlat"  # the Parquet key of the metadata (tables/meta.py)

SCHEMA = pa.schema(
    [
        ("phase", pa.string()),
        ("batch", pa.int32()),
        ("length", pa.int32()),
        ("latency_ms", pa.float64()),
        ("runs_ms", pa.list_(pa.float64())),
        ("peak_memory_bytes", pa.int64()),
        ("flops", pa.float64()),
        ("status", pa.string()),
    ]
)
COLUMNS = SCHEMA.names
PHASES = ("prefill", "decode")
REQUIRED_META = ("arch", "device", "dtype", "method", "created_at")
CELL_KEY = ["phase", "batch", "length"]
