"""Campaigns on a local single-node Ray (2 CPUs, `device = "cpu"`, the tiny architecture): the same
cells as direct profiles, a killed worker retried from its checkpoint, Ctrl-C and a second run,
bad campaign files. Nothing connects to another host."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from sotlat.campaign.run import cells_done, read_json, run_campaign, status_path
from sotlat.campaign.spec import read_campaign
from sotlat.campaign.status import campaign_status
from sotlat.cli import app
from sotlat.errors import InputError
from sotlat.interrupts import Interrupted
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.simulator.plan import balanced, shards
from sotlat.tables.grid import parse_range
from sotlat.tables.io import load_table

pytest.importorskip("ray")
RAY = {"num_cpus": 2}
GRID = 'device = "cpu"\nprefill_lengths = "1:40:10"\nprefill_runs = 2\nprefill_warmup = 1\ndecode_warmup = 0\n'
TWO = GRID + ('workers = 2\ndecode_runs = 2\ndecode_max = 40\nshards = 2\n\n[[profile]]\narch = "tiny"\nbatches = "1-4"\n\n'
              '[[profile]]\narch = "tiny"\nname = "tiny-eager"\nattention = "eager"\nbatches = "1,2"\n')


def keys(table: pd.DataFrame) -> list[tuple]:
    return sorted(zip(table["phase"], table["batch"], table["length"], table["status"]))


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A two-profile campaign, run once: (campaign file, folder, what run_campaign returned)."""
    root = tmp_path_factory.mktemp("campaign")
    (root / "c.toml").write_text(TWO)
    return root / "c.toml", root / "out", run_campaign(root / "c.toml", root / "out", ray_init=RAY)


def test_a_campaign_makes_the_cells_of_its_profiles_run_one_by_one(two, tmp_path):
    file, out, done = two
    assert done["shards"] == 4 and done["measured"] == 4  # each profile in two shards
    for name, batches, attention in (("tiny__cpu__float32", [1, 2, 3, 4], "sdpa"), ("tiny-eager", [1, 2], "eager")):
        made = load_table(out / f"{name}.parquet")
        direct = profile(ProfileSpec(arch="tiny", device="cpu", dtype="float32", batches=batches, prefill_lengths=parse_range("1:40:10"),
                                     decode_max=40, prefill_runs=2, prefill_warmup=1, decode_runs=2, decode_warmup=0, attention=attention),
                         str(tmp_path / f"{name}.parquet"))
        assert keys(made) == keys(direct)  # every cell once, as the direct profile has it
        runs = lambda t: t.set_index(["phase", "batch", "length"])["runs_ms"].map(len).sort_index().tolist()  # noqa: E731
        assert runs(made) == runs(direct)
        meta = made.attrs["sotlat"]
        assert meta.method.grid == direct.attrs["sotlat"].method.grid and meta.method.attention == attention
        assert meta.campaign.shards == 2
        assert meta.campaign.shared_cores and meta.campaign.cpu_workers == 2  # two CPU shards ran side by side
        assert meta.device.torch_threads == 1  # each on one of the two CPUs
        assert meta.progress.complete


def test_a_second_run_measures_nothing(two, monkeypatch):
    file, out, _ = two
    before = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("*.parquet")}
    monkeypatch.setattr("sotlat.campaign.run.ray_module", lambda: pytest.fail("started Ray for a finished campaign"))
    again = run_campaign(file, out)
    assert again["measured"] == 0 and len(again["tables"]) == 2
    assert {p: p.stat().st_mtime_ns for p in (out / "shards").glob("*.parquet")} == before


def test_status_counts_shards_and_cells(two):
    s = campaign_status(two[1])
    assert s["counts"] == {"done": 4} and s["left_s"] == 0
    assert [(p["name"], p["cells_done"], p["cells"], p["made"]) for p in s["profiles"]] == [
        ("tiny__cpu__float32", 4 * (4 + 40), 4 * (4 + 40), True), ("tiny-eager", 2 * (4 + 40), 2 * (4 + 40), True)]
    shown = CliRunner().invoke(app, ["campaign", "status", str(two[1])])
    assert shown.exit_code == 0 and "4 done" in shown.output and "176 / 176" in shown.output


def _kill_after_first_batch(shard, cells_per_batch: int, seen: dict) -> None:
    """In a thread: when the shard's checkpoint holds a finished batch, note its cells and kill the worker."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = read_json(status_path(shard))
        if status.get("state") == "running" and cells_done(shard) >= cells_per_batch:
            seen["table"] = load_table(shard)
            os.kill(status["pid"], signal.SIGKILL)
            return
        time.sleep(0.02)


def test_a_killed_worker_is_retried_from_its_checkpoint(tmp_path):
    (tmp_path / "c.toml").write_text(GRID + 'decode_max = 400\ndecode_runs = 3\n\n[[profile]]\narch = "tiny"\nbatches = "1-4"\nshards = 1\n')
    shard = tmp_path / "out" / "shards" / "tiny__cpu__float32__b1-4.parquet"
    seen: dict = {}
    killer = threading.Thread(target=_kill_after_first_batch, args=(shard, 4 + 400, seen), daemon=True)
    killer.start()
    done = run_campaign(tmp_path / "c.toml", tmp_path / "out", ray_init=RAY)
    killer.join()
    assert "table" in seen, "the shard finished before a checkpoint could be seen"
    assert read_json(status_path(shard))["attempt"] == 2
    table = load_table(tmp_path / "out" / "tiny__cpu__float32.parquet")
    assert len(table) == len(set(zip(table["phase"], table["batch"], table["length"]))) == 4 * (4 + 400)
    assert (table["status"] == "ok").all() and table.attrs["sotlat"].campaign.shared_cores is False
    assert table.attrs["sotlat"].device.torch_threads == 2  # one worker holds both CPUs
    saved = seen["table"][seen["table"]["status"] == "ok"].set_index(["phase", "batch", "length"])["runs_ms"]
    now = table.set_index(["phase", "batch", "length"])["runs_ms"].loc[saved.index]
    assert len(saved) >= 4 + 400 and all(list(a) == list(b) for a, b in zip(saved, now))  # checkpointed cells not measured again
    assert done["tables"] == [str(tmp_path / "out" / "tiny__cpu__float32.parquet")]


def test_ctrl_c_keeps_the_checkpoints_and_a_second_run_continues(tmp_path):
    (tmp_path / "c.toml").write_text(GRID + 'decode_max = 300\ndecode_runs = 2\n\n[[profile]]\narch = "tiny"\nbatches = "1-3"\nshards = 1\n')
    shard = tmp_path / "out" / "shards" / "tiny__cpu__float32__b1-3.parquet"

    def interrupt(shards_done, shards_total, cells, total):
        if cells >= 4 + 300:  # a batch checkpointed
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="cells saved under"):
        run_campaign(tmp_path / "c.toml", tmp_path / "out", progress=interrupt, ray_init=RAY)
    first = load_table(shard)
    assert read_json(status_path(shard))["state"] == "interrupted" and cells_done(shard) >= 4 + 300
    run_campaign(tmp_path / "c.toml", tmp_path / "out", ray_init=RAY)
    table = load_table(tmp_path / "out" / "tiny__cpu__float32.parquet")
    assert len(table) == 3 * (4 + 300) and (table["status"] == "ok").all()
    kept = first[first["status"] == "ok"].set_index(["phase", "batch", "length"])["runs_ms"]
    assert all(list(a) == list(b) for a, b in zip(kept, table.set_index(["phase", "batch", "length"])["runs_ms"].loc[kept.index]))


def test_bad_input_in_a_shard_fails_the_campaign_with_its_one_line(tmp_path):
    """A model whose weights do not fit the worker's memory passes the file's checks and fails in
    the worker, where the memory is known: no retry mends it."""
    (tmp_path / "c.toml").write_text(GRID + 'decode_max = 2\ndtype = "float16"\n\n[[profile]]\narch = "llama-33b"\nbatches = "1"\n')
    with pytest.raises(InputError, match="llama-33b: its weights take 65.1 GB in float16, more than the .* free on cpu"):
        run_campaign(tmp_path / "c.toml", tmp_path / "out", ray_init=RAY)
    status = read_json(status_path(tmp_path / "out" / "shards" / "llama-33b__cpu__float16__b1.parquet"))
    assert status["state"] == "failed" and status["attempt"] == 1


@pytest.mark.parametrize("text, line", [
    (GRID + '[[profile]]\narch = "tiny"\ndecode_max = "40"\n', 'c.toml:8: decode_max: expected int, got \'40\''),
    (GRID + '[[profile]]\narch = "tiny"\ncolour = 1\n', "c.toml:8: colour: not a campaign key"),
    (GRID + '[[profile]]\narch = "tiny"\nbatches = "0-3"\n', "c.toml:8: batches: batch sizes must be positive"),
    (GRID + '[[profile]]\narch = "tinyx"\n', "c.toml:7: arch: unknown architecture 'tinyx'"),
    (GRID + 'workers = 0\n[[profile]]\narch = "tiny"\n', "c.toml:6: workers: must be at least 1"),
    (GRID + '[[profile]]\narch = "tiny"\n[[profile]]\narch = "tiny"\n', "c.toml:8: name: 'tiny__cpu__float32' is another profile's too"),
    (GRID + '[[profile]]\narch = "tiny"\ndevice = "cuda:1"\n', "c.toml:8: device: expected cuda"),
    (GRID + '[[profile]]\narch = "tiny"\nconfig = "x.json"\n', "c.toml:7: give exactly one of arch and config"),
    (GRID + '[[profile]\narch = "tiny"\n', "c.toml:6: not valid TOML"),
    (GRID, "c.toml: no [[profile]]"),
    (GRID + '[[profile]]\narch = "llama-33b"\n', "c.toml:7: plan_gpu h100-sxm: llama-33b does not fit in its 80 GB"),
])
def test_a_bad_campaign_file_is_one_located_line(tmp_path, monkeypatch, text, line):
    (tmp_path / "c.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["campaign", "run", "c.toml", "--out", "out"])
    assert result.exit_code == 2 and result.output.startswith(f"error: {line}") and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_without_ray_the_command_says_how_to_install_it(two, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    (tmp_path / "c.toml").write_text(TWO)
    result = CliRunner().invoke(app, ["campaign", "run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "pip install 'sotlat[ray]'" in result.output
    assert run_campaign(two[0], two[1])["measured"] == 0  # a finished campaign needs no Ray


def test_shards_are_balanced_by_the_plan_cost_model():
    seconds = pd.DataFrame({"batch": range(1, 9), "total_s": [5.0, 1, 1, 1, 4, 4, 1, 3]})
    groups = balanced(seconds, 3)
    assert sum(groups, []) == list(range(1, 9)) and len(groups) <= 3
    longest = max(seconds.set_index("batch")["total_s"][g].sum() for g in groups)
    assert longest == 8.0  # [1, 2, 3, 4] [5, 6] ... : no split of consecutive batches into three does better
    assert len(shards(seconds, longest)) <= 3 and len(shards(seconds, longest - 0.5)) > 3


def test_plan_and_shard_files_follow_the_campaign(tmp_path):
    (tmp_path / "c.toml").write_text(TWO)
    campaign = read_campaign(tmp_path / "c.toml")
    assert [s.file for s in campaign.all_shards] == ["shards/tiny__cpu__float32__b1-2.parquet", "shards/tiny__cpu__float32__b3-4.parquet",
                                                     "shards/tiny-eager__b1.parquet", "shards/tiny-eager__b2.parquet"]
    assert all(s.spec.decode_max == 40 and s.spec.prefill_runs == 2 for s in campaign.all_shards)
    with pytest.raises(InputError, match="no such file"):
        read_campaign(tmp_path / "missing.toml")


def test_the_documented_example_campaign_reads(monkeypatch):
    """docs/campaigns/llama-h100.toml: every key known and valid (the cost model stubbed: it counts FLOPs for seconds per model)."""
    from pathlib import Path

    monkeypatch.setattr("sotlat.campaign.spec._seconds", lambda o, spec: pd.DataFrame({"batch": spec.batches, "total_s": [60.0] * len(spec.batches)}))
    campaign = read_campaign(Path(__file__).parents[1] / "docs" / "campaigns" / "llama-h100.toml")
    assert [p.name for p in campaign.profiles] == ["llama-7b__h100__float16", "llama-13b__h100__float16", "llama-33b__h100__float16"]
    assert {(p.gpu, p.device, p.plan_gpu) for p in campaign.profiles} == {("H100", "cuda", "h100-sxm")}
    assert all(s.spec.decode_max == 1024 and s.spec.dtype == "float16" for s in campaign.all_shards)
    assert [len(p.shards) for p in campaign.profiles] == [2, 2, 2]  # 16 planned minutes per profile, shards of 9
