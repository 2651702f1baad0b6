"""A table's metadata as typed data: what it measured (or simulated), of which model, on which device,
how, and how much its runs scatter. Tables load into it and save from it (JSON under the Parquet
key `sotlat`, docs/formats.md); `from_dict` reads schema version 2 and upgrades version 1 on the
way in, so every reader sees one shape."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass, replace

from sotlat.tables.grid import PrefillGrid

SCHEMA_VERSION = 2


def _known(cls, d: dict) -> dict:
    """The keys of `d` that are fields of `cls`."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class Grid:
    batches: tuple[int, ...]
    prefill_lengths: PrefillGrid
    decode_max: int

    @classmethod
    def from_dict(cls, d: dict) -> "Grid":
        return cls(tuple(int(b) for b in d["batches"]), PrefillGrid.from_dict(d["prefill_lengths"]), int(d["decode_max"]))


@dataclass(frozen=True)
class PrefillMethod:
    runs: int
    warmup: int
    aggregation: str = "geometric mean of the runs after warm-up"


@dataclass(frozen=True)
class DecodeMethod:
    runs: int
    warmup: int | None  # untimed sweeps per batch; None: written before decode warm-ups (its first sweep is among the runs)
    sweep: str = ""
    aggregation: str = "geometric mean over sweeps"


@dataclass(frozen=True)
class Method:
    """How the cells were made: measured (prefill, decode, timer, attention, software...) or
    simulated (the simulator's model and calibration)."""

    grid: Grid
    timer: str
    memory: str
    flops: dict
    prefill: PrefillMethod | None = None
    decode: DecodeMethod | None = None
    attention: str | None = None  # 'sdpa' or 'eager'; None for a simulated table
    backend: str | None = None  # 'eager', 'static' or 'cuda-graph' (profiler/backend.py); None for a simulated table
    cache_buckets: str | None = None  # a static backend's rule for the KV cache's size
    forward: str | None = None
    weights: str | None = None
    quiet: str | None = None
    software: dict | None = None
    model: str | None = None  # a simulated table's model
    calibration: dict | None = None  # ... and the calibration it ran

    @classmethod
    def from_dict(cls, d: dict) -> "Method":
        d = {**_known(cls, d), "grid": Grid.from_dict(d["grid"])}
        if d.get("prefill"):
            d["prefill"] = PrefillMethod(**_known(PrefillMethod, d["prefill"]))
        if d.get("decode"):
            d["decode"] = DecodeMethod(**{"warmup": None, **_known(DecodeMethod, d["decode"])})
        if d.get("attention") and not d.get("backend"):  # measured before backends: eager
            d["backend"] = "eager"
        return cls(**{"timer": "", "memory": "", "flops": {}, **d})


@dataclass(frozen=True)
class Arch:
    name: str
    config: dict
    parameters: int | None = None
    expert_parameters: int | None = None
    embedding_parameters: int | None = None
    gemms_per_layer: int | None = None
    weight_bytes: int | None = None
    read_weight_bytes: int | None = None  # of a one-token forward pass: all but gathered embedding tables and unvisited experts

    def identity(self) -> dict:
        """Which architecture a table is of: its name and HF config. The rest is derived from these,
        so a newer sotlat that records more of it still resumes and merges an older one's shards."""
        return {"name": self.name, "config": self.config}


@dataclass(frozen=True)
class Device:
    """What the device is, as `models.device.describe_device` reads it (or the catalogue, simulated)."""

    name: str
    kind: str | None = None  # cuda, cpu or simulated
    catalogue_id: str | None = None
    peak_tflops: float | None = None  # the compute peak of the table's dtype: what utilization divides by
    memory_bandwidth_bytes_per_s: float | None = None
    memory_bandwidth_source: str | None = None
    total_memory_bytes: int | None = None
    index: int | None = None
    compute_capability: str | None = None
    multiprocessors: int | None = None
    l2_cache_bytes: int | None = None
    memory_bus_width_bits: int | None = None
    memory_clock_khz: int | None = None
    cuda: str | None = None
    cudnn: int | None = None
    driver: str | None = None
    clocks: dict | None = None
    cpu_model: str | None = None
    logical_cpus: int | None = None
    torch_threads: int | None = None
    platform: str | None = None
    sms: float | None = None  # a simulated GPU's catalogue figures
    l2_mb: float | None = None
    unconfirmed: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)  # what a newer or other sotlat recorded beside these

    @classmethod
    def from_dict(cls, d: dict) -> "Device":
        known = _known(cls, {k: v for k, v in d.items() if k not in ("extra", "simulated")})
        if known.get("unconfirmed") is not None:
            known["unconfirmed"] = tuple(known["unconfirmed"])
        rest = {k: v for k, v in d.items() if k not in known and k not in ("extra", "simulated")}
        return cls(**known, extra={**d.get("extra", {}), **rest})


@dataclass(frozen=True)
class Progress:
    complete: bool = True  # false while a profile is under way or was interrupted
    elapsed_s: float | None = None


@dataclass(frozen=True)
class PhaseDispersion:
    cells: int = 0  # with two runs or more
    median_cv: float | None = None
    p90_cv: float | None = None


@dataclass(frozen=True)
class DecodeDispersion(PhaseDispersion):
    sweep_medians_ms: dict = field(default_factory=dict)  # batch (as a string) -> each measured sweep's median over k, in sweep order
    sweep_spread: float | None = None  # over the batches, the largest slowest / fastest sweep median, less 1


@dataclass(frozen=True)
class Dispersion:
    prefill: PhaseDispersion
    decode: DecodeDispersion

    @classmethod
    def from_dict(cls, d: dict) -> "Dispersion":
        return cls(PhaseDispersion(**_known(PhaseDispersion, d["prefill"])), DecodeDispersion(**_known(DecodeDispersion, d["decode"])))


@dataclass(frozen=True)
class CampaignMark:
    """A table a campaign made (`sotlat campaign run`)."""

    file: str  # the campaign file
    shards: int  # the shards merged into it
    cpu_workers: int | None = None  # CPU shards run at a time; None for GPU shards (each held a whole GPU)
    shared_cores: bool = False  # CPU shards ran side by side: each one's timings shared the cores with another's


@dataclass(frozen=True)
class TableMeta:
    arch: Arch
    device: Device
    dtype: str
    method: Method
    created_at: str
    simulated: bool = False
    progress: Progress = Progress()
    dispersion: Dispersion | None = None  # None only for a table with no cells yet; simulated tables have no runs to scatter
    host_load: dict | None = None  # {cpu_busy_pct, load_1min, logical_cpus, gpu_busy_pct} when the profile started
    shards: tuple[dict, ...] = ()  # after `tables merge`: the files merged and when each was made
    campaign: CampaignMark | None = None
    extra: dict = field(default_factory=dict)  # what a newer or other sotlat recorded beside these
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """As JSON data (docs/formats.md): fields that are None left out, `extra` beside the rest."""
        return _data(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TableMeta":
        """Version 2 as written, version 1 upgraded (`upgrade`); a KeyError or TypeError names what is missing."""
        d = upgrade(d) if d.get("schema_version", 1) == 1 else d
        known = _known(cls, d)
        known.update(arch=Arch(**_known(Arch, d["arch"])), device=Device.from_dict(d["device"]), method=Method.from_dict(d["method"]),
                     progress=Progress(**_known(Progress, d.get("progress") or {})),
                     dispersion=Dispersion.from_dict(d["dispersion"]) if d.get("dispersion") else None,
                     shards=tuple(d.get("shards") or ()), campaign=CampaignMark(**_known(CampaignMark, d["campaign"])) if d.get("campaign") else None,
                     extra={k: v for k, v in d.items() if k not in known})
        return cls(**known)

    def with_(self, **changes) -> "TableMeta":
        """A copy with `changes`, nested ones by their dotted path: `with_(**{"method.grid.batches": (1, 2)})`."""
        return _replace_path(self, changes)


def _data(value):
    if is_dataclass(value):
        out = {f.name: _data(getattr(value, f.name)) for f in fields(value) if f.name != "extra" and getattr(value, f.name) is not None}
        return {**out, **getattr(value, "extra", {})}
    if isinstance(value, tuple):
        return [_data(v) for v in value]
    return value  # a dict of recorded data (an HF config, software versions) as it was given


def _replace_path(obj, changes: dict):
    flat, nested = {}, {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    return replace(obj, **flat, **{head: _replace_path(getattr(obj, head), sub) for head, sub in nested.items()})


def upgrade(v1: dict) -> dict:
    """A version-1 metadata dict in version 2's shape: `simulated` once (version 1 stored it in both
    `device` and `method`); the attention kind as a field (version 1 had it only inside
    `method.forward`'s sentence); the decode warm-up null where version 1 had none (written before
    warm-ups: its first sweep is among the runs); `read_weight_bytes` as `weight_bytes` where it was
    not recorded (exact for a model whose head shares its input embedding, as every table that old
    in this repo does). `dispersion`, which version 1 did not record, the loader computes from the
    cells."""
    d = {k: v for k, v in v1.items() if k != "schema_version"}
    device, method = dict(d["device"]), dict(d["method"])
    d["simulated"] = bool(device.pop("simulated", False) or method.pop("simulated", False))
    found = re.search(r"(\w+) attention", method.get("forward", ""))
    if found and not d["simulated"]:
        method["attention"] = found[1]
    if "decode" in method:
        method["decode"] = {"warmup": None, **method["decode"]}
    arch = dict(d["arch"])
    if arch.get("read_weight_bytes") is None and arch.get("weight_bytes") is not None:
        arch["read_weight_bytes"] = arch["weight_bytes"]
    return {**d, "arch": arch, "device": device, "method": method, "schema_version": SCHEMA_VERSION}
