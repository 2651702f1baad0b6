"""The demo: profile this machine on a grid sized to a few minutes, then estimate the repo's real
Vicuna-80 traces on it (those the grid covers; the report lists the rest and why)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from sotlat.estimator.lookup import EXTRAPOLATION_REACH
from sotlat.estimator.traces import PROMPTS, contexts, needs
from sotlat.profiler.device import default_device
from sotlat.profiler.run import ProfileSpec
from sotlat.tables.grid import PrefillGrid


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
