"""Run a campaign on Ray: each shard a task holding one GPU (or a CPU worker), checkpointed under
the campaign's folder as `profile --resume` checkpoints; a worker lost or preempted is retried and
continues from its last checkpoint; the finished shards of a profile are merged into its table."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import platform
import secrets
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from sotlat.atomic import atomic_path, writable
from sotlat.campaign.spec import Campaign, Shard, read_campaign
from sotlat.errors import InputError
from sotlat.interrupts import Interrupted, sigterm_as_keyboard_interrupt
from sotlat.profiler.run import UNFINISHED, ProfileSpec, profile
from sotlat.tables.io import load_table, save_table
from sotlat.tables.merge import merge_files
from sotlat.tables.meta import CampaignMark
from sotlat.tables.stats import is_complete

PLAN = "campaign.json"  # in the campaign's folder: the shards as planned, for `campaign status`
RETRIES = 3  # a shard whose worker dies or is preempted is started again this many times, from its checkpoint
MARK = ".campaign-folder"  # a token every node must read the same: the folder is one they share


def ray_module():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError("campaigns run on Ray, which is not installed: pip install 'sotlat[ray]'") from None
    return ray


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def status_path(shard_file: Path) -> Path:
    return shard_file.with_suffix(".status.json")


def run_shard(spec: ProfileSpec, out: str, threads: int | None = None) -> dict:
    """A shard, in a Ray worker: `profile` with resume into its checkpoint, on `threads` torch threads
    for a CPU shard (a pooled Ray worker keeps the one thread it started with). Bad input is
    returned, not raised (no retry mends it); a lost worker is Ray's to retry, and the next attempt
    resumes."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    status = status_path(Path(out))
    attempt = read_json(status).get("attempt", 0) + 1
    _write_json(status, {"state": "running", "attempt": attempt, "pid": os.getpid(), "node": platform.node(),
                         "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    try:
        table = profile(spec, out, resume=True)
    except InputError as exc:
        _write_json(status, {"state": "failed", "attempt": attempt, "error": str(exc)})
        return {"error": str(exc)}
    except Interrupted:
        _write_json(status, {"state": "interrupted", "attempt": attempt})
        return {"interrupted": True}
    _write_json(status, {"state": "done", "attempt": attempt, "cells": len(table)})
    return {"cells": len(table)}


def cells_done(path: Path) -> int:
    """The finished cells a shard's checkpoint holds (an interrupted batch's sweeps not among them)."""
    try:
        return sum(s != UNFINISHED for s in pq.read_table(path, columns=["status"]).column("status").to_pylist())
    except (OSError, ValueError):
        return 0


def _complete(path: Path) -> bool:
    return path.exists() and is_complete(load_table(path))


def _plan(campaign: Campaign, out_dir: Path) -> None:
    _write_json(out_dir / PLAN, {"file": str(campaign.file), "workers": campaign.workers, "profiles": [
        {"name": p.name, "gpu": p.gpu, "device": p.device, "table": f"{p.name}.parquet",
         "shards": [{"file": s.file, "batches": list(s.batches), "cells": s.cells, "seconds": s.seconds} for s in p.shards]}
        for p in campaign.profiles]})


def _check_shared(ray, out_dir: Path) -> None:
    """Every node must see the campaign's folder, where the checkpoints go, as the same folder: a
    checkpoint must outlive the node that wrote it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    _write_json(out_dir / MARK, {"token": token})
    read = ray.remote(num_cpus=0)(lambda path: read_json(Path(path)).get("token"))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    seen = ray.get([read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(str(out_dir / MARK))
                    for n in nodes])
    blind = [n["NodeManagerAddress"] for n, t in zip(nodes, seen) if t != token]
    if blind:
        raise InputError(f"{out_dir}: not a folder every node of the cluster shares ({', '.join(blind)} cannot see it), and the checkpoints "
                         "must outlive the node that writes them; give `out` a shared path (NFS, a cluster file system)")


def _submit(ray, campaign: Campaign, shard: Shard, out_dir: Path):
    """The shard as a Ray task: holding one GPU (of the profile's accelerator type), or for a CPU
    profile a `workers`-th of the cluster's CPUs (Ray sets the task's torch threads to that)."""
    if shard.spec.device == "cpu":
        threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // campaign.workers)
        resources = {"num_cpus": threads}
    else:
        threads, gpu = None, next(p.gpu for p in campaign.profiles if p.name == shard.profile)
        resources = {"num_gpus": 1, **({"accelerator_type": gpu} if gpu != "any" else {})}
    task = ray.remote(run_shard).options(max_retries=RETRIES, **resources)
    return task.remote(shard.spec, str(out_dir / shard.file), threads)


def _merge(campaign: Campaign, out_dir: Path) -> list[str]:
    """The table of each profile whose shards are all complete (merged anew: it keeps every cell);
    marked with the campaign, and where CPU shards ran side by side, that they shared the cores."""
    made = []
    for p in campaign.profiles:
        files = [out_dir / s.file for s in p.shards]
        if not all(_complete(f) for f in files):
            continue
        out = out_dir / f"{p.name}.parquet"
        if len(files) == 1:
            table = load_table(files[0])
        else:
            merge_files(files, out)
            table = load_table(out)
        cpu = p.device == "cpu"
        table.attrs["sotlat"] = table.attrs["sotlat"].with_(campaign=CampaignMark(
            str(campaign.file), len(files), campaign.workers if cpu else None, cpu and campaign.workers > 1))
        save_table(table, out)
        made.append(str(out))
    return made


def run_campaign(file: Path, out_dir: Path, address: str | None = None, progress: Callable[[int, int, int, int], None] | None = None,
                 ray_init: dict | None = None) -> dict:
    """Measure every profile of the campaign file into `out_dir` on a Ray cluster (`address`) or on a
    Ray started on this machine; `progress(shards done, shards, cells done, cells)` as it goes.
    Finished shards are never run again, so a second run continues the first. Returns {tables,
    shards, cells, measured: the shards this run ran}."""
    campaign, out_dir = read_campaign(file), Path(out_dir).resolve()
    with writable(out_dir):
        (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    _plan(campaign, out_dir)
    shards = campaign.all_shards
    todo = [s for s in shards if not _complete(out_dir / s.file)]
    if not todo:  # a finished campaign: nothing to measure, no Ray to start
        return {"tables": _merge(campaign, out_dir), "shards": len(shards), "cells": sum(s.cells for s in shards), "measured": 0}
    ray = ray_module()
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **({} if address else {"include_dashboard": False}),
             **(ray_init or {}))
    running: dict = {}
    try:
        with sigterm_as_keyboard_interrupt():
            _check_shared(ray, out_dir)
            _drive(ray, campaign, out_dir, todo, running, progress or (lambda *a: None))
    except KeyboardInterrupt:
        _stop(ray, running)
        saved = sum(cells_done(out_dir / s.file) for s in shards)
        raise Interrupted(f"interrupted: {saved:,} cells saved under {out_dir}; run the campaign again to continue") from None
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
    return {"tables": _merge(campaign, out_dir), "shards": len(shards), "cells": sum(s.cells for s in shards), "measured": len(todo)}


def _drive(ray, campaign: Campaign, out_dir: Path, todo: list[Shard], running: dict, progress) -> None:
    """Submit the shards (CPU ones `workers` at a time), follow their checkpoints, and stop all at the
    first bad input."""
    shards = campaign.all_shards
    waiting, done = list(todo), len(shards) - len(todo)
    while waiting or running:
        for shard in list(waiting):
            cpu_busy = sum(s.spec.device == "cpu" for s in running.values())
            if shard.spec.device != "cpu" or cpu_busy < campaign.workers:
                running[_submit(ray, campaign, shard, out_dir)] = shard
                waiting.remove(shard)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
        for ref in ready:
            result = ray.get(ref)
            running.pop(ref)
            if "error" in result:
                _stop(ray, running)
                raise InputError(result["error"])
            done += "cells" in result
        progress(done, len(shards), sum(cells_done(out_dir / s.file) for s in shards), sum(s.cells for s in shards))


def _stop(ray, running: dict) -> None:
    """Cancel the running shards as Ctrl-C stops a profile (each saves what it finished), and wait for them to."""
    for ref in running:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    with contextlib.suppress(Exception):
        ray.wait(list(running), num_returns=len(running), timeout=60)
