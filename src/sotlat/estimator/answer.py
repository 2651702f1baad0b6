"""Which traces a table answers, and what would answer the rest: estimates of trace files, and the
grid of a table (profiled or simulated) that would hold every one of them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sotlat.errors import InputError
from sotlat.estimator.equations import estimate_answerable, unanswered_error
from sotlat.estimator.traces import needs, read_records, traces_frame
from sotlat.tables.grid import PrefillGrid, as_options, format_batches
from sotlat.tables.io import load_table


def answering_grid(frame: pd.DataFrame, table: pd.DataFrame) -> dict[str, str] | None:
    """The grid (batches, prefill_lengths and decode_max, as `profile` and `simulate` take them) of a
    table that answers every one of these traces, its prefill grid on `table`'s start and step:
    what to measure or simulate next. None when `table`'s own grid already holds all that: what it
    cannot answer are cells it has no latency for (oom on its device, or not yet measured), which
    no other grid mends."""
    need, grid = needs(frame), table.attrs["sotlat"].method.grid
    prefill = grid.prefill_lengths
    reach = PrefillGrid.reaching(need["longest_prompt"], prefill.start, prefill.step)
    if set(need["batches"]) <= set(grid.batches) and reach.lengths[-1] <= prefill.lengths[-1] and need["longest_context"] <= grid.decode_max:
        return None
    return {"batches": format_batches(need["batches"]), "prefill_lengths": str(reach), "decode_max": str(need["longest_context"])}


def answering_advice(traces: pd.DataFrame, table: pd.DataFrame, which: str) -> str:
    """What would answer `which` traces: the grid options of a `sotlat profile` or `simulate` that
    would, or, where the table's grid already holds them, that only the missing cells stand in the way."""
    grid = answering_grid(traces, table)
    if grid is None:
        return (f"the table's grid already covers {which}; what is missing are cells with no latency in it "
                "(oom on its device, or not measured yet), which no other grid mends")
    return f"a table that answers {which} (sotlat profile or simulate): " + " ".join(f"{k} {v}" for k, v in as_options(grid).items())


def estimate_files(table: str | Path, traces: list[str | Path], extrapolate: bool = False, peak_tflops: float | None = None,
                   decode_terms: str = "printed", skip_unanswerable: bool = False) -> dict:
    """Eq. 1-4 of the traces in `traces` (files) on the table file `table`: {table, traces (the frame),
    estimates, unanswered}. Traces the table cannot answer are an error unless `skip_unanswerable`,
    and so is a table that answers none of them; both errors say what table would."""
    table_frame = load_table(table)
    frame = traces_frame([r for p in traces for r in read_records(p)])  # also refuses one model's trace id twice, in one file or two
    estimates, unanswered = estimate_answerable(table_frame, frame, extrapolate, peak_tflops, decode_terms)
    if len(unanswered) and not skip_unanswerable:
        raise InputError(f"{unanswered_error(unanswered)}; `skip_unanswerable` estimates the others and lists these")
    if estimates.empty:
        first = unanswered.iloc[0]
        which = "the one trace is not" if len(frame) == 1 else f"none of the {len(frame)} traces is"
        raise InputError(f"{which} inside the table (trace {first['trace']}: {first['reason']}); "
                         f"{answering_advice(frame, table_frame, 'it' if len(frame) == 1 else 'them all')}")
    return {"table": table_frame, "traces": frame, "estimates": estimates, "unanswered": unanswered}
