"""`sotlat campaign`: run a campaign file's profiles on Ray, and say where a campaign stands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sotlat.cli.app import campaign_app
from sotlat.cli.common import console, duration, user_errors
from sotlat.tables.grid import format_batches


class _Display:
    """Shards and cells done, with the time left at this run's pace so far (cells arrive in steps, at
    each checkpoint, so rich's recent-speed ETA would jump)."""

    def __init__(self):
        self.bar = Progress(TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[eta]}"), console=console)
        self.shards, self.cells = (self.bar.add_task(name, total=None, eta="") for name in ("shards", "cells"))
        self.started, self.first = time.monotonic(), None  # cells saved by earlier runs, at the first update

    def __call__(self, shards_done: int, shards_total: int, cells_done: int, cells_total: int) -> None:
        self.first = cells_done if self.first is None else self.first
        self.bar.start()
        self.bar.update(self.shards, completed=shards_done, total=shards_total)
        pace = (time.monotonic() - self.started) / (cells_done - self.first) if cells_done > self.first else None
        eta = f"ETA {duration(pace * (cells_total - cells_done))}" if pace else "ETA -"
        self.bar.update(self.cells, completed=cells_done, total=cells_total, eta=eta)


@campaign_app.command("run")
@user_errors
def campaign_run(
    file: Annotated[Path, typer.Argument(help="The campaign (.toml): profiles, devices, shards (docs/campaign.md).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The campaign's folder: checkpoints, tables, status (shared by every node).")],
    address: Annotated[Optional[str], typer.Option(help="A Ray cluster's address (default: start Ray on this machine).")] = None,
):
    """Profile every campaign entry, each shard a Ray task holding one GPU; merge each profile's table into --out."""
    from sotlat.campaign.run import run_campaign

    display = _Display()
    try:
        done = run_campaign(file, out, address, display)
    finally:
        if display.bar.live.is_started:
            display.bar.stop()
    ran = f"{done['measured']} run now" if done["measured"] else "all finished before: nothing measured"
    console.print(f"{out}: {done['shards']} shards ({ran}), {done['cells']:,} cells; tables:", highlight=False)
    for table in done["tables"]:
        console.print(f"  {table}", highlight=False, soft_wrap=True)


@campaign_app.command("plan")
@user_errors
def campaign_plan(file: Annotated[Path, typer.Argument(help="The campaign (.toml).")]):
    """The shards a campaign file makes, before running it: per profile, its batches, cells and planned time."""
    from sotlat.campaign.spec import read_campaign

    campaign = read_campaign(file)
    view = Table(title=f"{file}: {len(campaign.all_shards)} shards; CPU shards {campaign.workers} at a time")
    for column in ("profile", "runs on", "shards (batches)", "cells", "planned", "longest shard"):
        view.add_column(column, justify="right" if column in ("cells", "planned", "longest shard") else "left")
    for p in campaign.profiles:
        where = "cpu" if p.device == "cpu" else f"a GPU ({p.gpu})"
        view.add_row(p.name, where, " ".join(format_batches(list(s.batches)) for s in p.shards), f"{sum(s.cells for s in p.shards):,}",
                     duration(sum(s.seconds for s in p.shards)), duration(max(s.seconds for s in p.shards)))
    console.print(view)
    console.print("planned: simulated on each profile's plan_gpu (docs/campaign.md); a CPU profile's are its plan_gpu's, not the CPU's",
                  style="dim", highlight=False)


@campaign_app.command("status")
@user_errors
def campaign_status(
    out: Annotated[Path, typer.Argument(help="The campaign's folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
):
    """Shards done, running, failed and waiting; cells per profile; time spent and left."""
    from sotlat.campaign.status import campaign_status as read

    s = read(out)
    if as_json:
        print(json.dumps(s))
        return
    console.print(f"{out} ({s['file']}): shards " + ", ".join(f"{n} {state}" for state, n in sorted(s["counts"].items()))
                  + f"; {duration(s['spent_s'])} measured, about {duration(s['left_s'])} left", highlight=False)
    view = Table()
    for column in ("profile", "cells", "shards done", "table"):
        view.add_column(column, justify="left" if column in ("profile", "table") else "right")
    for p in s["profiles"]:
        done = sum(x["state"] == "done" for x in p["shards"])
        view.add_row(p["name"], f"{p['cells_done']:,} / {p['cells']:,}", f"{done} / {len(p['shards'])}", p["table"] if p["made"] else "-")
    console.print(view)
    for p in s["profiles"]:
        for x in p["shards"]:
            if x["state"] == "failed":
                console.print(f"failed: {x['file']}: {x['error']}", style="yellow", highlight=False, soft_wrap=True)
