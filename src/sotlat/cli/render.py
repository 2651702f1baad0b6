"""How results look on the terminal: tables, summaries and warnings, drawn from the library's data."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from sotlat.cli.common import console, count, flags, ms, num, pct, statuses, times
from sotlat.tables.stats import BUSY_PCT, dispersion_warning, label, summary


def profile_summary(table: pd.DataFrame, out: str, seconds: float, continued: bool) -> None:
    """A profile's closing lines: cells, time, the runs' scatter, the warnings, the B = 1 decode floor."""
    s, meta = summary(table), table.attrs["sotlat"]
    flops_warning(table)
    busy_warning(meta.host_load or {}, meta.device.kind, "profile")
    took = lambda x: f"{x:,.1f} s" if x < 10 else f"{x:,.0f} s"  # noqa: E731
    measuring = f"{took(s['elapsed_s'])} measuring" + (" (every run of this profile together)" if continued else "")
    console.print(Text.assemble((out, "bold"), f": {s['cells']:,} cells ({statuses(s['status'])}) in {took(seconds)}, "
                                f"{measuring}; median CV of the runs {pct(s['median_cv'])}"))
    dispersion_lines(meta, per_batch=False)
    floor(s)


def dispersion_lines(meta, per_batch: bool) -> None:
    """Median and P90 CV of the runs per phase; the decode warm-up and the measured sweeps' medians
    (every batch's with `per_batch`, else the batch whose sweeps differ most); for a GPU profile
    outside the goals, a warning naming the likely cause."""
    d = meta.dispersion
    phases = [f"{phase} median {pct(getattr(d, phase).median_cv)}, P90 {pct(getattr(d, phase).p90_cv)}" for phase in ("prefill", "decode")
              if getattr(d, phase).cells]
    if not phases:  # a simulated table: no runs
        return
    console.print("CV of the runs: " + "; ".join(phases), highlight=False)
    warmup = meta.method.decode.warmup if meta.method.decode else None
    line = ("decode warm-up: none (a table from before --decode-warmup: its first, cold, sweep is among the runs)" if warmup is None
            else f"decode warm-up: {warmup} untimed sweep{'s' * (warmup != 1)} per batch")
    sweeps = {b: m for b, m in d.decode.sweep_medians_ms.items() if len(m) > 1}
    if sweeps:
        spread = lambda m: max(m) / min(m) - 1  # noqa: E731
        shown = sweeps if per_batch else dict([max(sweeps.items(), key=lambda item: spread(item[1]))])
        line += (f"; measured sweeps' medians{'' if per_batch else ' where they differ most'}: "
                 + ", ".join(f"B={b} {'/'.join(f'{x:.2f}' for x in m)} ms ({spread(m):.1%} apart)" for b, m in shown.items()))
    console.print(line, highlight=False, soft_wrap=True)
    if warning := dispersion_warning(meta):
        console.print(f"warning: {warning}", style="yellow", highlight=False, soft_wrap=True)


def busy_warning(load: dict, device_kind: str | None, run: str) -> None:
    """Warn where other work kept the CPUs (of a CPU run) or the GPU busy when the run started."""
    if device_kind == "cpu" and load.get("cpu_busy_pct", 0) > BUSY_PCT:
        console.print(f"warning: the CPUs were {load['cpu_busy_pct']:.0f}% busy with other work when the {run} "
                      "started: CPU timings can be many times too slow", style="yellow")
    if (load.get("gpu_busy_pct") or 0) > BUSY_PCT:
        console.print(f"warning: the GPU was {load['gpu_busy_pct']:.0f}% busy with other work when the {run} started "
                      "(nvidia-smi's utilization): its timings include that work", style="yellow")


def floor(s: dict) -> None:
    """The median decode step at B = 1 against the weights-read / bandwidth floor, from a table summary."""
    if s["decode_b1_median_ms"] is not None:
        bound = s["decode_floor_ms"]
        vs = f" vs the floor weights read / bandwidth {bound:.2f} ms ({s['decode_b1_median_ms'] / bound:.2f}x)" if bound else " (memory bandwidth unknown: no floor)"
        console.print(f"decode step at B=1: median {s['decode_b1_median_ms']:.2f} ms{vs}")


def flops_warning(table: pd.DataFrame) -> None:
    """Warn where a table's FLOPs, filled from counted cells, are not exact for its architecture."""
    meta = table.attrs["sotlat"]
    flops = meta.method.flops
    if not flops.get("exact", True):
        share = 100 * flops["held_out_max_rel_error"]
        off = f"{share:.1f}%" if share >= 0.1 else f"{share:.1g}%"  # a small error still shows a digit, not 0.0%
        what = "the flops column, Eq. 4's TFLOPS and the simulated compute time" if meta.simulated else "the flops column and Eq. 4's TFLOPS"
        console.print(f"warning: this architecture's FLOPs are not the polynomial filled from counted cells (held-out cells "
                      f"off by up to {off}): {what} are approximate", style="yellow")


def estimates(table: pd.DataFrame, found: pd.DataFrame, unanswered: pd.DataFrame, advice: str | None = None, peak_tflops: float | None = None) -> None:
    """The summary per model x category, then what was extrapolated, what the table cannot answer, and
    `advice`: what would answer them all."""
    from sotlat.estimator import performance_summary, summarize

    speedup_table(summarize(found), label(table))
    performance(performance_summary(found), peak_tflops or table.attrs["sotlat"].device.peak_tflops)
    if found["extrapolated"].any():
        console.print(f"{int(found['extrapolated'].sum())} traces use extrapolated decode latencies", style="yellow")
    if len(unanswered):
        console.print(f"{len(unanswered)} of {len(found) + len(unanswered)} traces are outside the table and not estimated:", style="yellow")
        for r in unanswered.head(10).itertuples():
            console.print(f"  {r.trace}: {flags(r.reason)}", highlight=False, soft_wrap=True)  # one line each, as grep wants it
        if len(unanswered) > 10:
            console.print(f"  ... and {len(unanswered) - 10} more")
    if len(unanswered) and advice:
        console.print(advice, highlight=False, soft_wrap=True)


def performance(perf: pd.DataFrame, peak: float) -> None:
    """Eq. 4 per stage and the peak memory that must fit, per model."""
    for r in perf.itertuples():
        tflops = ", ".join(f"{s} {num(getattr(r, f'{s}_decode_tflops'), '.3g')}" for s in ("normal", "skeleton", "points"))
        util = ""
        if hasattr(r, "points_decode_utilization"):
            shares = ", ".join(num(u, ".2%") for u in (r.normal_decode_utilization, r.skeleton_decode_utilization, r.points_decode_utilization))
            util = f" = {shares} of {peak:g}"
        console.print(f"{r.model if r.model != '-' else 'traces without a model name'}, mean over {count(r.n, 'trace')}: decode performance (Eq. 4) {tflops} TFLOPS{util}; "
                      f"largest peak memory normal {num(r.normal_peak_memory_bytes / 1e9, '.2f')} GB, SoT {num(r.sot_peak_memory_bytes / 1e9, '.2f')} GB",
                      highlight=False, soft_wrap=True)


SPEEDUP_COLUMNS = {  # heading: how a summary row shows it
    "model": lambda r: r.model, "category": lambda r: r.category, "n": lambda r: str(r.n), "speed-up": lambda r: times(r.speedup),
    "median": lambda r: times(r.median_speedup), "total": lambda r: times(r.total_speedup),
    "SoT faster": lambda r: "-" if pd.isna(r.sot_faster) else f"{r.sot_faster:.0%}", "normal ms": lambda r: ms(r.normal_ms),
    "SoT ms": lambda r: ms(r.sot_ms), "skeleton prefill": lambda r: ms(r.skeleton_prefill_ms), "skeleton decode": lambda r: ms(r.skeleton_decode_ms),
    "points prefill": lambda r: ms(r.points_prefill_ms), "points decode": lambda r: ms(r.points_decode_ms),
}


def speedup_table(rows: pd.DataFrame, title: str) -> None:
    """One row per model x category; traces of one model name it in the title instead of a column."""
    one = rows["model"].nunique() == 1
    heading = f"traces of {rows['model'].iloc[0]} on {title}" if one and rows["model"].iloc[0] != "-" else title  # '-': not recorded
    columns = [c for c in SPEEDUP_COLUMNS if not (one and c == "model")]
    t = Table(title=f"SoT vs normal: means per {'' if one else 'model x '}category - {heading}")
    for name in columns:
        t.add_column(name, justify="left" if name in ("model", "category") else "right")
    for r in rows.itertuples():
        t.add_row(*(SPEEDUP_COLUMNS[c](r) for c in columns), style="bold" if r.category == "all" else None)
    console.print(t)


def calibration(cal, errors: dict) -> None:
    """Per phase the fitted parameters, those the cells barely show marked with where their value came from, and the fit's errors."""
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


def errors_table(summary_by_phase: dict, title: str) -> None:
    """A `compare_summary` as a table: per phase, then per batch."""
    view = Table(title=title)
    for c in ("phase", "batch", "cells", "median |error|", "P90 |error|", "max |error|", "median signed", "median ratio"):
        view.add_column(c, justify="left" if c == "phase" else "right")
    for phase, s in summary_by_phase.items():
        for batch, e in [("all", s), *s["by_batch"].items()]:
            view.add_row(phase if batch == "all" else "", str(batch), f"{e['n']:,}", f"{e['median_abs_pct']:.1f}%", f"{e['p90_abs_pct']:.1f}%",
                         f"{e['max_abs_pct']:.1f}%", f"{e['median_signed_pct']:+.1f}%", f"{1 + e['median_signed_pct'] / 100:#.3g}x",
                         style="bold" if batch == "all" else None)
    console.print(view)
