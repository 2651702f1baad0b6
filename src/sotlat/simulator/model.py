"""The analytical model of one forward pass, vectorised over cells.

time   = max(FLOPs / (MFU * peak), bytes / (MBU * bandwidth)) + layers * layer_overhead + fixed_overhead
bytes  = weights read + KV cache read and written + activations
memory = weights + KV cache + activations + workspace

FLOPs come from the profiler's counter (DeepSpeed on the meta device). MBU <= 1, so decode at B = 1
is never faster than the weights it reads / bandwidth (all weights but the embedding tables the
output head does not share, of which a pass gathers only a few rows).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PhaseParams:
    mfu: float  # achieved fraction of peak FLOP/s when compute-bound
    mbu: float  # achieved fraction of peak bandwidth when memory-bound
    layer_overhead_ms: float  # host-side cost per decoder layer (eager dispatch, launches)
    fixed_overhead_ms: float = 0.0


@dataclass(frozen=True)
class Calibration:
    name: str
    prefill: PhaseParams
    decode: PhaseParams
    workspace_bytes: float = 0.0
    about: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Calibration":
        """Checked field by field: a ValueError names the first wrong one (`decode.mbu: ...`)."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise ValueError("name: missing; a calibration is an object with name, prefill and decode")
        phases = {phase: _phase_params(d.get(phase), phase) for phase in ("prefill", "decode")}
        return cls(name=d["name"], **phases, workspace_bytes=_number(d, "workspace_bytes", "workspace_bytes", default=0.0),
                   about=str(d.get("about", "")))


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
    """MFU and MBU are fractions of a peak, in (0, 1]; the overheads are times, >= 0."""
    if not isinstance(d, dict):
        raise ValueError(f"{phase}: missing; expected an object with mfu, mbu and layer_overhead_ms")
    return PhaseParams(*(_number(d, key, f"{phase}.{key}", at_most=1.0, strictly=True) for key in ("mfu", "mbu")),
                       _number(d, "layer_overhead_ms", f"{phase}.layer_overhead_ms"),
                       _number(d, "fixed_overhead_ms", f"{phase}.fixed_overhead_ms", default=0.0))


# Uncalibrated: a well-tuned engine (MBU 0.75, MFU 0.6, small per-layer overhead); see docs/simulator.md.
DEFAULT = Calibration("default", PhaseParams(0.6, 0.75, 0.01), PhaseParams(0.6, 0.75, 0.01),
                      about="uncalibrated defaults for a compiled engine: MFU 0.6, MBU 0.75, 0.01 ms per layer")


def load_calibration(spec: str) -> Calibration:
    """'default', a shipped calibration by name ('hf-eager'), or a JSON file from `sotlat calibrate`."""
    import json
    from importlib import resources
    from pathlib import Path

    from sotlat.errors import InputError

    if spec == "default":
        return DEFAULT
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

    @classmethod
    def from_config(cls, config, parameters: int, dtype_bytes: int, expert_parameters: int = 0,
                    embedding_parameters: int = 0) -> "Shapes":
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
        return cls(layers, hidden, mlp, vocab, widths[0], parameters, dtype_bytes, embedding_parameters,
                   expert_parameters, moe_routing(config), None if uniform else cached)

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


def pass_bytes(s: Shapes, phase: str, batch, length):
    """Bytes one forward pass moves: prefill of `length` tokens, or a decode step with `length` cached."""
    batch, length = np.asarray(batch, float), np.asarray(length, float)
    new_length = length if phase == "prefill" else 1.0
    new = batch * new_length
    weights = s.read_weight_bytes(new)  # the gathered embedding rows are negligible beside the activations
    # read the cache; write the new keys/values and read them back (all of them, before a window drops any)
    kv = s.kv_bytes(batch, length if phase == "decode" else 0.0) + 2 * s.kv_bytes(batch, new_length, windowed=False)
    return weights + kv + s.activation_bytes(new) + batch * s.vocab * 4  # float32 logits of the last position


def peak_memory(s: Shapes, phase: str, batch, length, workspace: float = 0.0):
    batch, length = np.asarray(batch, float), np.asarray(length, float)
    new = batch * (length if phase == "prefill" else 1.0)
    cache = s.kv_bytes(batch, length if phase == "prefill" else length + 1)
    transient = new * (4 * s.hidden + 3 * s.intermediate) * s.dtype_bytes + batch * s.vocab * 4
    return s.weight_bytes + cache + transient + workspace


def forward_ms(p: PhaseParams, flops, nbytes, layers: int, peak_tflops: float, bandwidth_gbps: float):
    compute = np.asarray(flops) / (p.mfu * peak_tflops * 1e12)
    memory = np.asarray(nbytes) / (p.mbu * bandwidth_gbps * 1e9)
    return np.maximum(compute, memory) * 1e3 + layers * p.layer_overhead_ms + p.fixed_overhead_ms
