"""How the profiler runs a forward pass (`--backend`): `eager`, transformers as generate() runs it
with a growing DynamicCache (the paper's setting); `static`, over a static KV cache in buckets
(models/static.py); `cuda-graph`, that static path with each shape captured once in a CUDA graph
and replayed, as engines without host overhead run it. Each gives a prefill and a decode runner:
`load` (untimed: tokens into place, a bucket refilled, a graph captured), then `run` (timed)."""

from __future__ import annotations

import torch

from sotlat.errors import InputError
from sotlat.models.static import BUCKET_RULE, bucket, set_length, static_cache, static_forward
from sotlat.models.steps import decode_step, prefill

BACKENDS = ("eager", "static", "cuda-graph")
FORWARD = {
    "eager": "DynamicCache",
    "static": "StaticCache in buckets (`cache_buckets`)",
    "cuda-graph": "StaticCache in buckets (`cache_buckets`), each prefill shape and each decode bucket captured once in a CUDA graph "
                  "(after 2 untimed eager runs) and replayed; capture outside the timed region",
}


def check_backend(backend: str, device: str) -> None:
    if backend not in BACKENDS:
        raise InputError(f"{backend!r} is not one of {', '.join(BACKENDS)}", param="backend")
    if backend == "cuda-graph" and not device.startswith("cuda"):
        raise InputError(f"cuda-graph needs a CUDA device (CUDA graphs), not {device}; `static` runs its static-cache path "
                         "without graphs", param="backend")


def cache_buckets(backend: str) -> str | None:
    """The bucket rule a table records; None for eager, whose cache grows by one position a step."""
    return None if backend == "eager" else BUCKET_RULE


def captured(forward, before):
    """`forward` captured in a CUDA graph after two eager calls on a side stream (PyTorch's recipe),
    `before` run ahead of each call and of the capture (a forward advances the cache's write
    position; a third write would fall past a full bucket); the graph's replay, and the output
    tensor each replay rewrites."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            before()
            forward()
    torch.cuda.current_stream().wait_stream(side)
    before()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = forward()
    return graph.replay, out


class StaticPass:
    """One forward shape, (batch, tokens), over a static cache: `load` writes the tokens and their
    start position into fixed buffers (and with `graphs`, captures the pass at the first load);
    `run` runs it and returns the last position's logits."""

    def __init__(self, model, cache, batch: int, tokens: int, graphs: bool):
        device = next(model.parameters()).device
        self.model, self.cache, self.graphs = model, cache, graphs
        self.ids = torch.zeros((batch, tokens), dtype=torch.long, device=device)
        self.positions = torch.zeros((1, tokens), dtype=torch.long, device=device)
        self.replay, self.out = None, None

    def load(self, ids: torch.Tensor, start: int) -> None:
        self.ids.copy_(ids)
        self.positions.copy_(torch.arange(start, start + ids.shape[1]).unsqueeze(0))
        if self.graphs and self.replay is None:
            self.replay, self.out = captured(self._forward, lambda: set_length(self.cache, start))
        set_length(self.cache, start)  # where this run writes: a replay, as a forward, advances it

    def run(self) -> torch.Tensor:
        if self.replay is None:
            return self._forward()
        self.replay()
        return self.out

    def _forward(self) -> torch.Tensor:
        return static_forward(self.model, self.ids, self.cache, self.positions)


class EagerPrefill:
    """B prompts into an empty DynamicCache, as generate() prefills."""

    def __init__(self, model):
        self.model = model

    def load(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def run(self):
        return prefill(self.model, self.ids)


class StaticPrefill:
    """B prompts of l tokens into a static cache of exactly l positions, rewritten by every run."""

    def __init__(self, model, batch: int, length: int, graphs: bool):
        self.step = StaticPass(model, static_cache(model, batch, length), batch, length, graphs)

    def load(self, ids: torch.Tensor) -> None:
        self.step.load(ids, 0)

    def run(self) -> torch.Tensor:
        return self.step.run()


class EagerDecode:
    """A sweep's steps as generate() runs them: 1 token prefilled, then one token a step into a DynamicCache."""

    def __init__(self, model, ids: torch.Tensor):
        self.model, self.ids, self.cache = model, ids, prefill(model, ids[:, :1])

    def load(self, k: int) -> None:
        self.tokens = self.ids[:, k : k + 1]

    def run(self):
        return decode_step(self.model, self.tokens, self.cache)


class StaticDecode:
    """A sweep's steps over a static cache in buckets: at step k the cache holds bucket(k + 1)
    positions; when k + 1 outgrows it, a new cache one bucket larger is filled with the k cached
    tokens by an untimed prefill (and with `graphs`, the step captured again)."""

    def __init__(self, model, ids: torch.Tensor, graphs: bool):
        self.model, self.ids, self.graphs, self.size, self.step = model, ids, graphs, 0, None

    def load(self, k: int) -> None:
        if bucket(k + 1) > self.size:
            self.size, batch = bucket(k + 1), self.ids.shape[0]
            self.step = None  # the old cache and graph are freed before the new ones are made
            cache = static_cache(self.model, batch, self.size)
            static_forward(self.model, self.ids[:, :k], cache, torch.arange(k, device=self.ids.device).unsqueeze(0))
            self.step = StaticPass(self.model, cache, batch, 1, self.graphs)
        self.step.load(self.ids[:, k : k + 1], k)

    def run(self) -> torch.Tensor:
        return self.step.run()


def prefiller(backend: str, model, batch: int, length: int):
    """The prefill runner of (B, l) for `backend`."""
    return EagerPrefill(model) if backend == "eager" else StaticPrefill(model, batch, length, backend == "cuda-graph")


def decoder(backend: str, model, ids: torch.Tensor):
    """The decode runner of a sweep over `ids` (B, steps + 1) for `backend`."""
    return EagerDecode(model, ids) if backend == "eager" else StaticDecode(model, ids, backend == "cuda-graph")
