"""Time the matrix products of one decode step on this CPU at batch M = 1..8: why CPU decode is not
a roofline function of the batch (docs/simulator.md, cross-model validation).

Each row is one of smollm2-135m's / smollm2-360m's weight shapes (in x out features) in float32,
applied to M tokens as a decode step does; the median of 200 calls after 20 warm-up calls.
Run it on an idle machine.

Usage: python scripts/cpu_gemm_batch.py
"""

from __future__ import annotations

import statistics
import time

import torch

SHAPES = {"135m MLP up (576 x 1536)": (576, 1536), "135m MLP down (1536 x 576)": (1536, 576),
          "135m lm_head (576 x 49152)": (576, 49152), "360m MLP up (960 x 2560)": (960, 2560)}
BATCHES = (1, 2, 3, 4, 7, 8)


@torch.inference_mode()
def median_us(layer: torch.nn.Linear, m: int, calls: int = 200) -> float:
    x = torch.randn(m, 1, layer.in_features)
    for _ in range(20):
        layer(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        layer(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; microseconds per call")
    print(f"{'weight':<28}" + "".join(f"{f'M={m}':>10}" for m in BATCHES))
    for name, (k, n) in SHAPES.items():
        layer = torch.nn.Linear(k, n, bias=False)
        print(f"{name:<28}" + "".join(f"{median_us(layer, m):>10.1f}" for m in BATCHES))


if __name__ == "__main__":
    main()
