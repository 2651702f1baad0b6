"""Build the report: figure PNGs, one CSV per figure, report.md, and a self-contained index.html."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from sotlat.atomic import atomic_dir
from sotlat.errors import InputError
from sotlat.estimator.answer import answering_grid
from sotlat.estimator.request import TABLE1_PROMPT
from sotlat.estimator.traces import read_records, traces_frame
from sotlat.report import analysis as an
from sotlat.report import figures as F
from sotlat.sot.stats import per_trace
from sotlat.tables.grid import as_options
from sotlat.tables.io import load_table
from sotlat.tables.stats import label


DEFAULT_CONTEXT = 256  # the context of the throughput figure, where every table's decode reaches it


@F.rendering()
def build_report(tables: list[pd.DataFrame], trace_paths: list[Path], out_dir: Path, budget_gb: float | None = None,
                 headroom: float = 0.1, slo_tpot_ms: float | None = None, slo_ttft_ms: float | None = None,
                 context: int = DEFAULT_CONTEXT, prompt: int = TABLE1_PROMPT, answer: int = an.WHATIF_ANSWER,
                 traces_left_out: pd.DataFrame | None = None) -> Path:
    """Write the report into `out_dir` (replaced whole, never half-written); returns index.html.

    A table without a single latency (a model whose weights do not fit the GPU) is left out of the
    latency figures (keeping every other table's colour), said at the top, and kept where it has
    something to say: capacity, and the traces it cannot answer. `traces_left_out` (id, model,
    reason) lists traces a caller chose not to estimate, and why (the demo's)."""
    left_out = untimed(tables)
    if len(left_out) == len(tables):
        raise InputError("; ".join(left_out) + ": no latency to report")
    figures = [*F.fig3(tables), F.decode_heatmaps(tables), F.prefill_lines(tables), F.floor(tables)]
    quality, flagged = F.quality(tables)
    figures.append(quality)
    tables_md = {"Measurement quality per table (CV of the runs; decode warm-up; measured sweeps' medians, largest / smallest - 1)":
                 pd.concat([an.measurement_quality(t) for t in tables], ignore_index=True),
                 "Flagged cells (high CV, oom)": flagged.head(30)}
    if trace_paths:
        records = [r for p in trace_paths for r in read_records(p)]
        frame = traces_frame(records)
        results = [an.estimate_all(t, frame) for t in tables]
        estimates = pd.concat([r[0] for r in results], ignore_index=True)
        failed = pd.concat([r[1] for r in results], ignore_index=True)
        if len(estimates):  # else every trace is outside the tables: listed below, no speed-up to draw
            figures += [*F.speedups(estimates, tables), F.breakdown(estimates)]
        figures.append(F.token_lengths(per_trace(records)))
        tables_md["Why SoT pays off or not, per table"] = pd.DataFrame(
            [{"table": label(t), "why": an.why_sot(t, r[0], frame)} for t, r in zip(tables, results) if len(r[0])], columns=["table", "why"])
        slower = estimates[estimates["speedup"] < 1][["table", "id", "model", "category", "normal_ms", "sot_ms", "speedup"]]
        tables_md["Questions SoT slows down"] = slower
        tables_md["Traces a table cannot answer"] = failed
        if traces_left_out is not None:
            tables_md["Traces left out before estimating, and why"] = traces_left_out
        grids = [{"table": label(t), **as_options(grid)} for t in tables if (grid := answering_grid(frame, t))]  # none where only cells are missing
        if len(failed) and grids:  # what to profile or simulate next
            tables_md["Grid of a table that answers every trace (sotlat profile or simulate options)"] = pd.DataFrame(grids)
        if estimates["extrapolated"].any():
            tables_md["Estimates using extrapolated decode latency"] = estimates[estimates["extrapolated"]][["table", "id", "model", "category"]]
    figures += [F.capacity(tables, budget_gb, headroom), F.throughput(tables, context, prompt, slo_tpot_ms, slo_ttft_ms),
                F.sot_whatif(tables, answer)]

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        sections = []
        for f in figures:
            png = io.BytesIO()
            f.fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
            (tmp / f"{f.slug}.png").write_bytes(png.getvalue())
            f.data.to_csv(tmp / f"{f.slug}.csv", index=False)
            sections.append((f, base64.b64encode(png.getvalue()).decode()))
        sources = [label(t) for t in tables]
        (tmp / "report.md").write_text(_markdown(sections, tables_md, sources, trace_paths, left_out), encoding="utf-8")
        (tmp / "index.html").write_text(_html(sections, tables_md, sources, trace_paths, left_out), encoding="utf-8")
    return out_dir / "index.html"


def report(tables: list[Path], traces: list[Path], out: Path, memory_budget_gb: float | None = None, headroom: float = 0.1,
           slo_tpot_ms: float | None = None, slo_ttft_ms: float | None = None, context: int | None = None, answer_tokens: int = an.WHATIF_ANSWER) -> dict:
    """The report of table files (and trace files) in the folder `out`: {index (its index.html),
    left_out (a line for each table without a latency)}. The throughput figure's context is
    DEFAULT_CONTEXT, or less where a table's decode ends sooner; one past a table's decode is refused."""
    from sotlat.tables.stats import distinct_labels

    if Path(out).suffix.lower() in (".html", ".htm", ".md"):
        raise InputError(f"{out}: give a folder; the report writes index.html, report.md, figures and CSVs in it", param="out")
    frames = [load_table(t) for t in tables]
    decode_ends = {file: int(f.loc[f["phase"] == "decode", "length"].max()) if (f["phase"] == "decode").any() else 0 for file, f in zip(tables, frames)}
    if context is None:
        context = max(min(DEFAULT_CONTEXT, *decode_ends.values()), 1)
    for file, k_max in decode_ends.items():  # else the throughput figure is silently empty
        if context > k_max:
            raise InputError(f"`context` {context}: past {file}'s decode range (k up to {k_max})")
    distinct_labels(frames, tables)
    left_out = untimed(frames, tables)
    if len(left_out) == len(frames):
        raise InputError("; ".join(left_out) + ": no latency to report")
    index = build_report(frames, list(traces), out, memory_budget_gb, headroom, slo_tpot_ms, slo_ttft_ms, context, answer=answer_tokens)
    return {"index": index, "left_out": left_out}


def untimed(tables: list[pd.DataFrame], names: list | None = None) -> list[str]:
    """A line for each table (named by `names`, else its label) without a single latency: a model
    larger than the GPU's memory."""
    return [f"{name}: no cell has a latency ({', '.join(f'{n:,} {s}' for s, n in t['status'].value_counts().items())})"
            for t, name in zip(tables, names or [label(t) for t in tables]) if not F.has_latency(t)]


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    cells = frame.map(lambda v: F.number(v) if isinstance(v, float) or v is None else str(v).replace("|", "\\|"))  # a '|' would end the cell
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    """A report table as HTML; missing values (a trace without a model) as '-', as in report.md."""
    if frame.empty:
        return "<p>none</p>"
    return frame.map(lambda v: "-" if v is None else v).to_html(index=False, float_format=F.number, na_rep="-")


def _markdown(sections, tables_md, sources, traces, left_out) -> str:
    out = ["# sotlat report", "", "Tables: " + "; ".join(sources), ""]
    out += [f"Left out of the latency figures: {line}.\n" for line in left_out]
    if traces:
        out += ["Traces: " + ", ".join(str(Path(t).name) for t in traces), ""]
    for f, _ in sections:
        out += [f"## {f.title}", "", f"![{f.title}]({f.slug}.png)", "", *([f.caption, ""] if f.caption else []), f"Data: [{f.slug}.csv]({f.slug}.csv)", ""]
    for title, frame in tables_md.items():
        out += [f"## {title}", "", _md_table(frame)]
    return "\n".join(out)


def _html(sections, tables_md, sources, traces, left_out) -> str:
    esc = html.escape
    body = [f"<h1>sotlat report</h1><p>Tables: {esc('; '.join(sources))}</p>"]
    body += [f"<p>Left out of the latency figures: {esc(line)}.</p>" for line in left_out]
    if traces:
        body.append(f"<p>Traces: {esc(', '.join(Path(t).name for t in traces))}</p>")
    for f, b64 in sections:
        body.append(f"<section><h2>{esc(f.title)}</h2><img alt='{esc(f.title)}' src='data:image/png;base64,{b64}'>"
                    + (f"<p>{esc(f.caption)}</p>" if f.caption else "") + f"<p><a href='{f.slug}.csv'>data: {f.slug}.csv</a></p></section>")
    for title, frame in tables_md.items():
        body.append(f"<section><h2>{esc(title)}</h2>{_html_table(frame)}</section>")
    style = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222} img{max-width:100%} "
             "table{border-collapse:collapse;font-size:0.85em} td,th{border:1px solid #ccc;padding:2px 6px} section{margin-bottom:2em}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>sotlat report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
