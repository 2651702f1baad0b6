"""The demo's grid is the smallest that covers the shipped example traces."""

from conftest import synthetic_table
from sotlat.demo import demo_spec, example_traces
from sotlat.estimator import estimate, load_traces


def test_demo_grid_covers_the_example_traces_exactly(monkeypatch):
    monkeypatch.setattr("sotlat.demo.default_device", lambda: "cpu")
    traces = load_traces(example_traces())
    spec = demo_spec(example_traces())
    assert spec.device == "cpu" and spec.arch == "smollm2-135m" and spec.dtype == "float32"
    assert spec.batches == sorted({1, *traces["num_points"].astype(int)})
    longest = max((traces[f"{s}_prompt"] + traces[f"{s}_completion"]).max() for s in ("normal", "skeleton", "points"))
    assert spec.decode_max == longest
    grid = spec.prefill_lengths
    table = synthetic_table(batches=spec.batches, prefill=(grid.start, grid.stop, grid.step), decode_max=spec.decode_max)
    est = estimate(table, traces)  # raises if any lookup fell outside the grid
    assert len(est) == len(traces) and not est["extrapolated"].any()
    assert grid.lengths[-1] <= traces[["normal_prompt", "skeleton_prompt", "points_prompt"]].max().max()  # no larger than needed
