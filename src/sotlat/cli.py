"""The `sotlat` command line: one function per command (`sotlat --help` lists them)."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from rich.table import Table

from sotlat.errors import InputError

# No markup or emoji codes: a file 't[gpu].parquet', a '1:b:c' or a trace id 'q:smile:' is printed as
# written; colour comes from style= alone.
console = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False)  # files and pipes get whole tables
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)


# click's UsageError, whichever click typer runs on: its own copy (typer >= 0.2x) or the click package.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageErrors(TyperGroup):
    """A usage error (a missing option, a value out of its range, an unknown command or option) is
    one line on stderr and exit code 2, as every other bad input is, not typer's boxed panel."""

    def make_context(self, *args, **kwargs):  # `sotlat --bogus`
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # a command's own options and arguments, and unknown commands
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `sotlat` or `sotlat tables`: the help, as asked
            raise
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        err.print(f"error: {' '.join(exc.format_message().split())}{hint}")
        raise typer.Exit(2) from None


app = typer.Typer(help="GPU latency profiler, Skeleton-of-Thought latency estimator and analytical GPU simulator (Ning et al., 2023, App. C.2).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=_OneLineUsageErrors)
tables_app = typer.Typer(help="List, inspect, compare and merge latency tables.", no_args_is_help=True)
app.add_typer(tables_app, name="tables")

OUT_SUFFIXES = (".jsonl", ".csv", ".parquet")


def _positive(value: float | None) -> float | None:
    """A peak, bandwidth, budget or objective of 0 would divide by zero or read as 'not given'."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0, got {value:g}")
    return value


def _dtype(value: str | None) -> str | None:
    """The canonical name (fp16 and half are float16), checked before any work."""
    from sotlat.profiler.run import canonical_dtype

    if value is None:
        return None
    try:
        return canonical_dtype(value)
    except InputError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--dtype: ")) from None


# Options that several commands share: one definition and one help text each.
TableOut = Annotated[Path, typer.Option("--out", "-o", help="Table file to write (.parquet).")]
Arch = Annotated[Optional[str], typer.Option(help="llama-7b, llama-13b, llama-33b, mixtral-8x7b, smollm2-135m, smollm2-360m or tiny "
                                                   "(random weights).")]
Config = Annotated[Optional[Path], typer.Option(help="An HF config.json of a causal LM, its model folder, or a GGUF file, instead of --arch.")]
Device = Annotated[Optional[str], typer.Option(help="cuda, cuda:N or cpu (default: cuda when available).")]
Dtype = Annotated[Optional[str], typer.Option(callback=_dtype, help="float16, bfloat16 or float32 (default: float16 on GPU, float32 on CPU).")]
GpuDtype = Annotated[str, typer.Option(callback=_dtype, help="Data type of weights, activations and KV cache: float16, bfloat16 or float32.")]
Batches = Annotated[str, typer.Option(help="Batch sizes B: sizes and inclusive ranges, e.g. 1-16, 1,2,4 or 1-8,12,16.")]
PrefillLengths = Annotated[str, typer.Option(help="Prompt lengths l: START:STOP:STEP as Python's range (the paper: 1:700:10).")]
DecodeMax = Annotated[int, typer.Option(min=1, help="Decode cells k = 1..N (tokens in the cache before the step).")]
PrefillRuns = Annotated[int, typer.Option(min=1, help="Forward passes per prefill cell, warm-ups included.")]
PrefillWarmup = Annotated[int, typer.Option(min=0, help="Leading prefill passes dropped as warm-up.")]
DecodeRuns = Annotated[int, typer.Option(min=1, help="Decode sweeps: runs of every decode cell.")]
DecodeWarmup = Annotated[int, typer.Option(min=0, help="Untimed decode sweeps per batch before the measured ones (0: the paper's literal method).")]
Calibration = Annotated[str, typer.Option(help="default, hf-eager, or a file from sotlat calibrate.")]
Attention = Annotated[str, typer.Option(help="sdpa (one fused kernel, transformers' default) or eager (matmul, softmax, matmul, "
                                             "as the paper's transformers 4.28 computed attention).")]
PeakTflops = Annotated[Optional[float], typer.Option(callback=_positive, help="Compute peak in TFLOPS for the dtype (dense FP16/BF16 tensor, or FP32), instead of the catalogue's.")]
Bandwidth = Annotated[Optional[float], typer.Option(callback=_positive, help="Memory bandwidth in GB/s, instead of the catalogue's.")]
Extrapolate = Annotated[bool, typer.Option(help="Extend decode linearly in k past the table.")]
UtilizationPeak = Annotated[Optional[float], typer.Option(callback=_positive, help="Device peak TFLOPS, for utilization (default: the table's).")]
DecodeTerms = Annotated[str, typer.Option(help="Eq. 1 decode terms: printed (l_o + 1) or loop (l_o - 1).")]


def _print_version(value: bool) -> None:
    if value:
        from sotlat import __version__

        print(f"sotlat {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False):
    pass


def user_errors(func):
    """Turn InputError into one line on stderr and exit code 2; Ctrl-C into exit 130; an OSError
    (a full disk) into one line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from sotlat.interrupts import Interrupted

        try:
            return func(*args, **kwargs)
        except InputError as exc:
            err.print(f"error: {' '.join(str(exc).split())}")  # one line, whatever a library's message holds
            raise typer.Exit(2) from None
        except Interrupted as exc:
            err.print(str(exc))
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except OSError as exc:  # the system's, not the input's: stdout on a full disk, a file system gone read-only
            err.print(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
            raise typer.Exit(1) from None

    return wrapper


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<24}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("forward passes"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)


@contextlib.contextmanager
def _resumable(out: Path, what: str):
    """Ctrl-C or SIGTERM in a loop that appends one finished record per line: say what is kept and how to go on."""
    from sotlat.interrupts import Interrupted, sigterm_as_keyboard_interrupt

    try:
        with sigterm_as_keyboard_interrupt():
            yield
    except KeyboardInterrupt:
        kept = len(out.read_text(encoding="utf-8").splitlines()) if out.exists() else 0
        raise Interrupted(f"interrupted: {kept} {what} in {out}; continue with --resume") from None


def _device(device: str | None) -> str:
    """The --device option: cuda when available unless given; cuda that is not there is an error."""
    import torch

    from sotlat.profiler.device import default_device

    device = device or default_device()
    cuda = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not cuda and device != "cpu":
        raise InputError(f"--device: expected cuda, cuda:N or cpu, got {device!r}")
    if cuda and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    if cuda and cuda[1] and int(cuda[1]) >= torch.cuda.device_count():
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def _arch_or_config(arch, config) -> None:
    if (arch is None) == (config is None):
        raise InputError("give exactly one of --arch and --config")


def _check_warmup(prefill_runs: int, prefill_warmup: int) -> None:
    if prefill_warmup >= prefill_runs:
        raise InputError(f"--prefill-warmup ({prefill_warmup}) must be smaller than --prefill-runs ({prefill_runs})")


def _check_out(out: Path | None, suffixes: tuple[str, ...] = OUT_SUFFIXES, inputs=(), keeps=()) -> None:
    """Refuse, before any work is done, an --out whose suffix is not what the command writes, or whose
    writing would destroy data: one of the command's `inputs` (traces, measurements), or a measured
    table (device time to redo) other than those whose cells the output `keeps` (the shards a merge
    joins, the table `profile --resume` continues)."""
    from sotlat.tables.io import holds_measured_table

    if out is None:
        return
    if out.suffix not in suffixes:
        raise InputError(f"--out: {out}: suffix must be {' or '.join(suffixes)}")
    target = out.resolve()
    if target in {Path(f).resolve() for f in inputs}:
        raise InputError(f"--out: {out} is one of this command's inputs, and writing it would destroy it; choose another --out")
    if holds_measured_table(out) and target not in {Path(f).resolve() for f in keeps}:
        raise InputError(f"--out: {out} holds a measured latency table, and writing it would replace it; choose another --out, "
                         "or delete the file first")


def _pct(x) -> str:
    return "- (no cell has two runs)" if pd.isna(x) else f"{x:.1%}"


def _ms(x) -> str:
    return _num(x, ",.1f")


@app.command()
@user_errors
def profile(
    out: TableOut,
    arch: Arch = None,
    config: Config = None,
    device: Device = None,
    dtype: Dtype = None,
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    prefill_runs: PrefillRuns = 7,
    prefill_warmup: PrefillWarmup = 2,
    decode_runs: DecodeRuns = 3,
    decode_warmup: DecodeWarmup = 1,
    attention: Attention = "sdpa",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted profile in --out.")] = False,
):
    """Measure prefill t^P_B(l) and decode t^D_B(k) latency, peak memory and FLOPs into a table."""
    from sotlat.profiler.archs import check_attention
    from sotlat.profiler.device import default_dtype
    from sotlat.profiler.run import ProfileSpec
    from sotlat.tables.grid import parse_batches, parse_range

    _check_out(out, (".parquet",), keeps=[out])  # an existing table: refused below without --resume, continued with it
    _arch_or_config(arch, config)
    _check_warmup(prefill_runs, prefill_warmup)
    check_attention(attention)
    device = _device(device)
    spec = ProfileSpec(
        arch=arch, config_path=str(config) if config else None, device=device,
        dtype=dtype or default_dtype(device),
        batches=parse_batches(batches), prefill_lengths=parse_range(prefill_lengths), decode_max=decode_max,
        prefill_runs=prefill_runs, prefill_warmup=prefill_warmup, decode_runs=decode_runs, decode_warmup=decode_warmup, attention=attention,
    )
    _run_profile(spec, str(out), resume)


def _statuses(counts: dict) -> str:
    """Cells per status, as people read them: 'ok 2,400, oom 48'."""
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


def _run_profile(spec, out: str, resume: bool) -> pd.DataFrame:
    from sotlat.profiler.run import Progress as Tracker
    from sotlat.profiler.run import profile as run
    from sotlat.tables.stats import summary

    started, bar = time.monotonic(), _progress()
    continued = resume and Path(out).exists()  # measuring time then spans the earlier runs too
    task = bar.add_task("profiling", total=None)

    def update(done: int, total: int, what: str) -> None:  # the bar appears once the inputs have been checked
        bar.start()
        bar.update(task, completed=done, total=total, description=what)

    try:
        table = run(spec, out, resume, Tracker(update))
    finally:
        if bar.live.is_started:  # stopping a bar never shown still prints a blank line
            bar.stop()
    s = summary(table)
    _warn_if_flops_inexact(table)
    _warn_if_busy(table.attrs["sotlat"].get("host_load", {}), spec.device, "profile")
    seconds = lambda x: f"{x:,.1f} s" if x < 10 else f"{x:,.0f} s"  # noqa: E731
    measuring = f"{seconds(s['elapsed_s'])} measuring" + (" (every run of this profile together)" if continued else "")
    console.print(Text.assemble((out, "bold"), f": {s['cells']:,} cells ({_statuses(s['status'])}) in {seconds(time.monotonic() - started)}, "
                                f"{measuring}; median CV of the runs {_pct(s['median_cv'])}"))
    _print_dispersion(table.attrs["sotlat"], s["dispersion"], per_batch=False)
    _print_floor(s)
    return table


def _print_dispersion(meta: dict, d: dict, per_batch: bool) -> None:
    """Median and P90 CV of the runs per phase; the decode warm-up and the measured sweeps' medians
    (every batch's with `per_batch`, else the batch whose sweeps differ most); for a GPU profile
    outside the goals, a warning naming the likely cause."""
    from sotlat.tables.stats import decode_warmup, dispersion_warning

    phases = [f"{phase} median {_pct(d[phase]['median_cv'])}, P90 {_pct(d[phase]['p90_cv'])}" for phase in ("prefill", "decode") if d[phase]["cells"]]
    if not phases:  # a simulated table: no runs
        return
    console.print("CV of the runs: " + "; ".join(phases), highlight=False)
    warmup = decode_warmup(meta)
    line = ("decode warm-up: none (a table from before --decode-warmup: its first, cold, sweep is among the runs)" if warmup is None
            else f"decode warm-up: {warmup} untimed sweep{'s' * (warmup != 1)} per batch")
    sweeps = {b: m for b, m in d["decode"]["sweep_medians_ms"].items() if len(m) > 1}
    if sweeps:
        spread = lambda m: max(m) / min(m) - 1  # noqa: E731
        shown = sweeps if per_batch else dict([max(sweeps.items(), key=lambda item: spread(item[1]))])
        line += (f"; measured sweeps' medians{'' if per_batch else ' where they differ most'}: "
                 + ", ".join(f"B={b} {'/'.join(f'{x:.2f}' for x in m)} ms ({spread(m):.1%} apart)" for b, m in shown.items()))
    console.print(line, highlight=False, soft_wrap=True)
    if warning := dispersion_warning(meta, d):
        console.print(f"warning: {warning}", style="yellow", highlight=False, soft_wrap=True)


def _warn_if_busy(load: dict, device: str, run: str) -> None:
    """Warn where other work kept the CPUs (of a CPU run) or the GPU busy when the run started."""
    from sotlat.tables.stats import BUSY_PCT

    if device == "cpu" and load.get("cpu_busy_pct", 0) > BUSY_PCT:
        console.print(f"warning: the CPUs were {load['cpu_busy_pct']:.0f}% busy with other work when the {run} "
                      "started: CPU timings can be many times too slow", style="yellow")
    if (load.get("gpu_busy_pct") or 0) > BUSY_PCT:
        console.print(f"warning: the GPU was {load['gpu_busy_pct']:.0f}% busy with other work when the {run} started "
                      "(nvidia-smi's utilization): its timings include that work", style="yellow")


def _print_floor(s: dict) -> None:
    """The median decode step at B = 1 against the weights-read / bandwidth floor, from a table summary."""
    if s["decode_b1_median_ms"] is not None:
        floor = s["decode_floor_ms"]
        vs = f" vs the floor weights read / bandwidth {floor:.2f} ms ({s['decode_b1_median_ms'] / floor:.2f}x)" if floor else " (memory bandwidth unknown: no floor)"
        console.print(f"decode step at B=1: median {s['decode_b1_median_ms']:.2f} ms{vs}")


@app.command()
@user_errors
def flops(
    phase: Annotated[str, typer.Option(help="prefill or decode.")],
    batch: Annotated[int, typer.Option(min=1, help="Batch size B.")],
    length: Annotated[int, typer.Option(min=1, help="Prompt length l (prefill) or cached tokens k (decode).")],
    arch: Arch = None,
    config: Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
):
    """FLOPs of one forward pass (DeepSpeed's profiler on the meta device, 2 x MACs)."""
    from sotlat.profiler.archs import load_config, meta_model
    from sotlat.profiler.flops import count_flops

    if phase not in ("prefill", "decode"):
        raise InputError(f"--phase: expected prefill or decode, got {phase!r}")
    _arch_or_config(arch, config)
    name, cfg = load_config(arch, str(config) if config else None)
    value = count_flops(meta_model(cfg), phase, batch, length)
    if as_json:
        print(json.dumps({"arch": name, "phase": phase, "batch": batch, "length": length, "flops": value}))
    else:
        console.print(f"{name} {phase} B={batch} length={length}: {value:,.0f} FLOPs ({value / 1e9:.4g} GFLOP)", highlight=False)


def write_frame(frame: pd.DataFrame, out: Path) -> None:
    """Write by suffix, atomically."""
    from sotlat.atomic import atomic_path

    with atomic_path(out) as tmp:
        if out.suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True)
        elif out.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)


@app.command()
@user_errors
def estimate(
    table: Annotated[Path, typer.Option(help="Latency table (.parquet).")],
    traces: Annotated[list[Path], typer.Option(help="Trace file(s), JSONL; repeat for several.")],
    out: Annotated[Optional[Path], typer.Option(help="Per-trace estimates: .jsonl, .csv or .parquet.")] = None,
    extrapolate: Extrapolate = False,
    peak_tflops: UtilizationPeak = None,
    decode_terms: DecodeTerms = "printed",
    skip_unanswerable: Annotated[bool, typer.Option(help="Estimate the traces the table answers and list the others, instead of stopping.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries (and the traces outside the table) as JSON.")] = False,
):
    """Normal vs SoT latency and speed-up per trace (Eq. 1-4), summarised per model x category."""
    from sotlat.estimator import estimate_answerable
    from sotlat.estimator.equations import unanswered_error
    from sotlat.estimator.traces import read_records, traces_frame
    from sotlat.tables import load_table

    _check_out(out, inputs=[table, *traces])
    _given_once(traces, "--traces")
    table_frame = load_table(table)
    frame = traces_frame([r for p in traces for r in read_records(p)])  # also refuses one model's trace id twice, in one file or two
    estimates, unanswered = estimate_answerable(table_frame, frame, extrapolate, peak_tflops, decode_terms)
    if len(unanswered) and not skip_unanswerable:
        raise InputError(f"{unanswered_error(unanswered)}; --skip-unanswerable estimates the others and lists these")
    if estimates.empty:
        first = unanswered.iloc[0]
        which = "the one trace is not" if len(frame) == 1 else f"none of the {len(frame)} traces is"
        raise InputError(f"{which} inside the table (trace {first['trace']}: {first['reason']}); "
                         f"{_answering_options(frame, table_frame, 'it' if len(frame) == 1 else 'them all')}")
    if out is not None:
        write_frame(estimates, out)
    if as_json:
        print(json.dumps(_estimates_json(table_frame, estimates, unanswered, frame)))
        return
    _print_estimates(table_frame, estimates, unanswered, frame, peak_tflops)
    if out is not None:
        console.print(f"per-trace estimates: {out}")


def _estimates_json(table: pd.DataFrame, estimates: pd.DataFrame, unanswered: pd.DataFrame, traces: pd.DataFrame) -> dict:
    """What `estimate` prints, as data: the summaries, what was extrapolated, and the traces outside the table."""
    from sotlat.estimator import performance_summary, summarize
    from sotlat.estimator.traces import answering_grid
    from sotlat.tables.stats import label

    records = lambda frame: json.loads(frame.to_json(orient="records"))  # noqa: E731  NaN as null
    return {"table": label(table), "traces": len(traces), "estimated": len(estimates), "extrapolated": int(estimates["extrapolated"].sum()),
            "summary": records(summarize(estimates)), "performance": records(performance_summary(estimates)),
            "unanswered": records(unanswered[["id", "model", "reason"]]),
            "answering_grid": answering_grid(traces, table) if len(unanswered) else None}


def _print_estimates(table: pd.DataFrame, estimates: pd.DataFrame, unanswered: pd.DataFrame, traces: pd.DataFrame | None = None,
                     peak_tflops: float | None = None) -> None:
    """The summary per model x category, then what was extrapolated, what the table cannot answer,
    and, given the traces, the grid of a table (profiled or simulated) that would answer them all."""
    from sotlat.estimator import performance_summary, summarize
    from sotlat.tables.stats import label

    _print_summary(summarize(estimates), label(table))
    _print_performance(performance_summary(estimates), peak_tflops or table.attrs["sotlat"]["device"].get("peak_tflops"))
    if estimates["extrapolated"].any():
        console.print(f"{int(estimates['extrapolated'].sum())} traces use extrapolated decode latencies", style="yellow")
    if len(unanswered):
        console.print(f"{len(unanswered)} of {len(estimates) + len(unanswered)} traces are outside the table and not estimated:", style="yellow")
        for r in unanswered.head(10).itertuples():
            console.print(f"  {r.trace}: {r.reason}", highlight=False, soft_wrap=True)  # one line each, as grep wants it
        if len(unanswered) > 10:
            console.print(f"  ... and {len(unanswered) - 10} more")
    if len(unanswered) and traces is not None:
        console.print(_answering_options(traces, table, f"all {len(traces)}"), highlight=False, soft_wrap=True)


def _answering_options(traces: pd.DataFrame, table: pd.DataFrame, which: str) -> str:
    """What would answer every trace: the grid options of `profile` or `simulate` for such a table,
    or, where the table's grid already holds them, that only the missing cells stand in the way."""
    from sotlat.estimator.traces import answering_grid

    grid = answering_grid(traces, table)
    if grid is None:
        return (f"the table's grid already covers {which}; what is missing are cells with no latency in it "
                "(oom on its device, or not measured yet), which no other grid mends")
    return f"a table that answers {which} (sotlat profile or simulate): " + " ".join(f"{k} {v}" for k, v in grid.items())


def _given_once(paths: list[Path], option: str) -> None:
    """Refuse one file named twice (its rows would count twice, or be refused as duplicate ids)."""
    seen = set()
    for path in paths:
        if path.resolve() in seen:
            raise InputError(f"{option}: {path} is given twice")
        seen.add(path.resolve())


def _count(n: int, noun: str) -> str:
    """'1 trace', '80 traces'."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def _x(ratio) -> str:
    return "-" if pd.isna(ratio) else f"{ratio:.2f}x"


def _print_performance(perf: pd.DataFrame, peak: float) -> None:
    """Eq. 4 per stage and the peak memory that must fit, per model."""
    for r in perf.itertuples():
        tflops = ", ".join(f"{s} {_num(getattr(r, f'{s}_decode_tflops'), '.3g')}" for s in ("normal", "skeleton", "points"))
        util = ""
        if hasattr(r, "points_decode_utilization"):
            shares = ", ".join(_num(u, ".2%") for u in (r.normal_decode_utilization, r.skeleton_decode_utilization, r.points_decode_utilization))
            util = f" = {shares} of {peak:g}"
        console.print(f"{r.model if r.model != '-' else 'traces without a model name'}, mean over {_count(r.n, 'trace')}: decode performance (Eq. 4) {tflops} TFLOPS{util}; "
                      f"largest peak memory normal {_num(r.normal_peak_memory_bytes / 1e9, '.2f')} GB, SoT {_num(r.sot_peak_memory_bytes / 1e9, '.2f')} GB",
                      highlight=False, soft_wrap=True)


def _num(x, spec: str) -> str:
    return "-" if pd.isna(x) else format(x, spec)


def _print_summary(summary: pd.DataFrame, title: str) -> None:
    """One row per model x category; traces of one model name it in the title instead of a column."""
    one = summary["model"].nunique() == 1
    heading = f"traces of {summary['model'].iloc[0]} on {title}" if one and summary["model"].iloc[0] != "-" else title  # '-': not recorded
    t = Table(title=f"SoT vs normal: means per {'' if one else 'model x '}category - {heading}")
    for name in ("model", "category", "n", "speed-up", "median", "total", "SoT faster", "normal ms", "SoT ms", "skeleton prefill",
                 "skeleton decode", "points prefill", "points decode")[one:]:
        t.add_column(name, justify="left" if name in ("model", "category") else "right")
    for r in summary.itertuples():
        style = "bold" if r.category == "all" else None
        t.add_row(*[r.model][one:], r.category, str(r.n), _x(r.speedup), _x(r.median_speedup), _x(r.total_speedup),
                  "-" if pd.isna(r.sot_faster) else f"{r.sot_faster:.0%}",
                  _ms(r.normal_ms), _ms(r.sot_ms),
                  _ms(r.skeleton_prefill_ms), _ms(r.skeleton_decode_ms), _ms(r.points_prefill_ms), _ms(r.points_decode_ms), style=style)
    console.print(t)


@app.command()
@user_errors
def latency(
    table: Annotated[Path, typer.Option(help="Latency table (.parquet), profiled or simulated.")],
    prompt: Annotated[int, typer.Option(min=1, help="Prompt tokens l_i.")],
    output: Annotated[int, typer.Option(min=1, help="Generated tokens l_o per sequence.")],
    batches: Annotated[Optional[str], typer.Option(help="Batch sizes B, e.g. 1-16 or 1,4,16 (default: the table's).")] = None,
    extrapolate: Extrapolate = False,
    peak_tflops: UtilizationPeak = None,
    decode_terms: DecodeTerms = "printed",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
):
    """What-if for one request shape: T(l_i, l_o, B) per batch (Eq. 1), tokens/s, TFLOPS (Eq. 4), memory."""
    from sotlat.estimator.equations import DECODE_TERMS
    from sotlat.estimator.request import request_latency
    from sotlat.tables import load_table
    from sotlat.tables.grid import parse_batches
    from sotlat.tables.stats import label

    table_frame = load_table(table)
    rows = request_latency(table_frame, prompt, output, parse_batches(batches) if batches else None, extrapolate, decode_terms, peak_tflops)
    missing = rows[rows["missing"].notna()]
    if len(missing) == len(rows):
        more = {1: "", 2: " (the other batch lacks cells too)"}.get(len(rows), f" (the other {len(rows) - 1} batches lack cells too)")
        raise InputError(f"{table}: B={missing['batch'].iloc[0]} needs {missing['missing'].iloc[0]}{more}")
    if as_json:
        print(json.dumps({"table": label(table_frame), "decode_terms": decode_terms, "rows": json.loads(rows.to_json(orient="records"))}))
        return
    last = prompt + output + DECODE_TERMS[decode_terms]
    t = Table(title=f"T(l_i={prompt}, l_o={output}, B) (Eq. 1: t~^P_B({prompt}) + t^D_B(k), k = {prompt}..{last}) on {label(table_frame)}")
    util = "decode_utilization" in rows
    for c in ("B", "prefill ms", "decode ms", "total ms", "tokens/s", "decode TFLOPS") + ("of peak",) * util + ("peak memory GB",):
        t.add_column(c, justify="right")
    shown = rows[rows["missing"].isna()]
    for r in shown.itertuples():
        t.add_row(str(r.batch) + "*" * r.extrapolated, _ms(r.prefill_ms), _ms(r.decode_ms), _ms(r.latency_ms), _num(r.tokens_per_s, ",.1f"),
                  _num(r.decode_tflops, ".3g"), *([_num(r.decode_utilization, ".2%")] if util else []), _num(r.peak_memory_bytes / 1e9, ".2f"))
    console.print(t)
    if shown["extrapolated"].any():
        console.print("* decode extrapolated past the table", style="yellow")
    for r in missing.head(10).itertuples():
        console.print(f"B={r.batch} needs {r.missing}", style="yellow", highlight=False, soft_wrap=True)
    if len(missing) > 10:
        console.print(f"  ... and {len(missing) - 10} more batches")


@app.command()
@user_errors
def trace(
    out: Annotated[Path, typer.Option("--out", "-o", help="Traces file to write (.jsonl), one line per question as it finishes.")],
    questions: Annotated[str, typer.Option(help="vicuna, wizardlm, lima, or a .csv (request column; id, category optional) / .jsonl (question field; id, category optional) file.")] = "vicuna",
    model: Annotated[Optional[str], typer.Option(help="A .gguf file or a local HF model directory (default: the embedded SmolLM2-135M-Instruct).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N questions.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Most tokens generated by each call: normal answer, skeleton, each point.")] = 512,
    device: Device = None,
    resume: Annotated[bool, typer.Option(help="Skip questions already in --out.")] = False,
):
    """Run normal generation and SoT on each question with a real model; append one trace per line."""
    from sotlat import jsonl
    from sotlat.profiler.device import describe_device
    from sotlat.profiler.timer import timer_for
    from sotlat.sot.model import eos_ids, load_model
    from sotlat.sot.questions import load_questions
    from sotlat.sot.record import record_question

    _check_out(out, (".jsonl",), inputs=[questions] if questions.endswith((".csv", ".jsonl")) else [])
    todo = load_questions(questions)[:limit]
    done = jsonl.finished_keys(out, resume)
    device = _device(device)
    net, tokenizer, name = load_model(model, device)
    todo = [q for q in todo if (name, q["id"]) not in done]  # one file may hold several models' traces
    timer, eos, device_name = timer_for(device), eos_ids(net, tokenizer), describe_device(device)["name"]
    tokens, started = 0, time.monotonic()
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("questions"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("tracing", total=len(todo), rate="")
        with _resumable(out, "traces"):
            for q in todo:
                t = record_question(net, tokenizer, q, max_new_tokens, timer, eos)
                t["model"], t["device"], t["max_new_tokens"] = name, device_name, max_new_tokens
                jsonl.append(out, t)
                tokens += t["normal"]["completion_tokens"] + sum(x["completion_tokens"] for x in t.get("sot", {}).get("points", []))
                tokens += (t.get("sot") or t["sot_fallback"])["skeleton"]["completion_tokens"]
                bar.update(task, advance=1, description=q["id"], rate=f"{tokens / (time.monotonic() - started):.1f} tokens/s")
    console.print(f"{out}: {_count(len(done) + len(todo), 'trace')} ({len(done)} from before)")


@app.command()
@user_errors
def replay(
    traces: Annotated[Path, typer.Option(help="Traces whose token counts to replay (.jsonl).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Measured latencies, one line per trace (.jsonl).")],
    arch: Arch = None,
    config: Config = None,
    device: Device = None,
    dtype: Dtype = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed repetitions of each trace; the median is kept.")] = 3,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N traces.")] = None,
    table: Annotated[Optional[Path], typer.Option(help="Only traces this table answers (the one validate will use).")] = None,
    extrapolate: Annotated[bool, typer.Option(help="With --table: also the traces it answers with decode extended linearly "
                                                   "in k (validate them with --extrapolate).")] = False,
    sample: Annotated[Optional[int], typer.Option(min=1, help="A sample of N traces stratified by model and category.")] = None,
    attention: Attention = "sdpa",
    resume: Annotated[bool, typer.Option(help="Skip traces already in --out.")] = False,
):
    """Actual latency (App. C.4): replay recorded token counts with random weights, timed per stage."""
    from sotlat import jsonl
    from sotlat.estimator.traces import frame_keys, longest_context, read_records, trace_key, traces_frame, with_keys
    from sotlat.profiler.archs import build_model, check_attention, check_positions, check_weights_fit, load_config, meta_model
    from sotlat.profiler.device import default_dtype, describe_device, host_load
    from sotlat.profiler.run import torch_dtype
    from sotlat.profiler.timer import timer_for
    from sotlat.sot.replay import measured_record, replay_trace, stratified

    _check_out(out, (".jsonl",), inputs=[traces])
    _arch_or_config(arch, config)
    check_attention(attention)
    records = read_records(traces)
    frame = traces_frame(records)  # checks every trace first
    device = _device(device)
    name, cfg = load_config(arch, str(config) if config else None)
    dtype = dtype or default_dtype(device)
    if table:
        from sotlat.estimator import estimate_answerable
        from sotlat.sot.validate import SAME, mismatch
        from sotlat.tables import load_table

        table_frame = load_table(table)
        differs = mismatch(table_frame.attrs["sotlat"], name, dtype, attention)
        if differs:  # validate would refuse the replay after it ran
            field, theirs, ours = differs
            raise InputError(f"--table: {table}: {field} is {theirs!r}, this replay's is {ours!r}: {SAME}")
        answered, failed = estimate_answerable(table_frame, frame, extrapolate)
        if answered.empty:
            raise InputError(f"--table: {table}: none of the {len(frame)} traces is within it (trace {failed['trace'].iloc[0]}: "
                             f"{failed['reason'].iloc[0]})")
        console.print(f"{len(answered)} of {len(frame)} traces are within {table} ({len(failed)} are not: batch, prompt or oom)")
        frame = with_keys(frame, frame_keys(answered))
    chosen, done = set(frame_keys(stratified(frame, sample) if sample else frame)), jsonl.finished_keys(out, resume)
    todo = [t for _, t in records if trace_key(t) in chosen][:limit]
    todo = [t for t in todo if trace_key(t) not in done]
    shapes = meta_model(cfg, attention)
    check_positions(shapes, longest_context(with_keys(frame, map(trace_key, todo))), "the longest trace to replay")
    check_weights_fit(name, shapes, torch_dtype(dtype), device)
    load = host_load(device)  # before the model: this process idle
    model = build_model(cfg, device, torch_dtype(dtype), attention)
    timer, device_name = timer_for(device), describe_device(device)["name"]
    replay_trace(model, cfg.vocab_size, {"normal": {"prompt_tokens": 8, "completion_tokens": 4}}, 1, timer)  # warm-up
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TextColumn("traces"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("replaying", total=len(todo))
        with _resumable(out, "measured traces"):
            for t in todo:
                measured = replay_trace(model, cfg.vocab_size, t, repeats, timer)
                jsonl.append(out, measured_record(t, measured, arch=name, device=device_name, dtype=dtype, attention=attention, repeats=repeats,
                                                        timer=timer.name))
                bar.update(task, advance=1, description=t["id"])
    console.print(f"{out}: {_count(len(done) + len(todo), 'trace')} measured ({len(done)} from before)")
    _warn_if_busy(load, device, "replay")


@app.command()
@user_errors
def validate(
    table: Annotated[Path, typer.Option(help="Latency table of the replayed architecture and device.")],
    measured: Annotated[Path, typer.Option(help="The output of sotlat replay.")],
    decode_terms: DecodeTerms = "printed",
    extrapolate: Extrapolate = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Per-trace comparison: .jsonl, .csv or .parquet.")] = None,
):
    """Estimated vs measured latency and speed-up: signed and absolute % errors."""
    from sotlat.estimator.traces import read_records, traces_frame
    from sotlat.sot.validate import QUANTITIES, SAME, mismatch, validate as run
    from sotlat.tables import load_table
    from sotlat.tables.stats import label

    _check_out(out, inputs=[table, measured])
    records = read_records(measured)
    traces = traces_frame(records)
    table_frame = load_table(table)
    meta = table_frame.attrs["sotlat"]
    rows, devices = [], set()
    for where, t in records:
        m = t.get("measured")
        if not isinstance(m, dict):
            raise InputError(f"{where}: measured is missing: not an output of sotlat replay")
        differs = mismatch(meta, t.get("arch"), t.get("dtype"), t.get("attention", "sdpa"))  # older replays ran sdpa
        if differs:
            field, theirs, ours = differs
            raise InputError(f"{where}: {field} is {ours!r}, the table's is {theirs!r}: {SAME}")
        devices.add(t.get("device"))
        rows.append({"id": t["id"], "model": t.get("model"), **{k: m.get(k) for k in ("normal_ms", "sot_ms", "speedup")}})
    if devices != {meta["device"]["name"]}:  # a simulated table against a real GPU is a fair question; say so
        err.print(f"note: measured on {', '.join(sorted(map(str, devices)))}; the table is of {label(table_frame)}")
    result = run(table_frame, traces, pd.DataFrame(rows), decode_terms, extrapolate)
    summary = result["summary"]
    if out is not None:
        write_frame(result["per_trace"], out)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    t = Table(title=f"estimated vs measured ({decode_terms} Eq. 1): % error, + means the estimate is higher")
    for c in ("quantity", "category", "n", "median |err|", "P90 |err|", "max |err|", "median signed"):
        t.add_column(c, justify="left" if c in ("quantity", "category") else "right")
    groups = [("all", summary)] + sorted(summary["by_category"].items())
    for q in QUANTITIES:
        for cat, stats in groups:
            s = stats[q]
            if s["n"]:
                t.add_row(q, cat, str(s["n"]), f"{s['median_abs_pct']:.1f}%", f"{s['p90_abs_pct']:.1f}%", f"{s['max_abs_pct']:.1f}%",
                          f"{s['median_signed_pct']:+.1f}%", style="bold" if cat == "all" else None)
    console.print(t)
    readings = summary["eq1_readings_median_abs_pct"]
    console.print("Eq. 1 readings, median |error| of normal and SoT: "
                  + ", ".join(f"{k} {v:.1f}%" for k, v in readings.items()) + f"; better: {summary['better_eq1_reading']}")
    if summary["extrapolated_traces"]:
        console.print(f"{summary['extrapolated_traces']} of {len(rows)} estimates extend decode past the table (--extrapolate); "
                      "--out marks them")


@app.command()
@user_errors
def stats(
    traces: Annotated[list[Path], typer.Option(help="Trace file(s), JSONL; repeat for several.")],
    out: Annotated[Optional[Path], typer.Option(help="The per-model x category table: .jsonl, .csv or .parquet.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON, one object per model x category.")] = False,
):
    """Token-length statistics of traces per model x category (the paper's Fig. 12)."""
    from sotlat.estimator.traces import read_records, traces_frame
    from sotlat.sot.stats import per_trace, summarize_lengths

    _check_out(out, inputs=traces)
    _given_once(traces, "--traces")
    records = [r for p in traces for r in read_records(p)]
    traces_frame(records)  # checks every trace, and refuses one model's trace id twice
    table = summarize_lengths(per_trace(records))
    if out is not None:
        write_frame(table, out)
    if as_json:
        print(json.dumps({"traces": [str(p) for p in traces], "rows": json.loads(table.to_json(orient="records"))}))
        return
    one = table["model"].nunique() == 1
    source = str(traces[0]) if len(traces) == 1 else _count(len(traces), "trace file")
    model = table["model"].iloc[0]
    heading = f"{source}{f' ({model})' if one and model != '-' else ''}: mean token lengths per {'category' if one else 'model x category'} (completion tokens)"
    t = Table(title=heading)
    for c in ("model",) * (not one) + ("category", "n", "SoT fallbacks", "points", "skeleton", "skeleton at limit", "point", "longest point",
                                       "longest / mean", "SoT answer", "normal", "normal at limit"):
        t.add_column(c, justify="left" if c in ("model", "category") else "right")
    for r in table.itertuples():
        t.add_row(*(r.model,) * (not one), r.category, str(r.n), str(r.fallbacks), _num(r.points, ".1f"), _num(r.skeleton_tokens, ".0f"),
                  _num(r.skeleton_at_limit, "d"), _num(r.point_tokens, ".0f"), _num(r.longest_point_tokens, ".0f"), _num(r.point_imbalance, ".2f"),
                  _num(r.sot_answer_tokens, ".0f"), _num(r.normal_tokens, ".0f"), _num(r.normal_at_limit, "d"), style="bold" if r.category == "all" else None,
                  end_section=r.category == "all" and not one)
    console.print(t)


@app.command()
@user_errors
def gpus(as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue, sources included, as JSON.")] = False):
    """The GPU catalogue: figures the simulator uses, with unconfirmed ones marked."""
    from sotlat.simulator.catalogue import FIELDS, load_catalogue

    if as_json:
        print(json.dumps(load_catalogue()))
        return
    t = Table(title="GPU catalogue (dense FP16/BF16 tensor TFLOPS, FP32 without tensor cores; ? = unconfirmed; sources: sotlat gpus --json)")
    for c in ("id", "name", "memory GB", "bandwidth GB/s", "FP16 TFLOPS", "FP32 TFLOPS", "SMs", "L2 MB"):
        t.add_column(c, justify="left" if c in ("id", "name") else "right")
    for gid, entry in load_catalogue().items():
        cells = [("-" if entry[f]["value"] is None else f"{entry[f]['value']:g}") + ("" if entry[f]["confirmed"] else " ?") for f in FIELDS]
        t.add_row(gid, entry["name"], *cells)
    console.print(t)


@app.command()
@user_errors
def simulate(
    gpu: Annotated[str, typer.Option(help="A catalogue id (sotlat gpus).")],
    out: TableOut,
    arch: Arch = None,
    config: Config = None,
    dtype: GpuDtype = "float16",
    calibration: Calibration = "default",
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """Write a latency table for a GPU from the analytical model (same format as profile)."""
    from sotlat.tables import save_table

    _check_out(out, (".parquet",))
    spec, table = _simulated(gpu, arch, config, dtype, calibration, batches, prefill_lengths, decode_max, peak_tflops, bandwidth_gbps)
    save_table(table, out)
    oom = int((table["status"] == "oom").sum())
    console.print(f"{out}: {len(table):,} simulated cells for {table.attrs['sotlat']['arch']['name']} on {spec['name']}"
                  + (f" ({oom:,} over the GPU's memory: oom)" if oom else "")
                  + (f"; it rests on unconfirmed catalogue figures: {', '.join(spec['unconfirmed'])}" if spec["unconfirmed"] else ""))
    if too_big := _does_not_fit(spec, table):
        console.print(f"warning: {too_big}", style="yellow", highlight=False)
    _warn_if_flops_inexact(table)


def _warn_if_flops_inexact(table: pd.DataFrame) -> None:
    """Warn where a table's FLOPs, filled from counted cells, are not exact for its architecture."""
    flops = table.attrs["sotlat"]["method"]["flops"]
    if not flops.get("exact", True):
        pct = 100 * flops["held_out_max_rel_error"]
        off = f"{pct:.1f}%" if pct >= 0.1 else f"{pct:.1g}%"  # a small error still shows a digit, not 0.0%
        what = ("the flops column, Eq. 4's TFLOPS and the simulated compute time" if table.attrs["sotlat"]["method"].get("simulated")
                else "the flops column and Eq. 4's TFLOPS")
        console.print(f"warning: this architecture's FLOPs are not the polynomial filled from counted cells (held-out cells "
                      f"off by up to {off}): {what} are approximate", style="yellow")


def _does_not_fit(spec: dict, table: pd.DataFrame) -> str | None:
    """Why a simulated table has no latency at all, when its model does not fit the GPU."""
    if not (table["status"] == "oom").all():
        return None
    return (f"--gpu {spec['id']}: {table.attrs['sotlat']['arch']['name']} does not fit in its {spec['memory_gb']:g} GB: the smallest cell "
            f"needs {table['peak_memory_bytes'].min() / 1e9:.1f} GB, so every cell is oom")


def _simulated(gpu, arch, config, dtype, calibration, batches, prefill_lengths, decode_max, peak_tflops, bandwidth_gbps):
    """The catalogue entry and the simulated table of `simulate` and `plan`."""
    from sotlat.simulator.catalogue import gpu_spec
    from sotlat.simulator.model import load_calibration
    from sotlat.simulator.simulate import simulate as run
    from sotlat.tables.grid import parse_batches, parse_range

    _arch_or_config(arch, config)
    spec = gpu_spec(gpu, dtype, peak_tflops, bandwidth_gbps)
    cal, grid = load_calibration(calibration), (parse_batches(batches), parse_range(prefill_lengths), decode_max)
    if cal.converted_from:
        console.print(f"note: --calibration {calibration}: written for the simulator's model {cal.converted_from}; converted to model 2 "
                      "(efficiencies from its MFU, host time per layer from its overhead, no floors): refit it with sotlat calibrate",
                      style="yellow", highlight=False, soft_wrap=True)
    # seconds for llama-33b, minutes for a Mamba hybrid, whose reference scan runs token by token
    with console.status(f"simulating {arch or config} on {spec['id']}: counting its FLOPs on the meta device"):
        return spec, run(arch, str(config) if config else None, spec, cal, dtype, *grid)


@app.command()
@user_errors
def plan(
    gpu: Annotated[str, typer.Option(help="The GPU to be profiled: a catalogue id (sotlat gpus).")],
    arch: Arch = None,
    config: Config = None,
    dtype: GpuDtype = "float16",
    calibration: Calibration = "hf-eager",
    batches: Batches = "1-16",
    prefill_lengths: PrefillLengths = "1:700:10",
    decode_max: DecodeMax = 1024,
    prefill_runs: PrefillRuns = 7,
    prefill_warmup: PrefillWarmup = 2,
    decode_runs: DecodeRuns = 3,
    decode_warmup: DecodeWarmup = 1,
    shard_minutes: Annotated[float, typer.Option(min=0.1, help="Time limit of one command: group batches into shards within it.")] = 9.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan (per-batch seconds, shards and their commands) as JSON.")] = False,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """How long `profile` will take on a GPU (simulated, hf-eager by default), and batch shards that fit a time limit."""
    from sotlat.simulator.plan import profile_seconds, shards
    from sotlat.tables.grid import format_batches

    _check_warmup(prefill_runs, prefill_warmup)
    spec, table = _simulated(gpu, arch, config, dtype, calibration, batches, prefill_lengths, decode_max, peak_tflops, bandwidth_gbps)
    name = table.attrs["sotlat"]["arch"]["name"]
    if too_big := _does_not_fit(spec, table):
        raise InputError(f"{too_big}; nothing to plan")
    seconds = profile_seconds(table, prefill_runs, decode_runs, decode_warmup)
    cal = table.attrs["sotlat"]["method"]["calibration"]["name"]
    oom = int((table["status"] == "oom").sum())
    command = (f"sotlat profile {f'--arch {arch}' if arch else f'--config {shlex.quote(str(config))}'} --dtype {dtype} --prefill-lengths {prefill_lengths} "
               f"--decode-max {decode_max} --prefill-runs {prefill_runs} --prefill-warmup {prefill_warmup} --decode-runs {decode_runs} "
               f"--decode-warmup {decode_warmup}")
    planned = []
    for group in shards(seconds, shard_minutes * 60):
        batches_text = format_batches(group)
        planned.append({"batches": batches_text, "seconds": float(seconds.loc[seconds["batch"].isin(group), "total_s"].sum()),
                        "out": f"{name}__b{batches_text.replace(',', '_')}.parquet"})
        planned[-1]["command"] = f"{command} --batches {batches_text} --out {shlex.quote(planned[-1]['out'])} --resume"
    merge = (f"sotlat tables merge {' '.join(shlex.quote(s['out']) for s in planned)} -o {shlex.quote(name + '.parquet')}"
             if len(planned) > 1 else None)
    if as_json:
        print(json.dumps({"gpu": spec["id"], "arch": name, "dtype": dtype, "calibration": cal, "total_s": float(seconds["total_s"].sum()),
                          "oom_cells": oom, "per_batch": json.loads(seconds.to_json(orient="records")), "shard_limit_s": shard_minutes * 60,
                          "shards": planned, "merge": merge}))
        return
    console.print(f"profiling {name} ({dtype}) on {spec['name']}, simulated with the {cal} calibration:")
    view = Table()
    for col in ("batch", "prefill", "decode", "total"):
        view.add_column(col, justify="right")
    for row in seconds.itertuples():
        view.add_row(str(row.batch), _duration(row.prefill_s), _duration(row.decode_s), _duration(row.total_s))
    console.print(view)
    console.print(f"total {_duration(seconds['total_s'].sum())} of forward passes (model build not included)"
                  + (f"; {oom} cells over the GPU's memory (oom)" if oom else ""))
    console.print(f"shards of at most {_duration(shard_minutes * 60)}, one command each:")
    for shard in planned:
        console.print(f"  {shard['command']}   # ~{_duration(shard['seconds'])}"
                      + ("; over the limit: --resume continues it" if shard["seconds"] > shard_minutes * 60 else ""), highlight=False, soft_wrap=True)
    if merge:
        console.print(f"then merge the shards into one table:\n  {merge}", highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


@app.command()
@user_errors
def calibrate(
    table: Annotated[Path, typer.Option(help="A measured latency table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (.json).")],
    gpu: Annotated[Optional[str], typer.Option(help="Catalogue id of the table's device, for its peak and bandwidth.")] = None,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
):
    """Fit the simulator's model 2 (host launches, GEMM and attention efficiency, MBU, floors) to a measured table; print the fit's errors."""
    from sotlat.atomic import atomic_path
    from sotlat.simulator.calibrate import calibrate as run
    from sotlat.simulator.calibrate import device_figures
    from sotlat.tables import load_table

    _check_out(out, (".json",))
    measured = load_table(table)
    try:
        peak_tflops, bandwidth_gbps, note = device_figures(measured, gpu, peak_tflops, bandwidth_gbps)
        cal, errors = run(measured, peak_tflops, bandwidth_gbps, out.stem)
    except InputError as exc:
        raise InputError(f"{table}: {exc}") from None
    if note:  # fitted against another device's figures: said, then done as asked
        err.print(f"note: {table}: {note}")
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({**cal.as_dict(), "fit_errors": errors}, indent=1) + "\n")
    _print_calibration(cal, errors)
    console.print(f"{out}: workspace {cal.workspace_bytes / 1e6:,.0f} MB")
    given = {"faster_than_peak_cells": f"peak {peak_tflops:g} TFLOPS (--peak-tflops)", "faster_than_bandwidth_cells": f"bandwidth {bandwidth_gbps:g} GB/s (--bandwidth-gbps)"}
    for phase in ("prefill", "decode"):
        for key, figure in given.items():
            if errors[phase][key]:
                console.print(f"warning: {_count(errors[phase][key], f'{phase} cell')} ran faster than the {figure} allows: "
                              "that figure is too low for this device", style="yellow", highlight=False)


def _print_calibration(cal, errors: dict) -> None:
    """Per phase the fitted parameters, those the cells do not show marked with where their value came from, and the fit's errors."""
    for phase in ("prefill", "decode"):
        p, e = getattr(cal, phase), errors[phase]
        held = lambda name: f" ({e['unidentified'][name]})" if name in e["unidentified"] else ""  # noqa: E731
        console.print(f"{phase:<8} host {p.launch_ms:.3f} ms/layer{held('launch_ms')}, tail {p.tail_ms:.3f} ms{held('tail_ms')}; "
                      f"GEMM efficiency {p.gemm_efficiency:.3f}{held('gemm_efficiency')}, half at {p.gemm_half_tokens:,.0f} tokens{held('gemm_half_tokens')}; "
                      f"attention {p.attention_efficiency:.3f}{held('attention_efficiency')}; MBU {p.mbu:.3f}{held('mbu')}; "
                      f"floors {p.kernel_floor_ms * 1e3:.1f} us/kernel{held('kernel_floor_ms')}, {p.elementwise_floor_ms * 1e3:.1f} us/layer{held('elementwise_floor_ms')}",
                      highlight=False, soft_wrap=True)
        console.print(f"{'':<8} fit over {e['n']} cells ({e['host_bound_cells']:,} host-bound, {e['gpu_bound_cells']:,} GPU-bound): "
                      f"median |error| {e['median_abs_pct']:.1f}%, P90 {e['p90_abs_pct']:.1f}%", highlight=False)
    if any(errors[phase]["unidentified"] for phase in errors):
        console.print("(in brackets: barely shown by the cells, so near the prior's value or the other phase's fit; docs/simulator.md)", highlight=False)


@app.command("cross-model")
@user_errors
def cross_model(
    table: Annotated[Path, typer.Argument(help="A measured table of one model.")],
    other: Annotated[Path, typer.Argument(help="A measured table of another model on the same device.")],
    gpu: Annotated[Optional[str], typer.Option(help="Catalogue id of the tables' device, for its peak and bandwidth.")] = None,
    peak_tflops: PeakTflops = None,
    bandwidth_gbps: Bandwidth = None,
    decode_skip_runs: Annotated[int, typer.Option(min=0, help="Leave out each decode cell's first N runs (a table measured without a decode warm-up).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print both directions as JSON.")] = False,
):
    """Calibrate on each table, predict the other model on the cells both hold: % error per phase and batch."""
    from sotlat.simulator.calibrate import device_figures
    from sotlat.simulator.crosscheck import cross_model as run
    from sotlat.simulator.crosscheck import without_first_runs
    from sotlat.tables import load_table

    _given_once([table, other], "cross-model")
    tables = [without_first_runs(load_table(t), decode_skip_runs) for t in (table, other)]
    try:
        peak_tflops, bandwidth_gbps, note = device_figures(tables[0], gpu, peak_tflops, bandwidth_gbps)
    except InputError as exc:
        raise InputError(f"{table}: {exc}") from None
    if note:
        err.print(f"note: {table}: {note}")
    directions = run(*tables, peak_tflops, bandwidth_gbps, names=(str(table), str(other)))
    if as_json:
        print(json.dumps({"peak_tflops": peak_tflops, "bandwidth_gbps": bandwidth_gbps, "decode_skip_runs": decode_skip_runs, "directions": directions}))
        return
    from sotlat.simulator.model import Calibration

    for d in directions:
        console.print(Text.assemble("calibrated on ", (d["fitted_on"], "bold"), ", predicting ", (d["predicted"], "bold"),
                                    f" (peak {peak_tflops:g} TFLOPS, bandwidth {bandwidth_gbps:g} GB/s)"))
        _print_calibration(Calibration.from_dict(d["calibration"]), d["fit_errors"])
        _print_errors(d["prediction"], f"% error of the prediction against {d['predicted']} on the cells both tables hold (positive: predicted slower)")


def _print_errors(summary: dict, title: str) -> None:
    """A `compare_summary` as a table: per phase, then per batch."""
    view = Table(title=title)
    for c in ("phase", "batch", "cells", "median |error|", "P90 |error|", "max |error|", "median signed", "median ratio"):
        view.add_column(c, justify="left" if c == "phase" else "right")
    for phase, s in summary.items():
        for batch, e in [("all", s), *s["by_batch"].items()]:
            view.add_row(phase if batch == "all" else "", str(batch), f"{e['n']:,}", f"{e['median_abs_pct']:.1f}%", f"{e['p90_abs_pct']:.1f}%",
                         f"{e['max_abs_pct']:.1f}%", f"{e['median_signed_pct']:+.1f}%", f"{1 + e['median_signed_pct'] / 100:#.3g}x",
                         style="bold" if batch == "all" else None)
    console.print(view)


@app.command()
@user_errors
def report(
    table: Annotated[list[Path], typer.Option(help="Latency table(s); several are compared in every figure.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for index.html, report.md, figures and CSVs.")],
    traces: Annotated[Optional[list[Path]], typer.Option(help="Trace file(s) to estimate on each table.")] = None,
    memory_budget_gb: Annotated[Optional[float], typer.Option(callback=_positive, help="Memory budget (default: the device's memory).")] = None,
    headroom: Annotated[float, typer.Option(min=0, max=0.9, help="Fraction of the budget kept free.")] = 0.1,
    slo_tpot_ms: Annotated[Optional[float], typer.Option(callback=_positive, help="Time per output token objective.")] = None,
    slo_ttft_ms: Annotated[Optional[float], typer.Option(callback=_positive, help="Time to first token objective.")] = None,
    context: Annotated[Optional[int], typer.Option(min=1, help="Context for throughput and TPOT (default: 256, or less where a table's decode ends sooner).")] = None,
    answer_tokens: Annotated[int, typer.Option(min=2, help="Normal answer length for the SoT what-if.")] = 400,
):
    """Write a self-contained HTML report (and report.md, figures, CSVs) from tables and traces."""
    from sotlat.report.build import build_report, untimed
    from sotlat.tables import load_table
    from sotlat.tables.stats import distinct_labels

    if out.suffix.lower() in (".html", ".htm", ".md"):
        raise InputError(f"--out: {out}: give a folder; the report writes index.html, report.md, figures and CSVs in it")
    _given_once(table, "--table")
    _given_once(traces or [], "--traces")
    frames = [load_table(t) for t in table]
    decode_ends = {file: int(f.loc[f["phase"] == "decode", "length"].max()) if (f["phase"] == "decode").any() else 0 for file, f in zip(table, frames)}
    if context is None:
        context = max(min(256, *decode_ends.values()), 1)
    for file, k_max in decode_ends.items():  # else the throughput figure is silently empty
        if context > k_max:
            raise InputError(f"--context {context}: past {file}'s decode range (k up to {k_max})")
    distinct_labels(frames, table)
    left_out = untimed(frames, table)
    if len(left_out) == len(frames):
        raise InputError("; ".join(left_out) + ": no latency to report")
    index = build_report(frames, list(traces or []), out, memory_budget_gb, headroom,
                         slo_tpot_ms, slo_ttft_ms, context, answer=answer_tokens)
    for line in left_out:
        err.print(f"note: {line}: it is left out of the latency figures")
    console.print(f"report: {index}")


@tables_app.command("show")
@user_errors
def tables_show(
    file: Path,
    cells: Annotated[int, typer.Option(min=0, help="Cells to show per phase (0: none).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata, coverage and summary as JSON.")] = False,
):
    """Metadata, grid coverage and a few cells of a table."""
    from sotlat.tables import load_table
    from sotlat.tables.grid import PrefillGrid, format_batches
    from sotlat.tables.stats import coverage, is_complete, summary

    table = load_table(file)
    meta = table.attrs["sotlat"]
    s = summary(table)
    if as_json:
        s["median_cv"] = None if pd.isna(s["median_cv"]) else s["median_cv"]
        print(json.dumps({"file": str(file), "complete": is_complete(table), "metadata": meta, "coverage": coverage(table), "summary": s}))
        return
    method = meta["method"]
    console.print(Text.assemble((str(file), "bold"), f"  schema {meta['schema_version']}, created {meta['created_at']}, "
                                f"{'complete' if is_complete(table) else 'INCOMPLETE (resume it)'}"))
    parameters, experts = meta["arch"].get("parameters"), meta["arch"].get("expert_parameters")
    moe = f", {experts:,} of them in routed experts" if experts else ""
    console.print(f"arch   {meta['arch']['name']}" + (f" ({parameters:,} parameters{moe})" if parameters else ""))
    device = meta["device"]
    known = [f"catalogue {device['catalogue_id']}" if device.get("catalogue_id") else "",
             f"peak {device['peak_tflops']:g} TFLOPS" if device.get("peak_tflops") else "",
             f"bandwidth {device['memory_bandwidth_bytes_per_s'] / 1e9:,.0f} GB/s" if device.get("memory_bandwidth_bytes_per_s") else ""]
    known = ", ".join(k for k in known if k)
    calibration = f"   calibration {method['calibration']['name']}" if method.get("simulated") else ""
    console.print(f"device {device['name']}{f' ({known})' if known else ''}   dtype {meta['dtype']}   timer {method.get('timer', '?')}{calibration}",
                  highlight=False)
    grid, prefill = method["grid"], PrefillGrid.from_dict(method["grid"]["prefill_lengths"])  # as profile's options
    console.print(f"grid   --batches {format_batches(grid['batches'])} --prefill-lengths {prefill} "
                  f"(l = {prefill.lengths[0]}..{prefill.lengths[-1]}, {len(prefill.lengths)} lengths) --decode-max {grid['decode_max']}", highlight=False)
    view = Table(title="coverage")
    for c in ("phase", "batches", "lengths", "cells", "statuses"):
        view.add_column(c)
    for c in coverage(table):
        view.add_row(c["phase"], f"{format_batches(c['batches'])} ({len(c['batches'])})", f"{c['length_min']}-{c['length_max']} ({c['lengths']})",
                     f"{c['cells']:,}", _statuses(c["status"]))
    console.print(view)
    _print_dispersion(meta, s["dispersion"], per_batch=True)
    _print_floor(s)
    if not cells:
        return
    sample = pd.concat([part.head(cells) for _, part in table.groupby("phase")])
    shown = Table(title="cells")
    for c in ("phase", "batch", "length", "latency_ms", "runs", "peak_memory_bytes", "flops", "status"):
        shown.add_column(c)
    for r in sample.itertuples():
        shown.add_row(r.phase, str(r.batch), str(r.length), _ms(r.latency_ms), str(len(r.runs_ms)),
                      "-" if pd.isna(r.peak_memory_bytes) else f"{int(r.peak_memory_bytes):,}", "-" if pd.isna(r.flops) else f"{r.flops:.4g}", r.status)
    console.print(shown)


@tables_app.command("list")
@user_errors
def tables_list(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Table files, or folders searched for *.parquet (default: this folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per table.")] = False,
):
    """One line per table: architecture, device, dtype, grid, cells and whether it is complete."""
    from sotlat.tables.listing import list_tables

    found, skipped = list_tables(paths or [Path(".")])
    if as_json:
        for row in found.to_dict("records"):
            print(json.dumps(row))
        return
    for r in found.itertuples():  # two plain lines a table: long paths stay whole at any width
        grid = f"B {r.batches}, l {r.prefill_lengths or '-'}, k {f'1-{r.decode_max}' if r.decode_max else '-'}"
        console.print(r.file, style="bold", soft_wrap=True, highlight=False)
        console.print(f"  {r.arch} · {r.device}{' (simulated)' if r.simulated else ''} · {r.dtype} · {grid} · cells {_statuses(r.status)} · "
                      f"median CV {_num(r.median_cv, '.1%')} · {'complete' if r.complete else 'INCOMPLETE (resume it)'}",
                      soft_wrap=True, highlight=False)
    console.print(_count(len(found), "latency table"))
    for why in skipped:
        console.print(f"not a table: {why}", highlight=False, soft_wrap=True)


@tables_app.command("compare")
@user_errors
def tables_compare(
    table: Path,
    reference: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Per-cell comparison: .jsonl, .csv or .parquet.")] = None,
):
    """Latency of TABLE against REFERENCE over the cells ok in both: % errors per phase and batch."""
    from sotlat.tables import load_table
    from sotlat.tables.compare import compare_summary, compare_tables
    from sotlat.tables.stats import label

    _check_out(out, inputs=[table, reference])
    a, b = load_table(table), load_table(reference)
    cells = compare_tables(a, b)
    summary = compare_summary(cells)
    only = {name: int((t["status"] == "ok").sum()) - len(cells) for name, t in (("only_in_table", a), ("only_in_reference", b))}
    if as_json:
        print(json.dumps({"table": str(table), "reference": str(reference), "cells": len(cells), **only, **summary}))
    else:
        console.print(f"{table} ({label(a)})\nagainst {reference} ({label(b)}):\n{len(cells):,} cells ok in both; "
                      f"{only['only_in_table']:,} ok only in the table, {only['only_in_reference']:,} only in the reference")
        _print_errors(summary, "% error of the table's latency against the reference's (positive: the table is slower; ratio: table / reference)")
    if out is not None:
        write_frame(cells, out)


@tables_app.command("merge")
@user_errors
def tables_merge(files: list[Path], out: Annotated[Path, typer.Option("--out", "-o")]):
    """Merge shards of one profile (e.g. batch ranges run separately) into one table."""
    from sotlat.tables import load_table, merge_tables, save_table
    from sotlat.tables.io import holds_measured_table
    from sotlat.tables.merge import keeps_all_of
    from sotlat.tables.stats import is_complete

    _check_out(out, (".parquet",), keeps=[out])  # the suffix; whether it may go over a measured table, once merged
    _given_once(files, "tables merge")
    shards = [load_table(f) for f in files]
    merged = merge_tables(shards, [str(f) for f in files])
    # over one of its shards, or an earlier merge of them (merged again once a shard is resumed): nothing is lost
    _check_out(out, (".parquet",), keeps=[out] if holds_measured_table(out) and keeps_all_of(merged, load_table(out)) else [])
    save_table(merged, out)
    console.print(f"{out}: {len(merged):,} cells from {len(files)} shards")
    for f, shard in zip(files, shards):
        if not is_complete(shard):
            console.print(f"warning: {f} is an unfinished profile: resume it and merge again (the merged table says INCOMPLETE)", style="yellow")


@app.command()
@user_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where the table and estimates go.")] = Path("out/demo"),
    resume: Annotated[bool, typer.Option(help="Reuse or continue the demo's table; --no-resume measures again.")] = True,
):
    """Profile this machine on a grid sized to a few minutes, then estimate the repo's real Vicuna-80 traces on it."""
    from sotlat.atomic import writable
    from sotlat.demo import demo_spec, recorded_traces
    from sotlat.tables.grid import format_batches
    from sotlat.estimator import estimate_answerable, load_traces
    from sotlat.report.build import build_report
    from sotlat.tables import load_table

    traces = recorded_traces()
    frame = load_traces(traces)
    spec = demo_spec(frame)
    with writable(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / f"{spec.arch}__{spec.device}.parquet"
    console.print(f"profiling {spec.arch} on {spec.device} ({spec.dtype}): batches {format_batches(spec.batches)}, "
                  f"prefill {spec.prefill_lengths.lengths[0]}..{spec.prefill_lengths.lengths[-1]} step {spec.prefill_lengths.step}, decode k = 1..{spec.decode_max}")
    if table_path.exists() and not resume:
        table_path.unlink()  # --no-resume: measure again from scratch
    try:
        _run_profile(spec, str(table_path), table_path.exists())
    except InputError as exc:
        raise InputError(f"{exc} (run `sotlat demo --no-resume` to profile again from scratch)") from None
    table = load_table(table_path)
    estimates, unanswered = estimate_answerable(table, frame, extrapolate=True)
    _print_estimates(table, estimates, unanswered)
    est_path = out_dir / "estimates.csv"
    write_frame(estimates, est_path)
    index = build_report([table], [traces], out_dir / "report")
    console.print(f"table: {table_path}\nestimates: {est_path}\ntraces: {traces}\nreport: {index}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
