"""The paper's actual-latency test (App. C.4): replay traces' token counts on this device.

Random weights of an architecture; each trace's recorded lengths forced: normal = prefill l_i,
then exactly l_o generated tokens; SoT = the skeleton at batch 1, then the points as one
left-padded batch up to the longest point. Timed end to end and per stage with the device
timer through the same generation loop a user runs (`generate`), repeated, median taken.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sotlat.errors import InputError
from sotlat.progress import Tracker
from sotlat.sot import jsonl
from sotlat.sot.generate import generate


def _timed(model, vocab, lengths: list[tuple[int, int]], timer) -> float:
    prompts = [torch.randint(1, vocab, (p,)).tolist() for p, _ in lengths]
    return generate(model, prompts, max(c for _, c in lengths), timer).total_ms


def replay_trace(model, vocab: int, trace: dict, repeats: int, timer) -> dict:
    """Median stage latencies (ms) over `repeats` of the trace's normal run and SoT run."""
    runs = {"normal_ms": [], "skeleton_ms": [], "points_ms": []}
    stage = lambda s: (s["prompt_tokens"], s["completion_tokens"])  # noqa: E731
    for _ in range(repeats):
        if "normal" in trace:
            runs["normal_ms"].append(_timed(model, vocab, [stage(trace["normal"])], timer))
        if "sot" in trace:
            runs["skeleton_ms"].append(_timed(model, vocab, [stage(trace["sot"]["skeleton"])], timer))
            runs["points_ms"].append(_timed(model, vocab, [stage(p) for p in trace["sot"]["points"]], timer))
    measured = {k: statistics.median(v) for k, v in runs.items() if v}
    if "sot" in trace:
        sot_runs = [s + p for s, p in zip(runs["skeleton_ms"], runs["points_ms"])]
        measured["sot_ms"] = statistics.median(sot_runs)
        runs["sot_ms"] = sot_runs
    if "normal_ms" in measured and "sot_ms" in measured:
        measured["speedup"] = measured["normal_ms"] / measured["sot_ms"]
    measured["runs"] = {k: v for k, v in runs.items() if v}
    return measured


def stratified(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` traces stratified by model and category: shares proportional to the groups' sizes
    (largest remainders), evenly spaced within each group in file order. Deterministic, in file order."""
    if n >= len(frame):
        return frame
    groups = list(frame.groupby([frame["model"].fillna("-"), frame["category"].fillna("-")], sort=False).indices.values())
    quota = np.array([len(rows) for rows in groups]) * n / len(frame)
    share = np.floor(quota).astype(int)
    share[np.argsort(-(quota - share), kind="stable")[: n - share.sum()]] += 1
    picked = [rows[int((j + 0.5) * len(rows) / k)] for rows, k in zip(groups, share) for j in range(k)]
    return frame.iloc[sorted(picked)]


def measured_record(trace: dict, measured: dict, **about) -> dict:
    """The output line: the trace's id, category and token counts, what was measured, and how."""
    lengths = lambda s: {"prompt_tokens": s["prompt_tokens"], "completion_tokens": s["completion_tokens"]}  # noqa: E731
    line = {"id": trace["id"], "category": trace.get("category"), "model": trace.get("model")}
    if "max_new_tokens" in trace:  # what the recorded answers were cut at: stats counts the ones that reached it
        line["max_new_tokens"] = trace["max_new_tokens"]
    if "normal" in trace:
        line["normal"] = lengths(trace["normal"])
    if "sot" in trace:
        line["sot"] = {"skeleton": lengths(trace["sot"]["skeleton"]), "points": [lengths(p) for p in trace["sot"]["points"]]}
    return {**line, "measured": measured, **about}


def _within(frame: pd.DataFrame, table: Path, name: str, dtype: str, attention: str, extrapolate: bool, tracker: Tracker) -> pd.DataFrame:
    """The traces the table answers (the one validate will use), refusing a table validate would refuse."""
    from sotlat.estimator import estimate_answerable
    from sotlat.estimator.traces import frame_keys, with_keys
    from sotlat.sot.validate import SAME, mismatch
    from sotlat.tables import load_table

    table_frame = load_table(table)
    differs = mismatch(table_frame.attrs["sotlat"], name, dtype, attention)
    if differs:  # validate would refuse the replay after it ran
        field, theirs, ours = differs
        raise InputError(f"{table}: {field} is {theirs!r}, this replay's is {ours!r}: {SAME}", param="table")
    answered, failed = estimate_answerable(table_frame, frame, extrapolate)
    if answered.empty:
        raise InputError(f"{table}: none of the {len(frame)} traces is within it (trace {failed['trace'].iloc[0]}: {failed['reason'].iloc[0]})",
                         param="table")
    tracker.say(f"{len(answered)} of {len(frame)} traces are within {table} ({len(failed)} are not: batch, prompt or oom)")
    return with_keys(frame, frame_keys(answered))


def replay_file(traces: Path, out: Path, arch: str | None = None, config: str | None = None, device: str = "cpu", dtype: str | None = None,
                repeats: int = 3, limit: int | None = None, table: Path | None = None, extrapolate: bool = False, sample: int | None = None,
                attention: str = "sdpa", resume: bool = False, progress: Tracker | None = None) -> dict:
    """Actual latency (App. C.4): replay the traces' token counts (those `table` answers, a stratified
    `sample`, the first `limit`) on `device` with random weights, `repeats` times each, one measured
    line appended to `out` per trace. Returns how many were there before, how many were measured,
    and how busy the machine was when it started."""
    from sotlat.estimator.traces import frame_keys, longest_context, read_records, trace_key, traces_frame, with_keys
    from sotlat.models.archs import build_model, check_attention, check_positions, check_weights_fit, load_config, meta_model
    from sotlat.models.device import describe_device, host_load
    from sotlat.models.dtypes import default_dtype, torch_dtype
    from sotlat.profiler.timer import timer_for

    tracker = progress or Tracker()
    check_attention(attention)
    records = read_records(traces)
    frame = traces_frame(records)  # checks every trace first
    name, cfg = load_config(arch, config)
    dtype = dtype or default_dtype(device)
    if table:
        frame = _within(frame, table, name, dtype, attention, extrapolate, tracker)
    chosen, done = set(frame_keys(stratified(frame, sample) if sample else frame)), jsonl.finished_keys(out, resume)
    todo = [t for _, t in records if trace_key(t) in chosen][:limit]
    todo = [t for t in todo if trace_key(t) not in done]
    shapes = meta_model(cfg, attention)
    check_positions(shapes, longest_context(with_keys(frame, map(trace_key, todo))), "the longest trace to replay")
    check_weights_fit(name, shapes, torch_dtype(dtype), device)
    load = host_load(device)  # before the model: this process idle
    model = build_model(cfg, device, torch_dtype(dtype), attention)
    timer, device_name = timer_for(device), describe_device(device)["name"]
    replay_trace(model, cfg.vocab_size, {"normal": {"prompt_tokens": 8, "completion_tokens": 4}}, 1, timer)  # warm-up
    tracker.total = len(todo)
    with jsonl.appending(out, "measured traces"):
        for t in todo:
            measured = replay_trace(model, cfg.vocab_size, t, repeats, timer)
            jsonl.append(out, measured_record(t, measured, arch=name, device=device_name, dtype=dtype, attention=attention, repeats=repeats,
                                              timer=timer.name))
            tracker.advance(1, t["id"])
    return {"before": len(done), "measured": len(todo), "host_load": load}
