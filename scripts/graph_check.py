"""The cuda-graph backend against eager on a device: the logits of a whole decode sweep (bucket changes
included) and of a prefill, each step's time beside. What tests/test_backend.py checks on CPU for the
static path (and, with a fake capture, for the graph layer), run with real CUDA graphs.

Usage: python scripts/graph_check.py --arch tiny --device cuda --steps 300 [--backend cuda-graph]
(--backend static --device cpu rehearses it on a CPU.) Exit 1 if the logits differ.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from sotlat.models.archs import build_model, load_config
from sotlat.models.dtypes import torch_dtype
from sotlat.profiler.backend import check_backend, decoder, prefiller


def sweep(backend: str, model, ids, sync) -> tuple[list[torch.Tensor], float]:
    """Each step's last-position logits, and the sweep's mean step time (ms) with load outside it."""
    runner, logits, spent = decoder(backend, model, ids), [], 0.0
    for k in range(1, ids.shape[1]):
        runner.load(k)
        sync()
        started = time.perf_counter()
        out = runner.run()
        sync()
        spent += time.perf_counter() - started
        logits.append(out[:, -1].float().clone())
    return logits, 1e3 * spent / (ids.shape[1] - 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--backend", default="cuda-graph")
    a = ap.parse_args()
    check_backend(a.backend, a.device)
    torch.manual_seed(0)
    _, config = load_config(a.arch, None)
    model = build_model(config, a.device, torch_dtype(a.dtype), "sdpa")
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    ids = torch.randint(config.vocab_size, (a.batch, a.steps + 1), device=a.device)
    eager, eager_ms = sweep("eager", model, ids, sync)
    other, other_ms = sweep(a.backend, model, ids, sync)
    scale = max(x.abs().max().item() for x in eager)
    worst = max((x - y).abs().max().item() for x, y in zip(eager, other)) / scale
    runner = prefiller(a.backend, model, a.batch, 64)
    runner.load(ids[:, :64])
    with torch.inference_mode():
        expected = model(input_ids=ids[:, :64]).logits[:, -1].float()
    prefill_worst = (runner.run()[:, -1].float() - expected).abs().max().item() / expected.abs().max().item()
    tolerance = 1e-4 if a.dtype == "float32" else 2e-2
    ok = worst < tolerance and prefill_worst < tolerance
    print(f"{a.arch} {a.dtype} on {a.device}, B={a.batch}, k = 1..{a.steps}: {a.backend} against eager, largest logit difference "
          f"{worst:.2e} of the largest logit (decode), {prefill_worst:.2e} (prefill of 64); mean step {other_ms:.2f} ms against "
          f"{eager_ms:.2f} ms (host-timed, synced) -> {'OK' if ok else 'DIFFERENT'} (tolerance {tolerance:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
