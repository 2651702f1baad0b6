"""A campaign's overhead: the same profiles run directly, one after another in this process, and as a
campaign on a Ray started on this machine (one worker, so the shards run one at a time as the direct
profiles do). Prints the wall time of each, their ratio, and the median ratio of the cells' latencies
(a worker holding all the machine's CPUs should time cells as the direct profile does).

The campaign's time includes starting Ray, the shared-folder check, the tasks' start-up (a worker
imports torch and builds the model per shard) and the merge.

Usage: python benchmarks/campaign_vs_direct.py --arch tiny --batches 1-4 --decode-max 256 --shards 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sotlat.campaign.run import run_campaign
from sotlat.models.device import describe_device
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.tables.grid import parse_batches, parse_range
from sotlat.tables.io import load_table

ATTENTIONS = ("sdpa", "eager")  # the two profiles: one architecture, each attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="tiny")
    ap.add_argument("--batches", default="1-4")
    ap.add_argument("--prefill-lengths", default="1:200:20")
    ap.add_argument("--decode-max", type=int, default=256)
    ap.add_argument("--shards", type=int, default=2, help="shards per profile in the campaign")
    a = ap.parse_args()
    grid = dict(prefill_runs=3, prefill_warmup=1, decode_runs=2, decode_warmup=1)
    work = Path(tempfile.mkdtemp(prefix="campaign-bench-"))

    started = time.perf_counter()
    direct = {att: profile(ProfileSpec(arch=a.arch, device="cpu", dtype="float32", batches=parse_batches(a.batches),
                                       prefill_lengths=parse_range(a.prefill_lengths), decode_max=a.decode_max, attention=att, **grid),
                           str(work / f"direct-{att}.parquet")) for att in ATTENTIONS}
    direct_s = time.perf_counter() - started

    lines = [f'device = "cpu"', f'batches = "{a.batches}"', f'prefill_lengths = "{a.prefill_lengths}"', f"decode_max = {a.decode_max}",
             f"shards = {a.shards}", *(f"{k} = {v}" for k, v in grid.items())]
    lines += [f'\n[[profile]]\narch = "{a.arch}"\nname = "{att}"\nattention = "{att}"' for att in ATTENTIONS]
    (work / "c.toml").write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    done = run_campaign(work / "c.toml", work / "campaign", ray_init={"num_cpus": os.cpu_count()})
    campaign_s = time.perf_counter() - started

    ratios = []
    for att in ATTENTIONS:
        made = load_table(work / "campaign" / f"{att}.parquet").set_index(["phase", "batch", "length"])["latency_ms"]
        alone = direct[att].set_index(["phase", "batch", "length"])["latency_ms"]
        assert sorted(made.index) == sorted(alone.index), "the campaign's cells differ from the direct profiles'"
        ratios += list(made / alone.loc[made.index])
    cells = sum(len(t) for t in direct.values())
    print(f"machine: {describe_device('cpu')['name']}, {os.cpu_count()} CPUs; {a.arch} x {len(ATTENTIONS)} profiles "
          f"({', '.join(ATTENTIONS)} attention), {cells:,} cells; campaign: {done['shards']} shards, 1 worker")
    print(f"direct   {direct_s:7.1f} s")
    print(f"campaign {campaign_s:7.1f} s")
    print(f"campaign / direct: {campaign_s / direct_s:.2f}x wall time ({campaign_s - direct_s:+.1f} s); "
          f"cell latency campaign / direct: median {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
