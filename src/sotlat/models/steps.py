"""Prefill and decode as small plain functions, the only forward passes the profiler runs.

The profiler times them and the FLOPs counter counts them, so both see the same computation.
"""

from __future__ import annotations

import contextlib
import functools
import inspect

import torch


@torch.inference_mode()
def prefill(model: torch.nn.Module, input_ids: torch.Tensor):
    """One forward over B prompts with an empty KV cache. Logits of the last position only, as
    transformers' generate() computes them; returns the KV cache (None for a model that keeps none)."""
    return cache_of(model(input_ids=input_ids, use_cache=True, logits_to_keep=1))


@torch.inference_mode()
def decode_step(model: torch.nn.Module, tokens: torch.Tensor, cache) -> torch.Tensor:
    """One new token per sequence against a KV cache that grows by one position; its logits."""
    return model(input_ids=tokens, use_cache=True, **{cache_argument(type(model)): cache}).logits


def cache_of(output):
    """A forward's KV cache: `cache` from transformers 5.24, `past_key_values` before; None if it keeps none."""
    return output["cache"] if "cache" in output else getattr(output, "past_key_values", None)


@functools.cache
def cache_argument(model_class: type) -> str:
    """The name a model's forward takes its KV cache by: `cache` from transformers 5.24 (which
    deprecates `past_key_values`), `past_key_values` before. Looked up once per class, outside
    the timed steps."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


@contextlib.contextmanager
def decoding(model: torch.nn.Module):
    """Decode steps as transformers' generate() runs them: on a GPU it decodes a mixture of experts
    with `batched_mm` experts where its prefill used `grouped_mm` (faster for a few tokens). This is
    generate's own switch, so whatever the installed transformers does; a no-op for a dense model,
    on the CPU, and where transformers has no such switch (before 5)."""
    switch = getattr(model, "_optimize_model_for_decode", None)
    with switch() if switch else contextlib.nullcontext():
        yield
