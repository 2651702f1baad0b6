"""Where a campaign stands, from its folder alone: each shard done, running, failed or waiting, the
cells of each profile, the time spent and the time left."""

from __future__ import annotations

from pathlib import Path

from sotlat.campaign.run import PLAN, cells_done, read_json, status_path
from sotlat.errors import InputError
from sotlat.tables.io import load_table
from sotlat.tables.stats import is_complete


def campaign_status(out_dir: Path) -> dict:
    """{profiles: [{name, table, cells, cells_done, shards: [{file, batches, state, cells_done, ...}]}],
    counts (shards per state), spent_s (measuring time in the checkpoints), left_s (the plan's seconds
    of what is not yet measured)}."""
    out_dir = Path(out_dir)
    plan = read_json(out_dir / PLAN)
    if not plan:
        raise InputError(f"{out_dir}: no {PLAN}: not a campaign's folder (sotlat campaign run writes one)")
    profiles, counts, spent, left = [], {}, 0.0, 0.0
    for p in plan["profiles"]:
        shards = []
        for s in p["shards"]:
            path = out_dir / s["file"]
            table = load_table(path) if path.exists() else None
            done = cells_done(path) if table is not None else 0
            status = read_json(status_path(path))
            complete = table is not None and is_complete(table)
            state = "done" if complete else status.get("state", "waiting").replace("done", "waiting")  # done is what the checkpoint says
            spent += (table.attrs["sotlat"].progress.elapsed_s or 0.0) if table is not None else 0.0
            left += s["seconds"] * (1 - done / s["cells"]) if state != "done" else 0.0
            counts[state] = counts.get(state, 0) + 1
            shards.append({**s, "state": state, "cells_done": done, "attempt": status.get("attempt"), "error": status.get("error")})
        profiles.append({"name": p["name"], "table": p["table"], "made": (out_dir / p["table"]).exists(), "cells": sum(s["cells"] for s in shards),
                         "cells_done": sum(s["cells_done"] for s in shards), "shards": shards})
    return {"file": plan["file"], "profiles": profiles, "counts": counts, "spent_s": spent, "left_s": left}
