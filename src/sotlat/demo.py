"""The demo: profile this machine on the smallest grid that covers the shipped example traces."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sotlat.estimator import load_traces
from sotlat.profiler.device import default_device
from sotlat.profiler.run import ProfileSpec
from sotlat.tables.grid import PrefillGrid

PREFILL_STEP = 40


def example_traces() -> Path:
    return Path(str(resources.files("sotlat") / "data" / "traces" / "example.jsonl"))


def demo_spec(traces: Path) -> ProfileSpec:
    """GPU: llama-7b in float16; CPU: smollm2-135m in float32. Batches 1 and every point count,
    prefill lengths up to the longest prompt, decode up to the longest prompt + answer."""
    frame = load_traces(traces)
    device = default_device()
    longest_prompt = int(frame[["normal_prompt", "skeleton_prompt", "points_prompt"]].max().max())
    longest_k = int(max((frame[f"{s}_prompt"] + frame[f"{s}_completion"]).max() for s in ("normal", "skeleton", "points")))
    batches = sorted({1} | {int(n) for n in frame["num_points"].dropna()})
    on_gpu = device == "cuda"
    return ProfileSpec(
        arch="llama-7b" if on_gpu else "smollm2-135m",
        device=device,
        dtype="float16" if on_gpu else "float32",
        batches=batches,
        prefill_lengths=PrefillGrid(1, (longest_prompt // PREFILL_STEP) * PREFILL_STEP + 2, PREFILL_STEP),
        decode_max=longest_k,
        prefill_runs=3 if not on_gpu else 7,
        prefill_warmup=1 if not on_gpu else 2,
        decode_runs=2 if not on_gpu else 3,
    )
