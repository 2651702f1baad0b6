"""The estimator against hand computations of the paper's Eq. 1-4 on tables of known cells."""

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_table, trace, write_jsonl
from sotlat.errors import InputError
from sotlat.estimator import OUTPUT_COLUMNS, estimate, estimate_answerable, load_traces, performance_summary, summarize
from sotlat.estimator.traces import read_records, traces_frame

T_P = lambda b, l: 10.0 * b + 0.5 * l  # noqa: E731
T_D = lambda b, k: 1.0 + 0.1 * b + 0.001 * k  # noqa: E731
F_D = lambda b, k: b * (1e9 + 1e6 * k)  # noqa: E731


def eq1(l_in, l_out, b):
    """Eq. 1 as printed: the prefill at grid point floor(l/10)*10+1, then l_out + 1 decode terms."""
    return T_P(b, (l_in // 10) * 10 + 1), sum(T_D(b, k) for k in range(l_in, l_in + l_out + 1))


def test_normal_skeleton_and_points_follow_eq_1_to_3(table):
    est = estimate(table, [trace()]).iloc[0]
    pre, dec = eq1(20, 50, 1)
    assert est.normal_prefill_ms == pytest.approx(pre) and est.normal_decode_ms == pytest.approx(dec)
    assert est.normal_ms == pytest.approx(pre + dec)
    s_pre, s_dec = eq1(30, 10, 1)
    p_pre, p_dec = eq1(15, 8, 2)  # Eq. 3: longest prompt 15, longest answer 8, B = 2 points
    assert (est.skeleton_prefill_ms, est.skeleton_decode_ms) == pytest.approx((s_pre, s_dec))
    assert (est.points_prefill_ms, est.points_decode_ms) == pytest.approx((p_pre, p_dec))
    assert est.sot_ms == pytest.approx(s_pre + s_dec + p_pre + p_dec)
    assert est.speedup == pytest.approx((pre + dec) / (s_pre + s_dec + p_pre + p_dec))
    assert est.num_points == 2 and not est.extrapolated


def test_eq1_counts_l_out_plus_one_decode_terms(table):
    flat = synthetic_table(t_decode=lambda b, k: 1.0)
    est = estimate(flat, [trace(normal=(20, 50), skeleton=None)]).iloc[0]
    assert est.normal_decode_ms == pytest.approx(51.0)


def test_eq4_decode_tflops_and_peak_memory(table):
    est = estimate(table, [trace()], peak_tflops=2.0).iloc[0]
    ks = range(20, 71)
    tflops = sum(F_D(1, k) for k in ks) / (sum(T_D(1, k) for k in ks) * 1e-3) / 1e12
    assert est.normal_decode_tflops == pytest.approx(tflops)
    assert est.normal_decode_utilization == pytest.approx(tflops / 2.0)
    ks = range(15, 24)
    assert est.points_decode_tflops == pytest.approx(sum(F_D(2, k) for k in ks) / (sum(T_D(2, k) for k in ks) * 1e9))
    # memory = 1000 B + length: normal peaks at its last decode cell, SoT at the points stage's
    assert est.normal_peak_memory_bytes == 1000 + 70
    assert est.sot_peak_memory_bytes == 2000 + 23


def test_output_columns_and_missing_stages(table):
    est = estimate(table, [trace("a", skeleton=None), trace("b", normal=None)])
    assert list(est.columns) == OUTPUT_COLUMNS
    assert np.isnan(est.loc[0, "sot_ms"]) and np.isnan(est.loc[0, "speedup"]) and est.loc[0, "normal_ms"] > 0
    assert np.isnan(est.loc[1, "normal_ms"]) and est.loc[1, "sot_ms"] > 0


def test_vectorised_over_many_traces_matches_one_by_one(table):
    rng = np.random.default_rng(0)
    traces = [trace(f"q{i}", normal=(int(rng.integers(1, 90)), int(rng.integers(0, 100))),
                    skeleton=(int(rng.integers(1, 90)), int(rng.integers(0, 50))),
                    points=[(int(rng.integers(1, 90)), int(rng.integers(0, 60))) for _ in range(int(rng.integers(1, 5)))])
              for i in range(50)]
    together = estimate(table, traces)
    alone = pd.concat([estimate(table, [t]) for t in traces], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)


@pytest.mark.parametrize(
    "tr, message",
    [
        (trace(normal=(80, 130)), r"trace q1: normal stage needs t\^D_1\(k\) up to k=210, but the table's decode for batch 1 ends at k=200 \(`extrapolate` extends it to k=1600 at most\)"),
        (trace(points=[(5, 5)] * 6), r"trace q1: points stage needs batch 6, but the table has batches 1-4"),
        (trace(skeleton=(100, 5)), r"trace q1: skeleton stage needs t\^P_1\(101\) for a 100-token prompt, but the prefill grid ends at 91"),
    ],
)
def test_out_of_range_names_trace_and_cell(table, tr, message):
    with pytest.raises(InputError, match=message):
        estimate(table, [tr])


def test_oom_cells_are_out_of_range():
    oom = lambda phase, b, l: "oom" if b >= 2 and ((phase == "decode" and l >= 18) or (phase == "prefill" and l >= 41)) else "ok"  # noqa: E731
    table = synthetic_table(status=oom)
    with pytest.raises(InputError, match=r"points stage needs t\^D_2\(18\), which is oom in the table"):
        estimate(table, [trace()])
    with pytest.raises(InputError, match=r"points stage needs t\^P_3\(41\) for a 45-token prompt, which is oom"):
        estimate(table, [trace(points=[(45, 1)] * 3)])
    with pytest.raises(InputError, match=r"\(1 more trace fails\)"):
        estimate(table, [trace("a"), trace("b")])
    with pytest.raises(InputError, match=r"\(2 more traces fail\)"):
        estimate(table, [trace("a"), trace("b"), trace("c")])


def test_extrapolate_extends_decode_linearly_and_flags_the_trace(table):
    tr = trace(normal=(80, 190))
    est = estimate(table, [tr, trace("ok")], extrapolate=True)
    pre, dec = eq1(80, 190, 1)  # T_D is linear in k: the fit over the last quarter recovers it
    assert est.loc[0, "normal_ms"] == pytest.approx(pre + dec)
    assert est.loc[0, "normal_decode_tflops"] > 0
    assert list(est["extrapolated"]) == [True, False]


def test_extrapolation_reaches_eight_times_the_profiled_decode_and_no_further(table):
    reach = 8 * 200  # the table's decode ends at k = 200
    inside, beyond = trace("in", normal=(20, reach - 20)), trace("out", normal=(20, reach - 19))
    est, failed = estimate_answerable(table, [inside, beyond], extrapolate=True)
    assert list(est["id"]) == ["in"] and est.loc[0, "extrapolated"]
    assert list(failed["reason"]) == [f"normal stage needs t^D_1(k) up to k={reach + 1}, but the table's decode for batch 1 ends at k=200 "
                                      f"(extrapolated, it reaches k={reach} at most)"]  # already extrapolating: no advice to
    _, failed = estimate_answerable(table, [beyond])
    assert failed["reason"].iloc[0].endswith(f"ends at k=200 (`extrapolate` extends it to k={reach} at most)")


def test_recorded_latencies_are_reported():
    t = trace()
    t["normal"]["latency_ms"] = 900.0
    t["sot"]["skeleton"]["latency_ms"] = 100.0
    for p, ms in zip(t["sot"]["points"], (200.0, 350.0)):
        p["latency_ms"] = ms
    batched = trace("b")
    batched["sot"]["skeleton"]["latency_ms"] = 50.0
    batched["sot"]["points_latency_ms"] = 70.0
    est = estimate(synthetic_table(), [t, batched])
    assert list(est["recorded_sot_ms"]) == [450.0, 120.0]  # skeleton + slowest parallel call; or + batched stage
    assert est.loc[0, "recorded_normal_ms"] == 900.0 and np.isnan(est.loc[1, "recorded_normal_ms"])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"t.jsonl:2: not valid JSON"),
        ('{"id": "x"}', r"t.jsonl:2: a trace needs 'normal', 'sot' or both"),
        ('{"id": 3, "normal": {}}', r"t.jsonl:2: id must be a non-empty string"),
        ('{"id": "x", "normal": {"prompt_tokens": 0, "completion_tokens": 3}}', r"t.jsonl:2: normal.prompt_tokens must be a positive integer"),
        ('{"id": "x", "sot": {"skeleton": {"prompt_tokens": 4, "completion_tokens": 3}, "points": [{"prompt_tokens": 4, "completion_tokens": -1}]}}',
         r"t.jsonl:2: sot.points\[0\].completion_tokens must be a non-negative integer"),
        ('{"id": "x", "sot": {"skeleton": {"prompt_tokens": 4, "completion_tokens": 3}, "points": []}}', r"t.jsonl:2: sot.points must be a non-empty list"),
        ('{"id": "x", "normal": {"prompt_tokens": 4, "completion_tokens": 3, "latency_ms": "fast"}}', r"t.jsonl:2: normal.latency_ms must be a non-negative number"),
        ('{"id": "ok", "normal": {"prompt_tokens": 4, "completion_tokens": 3}}', r"t.jsonl:2: trace id 'ok' is already at \S*t.jsonl:1$"),
        # past any context window: a mistake, not an int64 to overflow or an array to allocate
        ('{"id": "x", "normal": {"prompt_tokens": 4, "completion_tokens": 100000000000000000000}}',
         r"t.jsonl:2: normal.completion_tokens must be a non-negative integer up to 10,000,000"),
    ],
)
def test_bad_traces_name_file_line_and_field(tmp_path, line, message):
    path = write_jsonl(tmp_path / "t.jsonl", [trace("ok"), line])
    with pytest.raises(InputError, match=message):
        load_traces(path)


def test_load_traces_carries_optional_fields(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [trace("a", category="math", model="m", question="2+2?"), "", trace("b", normal=None)])
    frame = load_traces(path)
    assert list(frame["id"]) == ["a", "b"]
    assert frame.loc[0, "category"] == "math" and pd.isna(frame.loc[1, "category"])
    assert frame.loc[0, "points_prompt"] == 15 and frame.loc[0, "points_completion"] == 8
    bom = tmp_path / "bom.jsonl"  # as some Windows editors save it: a byte-order mark before the first line
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "t.jsonl").read_bytes())
    assert list(load_traces(bom)["id"]) == ["a", "b"]


def test_traces_of_several_models_share_question_ids(tmp_path, table):
    """A trace is its model and id: the same questions answered by two models (the paper's Fig. 4) are
    two sets of traces, estimated and summarised per model; one model's id twice is still refused."""
    a = write_jsonl(tmp_path / "a.jsonl", [trace("q1", model="m", normal=(20, 80)), trace("q2", model="m")])
    b = write_jsonl(tmp_path / "b.jsonl", [trace("q1", model="n", normal=(20, 10)), trace("q2", model="n", points=[(15, 5)] * 9)])
    frame = traces_frame([r for p in (a, b) for r in read_records(p)])
    est, unanswered = estimate_answerable(table, frame)
    assert list(zip(est["model"], est["id"])) == [("m", "q1"), ("m", "q2"), ("n", "q1")]
    assert est["normal_ms"].iloc[0] != est["normal_ms"].iloc[2]  # each model's own lengths
    assert unanswered[["id", "model", "trace"]].values.tolist() == [["q2", "n", "q2 (n)"]]  # named by model where several
    assert set(summarize(est)["model"]) == {"m", "n"}
    with pytest.raises(InputError, match=r"b.jsonl:2: trace id 'q1' of model 'n' is already at \S*b.jsonl:1$"):
        traces_frame([r for p in (a, b) for r in read_records(p)] + [(f"{b}:2", trace("q1", model="n"))])


def test_summary_means_per_model_and_category(table):
    traces = [trace("a", category="x", model="m"), trace("b", category="x", model="m", normal=(20, 80)),
              trace("c", category="y", model="m", normal=(20, 3), points=[(15, 30), (12, 8)])]
    est = estimate(table, traces)
    summary = summarize(est)
    assert list(summary["category"]) == ["x", "y", "all"]
    x = summary[summary.category == "x"].iloc[0]
    assert x.n == 2 and x.speedup == pytest.approx(est.speedup[:2].mean())  # mean of per-question ratios
    every = summary[summary.category == "all"].iloc[0]
    assert every.n == 3 and every.median_speedup == pytest.approx(est.speedup.median())
    assert every.sot_faster == pytest.approx((est.speedup > 1).mean()) and 0 < every.sot_faster < 1
    # all the questions' normal latency over their SoT latency: not the mean of the ratios
    assert every.total_speedup == pytest.approx(est.normal_ms.sum() / est.sot_ms.sum()) and every.total_speedup != pytest.approx(every.speedup)
    alone = summarize(estimate(table, traces + [trace("d", category="y", model="m", skeleton=None)]))  # a normal answer without SoT
    assert alone[alone.category == "all"].iloc[0].total_speedup == pytest.approx(every.total_speedup)  # counts only traces with both


def test_performance_summary_is_eq4_mean_and_largest_peak_memory_per_model(table):
    traces = [trace("a", model="m"), trace("b", model="m", normal=(20, 80), points=[(15, 5)] * 4), trace("c", model="n")]
    est = estimate(table, traces, peak_tflops=100.0)
    perf = performance_summary(est).set_index("model")
    assert list(perf.index) == ["m", "n"] and list(perf["n"]) == [2, 1]
    m = est[est["model"] == "m"]
    for stage in ("normal", "skeleton", "points"):
        assert perf.loc["m", f"{stage}_decode_tflops"] == pytest.approx(m[f"{stage}_decode_tflops"].mean())
        assert perf.loc["m", f"{stage}_decode_utilization"] == pytest.approx(m[f"{stage}_decode_tflops"].mean() / 100.0)
    assert perf.loc["m", "sot_peak_memory_bytes"] == m["sot_peak_memory_bytes"].max() == 4000 + 15 + 5  # batch 4 in trace b
    assert perf.loc["m", "normal_peak_memory_bytes"] == 1000 + 20 + 80
    assert "normal_decode_utilization" not in performance_summary(estimate(table, traces))


def test_loop_reading_of_eq1_has_l_out_minus_one_decode_terms():
    flat = synthetic_table(t_decode=lambda b, k: 1.0)
    traces = [trace("a", normal=(20, 50), skeleton=None), trace("b", normal=(20, 1), skeleton=None), trace("c", normal=(20, 0), skeleton=None)]
    est = estimate(flat, traces, decode_terms="loop")
    assert list(est["normal_decode_ms"]) == [49.0, 0.0, 0.0]
    assert est.loc[0, "normal_peak_memory_bytes"] == 1000 + 68  # k = 20 .. 68
    assert est.loc[1, "normal_peak_memory_bytes"] == 1000 + 21  # no decode step: the prefill cell t^P_1(21)
    with pytest.raises(InputError, match="^decode_terms: "):
        estimate(flat, traces, decode_terms="both")
