"""A model's shapes as the bytes and memory arithmetic needs them (weights read, KV cache, activations),
read off any HF config; and of a table's architecture. What the simulator's model and the report's
capacity arithmetic stand on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sotlat.errors import InputError
from sotlat.models.archs import COUNTS, arch_meta, config_from_dict, kv_layers, meta_model, moe_routing, parameter_counts, read_parameters
from sotlat.models.dtypes import torch_dtype
from sotlat.models.flops import FlopsFit, fit_flops
from sotlat.tables.stats import label

ACTIVATIONS_READ = (10, 4)  # hidden-wide and intermediate-wide tensors a layer reads or writes per token (docs/simulator.md)


@dataclass(frozen=True)
class Shapes:
    """What the bytes and memory model needs of an HF config."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int
    kv_width: float  # key/value heads x head dim (of the first layer, where they differ)
    parameters: int
    dtype_bytes: int
    embedding_parameters: int = 0  # of the embedding tables a pass gathers rows of and does not read whole
    expert_parameters: int = 0  # a mixture of experts' routed experts, all layers
    routing: tuple[int, int] = (0, 0)  # (experts per layer, experts per token); (0, 0): dense
    kv_layers: tuple[tuple[int, float], ...] | None = None  # (most tokens kept, 0: all; kv width) per layer caching keys; None: all, kv_width
    gemms_per_layer: int = 7  # matrix products of one layer (LLaMA's: q, k, v, o, gate, up, down)
    q_width: float | None = None  # query heads x head dim; None: hidden

    @classmethod
    def from_config(cls, config, parameters: int, dtype_bytes: int, expert_parameters: int = 0,
                    embedding_parameters: int = 0, gemms_per_layer: int = 7) -> "Shapes":
        """The config's shapes under HF's standard names (and their per-model aliases), with the
        model's parameter counts (`archs.parameter_counts`). The MLP width is `intermediate_size`,
        `n_inner`, `ffn_dim` or `d_ff`; where the config leaves it unset, as GPT-2's `n_inner: null`
        does, 4 x hidden, which is what such models build; where it is one per layer (Gemma 3n), the
        widest. A heterogeneous config (Gemma 4) gives some values per layer only: each layer's KV
        width is its own, and the first layer's values stand for the others' hidden and MLP widths."""
        def need(name: str, source=config):
            value = getattr(source, name, None)
            if value is None:
                raise InputError(f"config ({config.model_type}): the simulator needs {name}, which this config does not give")
            return value

        def kv_width(c) -> float:
            """Key/value heads x head dim; multi-head latent attention (DeepSeek) caches its compressed
            latent and rotary key per token, which transformers holds as one head of half their width."""
            if getattr(c, "kv_lora_rank", None):
                return (c.kv_lora_rank + c.qk_rope_head_dim) / 2
            heads = need("num_attention_heads", c)
            return (getattr(c, "num_key_value_heads", None) or heads) * (getattr(c, "head_dim", None) or need("hidden_size", c) // heads)

        layers, vocab = need("num_hidden_layers"), need("vocab_size")
        per_layer = list(getattr(config, "per_layer_config", None) or [config] * layers)
        first = per_layer[0]
        hidden = need("hidden_size", first)
        mlp = next((v for v in (getattr(first, n, None) for n in ("intermediate_size", "n_inner", "ffn_dim", "d_ff")) if v), 4 * hidden)
        mlp = max(mlp) if isinstance(mlp, list) else mlp
        widths = [kv_width(c) for c in per_layer]
        kept = kv_layers(config) or (0,) * layers
        cached = tuple((k, w) for k, w in zip(kept, widths) if k is not None)
        uniform = cached == ((0, widths[0]),) * layers
        heads = need("num_attention_heads", first)
        q_width = heads * (getattr(first, "head_dim", None) or hidden // heads)
        return cls(layers, hidden, mlp, vocab, widths[0], parameters, dtype_bytes, embedding_parameters,
                   expert_parameters, moe_routing(config), None if uniform else cached, gemms_per_layer, q_width)

    @property
    def weight_bytes(self) -> float:
        """All weights: what memory holds."""
        return float(self.parameters * self.dtype_bytes)

    def read_weight_bytes(self, tokens=1):
        """The weights a forward pass over `tokens` tokens reads: all but the gathered embedding
        tables and a mixture of experts' unvisited experts."""
        return read_parameters(self.parameters, self.embedding_parameters, self.expert_parameters, self.routing, tokens) * self.dtype_bytes

    def kv_bytes(self, batch, length, windowed: bool = True):
        """Keys and values of `batch` sequences of `length` tokens: as cached (`windowed`: a
        sliding-window layer keeps at most its last tokens), or every token, as a pass computes them."""
        length = np.asarray(length, float)
        if self.kv_layers is None:
            elements = self.layers * self.kv_width * length
        else:
            elements = sum(width * (np.minimum(length, kept) if kept and windowed else length) for kept, width in self.kv_layers)
        return batch * elements * 2 * self.dtype_bytes

    def max_cached(self, batch: int, budget: float) -> float:
        """The longest context each of `batch` sequences can cache in `budget` bytes; inf where sliding
        windows bound the whole cache below it. Layers stop growing in the order of their windows."""
        layers = sorted(self.kv_layers if self.kv_layers is not None else ((0, self.kv_width),) * self.layers, key=lambda kw: kw[0] or np.inf)
        elements, below, slope = budget / (batch * 2 * self.dtype_bytes), 0.0, sum(w for _, w in layers)
        for kept, width in layers:
            length = (elements - below) / slope  # every layer from here on still below its window
            if not kept or length <= kept:
                return max(float(np.floor(length)), 0.0)
            below, slope = below + kept * width, slope - width
        return np.inf

    def activation_bytes(self, tokens):
        """Activations read and written per pass: ~10 hidden-wide and 4 intermediate-wide tensors per layer."""
        hidden, intermediate = ACTIVATIONS_READ
        return tokens * self.layers * (hidden * self.hidden + intermediate * self.intermediate) * self.dtype_bytes


def shapes_and_flops(name: str, config, dtype: str) -> tuple[Shapes, FlopsFit, dict]:
    """The model's Shapes, its FLOPs polynomial and the table's `arch` metadata."""
    dtype_of = torch_dtype(dtype)
    model = meta_model(config)
    meta_arch = arch_meta(name, config, model, dtype_of)
    counts = {k: meta_arch[k] for k in COUNTS}
    return Shapes.from_config(config, dtype_bytes=dtype_of.itemsize, **counts), fit_flops(model), meta_arch


def shapes_of(table: pd.DataFrame) -> Shapes:
    """The bytes and memory model's Shapes of a table's architecture and dtype, from its metadata."""
    from transformers import __version__

    meta = table.attrs["sotlat"]
    try:
        config = config_from_dict(meta.arch.config)
    except Exception as exc:  # a model type unknown to this transformers, none recorded, or values its checks refuse
        raise InputError(f"{label(table)}: transformers {__version__} cannot rebuild its config "
                         f"(model type {meta.arch.config.get('model_type')!r}: {type(exc).__name__})") from None
    counts = {k: getattr(meta.arch, k) for k in COUNTS}
    if None in counts.values():  # what a table records of its architecture grew over time; all of it follows from the config
        counts = parameter_counts(meta_model(config))
    return Shapes.from_config(config, dtype_bytes=torch_dtype(meta.dtype).itemsize, **counts)


