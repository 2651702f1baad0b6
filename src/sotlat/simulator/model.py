"""The analytical model of one forward pass (model 2), vectorised over cells.

time   = max(host, GPU) + tail                  eager launches overlap the GPU's work: the larger wins
host   = layers · launch + host_fixed           Python and kernel launches, per decoder layer
GPU    = layers · (gemms · GEMM + attention + element-wise) + head
kernel = max(FLOPs / (efficiency · peak), bytes / (MBU · bandwidth), kernel floor)
GEMM efficiency = gemm_efficiency · tokens / (tokens + gemm_half_tokens)
element-wise = max(activation bytes / (MBU · bandwidth), elementwise_floor), per layer
memory = weights + KV cache + activations + workspace

FLOPs come from the profiler's counter (DeepSpeed on the meta device): the attention products are
computed from the shapes and the rest are the GEMMs'. MBU <= 1, so decode at B = 1 is never
faster than the weights it reads / bandwidth (all weights but the embedding tables the output
head does not share, of which a pass gathers only a few rows). docs/simulator.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

MODEL_VERSION = 2


@dataclass(frozen=True)
class PhaseParams:
    """One phase's parameters (docs/simulator.md gives each one's source as a prior)."""

    launch_ms: float  # host time per decoder layer: eager dispatch and kernel launches
    gemm_efficiency: float  # fraction of peak FLOP/s a large matrix product reaches
    gemm_half_tokens: float  # tokens at which a matrix product reaches half of that
    attention_efficiency: float  # fraction of peak FLOP/s of the attention products
    mbu: float  # fraction of peak bandwidth a memory-bound kernel reaches
    kernel_floor_ms: float  # the least time of one GEMM or attention kernel
    elementwise_floor_ms: float  # the least time of one layer's small kernels (norms, rotary, activation, residual adds)
    tail_ms: float  # fixed time after the last launch (the pass's last kernels)
    host_fixed_ms: float = 0.0  # host time outside the layers; one architecture cannot tell it from the layers'


FRACTIONS = ("gemm_efficiency", "attention_efficiency", "mbu")  # in (0, 1]
TIMES = ("launch_ms", "kernel_floor_ms", "elementwise_floor_ms", "tail_ms", "host_fixed_ms")  # >= 0
HOST = ("launch_ms", "tail_ms", "host_fixed_ms")  # what an engine's host side sets; the rest is the GPU's kernels


@dataclass(frozen=True)
class Calibration:
    name: str
    prefill: PhaseParams
    decode: PhaseParams
    workspace_bytes: float = 0.0
    about: str = ""
    model_version: int = MODEL_VERSION
    converted_from: int | None = None  # the model a file was written for, where it was converted on load

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Calibration":
        """Checked field by field: a ValueError names the first wrong one (`decode.mbu: ...`). A file of
        model 1 (MFU, MBU, per-layer and fixed overhead, summed) is converted: `converted_from` says so."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise ValueError("name: missing; a calibration is an object with name, prefill and decode")
        version = d.get("model_version", 1)
        if version not in (1, MODEL_VERSION):
            raise ValueError(f"model_version: {version!r}; this sotlat knows models 1 and {MODEL_VERSION}")
        read = _phase_params if version == MODEL_VERSION else _phase_params_v1
        phases = {phase: read(d.get(phase), phase) for phase in ("prefill", "decode")}
        return cls(name=d["name"], **phases, workspace_bytes=_number(d, "workspace_bytes", "workspace_bytes", default=0.0),
                   about=str(d.get("about", "")), converted_from=None if version == MODEL_VERSION else version)


def _number(d: dict, key: str, path: str, *, above: float = 0.0, at_most: float | None = None, default: float | None = None,
            strictly: bool = False) -> float:
    """d[key] as a finite float >= `above` (> with `strictly`) and <= `at_most`; missing is `default`, else an error."""
    value = d.get(key, default)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > above if strictly else value >= above) and (at_most is None or value <= at_most))
    if not ok:
        bound = f"{'above' if strictly else 'at least'} {above:g}" + (f" and at most {at_most:g}" if at_most is not None else "")
        raise ValueError(f"{path}: {'missing' if value is None else repr(value)}; expected a number {bound}")
    return float(value)


def _phase_params(d, phase: str) -> PhaseParams:
    """Efficiencies are fractions of a peak, in (0, 1]; times are >= 0; half tokens > 0."""
    if not isinstance(d, dict):
        raise ValueError(f"{phase}: missing; expected an object with {', '.join(f.name for f in fields(PhaseParams))}")
    values = {}
    for f in fields(PhaseParams):
        default = 0.0 if f.name == "host_fixed_ms" else None
        if f.name in FRACTIONS:
            values[f.name] = _number(d, f.name, f"{phase}.{f.name}", at_most=1.0, strictly=True)
        else:
            values[f.name] = _number(d, f.name, f"{phase}.{f.name}", strictly=f.name == "gemm_half_tokens", default=default)
    return PhaseParams(**values)


def _phase_params_v1(d, phase: str) -> PhaseParams:
    """Model 1's phase (MFU, MBU, per-layer and fixed overhead) as model 2's: MFU for both efficiencies
    (no size dependence), the overheads as host time, no kernel floors. Model 1 added the overhead to
    the roofline where model 2 takes the larger, so the converted file predicts less than it did."""
    if not isinstance(d, dict):
        raise ValueError(f"{phase}: missing; expected an object with mfu, mbu and layer_overhead_ms")
    mfu, mbu = (_number(d, key, f"{phase}.{key}", at_most=1.0, strictly=True) for key in ("mfu", "mbu"))
    return PhaseParams(launch_ms=_number(d, "layer_overhead_ms", f"{phase}.layer_overhead_ms"), gemm_efficiency=mfu, gemm_half_tokens=1e-9,
                       attention_efficiency=mfu, mbu=mbu, kernel_floor_ms=0.0, elementwise_floor_ms=0.0,
                       tail_ms=_number(d, "fixed_overhead_ms", f"{phase}.fixed_overhead_ms", default=0.0))


# Named constants, each with its source: what `calibrate` starts from and keeps where a table's cells
# say nothing of a parameter (docs/simulator.md, "Model 2 and its constants").
PRIOR = PhaseParams(
    launch_ms=1.0,  # eager HF transformers: ~0.9-1.1 ms of host time per decoder layer on an A100 (the paper's Table 1; gpu-limits.md §2b)
    gemm_efficiency=0.7,  # TensorRT-LLM's 2048-token llama-7b prefill on an A100 runs at ~69% of peak (gpu-limits.md §2c)
    gemm_half_tokens=64.0,  # assumed: half of a 128-row GEMM tile filled; fitted wherever a table's cells show it
    attention_efficiency=0.5,  # FlashAttention-2's forward reaches 50-73% of an A100's peak (Dao, 2023)
    mbu=0.75,  # good single-GPU FP16 decode reaches MBU 0.70-0.80 (gpu-limits.md §3)
    kernel_floor_ms=0.003,  # assumed: a few microseconds, a kernel's launch-to-end minimum on the device
    elementwise_floor_ms=0.03,  # assumed: ~10 small eager kernels per layer at the floor above
    tail_ms=0.1,  # assumed: the last kernels' time after the host's last launch
)


def load_calibration(spec: str) -> Calibration:
    """A shipped calibration by name ('default', 'hf-eager'), or a JSON file from `sotlat calibrate`."""
    import json
    from importlib import resources
    from pathlib import Path

    from sotlat.errors import InputError

    shipped = Path(str(resources.files("sotlat") / "data" / "calibrations" / f"{spec}.json"))
    path = shipped if shipped.exists() else Path(spec)
    try:
        return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8-sig")))
    except FileNotFoundError:
        raise InputError(f"--calibration: {spec}: not default, hf-eager or a calibration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--calibration: {path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--calibration: {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except ValueError as exc:
        raise InputError(f"--calibration: {path}: {exc}") from None


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
        from sotlat.errors import InputError
        from sotlat.profiler.archs import kv_layers, moe_routing

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
        from sotlat.profiler.archs import read_parameters

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
        return tokens * self.layers * (10 * self.hidden + 4 * self.intermediate) * self.dtype_bytes


def kernels(s: Shapes, phase: str, batch, length, flops) -> dict[str, tuple]:
    """The kernels of one forward pass, per cell: {kind: (count, FLOPs each, bytes each)}. The
    attention products' FLOPs (q·kᵀ and p·v over every key cached, as the counter counts them) come
    from the shapes, the GEMMs' are the rest of the counted FLOPs, shared evenly among a layer's
    products (as are its weights); activations are split evenly between the GEMMs and the
    element-wise kernels; the head is one product over the last position's tokens."""
    batch, length = np.asarray(batch, float), np.asarray(length, float)
    q_len = length if phase == "prefill" else np.ones_like(length)
    tokens = batch * q_len
    keys = length if phase == "prefill" else length + 1.0  # the new token's key is attended to as well
    q_width = s.q_width or s.hidden
    kept = [k for k, _ in s.kv_layers] if s.kv_layers is not None else [0] * s.layers
    attention_flops = sum(4.0 * batch * q_len * (np.minimum(keys, k) if k else keys) * q_width for k in kept)  # all layers
    head_flops = 2.0 * batch * s.hidden * s.vocab
    gemm_flops = np.maximum(np.asarray(flops, float) - attention_flops - head_flops, 0.0) / (s.layers * s.gemms_per_layer)
    head_bytes = float(s.vocab * s.hidden * s.dtype_bytes)
    layer_weights = np.maximum(s.read_weight_bytes(tokens) - head_bytes, 0.0) / s.layers
    activations = s.activation_bytes(tokens) / s.layers / 2  # per layer: half to the GEMMs, half to the element-wise kernels
    # read the cache; write the new keys/values and read them back (all of them, before a window drops any)
    kv = s.kv_bytes(batch, length if phase == "decode" else 0.0) + 2 * s.kv_bytes(batch, q_len, windowed=False)
    return {
        "gemm": (s.layers * s.gemms_per_layer, gemm_flops, (layer_weights + activations) / s.gemms_per_layer),
        "attention": (s.layers, attention_flops / s.layers, kv / s.layers),
        "elementwise": (s.layers, np.zeros_like(tokens), activations),
        "head": (1, head_flops, head_bytes + batch * s.vocab * 4),  # float32 logits of the last position
    }


def pass_bytes(s: Shapes, phase: str, batch, length):
    """Bytes one forward pass moves: prefill of `length` tokens, or a decode step with `length` cached."""
    return sum(count * nbytes for count, _, nbytes in kernels(s, phase, batch, length, 0.0).values())


def peak_memory(s: Shapes, phase: str, batch, length, workspace: float = 0.0):
    batch, length = np.asarray(batch, float), np.asarray(length, float)
    new = batch * (length if phase == "prefill" else 1.0)
    cache = s.kv_bytes(batch, length if phase == "prefill" else length + 1)
    transient = new * (4 * s.hidden + 3 * s.intermediate) * s.dtype_bytes + batch * s.vocab * 4
    return s.weight_bytes + cache + transient + workspace


def gpu_ms(p: PhaseParams, s: Shapes, phase: str, batch, length, flops, peak_tflops: float, bandwidth_gbps: float):
    """The GPU's time of one pass: each kernel at the slowest of its compute, its memory traffic and its floor."""
    peak, bandwidth = peak_tflops * 1e12, p.mbu * bandwidth_gbps * 1e9
    parts = kernels(s, phase, batch, length, flops)
    tokens = {"gemm": np.asarray(batch, float) * (np.asarray(length, float) if phase == "prefill" else 1.0), "head": np.asarray(batch, float)}
    total = 0.0
    for kind, (count, f, nbytes) in parts.items():
        memory = nbytes / bandwidth
        if kind == "elementwise":
            total = total + count * np.maximum(memory, p.elementwise_floor_ms / 1e3)
            continue
        efficiency = (p.gemm_efficiency * tokens[kind] / (tokens[kind] + p.gemm_half_tokens) if kind in tokens
                      else p.attention_efficiency)
        total = total + count * np.maximum(np.maximum(f / (efficiency * peak), memory), p.kernel_floor_ms / 1e3)
    return total * 1e3


def forward_ms(p: PhaseParams, s: Shapes, phase: str, batch, length, flops, peak_tflops: float, bandwidth_gbps: float):
    """Model 2: the host's launches and the GPU's kernels overlap, so a pass takes the larger of the two, then its tail."""
    host = s.layers * p.launch_ms + p.host_fixed_ms
    return np.maximum(host, gpu_ms(p, s, phase, batch, length, flops, peak_tflops, bandwidth_gbps)) + p.tail_ms
