"""The profile loop: fill a latency table cell by cell, saving atomically as it goes.

Order: for each batch B, its prefill cells (B, l), then its decode sweeps. A decode sweep
prefills one token and then runs `decode_max` single-token steps, each step timed on its own
(no host sync inside a sweep); `decode_warmup` untimed sweeps, then `decode_runs` measured ones
that give each cell (B, k) its runs. No garbage collection runs inside a timed region (`quiet`).
Finished cells and finished sweeps (saved as `unfinished` cells) are never measured again
(`--resume`); OOM cells are recorded and the cells that must OOM too (larger batches at that
length) are recorded without trying.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from sotlat import __version__
from sotlat.errors import InputError
from sotlat.interrupts import Interrupted, sigterm_as_keyboard_interrupt
from sotlat.progress import Tracker
from sotlat.models.dtypes import torch_dtype
from sotlat.models.archs import arch_meta, check_attention, build_model, check_positions, check_weights_fit, load_config, meta_model
from sotlat.models.device import describe_device, host_load
from sotlat.models.flops import FlopsFit, fit_flops
from sotlat.profiler.backend import FORWARD, cache_buckets, check_backend, decoder, prefiller
from sotlat.profiler.memory import memory_tracker_for
from sotlat.models.steps import decoding
from sotlat.profiler.timer import QUIET, quiet, timer_for
from sotlat.models.catalogue import figure, peak_field
from sotlat.tables.difference import first_difference, short
from sotlat.tables.grid import PrefillGrid, check_grid, check_runs
from sotlat.tables.io import empty_cells, load_table, save_table
from sotlat.tables.meta import Arch, DecodeMethod, Device, Grid, Method, PrefillMethod, Progress, TableMeta
from sotlat.tables.schema import COLUMNS
from sotlat.tables.stats import dispersion, geomean

CHECKPOINT_SECONDS = 30.0
UNFINISHED = "unfinished"  # status of a decode cell whose batch has sweeps still to run
OOM = (torch.cuda.OutOfMemoryError,)


@dataclass(frozen=True)
class ProfileSpec:
    arch: str
    device: str
    dtype: str
    batches: list[int]
    prefill_lengths: PrefillGrid
    decode_max: int = 1024
    prefill_runs: int = 7
    prefill_warmup: int = 2
    decode_runs: int = 3
    decode_warmup: int = 1
    config_path: str | None = None
    attention: str = "sdpa"
    backend: str = "eager"

    def __post_init__(self):
        check_grid(self.batches, self.prefill_lengths, self.decode_max)
        check_runs(self.prefill_runs, self.prefill_warmup)
        check_attention(self.attention)
        check_backend(self.backend, self.device)

    def method(self, timer: str, memory: str, flops: dict) -> Method:
        return Method(
            grid=Grid(tuple(self.batches), self.prefill_lengths, self.decode_max),
            prefill=PrefillMethod(self.prefill_runs, self.prefill_warmup, "geometric mean of the runs after warm-up"),
            decode=DecodeMethod(self.decode_runs, self.decode_warmup,
                                "prefill 1 token, then decode_max single-token steps, each timed between marks of its own (memory tracking outside them)",
                                "geometric mean over the measured sweeps, after `warmup` untimed sweeps over the same k"),
            timer=timer, memory=memory, flops=flops, attention=self.attention, quiet=QUIET, backend=self.backend,
            cache_buckets=cache_buckets(self.backend),
            forward=f"transformers causal LM, {self.attention} attention, {FORWARD[self.backend]}, random token ids; "
                    "prefill computes last-position logits only",
            weights="random normal(0, 0.02), no init pass", software=_software())


@dataclass
class _Sweeps:
    """The finished decode sweeps of a batch whose cells are not written yet."""

    runs: list[list[float]] = field(default_factory=list)  # one list of step times (k = 1, 2, ...) per sweep
    peaks: list[int] | None = field(default_factory=list)  # per k, the largest peak over the sweeps; None: not measured

    def add(self, times: list[float], mem: list[int] | None) -> None:
        if mem is None or self.peaks is None:
            self.peaks = None
        else:  # up to the shortest sweep: the steps past it are oom cells
            self.peaks = list(mem) if not self.runs else [max(a, b) for a, b in zip(mem, self.peaks)]
        self.runs.append(times)

    def rows(self, batch: int, steps: int, fit: FlopsFit, status: str) -> list[dict]:
        """Decode cells k = 1..steps of this batch from the sweeps' runs."""
        return [_row("decode", batch, k, [r[k - 1] for r in self.runs], None if self.peaks is None else self.peaks[k - 1],
                     fit("decode", batch, k), status) for k in range(1, steps + 1)]

    def steps(self) -> int:
        """Steps that every sweep has: a sweep cut short by OOM has fewer."""
        return min((len(r) for r in self.runs), default=0)


@dataclass
class _State:
    rows: list[dict] = field(default_factory=list)
    done: set = field(default_factory=set)  # (phase, batch, length)
    prefill_oom: dict = field(default_factory=dict)  # length -> smallest batch that ran out of memory
    decode_oom: dict = field(default_factory=dict)  # batch -> first k that ran out of memory
    sweeps: dict = field(default_factory=dict)  # batch -> _Sweeps, while its decode cells are unfinished


def _software() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import transformers

    try:
        ds = version("deepspeed")
    except PackageNotFoundError:
        ds = None
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__, "deepspeed": ds, "sotlat": __version__}


def _device_meta(spec: ProfileSpec) -> Device:
    """The device's description; for a catalogue GPU, the compute peak of the profile's dtype as
    `peak_tflops`, which `estimate` divides Eq. 4's performance by (the paper's utilization)."""
    device = describe_device(spec.device)
    return Device.from_dict({**device, "peak_tflops": figure(device.get("catalogue_id"), peak_field(spec.dtype))})


def profile(spec: ProfileSpec, out: str, resume: bool = False, progress: Tracker | None = None, model=None) -> pd.DataFrame:
    """Profile `spec` into the table file `out`; returns the table. `model` overrides the built one (tests)."""
    tracker = progress or Tracker()
    name, config = load_config(spec.arch, spec.config_path)
    dtype = torch_dtype(spec.dtype)
    memory = memory_tracker_for(spec.device)  # before the model: the CPU baseline excludes nothing of it
    timer = timer_for(spec.device)
    shapes = meta_model(config, spec.attention)  # FLOPs counted on the attention timed: eager's equal SDPA's (tested)
    longest = max(spec.prefill_lengths.lengths[-1], spec.decode_max + 1)  # decode at k writes position k + 1
    check_positions(shapes, longest, f"the grid (`prefill_lengths` up to {spec.prefill_lengths.lengths[-1]}, `decode_max` {spec.decode_max})")
    if model is None:
        check_weights_fit(name, shapes, dtype, spec.device)  # before the progress bar: the error is all the user sees
    fit = fit_flops(shapes)
    meta = TableMeta(arch=Arch(**arch_meta(name, config, shapes, dtype)), device=_device_meta(spec), dtype=spec.dtype,
                     method=spec.method(timer.name, memory.method, fit.meta()), created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     progress=Progress(complete=False, elapsed_s=0.0), host_load=host_load(spec.device))
    state = _State()
    if os.path.exists(out):
        if not resume:
            raise InputError(f"{out}: already exists; continue it with `resume`, or choose another `out`")
        earlier = load_table(out)
        previous = earlier.attrs["sotlat"]
        _check_resumable(out, previous, meta)
        meta = meta.with_(created_at=previous.created_at, **{"progress.elapsed_s": previous.progress.elapsed_s or 0.0})
        _restore(state, earlier)

    tracker.total = _work(spec, state)
    tracker.advance(0, "building the model")
    if model is None:
        model = build_model(config, spec.device, dtype, spec.attention)
    started, last_save = time.monotonic(), time.monotonic()

    def save(complete: bool = False) -> pd.DataFrame:
        rows = state.rows + [row for batch, sw in state.sweeps.items() for row in sw.rows(batch, sw.steps(), fit, UNFINISHED)]
        table = pd.DataFrame(rows, columns=COLUMNS) if rows else empty_cells()
        table.attrs["sotlat"] = meta.with_(progress=Progress(complete, round(meta.progress.elapsed_s + time.monotonic() - started, 1)),
                                           dispersion=dispersion(table))
        save_table(table, out)
        return table

    try:
        with sigterm_as_keyboard_interrupt():
            for batch in spec.batches:
                for length in spec.prefill_lengths.lengths:
                    if ("prefill", batch, length) not in state.done:
                        _prefill_cell(model, spec, config.vocab_size, batch, length, timer, memory, fit, state)
                        tracker.advance(spec.prefill_runs, f"prefill B={batch} l={length}")
                    if time.monotonic() - last_save >= CHECKPOINT_SECONDS:
                        save()
                        last_save = time.monotonic()
                if ("decode", batch, spec.decode_max) not in state.done:
                    _decode_cells(model, spec, config.vocab_size, batch, timer, memory, fit, state, tracker, save)
                    save()
                    last_save = time.monotonic()
    except KeyboardInterrupt:
        save()
        sweeps = sum(len(sw.runs) for sw in state.sweeps.values())
        kept = f"{len(state.rows)} cells" + (f" and {sweeps} finished decode sweep{'s' * (sweeps > 1)} of an unfinished batch" if sweeps else "")
        raise Interrupted(f"interrupted: {kept} saved to {out}; continue with `resume`") from None
    return save(complete=True)


def _check_resumable(out: str, old: TableMeta, new: TableMeta) -> None:
    """A resume must continue the same profile: same architecture, device, dtype and method."""
    checks = [("arch", old.arch.identity(), new.arch.identity()), ("device", old.device.name, new.device.name),
              ("dtype", old.dtype, new.dtype), ("method", old.to_dict()["method"], new.to_dict()["method"])]
    for what, was, now in checks:
        path, was, now = first_difference(what, was, now)
        if path:
            raise InputError(f"{out}: cannot resume: {path} differs from the file's ({short(was)} in the file, {short(now)} now)")


def _restore(state: _State, table: pd.DataFrame) -> None:
    unfinished = table[table["status"] == UNFINISHED].sort_values(["batch", "length"])
    for batch, part in unfinished.groupby("batch"):
        runs = np.array(part["runs_ms"].map(list).tolist())  # [k, sweep]
        peaks = None if part["peak_memory_bytes"].isna().any() else [int(p) for p in part["peak_memory_bytes"]]
        state.sweeps[int(batch)] = _Sweeps([list(sweep) for sweep in runs.T], peaks)
        if len(part) < table.attrs["sotlat"].method.grid.decode_max:  # a sweep ran out of memory there
            state.decode_oom[int(batch)] = len(part) + 1
    for row in table[table["status"] != UNFINISHED].to_dict("records"):
        row["runs_ms"] = list(row["runs_ms"]) if row["runs_ms"] is not None else []
        state.rows.append(row)
        state.done.add((row["phase"], row["batch"], row["length"]))
        if row["status"] == "oom" and row["phase"] == "prefill":
            state.prefill_oom[row["length"]] = min(row["batch"], state.prefill_oom.get(row["length"], row["batch"]))
        if row["status"] == "oom" and row["phase"] == "decode":
            state.decode_oom[row["batch"]] = min(row["length"], state.decode_oom.get(row["batch"], row["length"]))


def _work(spec: ProfileSpec, state: _State) -> int:
    """Forward passes still to run, for the progress bar's ETA."""
    prefill_cells = sum(("prefill", b, n) not in state.done for b in spec.batches for n in spec.prefill_lengths.lengths)
    decode_sweeps = sum(spec.decode_warmup + spec.decode_runs - len(state.sweeps.get(b, _Sweeps()).runs)
                        for b in spec.batches if ("decode", b, spec.decode_max) not in state.done)
    return prefill_cells * spec.prefill_runs + decode_sweeps * spec.decode_max


def _row(phase, batch, length, runs, memory, flops, status="ok") -> dict:
    return {
        "phase": phase,
        "batch": batch,
        "length": length,
        "latency_ms": geomean(runs) if status == "ok" else None,
        "runs_ms": [float(r) for r in runs],
        "peak_memory_bytes": memory,
        "flops": float(flops),
        "status": status,
    }


def _free(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _prefill_cell(model, spec, vocab, batch, length, timer, memory, fit: FlopsFit, state: _State) -> None:
    """`prefill_runs` forward passes on fresh random prompts; the first `prefill_warmup` are dropped."""
    key = ("prefill", batch, length)
    flops = fit("prefill", batch, length)
    smaller_oom = state.prefill_oom.get(length)
    if smaller_oom is not None and smaller_oom < batch:
        state.rows.append(_row(*key, [], None, flops, "oom"))
        state.done.add(key)
        return
    try:
        prompts = list(torch.randint(vocab, (spec.prefill_runs, batch, length), device=spec.device))  # sliced before the marks
        runner = prefiller(spec.backend, model, batch, length)
        with quiet(), memory:
            marks = []
            for ids in prompts:
                runner.load(ids)
                marks.append(timer.mark())
                runner.run()
                marks.append(timer.mark())
        runs = _step_times(timer, marks)[spec.prefill_warmup :]
        state.rows.append(_row(*key, runs, memory.peak_bytes, flops))
    except OOM:
        state.prefill_oom[length] = batch
        state.rows.append(_row(*key, [], None, flops, "oom"))
        _free(spec.device)
    state.done.add(key)


def _decode_cells(model, spec, vocab, batch, timer, memory, fit: FlopsFit, state: _State, progress: Tracker, checkpoint) -> None:
    """`decode_warmup` untimed sweeps, then `decode_runs` measured sweeps of k = 1..decode_max, saved
    after each (`checkpoint`) as unfinished cells; cells from a sweep's first OOM on are `oom`. The
    warm-ups run again on a resume: what they warm (kernels and plans chosen per shape, the
    allocator's pool) lives in the process, not in the file."""
    limit = min([spec.decode_max + 1] + [k for b, k in state.decode_oom.items() if b <= batch]) - 1
    sweeps = state.sweeps.setdefault(batch, _Sweeps())

    def sweep() -> tuple[list[float], list[int] | None]:
        nonlocal limit
        times, mem, stopped_at = decode_sweep(model, spec.device, vocab, batch, limit, timer, memory, spec.backend)
        if stopped_at is not None:
            state.decode_oom[batch] = stopped_at
            limit = stopped_at - 1
        return times, mem

    for _ in range(spec.decode_warmup):
        sweep()
        progress.advance(spec.decode_max, f"decode B={batch} warm-up")
    while len(sweeps.runs) < spec.decode_runs:
        sweeps.add(*sweep())
        progress.advance(spec.decode_max, f"decode B={batch}")
        if len(sweeps.runs) < spec.decode_runs:
            checkpoint()
    del state.sweeps[batch]
    state.rows += sweeps.rows(batch, limit, fit, "ok")
    state.rows += [_row("decode", batch, k, [], None, fit("decode", batch, k), "oom") for k in range(limit + 1, spec.decode_max + 1)]
    state.done.update(("decode", batch, k) for k in range(1, spec.decode_max + 1))


def decode_sweep(model, device, vocab, batch, steps, timer, memory, backend: str = "eager"):
    """One sweep: times and peak memory of steps k = 1..steps; the k of an OOM, if any.

    Each step is timed between a mark of its own before and after it; the memory tracker's work,
    the step's tokens put in place and, for a static backend, a bucket refilled or a graph captured
    (`load`) lie between one step's end and the next one's start, so they are not in the step's time."""
    if steps < 1:
        return [], None, None
    ids = torch.randint(vocab, (batch, steps + 1), device=device)
    peaks, marks = [], []
    with quiet():
        try:
            runner = decoder(backend, model, ids)
            with decoding(model):
                for k in range(1, steps + 1):
                    runner.load(k)
                    with memory:
                        marks.append(timer.mark())
                        runner.run()
                        marks.append(timer.mark())
                    peaks.append(memory.peak_bytes)
        except OOM:
            runner = None
            _free(device)
            times = _step_times(timer, marks)
            return times, (None if None in peaks else peaks), len(times) + 1
    return _step_times(timer, marks), (None if None in peaks else peaks), None


def _step_times(timer, marks: list) -> list[float]:
    """Each step's time from its (start, end) marks; the start of a step that ran out of memory is dropped."""
    pairs = marks[: len(marks) // 2 * 2]
    return timer.intervals_ms(pairs)[::2] if pairs else []
