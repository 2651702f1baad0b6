"""What a latency table is: its columns, their Arrow types, and the metadata it must carry."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1
META_KEY = b"sotlat"

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
REQUIRED_META = ("schema_version", "arch", "device", "dtype", "method", "created_at")
CELL_KEY = ["phase", "batch", "length"]


def arch_identity(arch: dict) -> dict:
    """Which architecture a table is of: its name and HF config. The rest of `arch` (parameter count,
    weight bytes) is derived from these, so a newer sotlat that records more of it still resumes
    and merges an older one's shards."""
    return {k: arch.get(k) for k in ("name", "config")}
