"""trace with the embedded model; replay + validate with the tiny architecture."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import trace, write_jsonl, edit
from sotlat.cli import app
from sotlat.sot.jsonl import finished_keys
from sotlat.errors import InputError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_trace_with_the_embedded_model_and_resume(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "category": "generic", "question": "How can I improve my time management skills?"}])
    out = tmp_path / "traces.jsonl"
    result = invoke("trace", "--questions", questions, "--max-new-tokens", "8", "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    (line,) = out.read_text().splitlines()
    t = json.loads(line)
    assert t["id"] == "q1" and t["model"] == "smollm2-135m-instruct" and t["device"].startswith("cpu")
    assert t["question"].startswith("How can I") and t["normal"]["text"] and t["normal"]["latency_ms"] > 0
    assert 0 < t["normal"]["completion_tokens"] <= 8 and t["normal"]["prompt_tokens"] > 10
    skeleton = (t.get("sot") or t["sot_fallback"])["skeleton"]
    assert skeleton["text"].startswith("1.") and skeleton["prompt_tokens"] > 200  # Prompt 1 with its demonstrations
    if "sot" in t:
        assert t["sot"]["points_latency_ms"] > 0
        for p in t["sot"]["points"]:
            assert p["skeleton"] and p["prompt_tokens"] > skeleton["prompt_tokens"] / 4 and 0 < p["completion_tokens"] <= 8
    assert invoke("trace", "--questions", questions, "--max-new-tokens", "8", "--out", out).exit_code == 2
    result = invoke("trace", "--questions", questions, "--max-new-tokens", "8", "--out", out, "--resume")
    assert result.exit_code == 0 and "1 from before" in result.output
    assert len(out.read_text().splitlines()) == 1


def test_outputs_that_cannot_be_written_or_models_that_cannot_load_are_one_line_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a")])
    for args in (["replay", "--arch", "tiny", "--traces", traces, "--out", tmp_path / "afile" / "m.jsonl"],
                 ["trace", "--limit", "1", "--out", tmp_path / "afile" / "t.jsonl"]):
        result = invoke(*args)
        assert result.exit_code == 2 and result.output.splitlines() == [f"error: {tmp_path / 'afile' / args[-1].name}: cannot write it here (File exists)"]
    (tmp_path / "empty").mkdir()  # transformers' refusal runs over several lines: still one
    result = invoke("trace", "--limit", "1", "--model", tmp_path / "empty", "--out", tmp_path / "out.jsonl")
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1 and f"--model: {tmp_path / 'empty'}: cannot load" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_finished_keys_cuts_a_torn_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "model": "m"}\n{"id": "c", "no')
    assert finished_keys(path, resume=True) == {(None, "a"), ("m", "b")}  # a trace is its model's
    assert path.read_text() == '{"id": "a"}\n{"id": "b", "model": "m"}\n'
    with pytest.raises(InputError, match="already exists"):
        finished_keys(path, resume=False)
    path.write_bytes('{"id": "a", "text": "é"}\n{"id": "b", "text": "é'.encode()[:-1])  # torn inside a two-byte character
    assert finished_keys(path, resume=True) == {(None, "a")}
    path.write_bytes(b'\xff\xfe{"id": "a"}\n')
    with pytest.raises(InputError, match="t.jsonl: cannot resume it: not a UTF-8 JSONL file"):
        finished_keys(path, resume=True)
    path.write_text('{"id": "a"}\n[1, 2]\n')
    with pytest.raises(InputError, match="t.jsonl:2: not a record with an id"):
        finished_keys(path, resume=True)


def test_replay_then_validate_with_tiny(tmp_path):
    table = tmp_path / "tiny.parquet"
    grid = ["--arch", "tiny", "--device", "cpu", "--batches", "1-3", "--prefill-lengths", "1:80:10", "--decode-max", "100",
            "--prefill-runs", "3", "--prefill-warmup", "1", "--decode-runs", "2"]
    assert invoke("profile", *grid, "--out", table).exit_code == 0
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a", category="x", normal=(30, 40), skeleton=(50, 10), points=[(20, 12), (25, 5), (22, 9)],
                                                      max_new_tokens=40),
                                                trace("b", category="y", normal=(10, 60), skeleton=(45, 6), points=[(15, 20), (18, 3)])])
    measured = tmp_path / "m.jsonl"
    result = invoke("replay", "--arch", "tiny", "--device", "cpu", "--traces", traces, "--repeats", "2", "--out", measured)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in measured.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"] and lines[0]["sot"]["points"][1] == {"prompt_tokens": 25, "completion_tokens": 5}
    assert lines[0]["max_new_tokens"] == 40 and "max_new_tokens" not in lines[1]  # kept where the trace has it, for stats
    m = lines[0]["measured"]
    assert len(m["runs"]["normal_ms"]) == 2 and m["sot_ms"] == pytest.approx(m["skeleton_ms"] + m["points_ms"], rel=0.5)
    assert m["speedup"] == pytest.approx(m["normal_ms"] / m["sot_ms"])
    result = invoke("validate", "--table", table, "--measured", measured, "--json", "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for q in ("normal", "sot", "speedup"):
        assert summary[q]["n"] == 2 and {"median_abs_pct", "p90_abs_pct", "median_signed_pct"} <= set(summary[q])
    assert set(summary["by_category"]) == {"x", "y"}
    assert summary["better_eq1_reading"] in ("printed", "loop")
    assert (tmp_path / "v.csv").read_text().startswith("id,model,category,normal_estimated")
    result = invoke("validate", "--table", table, "--measured", traces)
    assert result.exit_code == 2 and "measured is missing" in result.output
    assert all(x["attention"] == "sdpa" for x in lines)
    for field, value in (("arch", "llama-7b"), ("dtype", "float16"), ("attention", "eager")):  # estimates of another run are no check
        other = write_jsonl(tmp_path / "other.jsonl", [{**x, field: value} for x in lines])
        result = invoke("validate", "--table", table, "--measured", other)
        assert result.exit_code == 2 and f"other.jsonl:1: {field} is '{value}', the table's is" in result.output
    older = write_jsonl(tmp_path / "older.jsonl", [{k: v for k, v in x.items() if k != "attention"} for x in lines])
    assert invoke("validate", "--table", table, "--measured", older).exit_code == 0  # replays from before attention was recorded ran sdpa
    elsewhere = write_jsonl(tmp_path / "elsewhere.jsonl", [{**x, "device": "NVIDIA H100 80GB HBM3"} for x in lines])
    result = invoke("validate", "--table", table, "--measured", elsewhere, "--json")  # a simulated table against a GPU: fair, and said
    assert result.exit_code == 0 and "note: measured on NVIDIA H100 80GB HBM3; the table is of tiny" in result.stderr
    assert json.loads(result.stdout)["normal"]["n"] == 2
    # the same questions replayed from another model's traces: each measurement checked against its own model's trace
    other = [{**x, "model": "n", "measured": {**x["measured"], "normal_ms": 2 * x["measured"]["normal_ms"]}} for x in lines]
    result = invoke("validate", "--table", table, "--measured", write_jsonl(tmp_path / "two.jsonl", lines + other), "--out", tmp_path / "v2.csv")
    assert result.exit_code == 0, result.output
    v = pd.read_csv(tmp_path / "v2.csv")
    assert v["id"].tolist() == ["a", "b", "a", "b"] and v["model"].isna().tolist() == [True, True, False, False]
    assert v["normal_measured"].iloc[2:].tolist() == pytest.approx(2 * v["normal_measured"].iloc[:2])
    assert v["normal_estimated"].iloc[2:].tolist() == pytest.approx(v["normal_estimated"].iloc[:2].tolist())

    short = tmp_path / "short.parquet"  # decode to k = 65: both normal answers (Eq. 1 to k = 70) run past it
    assert invoke("profile", *grid[:-8], "--decode-max", "65", *grid[-6:], "--out", short).exit_code == 0
    result = invoke("validate", "--table", short, "--measured", measured)
    assert result.exit_code == 2 and "trace a: normal stage needs t^D_1(k) up to k=70" in result.output and "(--extrapolate extends it" in result.output
    for t, extended in ((short, True), (table, False)):
        result = invoke("validate", "--table", t, "--measured", measured, "--extrapolate", "--json", "--out", tmp_path / "x.csv")
        assert result.exit_code == 0 and json.loads(result.output)["extrapolated_traces"] == 2 * extended
        assert pd.read_csv(tmp_path / "x.csv")["extrapolated"].tolist() == [extended] * 2


def test_stats_per_category(tmp_path):
    t1 = trace("a", category="x", normal=(10, 100), skeleton=(50, 12), points=[(20, 30), (25, 50)], max_new_tokens=100)
    t2 = trace("b", category="y", normal=(10, 40), skeleton=None, max_new_tokens=100)
    t2["sot_fallback"] = {"skeleton": {"prompt_tokens": 50, "completion_tokens": 9}, "reason": "no points"}
    traces = write_jsonl(tmp_path / "t.jsonl", [t1, t2])
    result = invoke("stats", "--traces", traces, "--out", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output

    s = pd.read_csv(tmp_path / "s.csv").set_index("category")
    assert s.loc["x", "points"] == 2 and s.loc["x", "point_tokens"] == 40 and s.loc["x", "longest_point_tokens"] == 50
    assert s.loc["x", "point_imbalance"] == 50 / 40 and s.loc["x", "sot_answer_tokens"] == 80 and s.loc["x", "skeleton_at_limit"] == 0
    assert s.loc["x", "normal_at_limit"] == 1 and s.loc["y", "fallbacks"] == 1 and s.loc["y", "skeleton_tokens"] == 9
    assert s.loc["all", "n"] == 2 and s.loc["all", "normal_tokens"] == 70
    result = invoke("stats", "--traces", traces, "--json")  # the same rows as data; an unknown value is null
    assert result.exit_code == 0, result.output
    rows = {r["category"]: r for r in json.loads(result.output)["rows"]}
    assert rows["x"]["point_imbalance"] == 50 / 40 and rows["y"]["fallbacks"] == 1 and rows["y"]["points"] is None


def test_stats_keep_models_apart_as_fig_12s_columns(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [trace("a1", category="x", model="m1", normal=(10, 100)),
                                           trace("a2", category="x", model="m1", normal=(10, 300))])
    b = write_jsonl(tmp_path / "b.jsonl", [trace("b1", category="x", model="m2", normal=(10, 20), points=[(5, 7)] * 4)])
    result = invoke("stats", "--traces", a, "--traces", b, "--out", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output

    s = pd.read_csv(tmp_path / "s.csv").set_index(["model", "category"])
    assert list(s.index) == [("m1", "x"), ("m1", "all"), ("m2", "x"), ("m2", "all")]
    assert s.loc[("m1", "all"), "normal_tokens"] == 200 and s.loc[("m2", "all"), "normal_tokens"] == 20  # not 140, the mean over both
    assert s.loc[("m2", "x"), "points"] == 4 and s.loc[("m1", "x"), "points"] == 2
    assert s["normal_at_limit"].isna().all()  # no trace records its max-new-tokens: unknown, not "none reached it"
    assert "m1" in result.output and "model x category" in result.output
    result = invoke("stats", "--traces", a)
    assert result.exit_code == 0 and f"{a} (m1): mean token lengths per category" in " ".join(result.output.split())
    result = invoke("stats", "--traces", a, "--traces", a)
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: --traces: {a} is given twice"]


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_ctrl_c_or_sigterm_during_trace_keeps_finished_questions_and_resume_goes_on(tmp_path, monkeypatch, how):
    import os
    import signal

    import sotlat.sot.model as model_mod
    import sotlat.sot.record as record_mod

    questions = write_jsonl(tmp_path / "q.jsonl", [{"id": f"q{i}", "question": f"Question {i}?"} for i in range(3)])
    calls = []
    handler = signal.getsignal(signal.SIGTERM)

    def fake_record(net, tokenizer, q, max_new_tokens, timer, eos):
        calls.append(q["id"])
        if len(calls) == 2:
            if how == "sigterm":  # what `timeout` or a job scheduler sends
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return {"id": q["id"], "category": None, "question": q["question"], "normal": {"prompt_tokens": 5, "completion_tokens": 3},
                "sot_fallback": {"skeleton": {"prompt_tokens": 9, "completion_tokens": 2}, "reason": "no points"}}

    monkeypatch.setattr(model_mod, "load_model", lambda spec, device: (None, None, "fake"))
    monkeypatch.setattr(model_mod, "eos_ids", lambda net, tok: [0])
    monkeypatch.setattr(record_mod, "record_question", fake_record)
    out = tmp_path / "t.jsonl"
    result = invoke("trace", "--questions", questions, "--device", "cpu", "--out", out)
    assert result.exit_code == 130 and "interrupted: 1 traces in" in result.output and "--resume" in result.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["q0"]
    assert signal.getsignal(signal.SIGTERM) == handler  # restored
    result = invoke("trace", "--questions", questions, "--device", "cpu", "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["q0", "q1", "q2"]
    assert calls == ["q0", "q1", "q1", "q2"]
    monkeypatch.setattr(model_mod, "load_model", lambda spec, device: (None, None, "other"))  # another model's answers, same file
    result = invoke("trace", "--questions", questions, "--device", "cpu", "--out", out, "--resume")
    assert result.exit_code == 0 and "6 traces (3 from before)" in result.output, result.output
    assert [(json.loads(x)["model"], json.loads(x)["id"]) for x in out.read_text().splitlines()][3:] == [("other", f"q{i}") for i in range(3)]


def test_stratified_sample_is_proportional_spread_and_deterministic():
    from sotlat.sot.replay import stratified

    frame = pd.DataFrame({"id": [f"t{i:02d}" for i in range(26)], "model": None, "category": ["a"] * 10 + ["b"] * 10 + ["c"] * 6})
    ids = lambda n: stratified(frame, n)["id"].tolist()  # noqa: E731
    picked = ids(13)
    assert picked == ids(13) and picked == sorted(picked)
    by_cat = frame.set_index("id").loc[picked, "category"].value_counts().to_dict()
    assert by_cat == {"a": 5, "b": 5, "c": 3}
    assert picked[:5] == ["t01", "t03", "t05", "t07", "t09"]  # evenly spaced within the category
    assert len(ids(4)) == 4 and set(ids(4)) & {"t20", "t21", "t22", "t23", "t24", "t25"}
    assert ids(26) == frame["id"].tolist() == ids(99)
    two = pd.concat([frame.assign(model="m"), frame.assign(model="n")], ignore_index=True)  # two models' traces of one question set
    picked = stratified(two, 26)
    assert picked.groupby(["model", "category"]).size().to_dict() == {(m, c): k for m in "mn" for c, k in (("a", 5), ("b", 5), ("c", 3))}


def test_replay_only_traces_the_table_answers_sampled_by_category(tmp_path):
    from conftest import synthetic_table
    from sotlat.tables import save_table

    table = tmp_path / "t.parquet"
    frame = synthetic_table(batches=(1, 2), prefill=(1, 100, 10), decode_max=120)
    edit(frame, {"arch.name": "tiny", "dtype": "float32", "method.attention": "sdpa"})
    save_table(frame, table)
    rows = [trace(f"x{i}", category="x", normal=(10, 20), skeleton=(30, 5), points=[(12, 6)] * 2) for i in range(4)]
    rows += [trace("y0", category="y", normal=(10, 20), skeleton=(30, 5), points=[(12, 6)] * 3),  # batch 3: not in the table
             trace("y1", category="y", normal=(10, 20), skeleton=(30, 5), points=[(12, 6)])]
    traces = write_jsonl(tmp_path / "t.jsonl", rows)
    measured = tmp_path / "m.jsonl"
    result = invoke("replay", "--arch", "tiny", "--device", "cpu", "--traces", traces, "--repeats", "1", "--out", measured,
                    "--table", table, "--sample", "3")
    assert result.exit_code == 0, result.output
    assert "5 of 6 traces are within" in result.output
    ids = [json.loads(x)["id"] for x in measured.read_text().splitlines()]
    assert len(ids) == 3 and "y0" not in ids and "y1" in ids

    long = write_jsonl(tmp_path / "long.jsonl", [trace("z", normal=(10, 200), skeleton=(30, 5), points=[(12, 6)] * 2)])  # decode past k = 120
    for args, within in (([], False), (["--extrapolate"], True)):
        result = invoke("replay", "--arch", "tiny", "--device", "cpu", "--traces", long, "--repeats", "1", "--out", tmp_path / f"z{within}.jsonl",
                        "--table", table, *args)
        assert (result.exit_code == 0) == within and (tmp_path / f"z{within}.jsonl").exists() == within, result.output

    # refused before any work: a table validate would refuse, or one that answers none of the traces
    wide = write_jsonl(tmp_path / "w.jsonl", rows[4:5])
    for args, message in ((["--dtype", "bfloat16"], "dtype is 'float32', this replay's is 'bfloat16'"),
                          (["--arch", "smollm2-135m"], "arch is 'tiny', this replay's is 'smollm2-135m'"),
                          (["--attention", "eager"], "attention is 'sdpa', this replay's is 'eager'"),
                          (["--traces", wide], "none of the 1 traces is within")):
        result = invoke("replay", "--arch", "tiny", "--device", "cpu", "--traces", traces, "--out", tmp_path / "r.jsonl", "--table", table, *args)
        assert result.exit_code == 2 and result.output.startswith(f"error: --table: {table}: ") and message in result.output, result.output
        assert not (tmp_path / "r.jsonl").exists()


def test_replay_past_a_learned_position_table_is_refused_before_the_model_is_built(tmp_path):
    cfg = tmp_path / "gpt2.json"
    cfg.write_text('{"model_type": "gpt2", "n_embd": 32, "n_head": 2, "n_layer": 1, "n_positions": 64, "vocab_size": 128,'
                   ' "bos_token_id": 0, "eos_token_id": 0}')
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a", normal=(30, 40))])  # context 70
    result = invoke("replay", "--config", cfg, "--device", "cpu", "--traces", traces, "--out", tmp_path / "m.jsonl")
    assert result.exit_code == 2 and not (tmp_path / "m.jsonl").exists()
    assert result.output.splitlines()[-1] == ("error: config (gpt2): its learned position table holds 64 positions, "
                                              "but the longest trace to replay needs 70")


@pytest.mark.parametrize("load, warning", [
    ({"cpu_busy_pct": 80.0}, "the CPUs were 80% busy with other work when the replay started"),
    ({"cpu_busy_pct": 3.0, "gpu_busy_pct": 64.0}, "the GPU was 64% busy with other work when the replay started"),
    ({"cpu_busy_pct": 3.0, "gpu_busy_pct": None}, None),  # a GPU without a utilization figure (MIG)
])
def test_replay_warns_when_other_work_kept_the_machine_busy_as_it_started(tmp_path, monkeypatch, load, warning):
    monkeypatch.setattr("sotlat.models.device.host_load", lambda device: load)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a", normal=(10, 3), skeleton=None)])
    result = invoke("replay", "--arch", "tiny", "--device", "cpu", "--traces", traces, "--repeats", "1", "--out", tmp_path / "m.jsonl")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert ("warning" in said) == bool(warning) and (warning is None or warning in said)
