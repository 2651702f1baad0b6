"""Trustworthy decode tables: untimed warm-up sweeps, no garbage collection inside timed regions,
and the dispersion of the runs recorded as data (docs/method.md, "Warm-up and quiet timing")."""

import gc
import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import edit, synthetic_table

from sotlat.cli import app
from sotlat.errors import InputError
from sotlat.interrupts import Interrupted
from sotlat.profiler import run as run_mod
from sotlat.models.archs import build_model, load_config
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.profiler.timer import quiet
from sotlat.tables import PrefillGrid, load_table, save_table
from sotlat.tables.meta import DecodeDispersion, DecodeMethod, Dispersion, PhaseDispersion
from sotlat.tables.stats import dispersion, dispersion_warning

SPEC = ProfileSpec(arch="tiny", device="cpu", dtype="float32", batches=[1, 2], prefill_lengths=PrefillGrid(1, 30, 10),
                   decode_max=8, prefill_runs=3, prefill_warmup=1, decode_runs=2, decode_warmup=1)
COLD_MS, WARM_MS = 50.0, 1.0


class Clock:
    """A fake device clock: each forward pass advances it, by COLD_MS the first time a (batch, cache
    length) shape is seen in the process and by WARM_MS after, as the H200's first decode sweep was
    slower (docs/method.md). It logs marks and passes, and whether the collector was on in each pass."""

    def __init__(self):
        self.now, self.seen, self.log, self.gc_on = 0.0, set(), [], []

    def forward(self, shape) -> None:
        self.now += WARM_MS if shape in self.seen else COLD_MS
        self.seen.add(shape)
        self.log.append("pass")
        self.gc_on.append(gc.isenabled())


class FakeTimer:
    name = "fake"

    def __init__(self, clock: Clock):
        self.clock = clock

    def mark(self) -> float:
        self.clock.log.append("mark")
        return self.clock.now

    def intervals_ms(self, marks):
        return [b - a for a, b in zip(marks, marks[1:])]


class Model(torch.nn.Module):
    """The tiny model on the fake clock; raises what `fail(kind, batch, length)` returns, if anything."""

    def __init__(self, clock: Clock, fail=lambda kind, b, n: None):
        super().__init__()
        self.inner = build_model(load_config("tiny")[1], "cpu", torch.float32)
        self.clock, self.fail, self.calls = clock, fail, []

    def forward(self, input_ids, past_key_values=None, **kwargs):
        b, n = input_ids.shape
        key = ("decode", b, past_key_values.get_seq_length()) if past_key_values is not None else ("prefill", b, n)
        self.calls.append(key)
        if error := self.fail(*key):
            raise error
        self.clock.forward(key)
        return self.inner(input_ids=input_ids, past_key_values=past_key_values, **kwargs)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(run_mod, "timer_for", lambda device: FakeTimer(clock))
    return clock


def _decode_runs(table):
    dec = table[table.phase == "decode"]
    return [r for runs in dec.runs_ms for r in runs]


@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_only_the_sweeps_after_the_warm_up_are_measured(tmp_path, clock, warmup):
    spec = ProfileSpec(**{**SPEC.__dict__, "decode_warmup": warmup})
    model = Model(clock)
    table = profile(spec, str(tmp_path / "t.parquet"), model=model)
    runs = _decode_runs(table)
    assert all(len(r) == 2 for r in table[table.phase == "decode"].runs_ms)  # decode_runs measured sweeps, whatever the warm-up
    if warmup:
        assert runs and all(r == WARM_MS for r in runs)  # the cold sweep was a warm-up, untimed
    else:
        assert sorted(set(runs)) == [WARM_MS, COLD_MS]  # the paper's literal method: the cold first sweep is in the table
    sweeps = [c for c in model.calls if c[0] == "decode" and c[2] == 1]  # each sweep's first step
    assert len(sweeps) == len(spec.batches) * (warmup + spec.decode_runs)
    meta = table.attrs["sotlat"].method
    assert meta.decode.warmup == warmup and "off inside it" in meta.quiet


def test_nothing_but_one_forward_pass_lies_between_two_marks(tmp_path, clock):
    profile(SPEC, str(tmp_path / "t.parquet"), model=Model(clock))
    log = "".join("m" if e == "mark" else "p" for e in clock.log)
    # per batch: 3 prefill cells of 3 passes, each between marks of its own (m p m); then 1 warm-up and 2
    # measured sweeps, each an unmarked 1-token prefill and 8 steps each between marks of its own (m p m)
    assert re.fullmatch(r"(((mpm){3}){3}(p(mpm){8}){3}){2}", log), log


def test_no_garbage_collection_inside_timed_regions_and_the_collector_is_restored(tmp_path, clock):
    assert gc.isenabled()
    profile(SPEC, str(tmp_path / "t.parquet"), model=Model(clock))
    assert clock.gc_on and not any(clock.gc_on)  # every timed pass, and the warm-up sweeps too, ran with the collector off
    assert gc.isenabled()


@pytest.mark.parametrize("where", [("prefill", 2, 11), ("decode", 1, 5)])
@pytest.mark.parametrize("error", [KeyboardInterrupt, torch.cuda.OutOfMemoryError])
def test_the_collector_is_back_on_after_an_interrupt_or_an_oom(tmp_path, clock, error, where):
    """Ctrl-C (SIGTERM arrives as the same KeyboardInterrupt) or an OOM inside a prefill cell or a decode sweep."""
    fail = lambda *key: error("fake") if key == where else None  # noqa: E731
    if error is KeyboardInterrupt:
        with pytest.raises(Interrupted):
            profile(SPEC, str(tmp_path / "t.parquet"), model=Model(clock, fail))
    else:
        table = profile(SPEC, str(tmp_path / "t.parquet"), model=Model(clock, fail))
        assert (table[table.status == "oom"].phase == where[0]).any()
    assert clock.gc_on and not any(clock.gc_on) and gc.isenabled()


def test_quiet_leaves_a_disabled_collector_disabled():
    gc.disable()
    try:
        with quiet():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_dispersion_round_trips_in_the_metadata(tmp_path, clock):
    out = tmp_path / "t.parquet"
    profile(ProfileSpec(**{**SPEC.__dict__, "decode_warmup": 0}), str(out), model=Model(clock))
    table = load_table(out)
    recorded = table.attrs["sotlat"].dispersion
    assert recorded == dispersion(table)
    medians = recorded.decode.sweep_medians_ms
    assert set(medians) == {"1", "2"} and all(m == [COLD_MS, WARM_MS] for m in medians.values())  # the cold first sweep, seen
    assert recorded.decode.sweep_spread == pytest.approx(COLD_MS / WARM_MS - 1)
    assert recorded.decode.cells == 2 * 8 and recorded.prefill.cells == 2 * 3
    assert recorded.prefill.median_cv == recorded.prefill.p90_cv == 0.0  # the prefill warm-up pass took the cold one


def test_a_resume_with_another_warm_up_is_refused(tmp_path, clock):
    out = tmp_path / "t.parquet"
    profile(SPEC, str(out), model=Model(clock))
    with pytest.raises(InputError, match=r"cannot resume: method.decode.warmup differs from the file.s \(1 in the file, 2 now\)"):
        profile(ProfileSpec(**{**SPEC.__dict__, "decode_warmup": 2}), str(out), resume=True)


def test_a_resume_warms_up_again_before_the_sweeps_still_to_run(tmp_path, clock):
    out = tmp_path / "t.parquet"
    # batch 1: 3 prefill cells x 3 passes, then warm-up + 2 sweeps x (1 + 8); batch 2: its prefill, warm-up, one sweep, 2 steps into the next
    stop = 9 + 27 + 9 + 9 + 9 + 3

    def fail(kind, b, n):
        return KeyboardInterrupt() if len(first.calls) == stop else None

    first = Model(clock, fail)
    with pytest.raises(Interrupted, match="1 finished decode sweep of an unfinished batch"):
        profile(SPEC, str(out), model=first)
    second = Model(clock)
    table = profile(SPEC, str(out), resume=True, model=second)
    assert second.calls.count(("prefill", 2, 1)) == 2  # a warm-up sweep again (the process is new), then the sweep still to run
    assert all(len(r) == 2 for r in table[table.phase == "decode"].runs_ms)


def test_plan_counts_the_warm_up_sweeps():
    args = ["plan", "--gpu", "h100-sxm", "--arch", "tiny", "--batches", "1,2", "--prefill-lengths", "1:50:10", "--decode-max", "256", "--json"]
    plans = {w: json.loads(CliRunner().invoke(app, [*args, "--decode-warmup", str(w)]).output) for w in (0, 2)}
    for none, two in zip(plans[0]["per_batch"], plans[2]["per_batch"]):
        assert two["decode_s"] == pytest.approx(none["decode_s"] * (3 + 2) / 3) and two["prefill_s"] == none["prefill_s"]
    assert all("--decode-warmup 2" in s["command"] for s in plans[2]["shards"])


def test_a_table_from_before_warm_ups_loads_and_is_marked(tmp_path):
    from importlib import resources

    old = resources.files("sotlat") / "data" / "tables" / "tiny__cpu-amd-epyc-2c.parquet"
    table = load_table(old)
    assert table.attrs["sotlat"].method.decode.warmup is None
    result = CliRunner().invoke(app, ["tables", "show", str(old)])
    assert result.exit_code == 0, result.output
    assert "decode warm-up: none (a table from before --decode-warmup: its first, cold, sweep is among the runs)" in " ".join(result.output.split())
    assert "CV of the runs: prefill median" in result.output


def test_the_profile_summary_prints_the_dispersion(tmp_path):
    out = tmp_path / "t.parquet"
    result = CliRunner().invoke(app, ["profile", "--arch", "tiny", "--device", "cpu", "--batches", "1", "--prefill-lengths", "1:20:10",
                                      "--decode-max", "6", "--prefill-runs", "3", "--prefill-warmup", "1", "--decode-runs", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    medians = load_table(out).attrs["sotlat"].dispersion.decode.sweep_medians_ms["1"]
    assert "CV of the runs: prefill median" in text and f"B=1 {medians[0]:.2f}/{medians[1]:.2f} ms" in text
    assert "decode warm-up: 1 untimed sweep per batch" in text and "warning" not in text  # a CPU profile: figures, no warning


def _gpu_meta(cv, medians, warmup=1, gpu_busy=0.0, kind="cuda"):
    """A GPU profile's metadata whose decode runs scatter so: median CV `cv`, per-batch sweep medians `medians`."""
    table = synthetic_table(batches=(1,), prefill=(1, 20, 10), decode_max=2)
    dispersion = Dispersion(PhaseDispersion(1, 0.01, 0.02), DecodeDispersion(9, cv, cv, medians, max(max(m) / min(m) - 1 for m in medians.values())))
    return edit(table, {"device.kind": kind, "method.decode": DecodeMethod(runs=2, warmup=warmup), "dispersion": dispersion,
                        "host_load": {"gpu_busy_pct": gpu_busy, "cpu_busy_pct": 1.0}}).attrs["sotlat"]


def test_a_gpu_profile_outside_the_goals_warns_with_its_likely_cause():
    assert dispersion_warning(_gpu_meta(0.02, {"1": [34.0, 33.5]})) is None
    assert dispersion_warning(_gpu_meta(0.4, {"1": [90.0, 34.0]}, kind="cpu")) is None  # CPU: no warning
    cold = dispersion_warning(_gpu_meta(0.41, {"1": [91.8, 34.0]}, warmup=0))
    assert cold.startswith("decode median CV 41.0% (goal <= 5%) and measured sweeps' medians 170.0% apart") and "--decode-warmup 1" in cold
    assert "first measured sweep is still the slowest (B=4): raise --decode-warmup" in dispersion_warning(
        _gpu_meta(0.03, {"1": [34.0, 34.1], "4": [40.0, 34.0]}))
    assert "kept the GPU 60% busy" in dispersion_warning(_gpu_meta(0.08, {"1": [33.0, 34.0]}, gpu_busy=60))
    assert "host jitter" in dispersion_warning(_gpu_meta(0.177, {"1": [33.8, 31.9, 28.5]}))


def test_the_h200_tables_decode_dispersion_is_what_their_runs_show():
    """The measured H200 llama-13b table (no warm-up): its cold first sweep, in the figures and the warning."""
    table = load_table(Path(__file__).parents[1] / "docs" / "validation" / "h200-2026-12-04" / "llama-13b.parquet")
    d = dispersion(table)
    assert d == table.attrs["sotlat"].dispersion and d.decode.median_cv > 0.3  # 41.6% in ../shared/gpu's README
    assert all(m[0] > 2 * m[1] for m in d.decode.sweep_medians_ms.values())  # the first sweep, 2-3x slower
    assert "no warm-up sweep" in dispersion_warning(table.attrs["sotlat"])
