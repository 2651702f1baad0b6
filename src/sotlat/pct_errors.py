"""Summary of percentage errors: the one definition that validate, calibrate and tables compare report."""

from __future__ import annotations

import numpy as np
import pandas as pd


def error_stats(errors_pct) -> dict:
    """n, median / P90 / max of |error| and the median signed error, all in %; NaNs are left out."""
    e = pd.Series(errors_pct, dtype=float).dropna()
    if e.empty:
        return {"n": 0}
    a = e.abs()
    return {"n": int(len(e)), "median_abs_pct": float(a.median()), "p90_abs_pct": float(a.quantile(0.9)),
            "max_abs_pct": float(a.max()), "median_signed_pct": float(e.median())}


def relative_pct(value, reference) -> np.ndarray:
    """(value - reference) / reference in %: positive when `value` is above the reference."""
    value, reference = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    return (value - reference) / reference * 100
