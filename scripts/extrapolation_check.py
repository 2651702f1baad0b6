"""How far `--extrapolate` is from measurement: estimate traces on a table cut at decode k = CUT
(decode extended linearly past it) and on the whole table; print the error per quantity.

Usage: python scripts/extrapolation_check.py --table T.parquet --traces X.jsonl --cut 256
Traces the whole table cannot answer are left out (named on the first line).
"""

from __future__ import annotations

import argparse

import numpy as np

from sotlat.estimator import estimate_answerable, load_traces
from sotlat.tables import load_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--traces", required=True)
    parser.add_argument("--cut", type=int, required=True)
    args = parser.parse_args()
    table = load_table(args.table)
    full, unanswered = estimate_answerable(table, load_traces(args.traces))
    cut = table[(table["phase"] == "prefill") | (table["length"] <= args.cut)].copy()
    cut.attrs["sotlat"] = table.attrs["sotlat"].with_(**{"method.grid.decode_max": args.cut})
    extra, _ = estimate_answerable(cut, load_traces(args.traces)[lambda f: f["id"].isin(full["id"])], extrapolate=True)
    print(f"{len(full)} traces answered by {args.table} ({len(unanswered)} not); decode cut at k = {args.cut}, "
          f"{int(extra['extrapolated'].sum())} of them extrapolated")
    for q in ("normal_ms", "sot_ms", "speedup"):
        rel = (extra[q].to_numpy() / full[q].to_numpy() - 1) * 100
        print(f"  {q:<10} extrapolated vs measured table: median |error| {np.median(np.abs(rel)):.2f}%, "
              f"max {np.max(np.abs(rel)):.2f}%, median signed {np.median(rel):+.2f}%")


if __name__ == "__main__":
    main()
