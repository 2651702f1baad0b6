"""A latency table as dense arrays indexed [batch, length], ready for vectorised range queries.

Decode latency and FLOPs become prefix sums over k (a sum over k = a..b is two gathers), unusable
cells (missing, oom) a prefix count, and peak memory a sparse table (a max over k = a..b is two
gathers). Prefill cells sit at their grid index j, length = start + j*step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sotlat.tables.grid import PrefillGrid


# --extrapolate extends a table's decode to at most this many times its profiled k: far enough for
# answers longer than the profile, not so far that a line through a few hundred steps is trusted
# for a million (or that the arrays below outgrow memory).
EXTRAPOLATION_REACH = 8


@dataclass(frozen=True)
class Lookup:
    prefill_ms: np.ndarray  # [B, j]; NaN where not usable
    prefill_mem: np.ndarray  # [B, j]
    prefill_status: np.ndarray  # [B, j] object: cell status or None when not profiled
    grid: PrefillGrid
    decode_cum_ms: np.ndarray  # [B, k]: sum of t^D_B(1..k); column 0 is 0
    decode_cum_bad: np.ndarray  # [B, k]: number of unusable cells in 1..k
    decode_cum_flops: np.ndarray  # [B, k]
    decode_cum_noflops: np.ndarray  # [B, k]: number of cells without FLOPs in 1..k
    decode_mem_levels: list[np.ndarray]  # sparse table of peak memory, -inf where unknown
    decode_status: dict  # (B, k) -> status, for cells that are not ok
    decode_last: np.ndarray  # [B]: largest profiled k (0: none)
    first_extrapolated: np.ndarray  # [B]: first k whose values are extrapolated
    batches: list[int]  # batch sizes with cells

    @property
    def k_cap(self) -> int:
        return self.decode_cum_ms.shape[1] - 1

    @property
    def b_cap(self) -> int:
        return self.decode_cum_ms.shape[0] - 1


def build_lookup(table: pd.DataFrame, k_needed: int = 0, extrapolate: bool = False) -> Lookup:
    """Dense arrays of the table; with `extrapolate`, decode extended linearly up to `k_needed`."""
    grid = table.attrs["sotlat"].method.grid.prefill_lengths
    b_cap = int(table["batch"].max()) if len(table) else 0
    pre = table[(table["phase"] == "prefill") & ((table["length"] - grid.start) % grid.step == 0)]
    dec = table[table["phase"] == "decode"]
    n_pre = len(grid.lengths)
    prefill_ms = np.full((b_cap + 1, n_pre), np.nan)
    prefill_mem = np.full((b_cap + 1, n_pre), np.nan)
    prefill_status = np.full((b_cap + 1, n_pre), None, dtype=object)
    pre = pre[(pre["length"] - grid.start) // grid.step < n_pre]
    b, j = pre["batch"].to_numpy(), ((pre["length"] - grid.start) // grid.step).to_numpy()
    ok = (pre["status"] == "ok").to_numpy()
    prefill_ms[b[ok], j[ok]] = pre["latency_ms"].to_numpy()[ok]
    prefill_mem[b, j] = pre["peak_memory_bytes"].astype("float64").to_numpy()
    prefill_status[b, j] = pre["status"].to_numpy()

    k_prof = int(dec["length"].max()) if len(dec) else 0
    k_cap = max(k_prof, min(k_needed, EXTRAPOLATION_REACH * k_prof)) if extrapolate else k_prof
    lat = np.full((b_cap + 1, k_cap + 1), np.nan)
    flops = np.full((b_cap + 1, k_cap + 1), np.nan)
    mem = np.full((b_cap + 1, k_cap + 1), np.nan)
    b, k = dec["batch"].to_numpy(), dec["length"].to_numpy()
    ok = (dec["status"] == "ok").to_numpy()
    lat[b[ok], k[ok]] = dec["latency_ms"].to_numpy()[ok]
    flops[b, k] = dec["flops"].to_numpy()
    mem[b, k] = dec["peak_memory_bytes"].astype("float64").to_numpy()
    last = np.zeros(b_cap + 1, dtype=np.int64)
    np.maximum.at(last, b, k)
    first_extra = np.full(b_cap + 1, k_cap + 1, dtype=np.int64)
    if extrapolate:
        for batch in np.flatnonzero(last):
            if np.isfinite(lat[batch, last[batch]]) and last[batch] < k_cap:
                _extend_linearly(batch, last[batch], dec, (lat, flops, mem))
                first_extra[batch] = last[batch] + 1

    not_ok = dec[~ok]
    bad = ~np.isfinite(lat)
    bad[:, 0] = False
    noflops = ~np.isfinite(flops)
    noflops[:, 0] = False
    return Lookup(
        prefill_ms=prefill_ms,
        prefill_mem=prefill_mem,
        prefill_status=prefill_status,
        grid=grid,
        decode_cum_ms=np.cumsum(np.nan_to_num(lat), axis=1),
        decode_cum_bad=np.cumsum(bad, axis=1),
        decode_cum_flops=np.cumsum(np.nan_to_num(flops), axis=1),
        decode_cum_noflops=np.cumsum(noflops, axis=1),
        decode_mem_levels=_sparse_max(np.where(np.isfinite(mem), mem, -np.inf)),
        decode_status={(int(r.batch), int(r.length)): r.status for r in not_ok.itertuples()},
        decode_last=last,
        first_extrapolated=first_extra,
        batches=sorted(int(x) for x in table["batch"].unique()),
    )


def _extend_linearly(batch: int, last: int, dec: pd.DataFrame, arrays) -> None:
    """Least squares in k over the last quarter of the batch's profiled range, filled past `last`."""
    cells = dec[(dec["batch"] == batch) & (dec["status"] == "ok")]
    first = int(dec.loc[dec["batch"] == batch, "length"].min())
    lo = last - (last - first + 1) // 4 + 1
    fit_k = np.arange(max(lo, first), last + 1)
    fit_k = fit_k[np.isin(fit_k, cells["length"].to_numpy())]
    if len(fit_k) < 2:
        fit_k = np.sort(cells["length"].to_numpy())[-2:]
    new_k = np.arange(last + 1, arrays[0].shape[1])
    for values in arrays:
        y = values[batch, fit_k]
        if np.isfinite(y).all() and len(fit_k) >= 2:
            slope, intercept = np.polyfit(fit_k, y, 1)
            values[batch, new_k] = intercept + slope * new_k


def _sparse_max(values: np.ndarray) -> list[np.ndarray]:
    """levels[i][:, k] = max(values[:, k : k + 2**i])."""
    levels = [values]
    width = 1
    while 2 * width <= values.shape[1]:
        prev = levels[-1]
        levels.append(np.maximum(prev[:, : prev.shape[1] - width], prev[:, width:]))
        width *= 2
    return levels


def range_max(levels: list[np.ndarray], b, lo, hi) -> np.ndarray:
    """max over k = lo..hi (inclusive) of row b, for arrays of queries; NaN where all unknown."""
    span = hi - lo + 1
    level = np.floor(np.log2(np.maximum(span, 1))).astype(np.int64)
    out = np.full(np.shape(lo), -np.inf)
    for i in np.unique(level):
        sel = level == i
        table = levels[i]
        out[sel] = np.maximum(table[b[sel], lo[sel]], table[b[sel], hi[sel] - (1 << int(i)) + 1])
    return np.where(np.isfinite(out), out, np.nan)
