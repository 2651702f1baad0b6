"""The demo: profile this machine on a grid sized to a few minutes, then estimate the repo's real
Vicuna-80 traces on it (those the grid covers; the report lists the rest and why)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from sotlat.atomic import writable, write_frame
from sotlat.errors import InputError
from sotlat.estimator import estimate_answerable, load_traces
from sotlat.estimator.lookup import EXTRAPOLATION_REACH
from sotlat.estimator.traces import PROMPTS, contexts, needs
from sotlat.models.device import default_device
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.progress import Tracker
from sotlat.report.build import build_report
from sotlat.tables.grid import PrefillGrid, format_batches


@dataclass(frozen=True)
class Budget:
    """What the demo measures on a device: batches and prompts up to a bound, decode steps up to
    `decode_measured` (longer answers are estimated with decode extrapolated linearly in k)."""

    arch: str
    dtype: str
    max_batch: int
    max_prompt: int
    prefill_step: int
    decode_measured: int
    prefill_runs: int
    prefill_warmup: int
    decode_runs: int
    decode_warmup: int


# Both about 5-8 minutes. GPU: llama-7b, the paper's bounds (B <= 16, l < 700) on a coarser grid
# (prompts step 20, decode measured to k = 384, 4/1 prefill runs, a warm-up and 2 measured sweeps):
# `sotlat plan` gives 7.5 min on an A100 under hf-eager, where the paper's full grid takes ~16 min
# for these traces (its whole grid, `sotlat profile`, ~45). CPU (2 cores): the traces' own model,
# batches up to 8, prompts up to 384 tokens, decode measured to k = 384 (from there extrapolation
# is within 0.3% / 3.4% of measured normal / SoT latency: docs/method.md).
GPU = Budget("llama-7b", "float16", 16, 699, 20, 384, 4, 1, 2, 1)
CPU = Budget("smollm2-135m", "float32", 8, 384, 40, 384, 3, 1, 2, 1)


def recorded_traces() -> Path:
    return Path(str(resources.files("sotlat") / "data" / "traces" / "vicuna80-smollm2-135m.jsonl"))


def covered(frame: pd.DataFrame, budget: Budget) -> pd.Series:
    """Traces the budget's grid answers: SoT batch (points) and every prompt within its bounds, and
    decode within the reach of extrapolation from the steps it measures."""
    return ((frame["num_points"].fillna(1) <= budget.max_batch) & (frame[PROMPTS].max(axis=1) <= budget.max_prompt)
            & (contexts(frame) <= EXTRAPOLATION_REACH * budget.decode_measured))


def demo_spec(frame: pd.DataFrame, device: str | None = None) -> ProfileSpec:
    """The smallest grid within the device's budget that covers the traces `covered` selects."""
    device = device or default_device()
    budget = GPU if device == "cuda" else CPU
    need = needs(frame[covered(frame, budget)])
    return ProfileSpec(
        arch=budget.arch,
        device=device,
        dtype=budget.dtype,
        batches=need["batches"],
        prefill_lengths=PrefillGrid.reaching(need["longest_prompt"], 1, budget.prefill_step),
        decode_max=min(need["longest_context"], budget.decode_measured),
        prefill_runs=budget.prefill_runs,
        prefill_warmup=budget.prefill_warmup,
        decode_runs=budget.decode_runs,
        decode_warmup=budget.decode_warmup,
    )


def run_demo(out_dir: Path, resume: bool = True, progress: Tracker | None = None) -> dict:
    """Profile this machine on the demo's grid into `out_dir` (continuing the table there with
    `resume`, else measuring again), estimate the recorded traces it covers, write the estimates and
    the report: {spec, table_path, table, traces, estimates, unanswered, estimates_path, report}."""
    tracker = progress or Tracker()
    traces = recorded_traces()
    frame = load_traces(traces)
    spec = demo_spec(frame)
    with writable(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / f"{spec.arch}__{spec.device}.parquet"
    tracker.say(f"profiling {spec.arch} on {spec.device} ({spec.dtype}): batches {format_batches(spec.batches)}, prefill "
                f"{spec.prefill_lengths.lengths[0]}..{spec.prefill_lengths.lengths[-1]} step {spec.prefill_lengths.step}, decode k = 1..{spec.decode_max}")
    if table_path.exists() and not resume:
        table_path.unlink()  # measure again from scratch
    try:
        table = profile(spec, str(table_path), table_path.exists(), tracker)
    except InputError as exc:
        raise InputError(f"{exc} (run `sotlat demo --no-resume` to profile again from scratch)") from None
    estimates, unanswered = estimate_answerable(table, frame, extrapolate=True)
    estimates_path = out_dir / "estimates.csv"
    write_frame(estimates, estimates_path)

    index = build_report([table], [traces], out_dir / "report")
    return {"spec": spec, "table_path": table_path, "table": table, "traces": traces, "estimates": estimates, "unanswered": unanswered,
            "estimates_path": estimates_path, "report": index}
