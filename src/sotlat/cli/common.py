"""What every command shares: the consoles, the one-line errors and their exit codes, the options
several commands take, the checks of --out, and the small formats numbers are printed in."""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import typing
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sotlat.errors import InputError
from sotlat.interrupts import Interrupted
from sotlat.progress import Tracker

# No markup or emoji codes: a file 't[gpu].parquet', a '1:b:c' or a trace id 'q:smile:' is printed as
# written; colour comes from style= alone.
console = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False)  # files and pipes get whole tables
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)

OUT_SUFFIXES = (".jsonl", ".csv", ".parquet")


_OPTIONS: ContextVar[dict[str, str]] = ContextVar("options", default={})  # the running command's parameters, as its user types them


def _options_of(func) -> dict[str, str]:
    """A command's parameters as its user names them: an option by its long flag, an argument by its metavar."""
    hints = typing.get_type_hints(func, include_extras=True)
    named = {}
    for name in inspect.signature(func).parameters:
        info = next((m for m in getattr(hints.get(name), "__metadata__", ()) if hasattr(m, "param_decls")), None)
        decls = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("--")]
        named[name] = name.upper() if type(info).__name__ == "ArgumentInfo" else (decls[0] if decls else "--" + name.replace("_", "-"))
    return named


def flags(message: str, param: str | None = None) -> str:
    """A library message in the command line's words: its parameter (`param`) as the option's flag in
    front, and each parameter it names in backticks (`prefill_runs`) as the running command's flag."""
    options = _OPTIONS.get()
    text = re.sub(r"`([a-z_]+)`", lambda m: options.get(m[1], m[0]), message)
    return f"{options.get(param, '--' + param.replace('_', '-'))}: {text}" if param else text


def user_errors(func):
    """Turn InputError into one line on stderr and exit code 2; Ctrl-C into exit 130; an OSError
    (a full disk) into one line and exit code 1. Library messages are told in the command's flags."""
    options = _options_of(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        token = _OPTIONS.set(options)
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            err.print(f"error: {' '.join(flags(exc.message, exc.param).split())}")  # one line, whatever a library's message holds
            raise typer.Exit(2) from None
        except Interrupted as exc:
            err.print(flags(str(exc)))
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except OSError as exc:  # the system's, not the input's: stdout on a full disk, a file system gone read-only
            err.print(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
            raise typer.Exit(1) from None
        finally:
            _OPTIONS.reset(token)

    return wrapper


def _positive(value: float | None) -> float | None:
    """A peak, bandwidth, budget or objective of 0 would divide by zero or read as 'not given'."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be greater than 0, got {value:g}")
    return value


def _dtype(value: str | None) -> str | None:
    """The canonical name (fp16 and half are float16), checked before any work."""
    from sotlat.models.dtypes import canonical_dtype

    if value is None:
        return None
    try:
        return canonical_dtype(value)
    except InputError as exc:
        raise typer.BadParameter(exc.message) from None


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
Positive = _positive


def arch_or_config(arch, config) -> str | None:
    """Exactly one of --arch and --config; the config's path as the library takes it."""
    if (arch is None) == (config is None):
        raise InputError("give exactly one of --arch and --config")
    return str(config) if config else None


def check_out(out: Path | None, suffixes: tuple[str, ...] = OUT_SUFFIXES, inputs=(), keeps=()) -> None:
    """Refuse, before any work is done, an --out whose suffix is not what the command writes, or whose
    writing would destroy data: one of the command's `inputs` (traces, measurements), or a measured
    table (device time to redo) other than those whose cells the output `keeps` (the table `profile
    --resume` continues)."""
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


def given_once(paths: list[Path], option: str) -> None:
    """Refuse one file named twice (its rows would count twice, or be refused as duplicate ids)."""
    seen = set()
    for path in paths:
        if path.resolve() in seen:
            raise InputError(f"{option}: {path} is given twice")
        seen.add(path.resolve())


@contextlib.contextmanager
def progress_bar(unit: str, width: int = 0):
    """A rich progress bar of `unit` (forward passes, questions, traces), and the Tracker that moves it
    and prints what the run says. The bar appears at the first update, once the inputs are checked."""
    bar = Progress(TextColumn(f"{{task.description:<{width}}}" if width else "{task.description}", markup=False), BarColumn(),
                   MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    task = bar.add_task("", total=None)

    def update(done: int, total: int, what: str) -> None:
        bar.start()
        bar.update(task, completed=done, total=total, description=what)

    try:
        yield Tracker(update, lambda line: console.print(line, highlight=False, soft_wrap=True))
    finally:
        if bar.live.is_started:  # stopping a bar never shown still prints a blank line
            bar.stop()


def count(n: int, noun: str) -> str:
    """'1 trace', '80 traces'."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


def num(x, spec: str) -> str:
    return "-" if pd.isna(x) else format(x, spec)


def ms(x) -> str:
    return num(x, ",.1f")


def pct(x) -> str:
    return "- (no cell has two runs)" if x is None or pd.isna(x) else f"{x:.1%}"


def times(ratio) -> str:
    return "-" if pd.isna(ratio) else f"{ratio:.2f}x"


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def statuses(counts: dict) -> str:
    """Cells per status, as people read them: 'ok 2,400, oom 48'."""
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())
