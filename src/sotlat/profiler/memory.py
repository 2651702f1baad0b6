"""Peak-memory trackers, used as context managers around one forward pass or one cell.

CUDA: `torch.cuda.reset_peak_memory_stats` / `max_memory_allocated` (what the paper used).
CPU: the process's peak resident set growth over a baseline taken before the model was built
(VmHWM after writing 5 to /proc/self/clear_refs). A CPU build's `torch.cuda.max_memory_allocated`
silently returns 0, so CPU never asks CUDA.
"""

from __future__ import annotations

import torch

CUDA_METHOD = "torch.cuda.max_memory_allocated (bytes held by tensors, weights included)"
RSS_METHOD = "process peak RSS growth over the pre-model baseline (VmHWM after /proc/self/clear_refs)"


class CudaPeakMemory:
    method = CUDA_METHOD

    def __init__(self, device: str = "cuda"):
        self.device = torch.device(device)
        self.peak_bytes: int | None = None

    def __enter__(self):
        torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc):
        self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))


def _status_kib(field: str, path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssPeakMemory:
    method = RSS_METHOD

    def __init__(self, status_path: str = "/proc/self/status", clear_refs_path: str = "/proc/self/clear_refs"):
        self.status_path, self.clear_refs_path = status_path, clear_refs_path
        self.baseline_kib = _status_kib("VmRSS", status_path)
        self.peak_bytes: int | None = None

    def __enter__(self):
        try:
            with open(self.clear_refs_path, "w", encoding="ascii") as fh:
                fh.write("5")
            self._can_reset = True
        except OSError:
            self._can_reset = False
        return self

    def __exit__(self, *exc):
        hwm = _status_kib("VmHWM", self.status_path)
        if not self._can_reset or hwm is None or self.baseline_kib is None:
            self.peak_bytes = None
        else:
            self.peak_bytes = max(hwm - self.baseline_kib, 0) * 1024


def memory_tracker_for(device: str) -> CudaPeakMemory | RssPeakMemory:
    """A tracker to reuse for every cell; create it before the model so the CPU baseline excludes it."""
    return CudaPeakMemory(device) if device.startswith("cuda") else RssPeakMemory()
