"""A campaign file (TOML): the profiles to measure, where, and how to shard them; read, checked (a
mistake is one line naming the file, its line and the key) and split into shards by `plan`'s cost
model (docs/campaign.md)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from sotlat.errors import InputError
from sotlat.models.dtypes import canonical_dtype
from sotlat.profiler.run import ProfileSpec
from sotlat.simulator.plan import balanced, plan_profile, shards
from sotlat.tables.grid import format_batches, parse_batches, parse_range

# key: (type, default); a profile takes every key, the file's top level gives its defaults
PROFILE_KEYS = {
    "arch": (str, None), "config": (str, None), "name": (str, None), "dtype": (str, None),
    "batches": (str, "1-16"), "prefill_lengths": (str, "1:700:10"), "decode_max": (int, 1024), "prefill_runs": (int, 7),
    "prefill_warmup": (int, 2), "decode_runs": (int, 3), "decode_warmup": (int, 1), "attention": (str, "sdpa"), "backend": (str, "eager"),
    "device": (str, "cuda"), "gpu": (str, "any"), "plan_gpu": (str, "h100-sxm"), "calibration": (str, "hf-eager"),
    "shard_minutes": ((int, float), 9.0), "shards": (int, None),
}
TOP_KEYS = {**PROFILE_KEYS, "workers": (int, 1)}


@dataclass(frozen=True)
class Shard:
    profile: str  # the profile's name: its table is DIR/<name>.parquet
    batches: tuple[int, ...]
    seconds: float  # planned, by the cost model
    spec: ProfileSpec = field(repr=False)

    @property
    def file(self) -> str:
        """Its checkpoint, under the campaign's folder."""
        return f"shards/{self.profile}__b{format_batches(list(self.batches)).replace(',', '_')}.parquet"

    @property
    def cells(self) -> int:
        return len(self.batches) * (len(self.spec.prefill_lengths.lengths) + self.spec.decode_max)


@dataclass(frozen=True)
class Profile:
    name: str
    gpu: str  # a Ray accelerator type, or "any"
    device: str  # cuda or cpu
    plan_gpu: str  # the catalogue GPU whose simulated times balance the shards
    shards: tuple[Shard, ...]


@dataclass(frozen=True)
class Campaign:
    file: Path
    profiles: tuple[Profile, ...]
    workers: int  # CPU shards at a time on one machine

    @property
    def all_shards(self) -> list[Shard]:
        return [s for p in self.profiles for s in p.shards]


def _where(text: str, block: int | None, key: str) -> str:
    """The line number of `key` in the file: in the top level (block None) or in the block-th [[profile]]."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*\[\[\s*profile\s*\]\]", line)]
    lo, hi = (0, starts[0] if starts else len(lines)) if block is None else (starts[block], starts[block + 1] if block + 1 < len(starts) else len(lines))
    found = next((i for i in range(lo, hi) if re.match(rf"\s*{re.escape(key)}\s*=", lines[i])), lo)
    return str(found + 1)


def read_campaign(path: Path) -> Campaign:
    """The campaign of a TOML file, every profile checked and sharded before any work."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\s*\(at line (\d+), column \d+\)", str(exc))
        raise InputError(f"{path}:{at[1] + ':' if at else ''} not valid TOML ({str(exc).replace(at[0], '') if at else exc})") from None
    defaults = _checked(path, text, None, {k: v for k, v in data.items() if k != "profile"}, TOP_KEYS)
    entries = data.get("profile")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[profile]]: a campaign lists at least one profile")
    profiles = [_profile(path, text, i, {**{k: v for k, v in defaults.items() if k != "workers"}, **_checked(path, text, i, entry, PROFILE_KEYS)})
                for i, entry in enumerate(entries)]
    names = [p.name for p in profiles]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise InputError(f"{path}:{_where(text, i, 'name')}: name: {name!r} is another profile's too; give each its own `name`")
    workers = defaults.get("workers", 1)
    if workers < 1:
        raise InputError(f"{path}:{_where(text, None, 'workers')}: workers: must be at least 1, got {workers}")
    return Campaign(path, tuple(profiles), workers)


def _checked(path: Path, text: str, block: int | None, entry: dict, keys: dict) -> dict:
    """The entry's keys, each known and of its type."""
    for key, value in entry.items():
        if key not in keys:
            raise InputError(f"{path}:{_where(text, block, key)}: {key}: not a campaign key; expected one of {', '.join(keys)}")
        kind = keys[key][0]
        if isinstance(value, bool) or not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise InputError(f"{path}:{_where(text, block, key)}: {key}: expected {names}, got {value!r}")
    return dict(entry)


def _profile(path: Path, text: str, block: int, entry: dict) -> Profile:
    """One [[profile]], its ProfileSpec built (grid, runs, attention and dtype checked) and sharded."""
    o = {k: entry.get(k, default) for k, (_, default) in PROFILE_KEYS.items()}
    where = lambda key: f"{path}:{_where(text, block, key)}"  # noqa: E731
    if (o["arch"] is None) == (o["config"] is None):
        raise InputError(f"{where('arch')}: give exactly one of arch and config")
    if o["device"] not in ("cuda", "cpu"):  # Ray gives each GPU task its own GPU as `cuda`
        raise InputError(f"{where('device')}: device: expected cuda (a GPU each shard, as Ray assigns) or cpu, got {o['device']!r}")
    config = str((path.parent / o["config"]).resolve()) if o["config"] else None
    try:
        dtype = canonical_dtype(o["dtype"] or ("float16" if o["device"] != "cpu" else "float32"))
        spec = ProfileSpec(arch=o["arch"], config_path=config, device=o["device"], dtype=dtype, batches=parse_batches(o["batches"]),
                           prefill_lengths=parse_range(o["prefill_lengths"]), decode_max=o["decode_max"], prefill_runs=o["prefill_runs"],
                           prefill_warmup=o["prefill_warmup"], decode_runs=o["decode_runs"], decode_warmup=o["decode_warmup"], attention=o["attention"],
                           backend=o["backend"])
        per_batch = _seconds(o, spec)
    except InputError as exc:  # the library names its parameters; plan's `gpu` is the campaign's plan_gpu
        key = {"gpu": "plan_gpu", "config_path": "config"}.get(exc.param, exc.param or "arch")
        raise InputError(f"{where(key)}: {str(exc).replace('`gpu`', 'plan_gpu')}") from None
    name = o["name"] or f"{Path(config).stem if config else o['arch']}__{o['gpu'].lower() if o['gpu'] != 'any' else o['device']}__{dtype}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise InputError(f"{where('name')}: name: {name!r}: letters, digits, '.', '_' and '-' only (it names files)")
    groups = balanced(per_batch, o["shards"]) if o["shards"] else shards(per_batch, o["shard_minutes"] * 60)
    seconds = per_batch.set_index("batch")["total_s"]
    return Profile(name, o["gpu"], o["device"], o["plan_gpu"], tuple(Shard(name, tuple(g), float(seconds[g].sum()), replace(spec, batches=list(g))) for g in groups))


def _seconds(o: dict, spec: ProfileSpec) -> pd.DataFrame:
    """Seconds per batch by `plan`'s cost model: the grid simulated on `plan_gpu` with `calibration`."""
    plan = plan_profile(o["plan_gpu"], spec.arch, spec.config_path, spec.dtype, o["calibration"], o["batches"],
                        o["prefill_lengths"], spec.decode_max, spec.prefill_runs, spec.prefill_warmup, spec.decode_runs, spec.decode_warmup)
    return pd.DataFrame(plan["per_batch"])

