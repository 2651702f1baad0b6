"""The profiler: measure prefill and decode latency, peak memory and FLOPs on a device."""

import os

import torch

# Name DeepSpeed's accelerator before anything imports it (transformers does, when it is
# installed): its auto-detection logs a warning on every CPU-only import.
os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
