"""SoT traces: JSONL, one question per line, token lengths per stage (docs/formats.md).

`load_traces` checks every line and flattens it to one row of a DataFrame that the
vectorised estimator reads: the lengths Eq. 1-3 need, plus measured latencies if recorded.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from sotlat.errors import InputError

TRACE_COLUMNS = [
    "id", "category", "model",
    "normal_prompt", "normal_completion",
    "skeleton_prompt", "skeleton_completion",
    "num_points", "points_prompt", "points_completion",
    "recorded_normal_ms", "recorded_sot_ms",
]
MAX_TOKENS = 10_000_000  # per prompt or answer: past the longest context windows; beyond it a count is a mistake
# Each stage's (prompt, completion) columns.
STAGE_COLUMNS = {
    "normal": ("normal_prompt", "normal_completion"),
    "skeleton": ("skeleton_prompt", "skeleton_completion"),
    "points": ("points_prompt", "points_completion"),
}


PROMPTS = [prompt for prompt, _ in STAGE_COLUMNS.values()]


def contexts(frame: pd.DataFrame) -> pd.Series:
    """Per trace, the largest decode k any of its stages reaches: that stage's prompt plus its answer."""
    return pd.concat([frame[p].fillna(0) + frame[c].fillna(0) for p, c in STAGE_COLUMNS.values()], axis=1).max(axis=1)


def longest_context(frame: pd.DataFrame) -> int:
    """The largest decode k any stage of these traces reaches."""
    return int(contexts(frame).max()) if len(frame) else 0


def needs(frame: pd.DataFrame) -> dict:
    """What a table must hold to answer every one of these traces: the batches (1, and each SoT
    point count), the longest prompt any stage prefills and the largest decode k any stage reaches."""
    return {"batches": sorted({1} | {int(n) for n in frame["num_points"].dropna()}),
            "longest_prompt": int(frame[PROMPTS].max().max()) if len(frame) else 0, "longest_context": longest_context(frame)}


def load_traces(path: str | os.PathLike) -> pd.DataFrame:
    """Read a JSONL trace file; raise InputError as 'file:line: field: what is wrong'."""
    return traces_frame(read_records(path))


def read_records(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """('file:line', parsed JSON) for every non-blank line."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: a folder, not a traces file (JSONL)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{name}: cannot read ({exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append((f"{name}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not valid JSON ({exc.msg})") from None
    if not records:
        raise InputError(f"{name}: no traces in the file")
    return records


def traces_frame(records: Iterable[tuple[str, dict]]) -> pd.DataFrame:
    """Flatten (where, trace) pairs to the estimator's frame, checking each trace."""
    records = list(records)
    rows = [_flatten(where, trace) for where, trace in records]
    frame = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    for column in TRACE_COLUMNS[3:10]:
        frame[column] = frame[column].astype("Int64")
    for column in TRACE_COLUMNS[10:]:
        frame[column] = frame[column].astype("float64")
    seen = {}
    for (where, _), key in zip(records, frame_keys(frame)):
        if key in seen:
            model = f" of model {key[0]!r}" if key[0] is not None else ""
            raise InputError(f"{where}: trace id {key[1]!r}{model} is already at {seen[key]}")
        seen[key] = where
    return frame


def trace_key(trace: dict) -> tuple[str | None, str]:
    """What names a trace: its model and its id. Traces of several models on one question set share
    ids (vicuna-001), and are compared by model (the paper's Fig. 4)."""
    return trace.get("model"), trace["id"]


def frame_keys(frame: pd.DataFrame) -> list[tuple[str | None, str]]:
    """`trace_key` of each row of a traces (or estimates) frame, in order."""
    return [(None if pd.isna(m) else m, i) for m, i in zip(frame["model"], frame["id"])]


def trace_names(frame: pd.DataFrame) -> list[str]:
    """How to name each trace to a user: its id, and its model too where the frame holds several."""
    keys = frame_keys(frame)
    several = len({model for model, _ in keys}) > 1
    return [f"{i} ({model or '-'})" if several else i for model, i in keys]


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """A traces (or estimates, or measurements) frame indexed by `trace_key`, to align on."""
    return frame.set_axis(pd.Index(frame_keys(frame), tupleize_cols=False))


def with_keys(frame: pd.DataFrame, keys) -> pd.DataFrame:
    """The rows of a traces (or estimates) frame whose `trace_key` is in `keys`."""
    keys = set(keys)
    return frame[[k in keys for k in frame_keys(frame)]]


def _count(where: str, obj: dict, path: str, key: str, minimum: int) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_TOKENS:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise InputError(f"{where}: {path}.{key} must be {kind} integer up to {MAX_TOKENS:,}")
    return value


def _stage(where: str, obj, path: str) -> tuple[int, int]:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: {path} must be an object with prompt_tokens and completion_tokens")
    return _count(where, obj, path, "prompt_tokens", 1), _count(where, obj, path, "completion_tokens", 0)


def _latency(where: str, obj: dict, path: str, key: str = "latency_ms") -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {path}.{key} must be a non-negative number")
    return float(value)


def _flatten(where: str, trace) -> dict:
    if not isinstance(trace, dict):
        raise InputError(f"{where}: a trace must be a JSON object")
    if not isinstance(trace.get("id"), str) or not trace["id"]:
        raise InputError(f"{where}: id must be a non-empty string")
    row = dict.fromkeys(TRACE_COLUMNS)
    row["id"] = trace["id"]
    for key in ("category", "model"):
        if trace.get(key) is not None and not isinstance(trace[key], str):
            raise InputError(f"{where}: {key} must be a string")
        row[key] = trace.get(key)
    if "normal" not in trace and "sot" not in trace:
        raise InputError(f"{where}: a trace needs 'normal', 'sot' or both")
    if "normal" in trace:
        row["normal_prompt"], row["normal_completion"] = _stage(where, trace["normal"], "normal")
        row["recorded_normal_ms"] = _latency(where, trace["normal"], "normal")
    if "sot" in trace:
        sot = trace["sot"]
        if not isinstance(sot, dict):
            raise InputError(f"{where}: sot must be an object with skeleton and points")
        row["skeleton_prompt"], row["skeleton_completion"] = _stage(where, sot.get("skeleton"), "sot.skeleton")
        points = sot.get("points")
        if not isinstance(points, list) or not points:
            raise InputError(f"{where}: sot.points must be a non-empty list")
        lengths = np.array([_stage(where, p, f"sot.points[{i}]") for i, p in enumerate(points)])
        row["num_points"] = len(points)
        row["points_prompt"], row["points_completion"] = (int(x) for x in lengths.max(axis=0))
        row["recorded_sot_ms"] = _recorded_sot(where, sot)
    return row


def _recorded_sot(where: str, sot: dict) -> float | None:
    """Skeleton + point-expanding stage: the batched stage's time, or the slowest parallel call."""
    skeleton = _latency(where, sot["skeleton"], "sot.skeleton")
    batched = _latency(where, sot, "sot", "points_latency_ms")
    calls = [_latency(where, p, f"sot.points[{i}]") for i, p in enumerate(sot["points"])]
    if skeleton is None:
        return None
    if batched is not None:
        return skeleton + batched
    if all(c is not None for c in calls):
        return skeleton + max(calls)
    return None
