"""The demo's grid is the smallest within the device's budget that covers the recorded traces it selects."""

import pytest
from conftest import synthetic_table
from sotlat.demo import CPU, GPU, covered, demo_spec, recorded_traces
from sotlat.estimator.traces import PROMPTS
from sotlat.tables.grid import format_batches
from sotlat.estimator import estimate_answerable, load_traces


@pytest.mark.parametrize("device, budget", [("cpu", CPU), ("cuda", GPU)])
def test_demo_grid_answers_exactly_the_covered_recorded_traces(device, budget):
    traces = load_traces(recorded_traces())
    inside = covered(traces, budget)
    assert inside.any() and (traces.loc[inside, "num_points"].fillna(1) <= budget.max_batch).all()
    spec = demo_spec(traces, device)
    assert (spec.arch, spec.device, spec.dtype) == (budget.arch, device, budget.dtype)
    assert spec.batches == sorted({1, *traces.loc[inside, "num_points"].dropna().astype(int)})
    grid = spec.prefill_lengths
    longest_prompt = traces.loc[inside, PROMPTS].max().max()
    assert grid.lengths[-1] <= longest_prompt < grid.lengths[-1] + grid.step  # no larger than needed
    assert spec.decode_max <= budget.decode_measured

    table = synthetic_table(batches=spec.batches, prefill=(grid.start, grid.stop, grid.step), decode_max=spec.decode_max)
    estimates, failed = estimate_answerable(table, traces, extrapolate=True)
    assert set(estimates["id"]) == set(traces.loc[inside, "id"])
    assert set(failed["id"]) == set(traces.loc[~inside, "id"])
    longest_k = max((traces.loc[inside, f"{s}_prompt"] + traces.loc[inside, f"{s}_completion"]).max() for s in ("normal", "skeleton", "points"))
    assert estimates["extrapolated"].any() == (longest_k > spec.decode_max)


def test_demo_end_to_end_with_the_tiny_architecture(tmp_path, monkeypatch):
    """`sotlat demo` profiles, estimates the covered traces, says why SoT pays off or not, shows the
    what-if beside the paper's setting, counts the traces left out by reason, and names what to open."""
    import pandas as pd
    from typer.testing import CliRunner

    from sotlat.cli import app
    from sotlat.demo import Budget, left_out, skipped_summary

    monkeypatch.setattr("sotlat.demo.default_device", lambda: "cpu")
    tiny = Budget("tiny", "float32", 8, 384, 80, 64, 2, 1, 1, 0, 5)  # decode reaches 8 x 64 by extrapolation
    monkeypatch.setattr("sotlat.demo.CPU", tiny)
    result = CliRunner().invoke(app, ["demo", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    traces = load_traces(recorded_traces())
    spec = demo_spec(traces, "cpu")
    assert result.output.startswith(f"profiling tiny on cpu (float32): batches {format_batches(spec.batches)}, prefill 1..")
    inside = covered(traces, tiny)
    estimates = pd.read_csv(tmp_path / "estimates.csv")
    assert set(estimates["id"]) == set(traces.loc[inside, "id"]) and estimates["extrapolated"].all()
    # the traces left out, counted by reason: a batch left out on purpose is said to be so
    skipped = left_out(traces, tiny)
    assert f"{inside.sum()} of the {len(traces)} recorded traces estimated; left out (the report lists each):" in text
    for line in skipped_summary(skipped, tiny):
        assert line in text
    assert "which the demo leaves out: fewer than 5 traces need each" in text and "but the table has batches" not in text
    # why SoT pays off or not here, with the numbers it turns on
    assert "Why: On this table a decode step of 8 sequences" in text and "SoT's point stage decodes as long as its longest point" in text
    assert f"(median speed-up {estimates['speedup'].median():.2f}x, faster on {(estimates['speedup'] > 1).mean():.0%})" in text
    # SoT's mechanism: this table beside the paper's setting, simulated
    whatif = [line for line in result.output.split("What-if:")[1].splitlines() if line.startswith("│")]
    assert "llama-7b, A100 80GB, HF eager (simulated)" in text and [row.split("│")[1].strip() for row in whatif] == ["2", "4", "6", "8", "16"]
    assert f"next: sotlat latency --table {tmp_path / 'tiny__cpu.parquet'}" in text
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Traces left out before estimating, and why" in report and skipped["reason"].iloc[0].replace("|", "\\|") in report
    assert "Why SoT pays off or not, per table" in report


def test_the_gpu_demo_is_sized_to_minutes_by_the_simulated_plan():
    # what `sotlat plan` says the demo's profile costs on the paper's GPU under hf-eager (HF transformers eager)
    from sotlat.models.catalogue import gpu_spec
    from sotlat.simulator.model import load_calibration
    from sotlat.simulator.plan import profile_seconds
    from sotlat.simulator.simulate import simulate

    spec = demo_spec(load_traces(recorded_traces()), "cuda")
    table = simulate(spec.arch, None, gpu_spec("a100-80gb-sxm", spec.dtype), load_calibration("hf-eager"), spec.dtype, spec.batches,
                     spec.prefill_lengths, spec.decode_max)
    minutes = profile_seconds(table, spec.prefill_runs, spec.decode_runs, spec.decode_warmup)["total_s"].sum() / 60
    assert 3 < minutes < 8


def test_demo_into_a_file_is_one_line_not_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from sotlat.cli import app

    (tmp_path / "afile").write_text("")
    result = CliRunner().invoke(app, ["demo", "--out-dir", str(tmp_path / "afile")])
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: {tmp_path / 'afile'}: cannot write it here (File exists)"]
