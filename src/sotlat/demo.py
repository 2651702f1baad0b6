"""The demo: profile this machine on a grid sized to a few minutes, estimate the repo's real
Vicuna-80 traces on it (those the grid covers; the report lists the rest and why), say why SoT pays
off or not for them, and show SoT's mechanism beside the paper's setting."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from sotlat.atomic import atomic_path, writable, write_frame
from sotlat.errors import InputError
from sotlat.estimator import estimate_answerable, load_traces
from sotlat.estimator.lookup import EXTRAPOLATION_REACH
from sotlat.estimator.traces import PROMPTS, contexts, frame_keys, needs, read_records, trace_key, with_keys
from sotlat.models.catalogue import gpu_spec
from sotlat.models.device import default_device
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.progress import Tracker
from sotlat.report.analysis import WHATIF_ANSWER, WHATIF_PROMPTS, sot_whatif, why_sot
from sotlat.report.build import build_report
from sotlat.simulator.model import load_calibration
from sotlat.simulator.simulate import simulate
from sotlat.tables.grid import PrefillGrid, format_batches


@dataclass(frozen=True)
class Budget:
    """What the demo measures on a device: batches and prompts up to a bound, decode steps up to
    `decode_measured` (longer answers are estimated with decode extrapolated linearly in k); a batch
    that fewer than `min_traces` of the traces need is left out, as a decode sweep for a handful."""

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
    min_traces: int


# GPU: llama-7b, the paper's bounds (B <= 16, l < 700) on a coarser grid (prompts step 20, decode
# measured to k = 384 after a warm-up sweep, 4/1 prefill runs, 2 measured sweeps): 3 min of forward
# passes by `sotlat plan` on an A100 under hf-eager. CPU (2 cores): the traces' own model, batches up
# to 8, prompts up to 384 tokens every 80, one decode sweep to k = 320 and no warm-up (a CPU has no
# cold first sweep: docs/method.md); from k = 320 extrapolation is within 0.03% / 1.6% of measured
# normal / SoT latency (docs/method.md). 1,005 forward passes, a quarter of the 3,975 it ran before.
GPU = Budget("llama-7b", "float16", 16, 699, 20, 384, 4, 1, 2, 1, 5)
CPU = Budget("smollm2-135m", "float32", 8, 384, 80, 320, 3, 1, 1, 0, 5)


def recorded_traces() -> Path:
    return Path(str(resources.files("sotlat") / "data" / "traces" / "vicuna80-smollm2-135m.jsonl"))


def budget_of(device: str) -> Budget:
    return GPU if device.startswith("cuda") else CPU


def left_out(frame: pd.DataFrame, budget: Budget) -> pd.DataFrame:
    """Per trace the budget leaves out, why, as the demo chooses it (kind and reason): a skeleton of
    more points than its largest batch, a point count fewer than `min_traces` traces share, a prompt
    past its prefill bound, decode past what extrapolation reaches from the steps it measures."""
    points = frame["num_points"].fillna(1).astype(int)
    counts = points.value_counts()
    prompt, context = frame[PROMPTS].max(axis=1), contexts(frame)
    reach = EXTRAPOLATION_REACH * budget.decode_measured
    checks = [("points", points > budget.max_batch, lambda i: f"its skeleton has {points[i]} points; the demo measures batches up to {budget.max_batch}"),
              ("rare batch", (points > 1) & points.map(counts).lt(budget.min_traces),
               lambda i: f"it needs batch {points[i]}, which the demo leaves out: fewer than {budget.min_traces} of the traces need it"),
              ("prompt", prompt > budget.max_prompt, lambda i: f"a {int(prompt[i])}-token prompt; the demo's prefill grid stops at {budget.max_prompt}"),
              ("context", context > reach, lambda i: f"decode to k = {int(context[i])}, past the {reach} that extrapolation reaches from "
                                                     f"the {budget.decode_measured} steps the demo measures")]
    rows = []
    for i in frame.index:
        kind, why = next(((kind, why(i)) for kind, hit, why in checks if hit[i]), (None, None))
        if kind:
            rows.append({"id": frame.at[i, "id"], "model": frame.at[i, "model"], "points": points[i], "kind": kind, "reason": why})
    return pd.DataFrame(rows, columns=["id", "model", "points", "kind", "reason"])


def covered(frame: pd.DataFrame, budget: Budget) -> pd.Series:
    """Traces the budget's grid answers: those `left_out` does not name."""
    return ~pd.Series(frame_keys(frame), index=frame.index).isin(frame_keys(left_out(frame, budget)))


def skipped_summary(skipped: pd.DataFrame, budget: Budget) -> list[str]:
    """The left-out traces counted by reason, a line each."""
    def line(kind: str, part: pd.DataFrame) -> str:
        rare = sorted(int(p) for p in part["points"].unique())
        return {"points": f"have skeletons of more than {budget.max_batch} points (the demo measures batches up to {budget.max_batch})",
                "rare batch": f"need batch {', '.join(map(str, rare[:-1])) + ' or ' if len(rare) > 1 else ''}{rare[-1]}, which the demo leaves out: "
                              f"fewer than {budget.min_traces} traces need each",
                "prompt": f"have prompts longer than {budget.max_prompt} tokens (the demo's prefill bound)",
                "context": f"decode past the {EXTRAPOLATION_REACH * budget.decode_measured} steps extrapolation reaches"}[kind]

    return [f"{len(part)} {'trace' if len(part) == 1 else 'traces'} {line(kind, part)}" for kind, part in skipped.groupby("kind", sort=False)]


def demo_spec(frame: pd.DataFrame, device: str | None = None) -> ProfileSpec:
    """The smallest grid within the device's budget that covers the traces `covered` selects."""
    device = device or default_device()
    budget = budget_of(device)
    need = needs(frame[covered(frame, budget)])
    return ProfileSpec(arch=budget.arch, device=device, dtype=budget.dtype, batches=need["batches"],
                       prefill_lengths=PrefillGrid.reaching(need["longest_prompt"], 1, budget.prefill_step),
                       decode_max=min(need["longest_context"], budget.decode_measured), prefill_runs=budget.prefill_runs,
                       prefill_warmup=budget.prefill_warmup, decode_runs=budget.decode_runs, decode_warmup=budget.decode_warmup)


def paper_setting(batches: list[int], answer: int = WHATIF_ANSWER) -> pd.DataFrame:
    """The SoT what-if on the paper's setting: llama-7b on an A100 80GB under `hf-eager` (HF transformers,
    eager: the paper's Table 1), simulated over what the what-if needs at these batches."""
    grid = PrefillGrid.reaching(max(WHATIF_PROMPTS.values()), 1, 50)
    table = simulate("llama-7b", None, gpu_spec("a100-80gb-sxm", "float16"), load_calibration("hf-eager"), "float16", batches, grid,
                     max(WHATIF_PROMPTS.values()) + answer + 1)
    return sot_whatif(table, answer)


def side_by_side(table: pd.DataFrame, answer: int = WHATIF_ANSWER) -> pd.DataFrame:
    """SoT's speed-up for an answer of `answer` tokens split into n equal points, on this machine's
    table (at its batches) and on the paper's setting (at those and at 2, 4, 8 and 16): points,
    longest_point, this_table (NaN where the table has no such batch), extrapolated (this table's
    figure extends decode past what it measured), paper_setting."""
    here = sot_whatif(table, answer)
    here = here[here["imbalance"] == 0].set_index("points")
    points = sorted(set(here.index) | {2, 4, 8, 16})
    there = paper_setting([1, *points], answer)
    there = there[there["imbalance"] == 0].set_index("points")
    return pd.DataFrame({"points": points, "longest_point": there["longest_point"].reindex(points).to_numpy(),
                         "this_table": here["speedup"].reindex(points).to_numpy(),
                         "extrapolated": here["extrapolated"].reindex(points).fillna(False).astype(bool).to_numpy(),
                         "paper_setting": there["speedup"].reindex(points).to_numpy()})


def run_demo(out_dir: Path, resume: bool = True, progress: Tracker | None = None) -> dict:
    """Profile this machine on the demo's grid into `out_dir` (continuing the table there with
    `resume`, else measuring again), estimate the recorded traces it covers (written to
    `out_dir`/traces.jsonl), and write the estimates and the report, which lists the traces left
    out and why. Returns what the demo shows: {spec, budget, table_path, table, estimates, unanswered,
    skipped, why, whatif, estimates_path, traces_path, report}."""
    tracker = progress or Tracker()
    frame = load_traces(recorded_traces())
    spec = demo_spec(frame)
    budget, skipped = budget_of(spec.device), left_out(frame, budget_of(spec.device))
    with writable(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    table_path, traces_path = out_dir / f"{spec.arch}__{spec.device}.parquet", out_dir / "traces.jsonl"
    tracker.say(f"profiling {spec.arch} on {spec.device} ({spec.dtype}): batches {format_batches(spec.batches)}, prefill "
                f"{spec.prefill_lengths.lengths[0]}..{spec.prefill_lengths.lengths[-1]} step {spec.prefill_lengths.step}, decode k = 1..{spec.decode_max}")
    if table_path.exists() and not resume:
        table_path.unlink()  # measure again from scratch
    try:
        table = profile(spec, str(table_path), table_path.exists(), tracker)
    except InputError as exc:
        raise InputError(f"{exc} (run `sotlat demo --no-resume` to profile again from scratch)") from None
    chosen = with_keys(frame, set(frame_keys(frame)) - set(frame_keys(skipped)))
    with atomic_path(traces_path) as tmp:
        tmp.write_text("".join(json.dumps(t) + "\n" for _, t in read_records(recorded_traces()) if trace_key(t) in set(frame_keys(chosen))),
                       encoding="utf-8")
    estimates, unanswered = estimate_answerable(table, chosen, extrapolate=True)
    estimates_path = out_dir / "estimates.csv"
    write_frame(estimates, estimates_path)
    index = build_report([table], [traces_path], out_dir / "report", traces_left_out=skipped[["id", "model", "reason"]])
    return {"spec": spec, "budget": budget, "table_path": table_path, "table": table, "estimates": estimates, "unanswered": unanswered,
            "skipped": skipped, "why": why_sot(table, estimates, chosen), "whatif": side_by_side(table), "estimates_path": estimates_path,
            "traces_path": traces_path, "report": index}
