"""Prefill and decode as small plain functions, the only forward passes the profiler runs.

The profiler times them and the FLOPs counter counts them, so both see the same computation.
"""

from __future__ import annotations

import contextlib

import torch


@torch.inference_mode()
def prefill(model: torch.nn.Module, input_ids: torch.Tensor):
    """One forward over B prompts with an empty KV cache. Logits of the last position only, as
    transformers' generate() computes them; returns the KV cache (None for a model that keeps none)."""
    return getattr(model(input_ids=input_ids, use_cache=True, logits_to_keep=1), "past_key_values", None)


@torch.inference_mode()
def decode_step(model: torch.nn.Module, tokens: torch.Tensor, cache) -> None:
    """One new token per sequence against a KV cache that grows by one position."""
    model(input_ids=tokens, past_key_values=cache, use_cache=True)


@contextlib.contextmanager
def decoding(model: torch.nn.Module):
    """Decode steps as transformers' generate() runs them: on a GPU it decodes a mixture of experts
    with `batched_mm` experts where its prefill used `grouped_mm` (faster for a few tokens). This is
    generate's own switch, so whatever the installed transformers does; a no-op for a dense model,
    on the CPU, and where transformers has no such switch (before 5)."""
    switch = getattr(model, "_optimize_model_for_decode", None)
    with switch() if switch else contextlib.nullcontext():
        yield
