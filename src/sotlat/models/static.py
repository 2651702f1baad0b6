"""A forward pass over a static KV cache (transformers' `StaticCache`), allocated in buckets of the
context: what engines that capture the decode step in CUDA graphs run (docs/method.md, "Backends").
Plain functions, the same on CPU (tested there against the eager path) and on a GPU.

A static cache's attention reads every allocated position (those past the context are masked), so
a cache sized for the longest context would make every step cost the same; buckets keep t^D_B(k)
growing with k, as a paged or bucketed engine's does."""

from __future__ import annotations

import functools
import inspect

import torch

from sotlat.models.steps import cache_argument

BUCKET = 128  # positions
BUCKET_RULE = (f"decode at k: a static cache of the next multiple of {BUCKET} at or above k + 1 positions (attention reads all "
               "of them, those past k masked), refilled by an untimed prefill of the k cached tokens when k + 1 outgrows it; "
               "prefill of l tokens: a static cache of exactly l positions")


def bucket(positions: int) -> int:
    """The positions a static cache is allocated for when it must hold `positions`: the next multiple of BUCKET at or above it."""
    return -(-positions // BUCKET) * BUCKET


def static_cache(model: torch.nn.Module, batch: int, positions: int):
    """An empty static cache of `positions` for `batch` sequences (the keyword arguments older
    transformers take, which newer ones ignore: they allocate on the first write)."""
    from transformers import StaticCache

    weight = next(model.parameters())
    return StaticCache(config=model.config, max_cache_len=positions, max_batch_size=batch, device=weight.device, dtype=weight.dtype)


@torch.inference_mode()
def set_length(cache, positions: int) -> None:
    """Where the cache's next write goes, for transformers that count it inside the cache (5.2x: a
    tensor per layer, advanced by every forward, made on the device inside inference mode); older
    ones take it from `cache_position`."""
    for layer in getattr(cache, "layers", ()):
        if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor):
            layer.cumulative_length.fill_(positions)


@torch.inference_mode()
def static_forward(model: torch.nn.Module, input_ids: torch.Tensor, cache, positions: torch.Tensor) -> torch.Tensor:
    """Tokens at `positions` ((1, n), on the device) written into the static cache; the last
    position's logits. Every tensor it reads is given, so a CUDA graph can capture it."""
    extra = {"cache_position": positions[0]} if _takes_cache_position(type(model)) else {}
    out = model(input_ids=input_ids, position_ids=positions, use_cache=True, logits_to_keep=1,
                **{cache_argument(type(model)): cache}, **extra)
    return out.logits


@functools.cache
def _takes_cache_position(model_class: type) -> bool:
    return "cache_position" in inspect.signature(model_class.forward).parameters
