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
    """`sotlat demo` profiles, estimates the covered traces, writes estimates and the report listing the rest."""
    import pandas as pd
    from typer.testing import CliRunner

    from sotlat.cli import app
    from sotlat.demo import Budget

    monkeypatch.setattr("sotlat.demo.default_device", lambda: "cpu")
    tiny = Budget("tiny", "float32", 8, 384, 40, 64, 1, 0, 1, 1)  # decode reaches 8 x 64 by extrapolation
    monkeypatch.setattr("sotlat.demo.CPU", tiny)
    result = CliRunner().invoke(app, ["demo", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    spec = demo_spec(load_traces(recorded_traces()), "cpu")
    assert result.output.startswith(f"profiling tiny on cpu (float32): batches {format_batches(spec.batches)}, prefill 1..")
    traces = load_traces(recorded_traces())
    inside = covered(traces, tiny)
    estimates = pd.read_csv(tmp_path / "estimates.csv")
    assert set(estimates["id"]) == set(traces.loc[inside, "id"]) and estimates["extrapolated"].all()
    assert f"{(~inside).sum()} of {len(traces)} traces are outside the table" in result.output
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Traces a table cannot answer" in report and traces.loc[~inside, "id"].iloc[0] in report


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
