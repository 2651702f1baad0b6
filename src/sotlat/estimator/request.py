"""What-if for one request shape without a trace file: Eq. 1 and Eq. 4 at each batch of a table.

"How long do 64 tokens after a 128-token prompt take at batch 1, 4, 16?" is T(128, 64, B) (Eq. 1),
the question the paper's Table 1 and Fig. 3 answer; the same lookups as `estimate`, one stage per batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.estimator.equations import OK, check_decode_terms, missing_cells, stage
from sotlat.estimator.lookup import build_lookup

TABLE1_PROMPT, TABLE1_OUTPUT = 128, 64  # the paper's Table 1 and Fig. 3 request: a 128-token prompt, then 64 tokens decoded

REQUEST_COLUMNS = ["batch", "prompt_tokens", "output_tokens", "prefill_ms", "decode_ms", "latency_ms", "tokens_per_s",
                   "decode_tflops", "peak_memory_bytes", "extrapolated", "missing"]


def request_latency(table: pd.DataFrame, prompt: int, output: int, batches: list[int] | None = None, extrapolate: bool = False,
                    decode_terms: str = "printed", peak_tflops: float | None = None) -> pd.DataFrame:
    """Per batch B (default: the table's): T(prompt, output, B) as prefill + decode (Eq. 1), the B x
    output tokens it yields per second, decode TFLOPS (Eq. 4), peak memory; `missing` names the
    cells a batch lacks (its figures are then NaN)."""
    check_decode_terms(decode_terms)
    if prompt < 1 or output < 1:
        raise InputError(f"prompt and output need at least 1 token each, got {prompt} and {output}")
    lk = build_lookup(table, prompt + output, extrapolate)
    b = np.asarray(lk.batches if batches is None else batches, dtype=np.int64)
    n = len(b)
    st = stage(lk, np.full(n, prompt), np.full(n, output), b, np.ones(n, bool), decode_terms)
    latency = st["prefill_ms"] + st["decode_ms"]
    out = pd.DataFrame({"batch": b, "prompt_tokens": prompt, "output_tokens": output, "prefill_ms": st["prefill_ms"],
                        "decode_ms": st["decode_ms"], "latency_ms": latency, "tokens_per_s": b * output / latency * 1e3,
                        "decode_tflops": st["decode_tflops"], "peak_memory_bytes": st["peak_memory_bytes"],
                        "extrapolated": st["extrapolated"] & (st["problem"] == OK),
                        "missing": [None if code == OK else missing_cells(lk, int(code), prompt, int(hi), int(batch))
                                    for code, hi, batch in zip(st["problem"], st["hi"], b)]}, columns=REQUEST_COLUMNS)
    peak = peak_tflops or table.attrs["sotlat"].device.peak_tflops
    if peak:
        out.insert(out.columns.get_loc("decode_tflops") + 1, "decode_utilization", out["decode_tflops"] / peak)
    return out


def request_latency_file(table, prompt: int, output: int, batches: str | None = None, extrapolate: bool = False, decode_terms: str = "printed",
                         peak_tflops: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`request_latency` on a table file, batches as `profile` takes them ('1-16', '1,4,16'): (the
    table, the rows). A table that answers none of the batches is refused, naming what the first lacks."""
    from sotlat.tables.grid import parse_batches
    from sotlat.tables.io import load_table

    table_frame = load_table(table)
    rows = request_latency(table_frame, prompt, output, parse_batches(batches) if batches else None, extrapolate, decode_terms, peak_tflops)
    missing = rows[rows["missing"].notna()]
    if len(missing) == len(rows):
        more = {1: "", 2: " (the other batch lacks cells too)"}.get(len(rows), f" (the other {len(rows) - 1} batches lack cells too)")
        raise InputError(f"{table}: B={missing['batch'].iloc[0]} needs {missing['missing'].iloc[0]}{more}")
    return table_frame, rows
