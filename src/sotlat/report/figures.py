"""The report's figures. Each returns a Figure: a title, a matplotlib figure, and the data it plots."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as Canvas
from matplotlib.ticker import LogFormatter, MaxNLocator

from sotlat.estimator.request import TABLE1_OUTPUT, TABLE1_PROMPT
from sotlat.estimator.summary import total_speedup
from sotlat.report import analysis as an
from sotlat.tables.stats import label


@contextlib.contextmanager
def rendering():
    """How the report's figures are drawn and saved, set only while they are: text as written (a
    category 'cost $5 vs $6' is not TeX to render or fail on). Figures are matplotlib Figure objects
    of their own, not pyplot's, so no backend or pyplot state is touched."""
    with matplotlib.rc_context({"text.parse_math": False}):
        yield


def _subplots(*grid, figsize, **kwargs):
    """A figure and its axes, as plt.subplots makes them, outside pyplot: on an Agg canvas of its own."""
    fig = Canvas(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid, **kwargs)


@dataclass
class Figure:
    slug: str
    title: str
    fig: object
    data: pd.DataFrame
    caption: str = ""


def number(v: float) -> str:
    """A number in a report table or caption: 22,004 ms, not 2.2e+04; three significant figures below 1,000."""
    return "-" if pd.isna(v) else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def has_latency(table: pd.DataFrame) -> bool:
    """Whether a table has anything for a latency figure to draw: one with only oom cells (a model
    larger than the GPU) has not."""
    return bool(table["latency_ms"].notna().any())


def _colors(tables) -> dict[str, str]:
    """One colour per table, the same in every figure: matplotlib's cycle in the order given."""
    return {label(t): f"C{i % 10}" for i, t in enumerate(tables)}


def _lines(ax, frame: pd.DataFrame, x: str, y: str, colors: dict[str, str]):
    for name, part in frame.groupby("table", sort=False):
        ax.plot(part[x], part[y], marker="o", ms=3, label=name, color=colors[name])


class _PlainLog(LogFormatter):
    """The ticks matplotlib's log formatter labels, written as plain numbers ('10,000', '0.5'): its
    own labels are TeX, which the parse_math setting above leaves unrendered."""

    def __call__(self, x, pos=None):
        if not super().__call__(x, pos):
            return ""
        return f"{x:,.0f}" if x >= 1 else f"{x:.3g}"


def _log_y(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLog())
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False))


def _y_axis(ax, values) -> None:
    """Log scale when the compared tables differ by more than 20x, so that every one stays visible;
    else linear from zero, so that a 1% rise with batch size looks like 1%, not like the whole axis."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) and v.max() / v.min() > 20:
        _log_y(ax)
    else:
        ax.set_ylim(bottom=0)


def _finish(fig, ax, title, xlabel, ylabel, legend=True, grid=True, integer_x=False):
    ax.set_title(title)
    if integer_x:  # batches and points: no tick at B = 0.98
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if ax.lines and not any(np.isfinite(np.asarray(line.get_ydata(), float)).any() for line in ax.lines):
        ax.set(xticks=[], yticks=[])  # no scale for nothing: the axes say so, the caption says why
        ax.text(0.5, 0.5, "nothing to draw (the caption says why)", ha="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if grid:
        ax.grid(alpha=0.3)
    labels = ax.get_legend_handles_labels()[1] if legend else []
    box = ax.legend(fontsize=7) if labels else None
    # a box that would hide the lines (many long labels) or span the axes (wider than 3/4 of them, or past them)
    below = box is not None and len(fig.axes) == 1 and (
        (len(labels) > 3 and max(map(len, labels)) > 30)
        or box.get_window_extent(fig.canvas.get_renderer()).width > 0.75 * ax.get_window_extent().width)
    if below:
        box.remove()
    fig.tight_layout()
    if below:  # under the axes, past the x label: the figure is saved with bbox_inches="tight"
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(ax.get_position().x0, 0), bbox_transform=fig.transFigure)
    return fig


_BAR_INCHES = 0.3  # figure width per bar group where there are many: WizardLM's 29 categories stay legible


def _bar_rotation(groups: int) -> int:
    """Bar labels at 30 degrees, upright past a dozen groups, where slanted ones would overlap."""
    return 30 if groups <= 12 else 90


def _nothing_drawn(data: pd.DataFrame, column: str, why) -> str:
    """A caption sentence for each table with no value of `column` to draw, saying why (`why(part)`)."""
    return "".join(f" Nothing to draw for {name}: {why(part)}." for name, part in data.groupby("table", sort=False)
                   if not part[column].notna().any())


def _over_batches(data: pd.DataFrame, column: str, unit: str) -> str:
    """A sentence per table: `column` at its smallest and its largest batch with a value, and their
    ratio: what the figure shows, in numbers a capacity plan can quote."""
    out = []
    for name, part in data.groupby("table", sort=False):
        part = part.dropna(subset=[column]).sort_values("batch")
        if part.empty:
            continue
        lo, hi = part.iloc[0], part.iloc[-1]
        at = f"{number(lo[column])} {unit} at B={int(lo['batch'])}"
        if len(part) > 1:
            at += f", {number(hi[column])} at B={int(hi['batch'])} ({hi[column] / lo[column]:.2f}x)"
        out.append(f"{name}: {at}.")
    return " ".join(out)


def fig3(tables) -> list[Figure]:
    data = pd.concat([an.fig3(t) for t in tables if has_latency(t)], ignore_index=True)
    lacks = _nothing_drawn(data, "total_ms", lambda part: f"B={part['batch'].iloc[0]} needs {part['missing'].iloc[0]}")
    colors, out = _colors(tables), []
    fig, axes = _subplots(1, 2, figsize=(10, 3.8))
    for ax, column, name in ((axes[0], "prefill_ms", f"prefill of {TABLE1_PROMPT} tokens"),
                             (axes[1], "decode_ms", f"decoding {TABLE1_OUTPUT} tokens (Eq. 1, context {TABLE1_PROMPT})")):
        _lines(ax, data, "batch", column, colors)
        _y_axis(ax, data[column])
        _finish(fig, ax, name, "batch size B", "latency (ms)", integer_x=True)
    fig.suptitle("Fig. 3a: latency vs batch size", y=1.02)
    out.append(Figure("fig3a_latency_vs_batch", "Fig. 3a: latency vs batch size", fig, data[["table", "batch", "prefill_ms", "decode_ms", "total_ms", "missing"]],
                      "Decode latency that stays nearly flat with batch size is what SoT's batched point expansion relies on. "
                      f"Decoding {TABLE1_OUTPUT} tokens: {_over_batches(data, 'decode_ms', 'ms')} Prefill of {TABLE1_PROMPT} tokens: "
                      f"{_over_batches(data, 'prefill_ms', 'ms')}"
                      + lacks))
    fig, ax = _subplots(figsize=(6, 3.8))
    _lines(ax, data, "batch", "decode_tflops", colors)
    _y_axis(ax, data["decode_tflops"])
    title = f"Fig. 3b: decode performance P^D({TABLE1_PROMPT}, {TABLE1_OUTPUT}, B) (Eq. 4)"
    if data["decode_utilization"].notna().any():
        util = ax.twinx()
        for name, part in data.groupby("table", sort=False):
            util.plot(part["batch"], part["decode_utilization"] * 100, ls="--", alpha=0.6, color=colors[name], label=f"{name} (utilization)")
        util.set_ylabel("utilization of peak (%)")
        util.set_ylim(bottom=0)
    out.append(Figure("fig3b_decode_tflops", title, _finish(fig, ax, title, "batch size B", "TFLOPS", integer_x=True),
                      data[["table", "batch", "decode_tflops", "decode_utilization"]], (_over_batches(data, "decode_tflops", "TFLOPS") + lacks).strip()))
    fig, ax = _subplots(figsize=(6, 3.8))
    _lines(ax, data, "batch", "peak_memory_gb", colors)
    _y_axis(ax, data["peak_memory_gb"])
    title = f"Fig. 3c: peak memory of prefill {TABLE1_PROMPT} + decode {TABLE1_OUTPUT}"
    out.append(Figure("fig3c_peak_memory", title, _finish(fig, ax, title, "batch size B", "peak memory (GB)", integer_x=True),
                      data[["table", "batch", "peak_memory_gb"]], (_over_batches(data, "peak_memory_gb", "GB") + lacks).strip()))
    return out


def decode_heatmaps(tables) -> Figure:
    tables = [t for t in tables if has_latency(t)]
    fig, axes = _subplots(1, len(tables), figsize=(5.5 * len(tables), 3.8), squeeze=False)
    frames = []
    for ax, t in zip(axes[0], tables):
        grid = an.decode_grid(t)
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), aspect="auto", origin="lower", cmap=cmap, interpolation="nearest",
                       extent=[grid.columns.min() - 0.5, grid.columns.max() + 0.5, 0.5, len(grid.index) + 0.5])
        every = -(-len(grid.index) // 16)  # at most 16 batch labels
        ax.set_yticks(range(1, len(grid.index) + 1, every), [str(b) for b in grid.index[::every]])
        fig.colorbar(im, ax=ax, label="t^D_B(k) (ms)")
        _finish(fig, ax, label(t), "context k (tokens in the KV cache)", "batch size B", legend=False, grid=False)
        frames.append(grid.stack().rename("latency_ms").reset_index().assign(table=label(t)))
    fig.suptitle("Decode step latency over batch x context (grey: not measured or oom)", y=1.02)
    fig.tight_layout()
    data = pd.concat(frames, ignore_index=True)
    return Figure("decode_heatmap", "Decode latency t^D_B(k) over batch x context", fig, data, _corners(data, "t^D"))


def _corners(data: pd.DataFrame, symbol: str) -> str:
    """A sentence per table: its latency (`symbol`: t^D or t^P) at the first and last length of its
    smallest and largest batch."""
    out = []
    for name, part in data.dropna(subset=["latency_ms"]).groupby("table", sort=False):
        ends = []
        for b in sorted({part["batch"].min(), part["batch"].max()}):
            row = part[part["batch"] == b].sort_values("length")
            first, last = row.iloc[0], row.iloc[-1]
            ends.append(f"{symbol}_{b}({first['length']}) = {number(first['latency_ms'])} ms, "
                        f"{symbol}_{b}({last['length']}) = {number(last['latency_ms'])} ms")
        out.append(f"{name}: {'; '.join(ends)}.")
    return " ".join(out)


def prefill_lines(tables) -> Figure:
    tables = [t for t in tables if has_latency(t)]
    fig, axes = _subplots(1, len(tables), figsize=(5.5 * len(tables), 3.8), squeeze=False)
    frames, notes = [], []
    for ax, t in zip(axes[0], tables):
        p = an.prefill_curves(t)
        for b, part in p.groupby("batch"):
            ax.plot(part["length"], part["latency_ms"], marker=".", label=f"B={b}")
        _finish(fig, ax, label(t), "prompt length l (tokens)", "t^P_B(l) (ms)")
        frames.append(p)
        if p["batch"].nunique() < len(an.batches(t)):
            notes.append(f"{label(t)}: {p['batch'].nunique()} of its {len(an.batches(t))} batches shown")
    fig.suptitle("Prefill latency t^P_B(l)", y=1.02)
    fig.tight_layout()
    data = pd.concat(frames, ignore_index=True)
    return Figure("prefill_latency", "Prefill latency t^P_B(l)", fig, data, " ".join([_corners(data, "t^P"), *(f"{n}." for n in notes)]))


def floor(tables) -> Figure:
    fig, ax = _subplots(figsize=(7, 3.8))
    frames, colors = [], _colors(tables)
    for t in filter(has_latency, tables):
        curve, floor_ms = an.floor_curve(t)
        ax.plot(curve["length"], curve["latency_ms"], color=colors[label(t)], label=f"{label(t)}: t^D_1(k)")
        if floor_ms:
            ax.axhline(floor_ms, ls="--", color=colors[label(t)], label=f"{label(t)}: weights read / bandwidth = {floor_ms:.2f} ms")
        frames.append(curve.assign(floor_ms=floor_ms))
    _y_axis(ax, pd.concat(frames)["latency_ms"])
    known = any(f["floor_ms"].notna().any() for f in frames)
    title = "Decode step at B = 1 against the physical floor" + ("" if known else " (no bandwidth known: no floor)")
    cap = ("The floor (bytes of the weights a decode step reads / memory bandwidth; an input-embedding table the output "
           "head does not share is only gathered from, not read) is drawn where the device's bandwidth is known.")
    return Figure("decode_b1_floor", title, _finish(fig, ax, title, "context k (tokens)", "latency (ms)"), pd.concat(frames, ignore_index=True), cap)


def quality(tables) -> tuple[Figure, pd.DataFrame]:
    fig, ax = _subplots(figsize=(7, 3.8))
    colors = _colors(tables)
    tables = [t for t in tables if has_latency(t)]
    cvs, flags = zip(*(an.quality(t) for t in tables))
    for t, frame in zip(tables, cvs):
        values = frame["cv"].dropna() * 100
        if len(values):
            ax.hist(values, bins=40, alpha=0.5, color=colors[label(t)], label=f"{label(t)} ({len(values)} cells)")
    if not any(len(frame) for frame in cvs):
        ax.text(0.5, 0.5, "no cell has repeated runs (simulated tables have none)", ha="center", transform=ax.transAxes,
                bbox=dict(facecolor="white", edgecolor="none"), zorder=3)  # over the threshold line, not struck through
        ax.set_xlim(0, 2 * an.HIGH_CV * 100)
    ax.axvline(an.HIGH_CV * 100, color="red", ls="--", label=f"high CV > {an.HIGH_CV:.0%}")
    title = "Measurement quality: coefficient of variation of each cell's runs"
    flagged = pd.concat(flags, ignore_index=True)
    cap = f"{int((flagged['flag'] == 'high CV').sum())} high-CV cells and {int((flagged['flag'] != 'high CV').sum())} cells without latency (oom or other) are listed below."
    return Figure("measurement_quality", title, _finish(fig, ax, title, "CV of the runs (%)", "cells"), pd.concat(cvs, ignore_index=True), cap), flagged


def speedups(estimates: pd.DataFrame, tables) -> list[Figure]:
    out, colors = [], _colors(tables)
    for key, slug, title in (("model", "speedup_by_model", "Fig. 4: mean SoT speed-up by model (the model that recorded the traces)"),
                             ("category", "speedup_by_category", "Fig. 5: mean SoT speed-up by question category")):
        by = estimates.assign(**{key: estimates[key].fillna("-")}).groupby(["table", key])["speedup"].mean().unstack("table")
        by = by[[name for name in colors if name in by.columns]]  # the tables' order, not the alphabet's
        fig, ax = _subplots(figsize=(max(8, _BAR_INCHES * len(by)), 3.8))
        by.plot.bar(ax=ax, rot=_bar_rotation(len(by)), color=[colors[name] for name in by.columns])
        ax.axhline(1, color="black", lw=0.8)
        out.append(Figure(slug, title, _finish(fig, ax, title, key, "mean speed-up (normal / SoT)"), by.reset_index(), _bar_extremes(by)))
    fig, ax = _subplots(figsize=(7, 3.8))
    finite = estimates["speedup"].dropna()
    bins = np.linspace(min(finite.min(), 0.9), finite.max(), 30) if len(finite) else 10
    for name, part in estimates.groupby("table", sort=False):
        ax.hist(part["speedup"].dropna(), bins=bins, alpha=0.5, color=colors[name], label=name)
    ax.axvline(1, color="red", ls="--", label="no speed-up")
    title = "Per-question SoT speed-up"
    caption = "; ".join(f"{name}: {len(p)} questions, mean {p['speedup'].mean():.2f}x, median {p['speedup'].median():.2f}x, "
                        f"total {total_speedup(p):.2f}x, SoT faster on {(p['speedup'] > 1).mean():.0%}"
                        for name, p in ((n, p.dropna(subset=["speedup"])) for n, p in estimates.groupby("table", sort=False)) if len(p))
    out.append(Figure("speedup_distribution", title, _finish(fig, ax, title, "speed-up (normal / SoT)", "questions"),
                      estimates[["table", "id", "model", "category", "speedup"]], caption + "."))
    return out


def _bar_extremes(by: pd.DataFrame) -> str:
    """A sentence per table (a column of `by`, one row per model or category): its highest and
    lowest mean speed-up, and how many are above 1x (SoT faster on average)."""
    out = []
    for name in by.columns:
        s = by[name].dropna()
        if len(s) == 1:
            out.append(f"{name}: {s.index[0]} {s.iloc[0]:.2f}x.")
        elif f"{s.max():.2f}" == f"{s.min():.2f}":
            out.append(f"{name}: {s.iloc[0]:.2f}x for all {len(s)}.")
        elif len(s):
            top, low = s.idxmax(), s.idxmin()
            out.append(f"{name}: highest {top} {s[top]:.2f}x, lowest {low} {s[low]:.2f}x; above 1x for {int((s > 1).sum())} of {len(s)}.")
    return " ".join(out)


def breakdown(estimates: pd.DataFrame) -> Figure:
    """Fig. 6 (and 13): mean latency per stage and phase, one panel per table, and per model that
    recorded the traces where there are several (models are never averaged together); the mean
    speed-up across questions is marked beside the SoT bar, as in Fig. 13."""
    parts = ["normal_prefill_ms", "normal_decode_ms", "skeleton_prefill_ms", "skeleton_decode_ms", "points_prefill_ms", "points_decode_ms"]
    estimates = estimates.assign(model=estimates["model"].fillna("-"))
    keys = ["table", "model"] if estimates["model"].nunique() > 1 else ["table"]
    means = estimates.groupby(keys, sort=False)[[*parts, "speedup"]].mean()
    names = [" · traces of ".join(key) if isinstance(key, tuple) else key for key in means.index]
    fig, axes = _subplots(len(means), 1, figsize=(8, 1.3 + 1.5 * len(means)), squeeze=False)
    for ax, name, (_, row) in zip(axes[:, 0], names, means.iterrows()):
        for y, cols in ((1, parts[:2]), (0, parts[2:])):
            left = 0.0
            for col in cols:
                ax.barh(y, row[col] / 1e3, 0.6, left=left, label=col.replace("_ms", "").replace("_", " "))
                left += row[col] / 1e3
        ax.annotate(f"mean speed-up {row['speedup']:.2f}x", (left, 0), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0, 1.3 * max(left, row[parts[:2]].sum() / 1e3, 1e-9))  # room for the mark inside the axes, clear of the legend
        ax.set_yticks([1, 0], ["normal", "SoT"])
        _finish(fig, ax, name, "mean latency (s)", "", legend=False)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Fig. 6: latency breakdown by stage and phase (mean over questions)", y=1.02)
    fig.tight_layout()
    sot = means[parts[2:]].sum(axis=1).to_numpy()
    cap = " ".join(f"{name}: normal {number(row[parts[:2]].sum() / 1e3)} s, SoT {number(total / 1e3)} s, of which the points' decode "
                   f"{row['points_decode_ms'] / total:.0%}; mean speed-up {row['speedup']:.2f}x."
                   for name, total, (_, row) in zip(names, sot, means.iterrows()))
    return Figure("latency_breakdown", "Fig. 6: latency breakdown by stage and phase", fig, means.reset_index(), cap)


def token_lengths(lengths: pd.DataFrame) -> Figure:
    """Points per question, then mean lengths per category in one panel per model (Fig. 12 has a
    column per model): models are never averaged together."""
    models = list(dict.fromkeys(lengths["model"]))
    categories = lengths.groupby("model")["category"].nunique(dropna=False).max()
    panel = max(5.5, 1.5 * _BAR_INCHES * categories)  # four bars per category
    fig, axes = _subplots(1, 1 + len(models), figsize=(5.5 + panel * len(models), 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": [5.5] + [panel] * len(models)})
    top = lengths["points"].max(skipna=True) if lengths["points"].notna().any() else 1
    axes[0, 0].hist([lengths.loc[lengths["model"] == m, "points"].dropna() for m in models], bins=np.arange(0.5, top + 1.5), label=models)
    _finish(fig, axes[0, 0], "points per question", "number of points", "questions")
    cols = {"skeleton_tokens": "skeleton", "point_tokens": "point (mean)", "longest_point_tokens": "longest point", "normal_tokens": "normal answer"}
    by = lengths.groupby(["model", "category"], sort=False)[list(cols)].mean()
    for ax, model in zip(axes[0, 1:], models):
        by.loc[model].sort_index().rename(columns=cols).plot.bar(ax=ax, rot=_bar_rotation(len(by.loc[model])))
        _finish(fig, ax, f"mean completion tokens{f' of {model}' if model != '-' else ''} by category", "category", "tokens", legend=False)
        ax.set_ylim(0, np.nanmax([by.max().max(), 1]) * 1.25)  # one scale for every model; room for the legend above the bars
        ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.suptitle("Fig. 12: token lengths of the traces", y=1.02)
    fig.tight_layout()
    cap = " ".join(f"{f'{model}: ' if model != '-' else ''}{len(part)} traces, {part['points'].mean():.1f} points, skeleton {part['skeleton_tokens'].mean():.0f} "
                   f"tokens, point {part['point_tokens'].mean():.0f}, normal answer {part['normal_tokens'].mean():.0f} (means)."
                   for model, part in lengths.groupby("model", sort=False))
    return Figure("token_lengths", "Fig. 12: token lengths of the traces", fig, by.reset_index(), cap)


def capacity(tables, budget_gb, headroom) -> Figure:
    data = pd.concat([an.capacity(t, budget_gb, headroom) for t in tables], ignore_index=True)
    fig, ax = _subplots(figsize=(7, 3.8))
    colors = _colors(tables)
    for name, part in data.groupby("table", sort=False):
        ax.plot(part["batch"], part["measured_max_context"], marker="o", color=colors[name], label=f"{name}: measured (up to the profiled context)")
        ax.plot(part["batch"], part["arithmetic_max_context"], ls="--", marker="x", color=colors[name],  # a marker: one batch is a point
                label=f"{name}: weights + KV cache arithmetic")
    title = f"Largest context that fits ({headroom:.0%} headroom)"
    cap = "Measured: the longest profiled context whose peak memory fits (capped by the profiled range, see the CSV). Arithmetic: (budget - weights) / (B x KV bytes per token)."
    nothing = [f"{name} ({part['usable_gb'].iloc[0]:.1f} GB usable)" for name, part in data.groupby("table", sort=False)
               if (part["arithmetic_max_context"] == 0).all()]
    if nothing:
        cap += f" Nothing fits for {', '.join(nothing)}: the weights alone need more."
    unknown = [name for name, part in data.groupby("table", sort=False)
               if part["usable_gb"].notna().all() and part["arithmetic_max_context"].isna().all()]
    if unknown:
        cap += f" No arithmetic for {', '.join(unknown)}: this transformers cannot rebuild its config."
    unbounded = [name for name, part in data.groupby("table", sort=False) if np.isinf(part["arithmetic_max_context"]).any()]
    if unbounded:
        cap += f" Any context fits for {', '.join(unbounded)} (inf in the CSV): sliding windows bound its whole KV cache."
    if (data[["measured_max_context", "arithmetic_max_context"]].to_numpy(float) > 0).any():
        _log_y(ax)
    return Figure("capacity_context", title, _finish(fig, ax, title, "batch size B", "max context (tokens)", integer_x=True), data, cap)


def throughput(tables, context, prompt, slo_tpot, slo_ttft) -> Figure:
    data = pd.concat([an.throughput(t, context, prompt, slo_tpot, slo_ttft) for t in tables if has_latency(t)], ignore_index=True)
    fig, ax = _subplots(figsize=(7, 3.8))
    colors = _colors(tables)
    for name, part in data.groupby("table", sort=False):
        ax.plot(part["batch"], part["tokens_per_s"], marker="o", color=colors[name], label=name)
        ok = part[part["meets_slo"]]
        if (slo_tpot or slo_ttft) and len(ok):
            best = ok.loc[ok["batch"].idxmax()]
            ax.scatter([best["batch"]], [best["tokens_per_s"]], s=120, facecolors="none", edgecolors=colors[name],
                       label=f"{name}: largest batch meeting the SLOs (B={int(best['batch'])})")
    _y_axis(ax, data["tokens_per_s"])
    slo = ", ".join(x for x in (f"TPOT <= {slo_tpot} ms" if slo_tpot else "", f"TTFT <= {slo_ttft} ms" if slo_ttft else "") if x) or "no SLO given"
    title = f"Decode throughput at context {context} ({slo})"
    return Figure("throughput_vs_batch", title, _finish(fig, ax, title, "batch size B", "decode tokens / s", integer_x=True), data,
                  _throughput_caption(data, bool(slo_tpot or slo_ttft)))


def _throughput_caption(data: pd.DataFrame, slo: bool) -> str:
    """A sentence per table: its most decode tokens/s and at which batch; under SLOs, the largest batch meeting them."""
    out = []
    for name, part in data.groupby("table", sort=False):
        part = part.dropna(subset=["tokens_per_s"])
        if part.empty:
            continue
        best = part.loc[part["tokens_per_s"].idxmax()]
        line = f"{name}: most {number(best['tokens_per_s'])} tokens/s at B={int(best['batch'])} (TPOT {number(best['tpot_ms'])} ms)"
        if slo:
            ok = part[part["meets_slo"]]
            line += (f"; the largest batch meeting the SLOs, B={int(ok['batch'].max())}, gives "
                     f"{number(ok.loc[ok['batch'].idxmax(), 'tokens_per_s'])} tokens/s" if len(ok) else "; no batch meets the SLOs")
        out.append(line + ".")
    return " ".join(out)


def sot_whatif(tables, answer) -> Figure:
    data = pd.concat([an.sot_whatif(t, answer) for t in tables if has_latency(t)], ignore_index=True)
    fig, ax = _subplots(figsize=(7, 3.8))
    colors = _colors(tables)
    styles = dict(zip(sorted(data["imbalance"].unique()), ["-", "--", ":", "-."] * 3))
    for (name, imb), part in data.groupby(["table", "imbalance"], sort=False):
        ax.plot(part["points"], part["speedup"], marker="o", color=colors[name], ls=styles[imb],
                label=f"{name}, longest point {1 + imb:.1f}x the mean")
    ax.axhline(1, color="black", lw=0.8)
    title = f"SoT what-if: speed-up for a {answer}-token answer split into n points"
    cap = "Synthetic traces (prompt lengths in the CSV; skeleton 8 tokens per point); decode past the table is extrapolated (flagged in the CSV)."
    for name, part in data[data["imbalance"] == 0].dropna(subset=["speedup"]).groupby("table", sort=False):
        best = part.loc[part["speedup"].idxmax()]
        cap += f" {name}: with equal points, at most {best['speedup']:.2f}x, at n = {int(best['points'])}."
    cap += "".join(f" Nothing to draw for {label(t)}: it has no batch of 2 or more, the points of a SoT answer."
                   for t in tables if has_latency(t) and label(t) not in set(data["table"]))
    cap += _nothing_drawn(data, "speedup", lambda part: f"at n = {part['points'].iloc[0]}, the {part['missing'].iloc[0]}")
    return Figure("sot_whatif", title, _finish(fig, ax, title, "number of points n (= batch)", "speed-up (normal / SoT)", integer_x=True), data, cap)
