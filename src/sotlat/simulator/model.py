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

from sotlat.models.shapes import Shapes

ACTIVATIONS_HELD = (4, 3)  # hidden-wide and intermediate-wide tensors a pass holds per token at its peak, beside the logits

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
        raise InputError(f"{spec}: not default, hf-eager or a calibration file", param="calibration") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})", param="calibration") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})", param="calibration") from None
    except ValueError as exc:
        raise InputError(f"{path}: {exc}", param="calibration") from None


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
    hidden, intermediate = ACTIVATIONS_HELD
    transient = new * (hidden * s.hidden + intermediate * s.intermediate) * s.dtype_bytes + batch * s.vocab * 4
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
