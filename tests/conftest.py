"""Shared test helpers: synthetic tables with known cell values, and trace files."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

os.environ.setdefault("PYTHONWARNINGS", "ignore")

from sotlat.tables.io import empty_cells, with_meta  # noqa: E402


def synthetic_table(
    batches=(1, 2, 3, 4),
    prefill=(1, 100, 10),
    decode_max=200,
    t_prefill=lambda b, l: 10.0 * b + 0.5 * l,
    t_decode=lambda b, k: 1.0 + 0.1 * b + 0.001 * k,
    f_decode=lambda b, k: b * (1e9 + 1e6 * k),
    mem=lambda b, l: 1000 * b + l,
    status=lambda phase, b, l: "ok",
) -> pd.DataFrame:
    """A table whose every cell is a known function of (batch, length)."""
    rows = []
    for b in batches:
        for l in range(*prefill):
            s = status("prefill", b, l)
            rows.append(dict(phase="prefill", batch=b, length=l, latency_ms=t_prefill(b, l) if s == "ok" else None,
                             runs_ms=[t_prefill(b, l)] * 2 if s == "ok" else [], peak_memory_bytes=mem(b, l),
                             flops=float(b * l * 1e9), status=s))
        for k in range(1, decode_max + 1):
            s = status("decode", b, k)
            rows.append(dict(phase="decode", batch=b, length=k, latency_ms=t_decode(b, k) if s == "ok" else None,
                             runs_ms=[t_decode(b, k)] * 3 if s == "ok" else [], peak_memory_bytes=mem(b, k),
                             flops=float(f_decode(b, k)), status=s))
    table = pd.DataFrame(rows) if rows else empty_cells()
    return with_meta(table, {
        "schema_version": 1,
        "arch": {"name": "synthetic", "config": {"model_type": "llama"}},
        "device": {"name": "test-device"},
        "dtype": "float16",
        "method": {"grid": {"batches": list(batches), "prefill_lengths": dict(zip(("start", "stop", "step"), prefill)), "decode_max": decode_max}},
        "created_at": "2026-01-01T00:00:00+00:00",
    })


def trace(id="q1", normal=(20, 50), skeleton=(30, 10), points=((15, 5), (12, 8)), **extra) -> dict:
    t = {"id": id, **extra}
    if normal:
        t["normal"] = {"prompt_tokens": normal[0], "completion_tokens": normal[1]}
    if skeleton:
        t["sot"] = {"skeleton": {"prompt_tokens": skeleton[0], "completion_tokens": skeleton[1]},
                    "points": [{"prompt_tokens": p, "completion_tokens": c} for p, c in points]}
    return t


def write_jsonl(path, records) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


@pytest.fixture
def table():
    return synthetic_table()


# A mixture of experts as Mixtral's: 4 experts per layer, 2 visited per token.
MIXTRAL = dict(model_type="mixtral", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               intermediate_size=128, vocab_size=256, num_local_experts=4, num_experts_per_tok=2)
# Configs that transformers before 5 cannot run as profiled (refused with one line): a mixture of
# experts, whose loop over experts cannot run on the meta device; Bloom, whose forward takes no logits_to_keep.
TRANSFORMERS_5 = hasattr(__import__("transformers").PreTrainedModel, "get_experts_implementation")
transformers_5 = pytest.mark.skipif(not TRANSFORMERS_5, reason="transformers before 5 refuses this config")


def edit(table: pd.DataFrame, changes: dict) -> pd.DataFrame:
    """Change a table's metadata in a test: keys are dotted paths ('arch.weight_bytes'); a dict given
    for the device or the arch is read as one."""
    from sotlat.tables.meta import Arch, Device

    read = {"device": Device.from_dict, "arch": lambda d: Arch(**d)}
    table.attrs["sotlat"] = table.attrs["sotlat"].with_(**{k: read[k](v) if k in read and isinstance(v, dict) else v for k, v in changes.items()})
    return table
