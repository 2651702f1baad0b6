"""One timer interface for both devices: mark points in a run, read the intervals afterwards.

On CUDA a mark is a `torch.cuda.Event` recorded on the stream, so a whole sweep of steps runs
with no host synchronisation and the intervals are read once at the end. On CPU work is
synchronous and a mark is `time.perf_counter()`. A timed region runs `quiet`: Python's garbage
collector, whose pauses land in whichever step allocates past its threshold, is kept out of it.
"""

from __future__ import annotations

import contextlib
import gc
import time
from itertools import pairwise

import torch


class CudaTimer:
    """Events on the stream of the device the work runs on (cuda:1's, not the current device's)."""

    name = "torch.cuda.Event"

    def __init__(self, device: str = "cuda"):
        self.device = device

    def mark(self):
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))
        return event

    def intervals_ms(self, marks: list) -> list[float]:
        marks[-1].synchronize()
        return [a.elapsed_time(b) for a, b in pairwise(marks)]


class CpuTimer:
    name = "time.perf_counter"

    def mark(self) -> float:
        return time.perf_counter()

    def intervals_ms(self, marks: list) -> list[float]:
        return [(b - a) * 1e3 for a, b in pairwise(marks)]


QUIET = "garbage collected before each timed prefill cell and decode sweep, and off inside it"


@contextlib.contextmanager
def quiet():
    """No garbage collection inside the block: collect first, then disable; the collector's state
    is restored however the block ends (Ctrl-C, SIGTERM, out of memory)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def timer_for(device: str) -> CudaTimer | CpuTimer:
    return CudaTimer(device) if device.startswith("cuda") else CpuTimer()
