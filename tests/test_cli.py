"""The command line end to end: profile -> table -> estimate, and one-line errors with exit 2."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import MIXTRAL, TRANSFORMERS_5, transformers_5, synthetic_table, trace, write_jsonl, edit
from sotlat.cli import app
from sotlat.estimator import OUTPUT_COLUMNS
from sotlat.tables import load_table, save_table

runner = CliRunner()
GRID = ["--arch", "tiny", "--device", "cpu", "--prefill-lengths", "1:60:20", "--decode-max", "90",
        "--prefill-runs", "2", "--prefill-warmup", "1", "--decode-runs", "1"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "tiny.parquet"
    result = invoke("profile", *GRID, "--batches", "1-3", "--out", out)
    assert result.exit_code == 0, result.output
    assert "median CV" in result.output and "decode step at B=1" in result.output
    return out


def test_profile_then_estimate_writes_every_format(profiled, tmp_path):
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a", category="generic", model="m", points=[(30, 10)] * 3),
                                                trace("b", category="math", model="m")])
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"est{suffix}"
        result = invoke("estimate", "--table", profiled, "--traces", traces, "--out", out)
        assert result.exit_code == 0, result.output
        frame = {".jsonl": lambda p: pd.read_json(p, lines=True), ".csv": pd.read_csv, ".parquet": pd.read_parquet}[suffix](out)
        assert list(frame.columns) == OUTPUT_COLUMNS and list(frame["id"]) == ["a", "b"]
        assert (frame["speedup"] > 0).all()
    assert "generic" in result.output and "all" in result.output and "speed-up" in result.output
    perf = frame[["normal_decode_tflops", "points_decode_tflops", "sot_peak_memory_bytes"]]
    tflops = (perf["normal_decode_tflops"].mean(), perf["points_decode_tflops"].mean())
    line = next(ln for ln in result.output.splitlines() if ln.startswith("m, mean over 2 traces: decode performance (Eq. 4) "))
    assert f"normal {tflops[0]:.3g}, " in line and f"points {tflops[1]:.3g} TFLOPS;" in line
    assert line.endswith(f"SoT {perf['sot_peak_memory_bytes'].max() / 1e9:.2f} GB")
    with_peak = invoke("estimate", "--table", profiled, "--traces", traces, "--peak-tflops", 0.5)
    assert f"TFLOPS = {tflops[0] / 0.5:.2%}, " in with_peak.output and f"{tflops[1] / 0.5:.2%} of 0.5;" in with_peak.output


@pytest.mark.parametrize("busy, warned", [(80.0, True), (3.0, False)])
def test_profile_warns_when_other_work_keeps_the_cpus_busy(tmp_path, monkeypatch, busy, warned):
    monkeypatch.setattr("psutil.cpu_percent", lambda interval: busy)
    out = tmp_path / "t.parquet"
    result = invoke("profile", *GRID, "--batches", "1", "--decode-max", "5", "--out", out)
    assert result.exit_code == 0, result.output
    assert load_table(out).attrs["sotlat"].host_load["cpu_busy_pct"] == busy
    assert ("80% busy with other work" in result.output) == warned



@pytest.mark.parametrize("busy, warned", [(92.0, True), (3.0, False), (None, False)])
def test_profile_warns_when_other_work_keeps_the_gpu_busy(tmp_path, monkeypatch, busy, warned):
    """The load a GPU profile records (nvidia-smi's utilization; None without a figure) decides the warning."""
    monkeypatch.setattr("sotlat.profiler.run.host_load", lambda device: {"cpu_busy_pct": 0.0, "gpu_busy_pct": busy})
    result = invoke("profile", *GRID, "--batches", "1", "--decode-max", "5", "--out", tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    assert ("the GPU was 92% busy with other work" in result.output) == warned

def test_profiles_closing_line_sums_measuring_time_over_runs_only_when_it_continued_one(tmp_path):
    out = tmp_path / "t.parquet"
    first = invoke("profile", *GRID, "--batches", "1", "--decode-max", "5", "--out", out, "--resume")  # nothing to continue yet
    again = invoke("profile", *GRID, "--batches", "1", "--decode-max", "5", "--out", out, "--resume")
    assert first.exit_code == again.exit_code == 0
    assert " s measuring; " in first.output and "(every run of this profile together)" in again.output


def test_tables_show(profiled):
    result = invoke("tables", "show", profiled)
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "decode" in result.output and "prefill" in result.output and "1-90" in result.output
    grid = next(line for line in result.output.splitlines() if line.startswith("grid "))  # as the options that made it
    assert grid.split(None, 1)[1] == "--batches 1-3 --prefill-lengths 1:60:20 (l = 1..41, 3 lengths) --decode-max 90"
    assert "latency_ms" in result.output and "latency_ms" not in invoke("tables", "show", profiled, "--cells", "0").output  # no cells table
    assert invoke("tables", "show", profiled, "--cells", "-1").exit_code == 2
    shown = json.loads(invoke("tables", "show", profiled, "--json").output)  # for scripts: the same facts as data
    table = load_table(profiled)
    assert shown["complete"] is True and shown["metadata"] == table.attrs["sotlat"].to_dict()
    decode = next(c for c in shown["coverage"] if c["phase"] == "decode")
    assert decode == {"phase": "decode", "batches": [1, 2, 3], "length_min": 1, "length_max": 90, "lengths": 90, "cells": 270, "status": {"ok": 270}}
    assert shown["summary"]["cells"] == len(table) and shown["summary"]["median_cv"] is None  # one run per cell: null, not NaN


def test_tables_merge_of_batch_shards(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert invoke("profile", *GRID, "--batches", "1", "--out", a).exit_code == 0
    assert invoke("profile", *GRID, "--batches", "2,3", "--out", b).exit_code == 0
    result = invoke("tables", "merge", a, b, "-o", tmp_path / "m.parquet")
    assert result.exit_code == 0, result.output
    merged = load_table(tmp_path / "m.parquet")
    assert sorted(merged.batch.unique()) == [1, 2, 3]
    assert "unfinished" not in result.output
    unfinished = load_table(b)
    edit(unfinished, {"progress.complete": False})
    save_table(unfinished, b)
    result = invoke("tables", "merge", a, b, "-o", tmp_path / "m.parquet")
    assert result.exit_code == 0 and f"{b} is an unfinished profile" in result.output.replace("\n", "")
    assert not load_table(tmp_path / "m.parquet").attrs["sotlat"].progress.complete
    result = invoke("tables", "merge", a, a, "-o", tmp_path / "x.parquet")
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: tables merge: {a} is given twice"]
    assert not (tmp_path / "x.parquet").exists()


def assert_user_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()  # nothing else, not even a blank line
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0]


def test_bad_trace_is_one_located_line_and_no_output(tmp_path):
    save_table(synthetic_table(), tmp_path / "t.parquet")
    bad = {"id": "q3", "sot": {"skeleton": {"prompt_tokens": 4, "completion_tokens": 3}, "points": [{"prompt_tokens": 4, "completion_tokens": "x"}]}}
    traces = write_jsonl(tmp_path / "traces.jsonl", [trace("a"), trace("b"), bad])
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", traces, "--out", tmp_path / "e.csv")
    assert_user_error(result, "traces.jsonl:3: sot.points[0].completion_tokens must be a non-negative integer")
    assert not (tmp_path / "e.csv").exists()


def test_out_of_range_is_one_line(tmp_path):
    save_table(synthetic_table(), tmp_path / "t.parquet")
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("long", normal=(50, 400))])
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", traces)
    assert_user_error(result, "trace long: normal stage needs", "--extrapolate")
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", traces, "--extrapolate", "--out", tmp_path / "e.jsonl")
    assert result.exit_code == 0 and json.loads((tmp_path / "e.jsonl").read_text())["extrapolated"] is True


# transformers 4's BERT fails on the meta device before it could show that it keeps no cache: refused all the same
NO_CACHE = (["config (bert): the model keeps no KV cache", "is_decoder: true"] if TRANSFORMERS_5 else
            ["config (bert): its FLOPs cannot be counted: its forward pass fails on the meta device"])

@pytest.mark.parametrize("args, needles", [
    (["estimate", "--table", "missing.parquet", "--traces", "x.jsonl"], ["missing.parquet: no such file"]),
    (["stats", "--traces", "folder"], ["folder: a folder, not a traces file (JSONL)"]),
    (["profile", "--arch", "tiny", "--device", "cpu", "--batches", "0-2", "--out", "o.parquet"], ["--batches"]),
    (["profile", "--arch", "tiny", "--device", "cuda", "--out", "o.parquet"], ["no CUDA device"]),
    (["profile", "--arch", "tiny", "--device", "cuda1", "--out", "o.parquet"], ["--device: expected cuda, cuda:N or cpu, got 'cuda1'"]),
    (["profile", "--arch", "tiny", "--device", "cpu", "--attention", "flash", "--out", "o.parquet"], ["--attention: expected sdpa or eager, got 'flash'"]),
    (["profile", "--arch", "tiny", "--config", "c.json", "--out", "o.parquet"], ["exactly one of --arch and --config"]),
    (["profile", "--arch", "tiny", "--device", "cpu", "--prefill-runs", "2", "--prefill-warmup", "2", "--out", "o.parquet"], ["--prefill-warmup"]),
    (["flops", "--arch", "tiny", "--phase", "both", "--batch", "1", "--length", "3"], ["--phase"]),
    # checked before the progress bar appears: the error is all the user sees
    (["profile", "--arch", "llama-99b", "--device", "cpu", "--out", "o.parquet"], ["unknown architecture 'llama-99b'; did you mean llama-7b,"]),
    (["profile", "--arch", "gpt-j", "--device", "cpu", "--out", "o.parquet"], ["unknown architecture 'gpt-j'; choose one of llama-7b,"]),
    (["profile", "--arch", "llama", "--device", "cpu", "--out", "o.parquet"], ["unknown architecture 'llama'; did you mean llama-7b, llama-13b or llama-33b?"]),
    (["profile", "--config", "bad.json", "--device", "cpu", "--out", "o.parquet"], ["bad.json: not a readable JSON config"]),
    (["simulate", "--gpu", "l4", "--config", "binary.json", "--out", "o.parquet"], ["binary.json: not a readable JSON config", "utf-8"]),
    (["flops", "--config", "bad.gguf", "--phase", "decode", "--batch", "1", "--length", "3"], ["bad.gguf: not a GGUF file transformers can read"]),
    (["flops", "--config", "missing.gguf", "--phase", "decode", "--batch", "1", "--length", "3"], ["missing.gguf: no such file"]),
    (["simulate", "--gpu", "l4", "--config", "zero.json", "--out", "o.parquet"], ["zero.json: num_attention_heads must be a positive integer, not 0"]),
    (["profile", "--config", "sizes.json", "--device", "cpu", "--out", "o.parquet"], ["sizes.json: n_layer must be a positive integer, not -1"]),
    (["simulate", "--gpu", "l4", "--config", "g3n.json", "--out", "o.parquet"],  # Gemma 3n gives one width per layer
     ["g3n.json: intermediate_size must be a positive integer or a list of them, one per layer, not [64, 0]"]),
    (["simulate", "--gpu", "l4", "--config", "llava.json", "--out", "o.parquet"],
     ["llava.json: text_config.hidden_size must be a positive integer, not '64'"]),
    pytest.param(["simulate", "--gpu", "l4", "--config", "eps.json", "--out", "o.parquet"],
                 ["eps.json: transformers refuses the config: StrictDataclassFieldValidationError", "rms_norm_eps"],
                 marks=pytest.mark.skipif(not TRANSFORMERS_5, reason="transformers 4 does not check a config's values")),
    # a small grid in case transformers one day builds what is refused here: a failure, not a profile of the paper's grid
    (["profile", "--config", "bert.json", "--device", "cpu", "--batches", "1", "--prefill-lengths", "1:2:1", "--decode-max", "2",
      "--out", "o.parquet"], NO_CACHE),
    (["flops", "--config", "bert.json", "--phase", "decode", "--batch", "1", "--length", "3"], NO_CACHE),
    (["profile", "--config", "bloom.json", "--device", "cpu", "--out", "o.parquet"],
     ["config (bloom): transformers cannot build it as a causal LM with sdpa attention", "(it builds with --attention eager)"]),
    (["profile", "--config", "t5.json", "--device", "cpu", "--attention", "eager", "--out", "o.parquet"],
     ["config (t5): transformers cannot build it as a causal LM: Unrecognized configuration class"]),  # no attention builds it
    (["simulate", "--gpu", "l4", "--config", "t5.json", "--out", "o.parquet"], ["config (t5): transformers cannot build it as a causal LM"]),
    (["profile", "--config", "awq.json", "--device", "cpu", "--out", "o.parquet"],
     ["awq.json: quantization_config (awq): sotlat runs the weights unquantized, in --dtype; delete quantization_config"]),
    (["simulate", "--gpu", "l4", "--arch", "tiny", "--prefill-lengths", "a:b:c", "--out", "o.parquet"], ["got 'a:b:c'"]),  # not rich's emoji ':b:'
    # a zero peak, bandwidth or objective would divide by zero, or read as "not given" and fall back silently
    (["simulate", "--gpu", "l4", "--arch", "tiny", "--peak-tflops", "0", "--out", "o.parquet"], ["'--peak-tflops': must be greater than 0, got 0"]),
    (["calibrate", "--table", "t.parquet", "--peak-tflops", "1", "--bandwidth-gbps", "0", "--out", "o.parquet"], ["'--bandwidth-gbps': must be greater than 0"]),
    (["estimate", "--table", "t.parquet", "--traces", "x.jsonl", "--peak-tflops", "0"], ["'--peak-tflops': must be greater than 0"]),
    (["report", "--table", "t.parquet", "--slo-tpot-ms", "0", "--out", "o.parquet"], ["'--slo-tpot-ms': must be greater than 0"]),
])
def test_usage_errors(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"hidden_size": ')
    (tmp_path / "binary.json").write_bytes(b'{"model_type": "\xc3("}')  # not UTF-8: a binary file given as a config
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00 cut short")
    (tmp_path / "zero.json").write_text('{"model_type": "llama", "num_attention_heads": 0}')
    (tmp_path / "sizes.json").write_text('{"model_type": "gpt2", "n_layer": -1}')
    (tmp_path / "g3n.json").write_text('{"model_type": "gemma3n_text", "intermediate_size": [64, 0]}')
    (tmp_path / "llava.json").write_text('{"model_type": "llava", "text_config": {"model_type": "llama", "hidden_size": "64"}}')
    (tmp_path / "eps.json").write_text('{"model_type": "llama", "rms_norm_eps": "small"}')
    (tmp_path / "bert.json").write_text('{"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, '
                                        '"intermediate_size": 128, "vocab_size": 100}')  # an encoder: no cache without is_decoder
    (tmp_path / "t5.json").write_text('{"model_type": "t5", "d_model": 64}')
    (tmp_path / "bloom.json").write_text(BLOOM)
    (tmp_path / "awq.json").write_text('{"model_type": "llama", "quantization_config": {"quant_method": "awq", "bits": 4}}')
    (tmp_path / "folder").mkdir()
    assert_user_error(invoke(*args), *needles)


def test_weights_larger_than_the_free_memory_are_refused_before_the_model_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr("sotlat.models.device.free_memory_bytes", lambda device: 400_000)  # tiny's float32 weights: 427,264 bytes
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a")])
    for command in (["profile", *GRID], ["replay", "--arch", "tiny", "--device", "cpu", "--traces", traces]):
        assert_user_error(invoke(*command, "--out", tmp_path / "o.jsonl" if command[0] == "replay" else tmp_path / "o.parquet"),
                          "tiny: its weights take 0.0 GB in float32, more than the 0.0 GB free on cpu")
        assert not list(tmp_path.glob("o.*"))


BLOOM = '{"model_type": "bloom", "hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100}'  # transformers has no SDPA for it


@pytest.mark.parametrize("config, options", [
    pytest.param(BLOOM, ["--attention", "eager"], marks=transformers_5),  # no SDPA in transformers
    pytest.param(json.dumps(MIXTRAL), [], marks=transformers_5),
])
def test_other_architectures_are_profiled_with_their_flops_counted(tmp_path, config, options):
    (tmp_path / "c.json").write_text(config)
    out = tmp_path / "b.parquet"
    result = invoke("profile", "--config", tmp_path / "c.json", *GRID[2:], "--batches", "1,2", *options, "--out", out)
    assert result.exit_code == 0 and "FLOPs are not the polynomial" not in result.output, result.output  # exact FLOPs
    table = load_table(out)
    assert (table["status"] == "ok").all() and (table["flops"] > 0).all()
    result = invoke("flops", "--config", tmp_path / "c.json", "--phase", "decode", "--batch", "1", "--length", "10", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["flops"] > 0
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("command, out", [
    (["profile", *GRID, "--batches", "1"], "t.csv"),
    (["simulate", "--gpu", "l4", "--arch", "tiny"], "t.txt"),
    (["tables", "merge", "t.parquet"], "merged.csv"),
    (["calibrate", "--table", "t.parquet", "--gpu", "l4"], "c.yaml"),
    (["trace", "--limit", "1"], "traces.csv"),
    (["replay", "--arch", "tiny", "--traces", "t.jsonl"], "measured.parquet"),
])
def test_commands_refuse_an_out_they_do_not_write_before_any_work(tmp_path, monkeypatch, command, out):
    monkeypatch.chdir(tmp_path)
    save_table(synthetic_table(), "t.parquet")
    write_jsonl(tmp_path / "t.jsonl", [trace()])
    assert_user_error(invoke(*command, "--out", out), f"--out: {out}: suffix must be")
    assert not (tmp_path / out).exists()


def test_estimate_rejects_unknown_out_suffix(tmp_path):
    save_table(synthetic_table(), tmp_path / "t.parquet")
    traces = write_jsonl(tmp_path / "t.jsonl", [trace()])
    assert_user_error(invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", traces, "--out", tmp_path / "e.xlsx"), "--out")


def test_each_reason_a_trace_is_outside_the_table_is_one_line_however_narrow_the_terminal(tmp_path, monkeypatch):
    from sotlat.cli import common

    monkeypatch.setattr(common.console, "width", 60)  # a narrow terminal
    table = tmp_path / "t.parquet"
    save_table(synthetic_table(batches=(1, 2), decode_max=200), table)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a"), trace("long", normal=(30, 400))])
    result = invoke("estimate", "--table", table, "--traces", traces, "--skip-unanswerable")
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("  long: "))
    assert line.endswith("(--extrapolate extends it to k=1600 at most)") and len(line) > 80


def test_where_the_grid_already_covers_the_traces_no_grid_is_suggested_only_the_missing_cells_said(tmp_path):
    table = tmp_path / "t.parquet"  # batch 3 is oom from k = 100 on: no other grid mends that on this device
    frame = synthetic_table(batches=(1, 2, 3), decode_max=200, status=lambda phase, b, k: "oom" if b == 3 and k >= 100 else "ok")
    edit(frame, {"arch.weight_bytes": 100, "arch.config": {"model_type": "llama", "num_attention_heads": 2, "hidden_size": 8,
                                                           "num_hidden_layers": 1, "num_key_value_heads": 1}})  # for the report's capacity
    save_table(frame, table)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a"), trace("long", points=[(60, 80)] * 3)])
    result = invoke("estimate", "--table", table, "--traces", traces, "--skip-unanswerable")
    assert result.exit_code == 0, result.output
    assert "  long: points stage needs t^D_3(100), which is oom in the table" in result.output
    assert "the table's grid already covers all 2; what is missing are cells with no latency in it" in " ".join(result.output.split())
    assert "a table that answers" not in result.output
    data = json.loads(invoke("estimate", "--table", table, "--traces", traces, "--skip-unanswerable", "--json").output)
    assert data["unanswered"][0]["id"] == "long" and data["answering_grid"] is None
    result = invoke("report", "--table", table, "--traces", traces, "--out", tmp_path / "r")
    assert result.exit_code == 0 and "Grid of a table that answers" not in (tmp_path / "r" / "report.md").read_text()


def test_estimate_skip_unanswerable_estimates_the_rest_and_says_why(tmp_path):
    table = tmp_path / "t.parquet"
    save_table(synthetic_table(batches=(1, 2, 3), decode_max=200), table)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a"), trace("wide", points=[(15, 5)] * 5), trace("b", normal=(30, 40))])
    result = invoke("estimate", "--table", table, "--traces", traces)
    assert_user_error(result, "trace wide: points stage needs batch 5, but the table has batches 1-3; "
                              "--skip-unanswerable estimates the others and lists these")
    out = tmp_path / "e.csv"
    result = invoke("estimate", "--table", table, "--traces", traces, "--skip-unanswerable", "--out", out)
    assert result.exit_code == 0, result.output
    assert "1 of 3 traces are outside the table" in result.output and "wide: points stage needs batch 5" in result.output
    assert list(pd.read_csv(out)["id"]) == ["a", "b"]
    # batch 1 and the point counts; the skeleton's 30-token prompt on the table's grid; b's 30 + 40 tokens
    assert "a table that answers all 3 (sotlat profile or simulate): --batches 1,2,5 --prefill-lengths 1:32:10 --decode-max 70" in result.output
    result = invoke("estimate", "--table", table, "--traces", traces, "--skip-unanswerable", "--json")  # the same, as data
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["traces"], data["estimated"], data["extrapolated"]) == (3, 2, 0)
    assert data["unanswered"] == [{"id": "wide", "model": None, "reason": "points stage needs batch 5, but the table has batches 1-3"}]
    assert data["answering_grid"] == {"--batches": "1,2,5", "--prefill-lengths": "1:32:10", "--decode-max": "70"}
    per_trace = pd.read_csv(out)
    assert data["summary"][-1]["category"] == "all" and data["summary"][-1]["n"] == 2
    assert data["summary"][-1]["sot_ms"] == pytest.approx(per_trace["sot_ms"].mean())
    assert data["performance"][0]["n"] == 2 and data["performance"][0]["sot_peak_memory_bytes"] == per_trace["sot_peak_memory_bytes"].max()
    # none answerable: an error, not an empty summary and a header-only file
    wide = write_jsonl(tmp_path / "w.jsonl", [trace("wide", points=[(15, 5)] * 5)])
    result = invoke("estimate", "--table", table, "--traces", wide, "--skip-unanswerable", "--out", tmp_path / "none.csv")
    assert_user_error(result, "the one trace is not inside the table (trace wide: points stage needs batch 5, but the table has "
                              "batches 1-3); a table that answers it (sotlat profile or simulate): --batches 1,5")
    assert not (tmp_path / "none.csv").exists()


def test_architecture_names_are_read_case_insensitively():
    result = invoke("flops", "--arch", "LLaMA-7B", "--phase", "decode", "--batch", "1", "--length", "1", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["arch"] == "llama-7b"


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"sotlat {version('sotlat')}"
    import subprocess
    import sys

    module = subprocess.run([sys.executable, "-m", "sotlat", "--version"], capture_output=True, text=True)  # python -m sotlat: the same
    assert module.returncode == 0 and module.stdout.strip() == f"sotlat {version('sotlat')}"


def test_tables_compare_prints_and_writes_the_errors(tmp_path):
    save_table(synthetic_table(), tmp_path / "ref.parquet")
    save_table(synthetic_table(t_decode=lambda b, k: 1.2 * (1.0 + 0.1 * b + 0.001 * k)), tmp_path / "t.parquet")
    result = invoke("tables", "compare", tmp_path / "t.parquet", tmp_path / "ref.parquet", "--json", "--out", tmp_path / "c.csv")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["decode"]["median_signed_pct"] == pytest.approx(20.0) and summary["prefill"]["max_abs_pct"] == pytest.approx(0.0)
    assert summary["cells"] == len(pd.read_csv(tmp_path / "c.csv")) and summary["only_in_table"] == 0
    result = invoke("tables", "compare", tmp_path / "t.parquet", tmp_path / "ref.parquet")
    assert result.exit_code == 0 and "against" in result.output
    decode_all = next(line for line in result.output.splitlines() if line.startswith("│ decode"))
    assert [c.strip() for c in decode_all.split("│")[-3:-1]] == ["+20.0%", "1.20x"]  # median signed error and ratio, to 3 figures


def test_estimates_from_an_unfinished_profile_say_so(tmp_path):
    table = synthetic_table()
    edit(table, {"progress.complete": False, "progress.elapsed_s": 10.0})
    save_table(table, tmp_path / "t.parquet")
    traces = write_jsonl(tmp_path / "t.jsonl", [trace()])
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", traces)
    assert result.exit_code == 0 and "INCOMPLETE profile" in result.output


def test_tables_show_says_what_is_known_of_the_gpu(tmp_path):
    table = synthetic_table()
    edit(table, {"device": {"name": "NVIDIA H100 80GB HBM3", "catalogue_id": "h100-sxm", "peak_tflops": 989, "memory_bandwidth_bytes_per_s": 3.352e12},
                 "arch.read_weight_bytes": 3.352e9, "arch.parameters": 46_702_792_704, "arch.expert_parameters": 45_097_156_608})  # a 1 ms floor
    save_table(table, tmp_path / "t.parquet")
    result = invoke("tables", "show", tmp_path / "t.parquet")
    assert result.exit_code == 0 and "(catalogue h100-sxm, peak 989 TFLOPS, bandwidth 3,352 GB/s)" in result.output
    assert "(46,702,792,704 parameters, 45,097,156,608 of them in routed experts)" in result.output  # a mixture of experts
    b1 = table[(table.phase == "decode") & (table.batch == 1)].latency_ms.median()
    assert f"decode step at B=1: median {b1:.2f} ms vs the floor weights read / bandwidth 1.00 ms ({b1:.2f}x)" in result.output


@pytest.mark.parametrize("command, error, shown, what", [
    (["profile", *GRID], 0.05, "5.0%", "the flops column and Eq. 4's TFLOPS are approximate"),
    (["profile", *GRID], 1.1e-4, "0.01%", "the flops column"),  # Falcon-H1's is 0.011%: not "0.0%"
    (["simulate", "--gpu", "l4", "--arch", "tiny"], 0.02, "2.0%", "the flops column, Eq. 4's TFLOPS and the simulated compute time"),
])
def test_profile_and_simulate_warn_when_the_flops_fill_is_not_exact(tmp_path, monkeypatch, command, error, shown, what):
    from sotlat.models import shapes as shapes_mod
    from sotlat.models.flops import FlopsFit
    from sotlat.profiler import run as run_mod

    module = run_mod if command[0] == "profile" else shapes_mod  # where each takes its FLOPs fill from
    real = module.fit_flops

    def inexact(shapes):
        fit = real(shapes)
        return FlopsFit(fit.decode, fit.prefill, max_rel_error=error)

    monkeypatch.setattr(module, "fit_flops", inexact)
    result = invoke(*command, "--batches", "1", "--decode-max", "5", "--out", tmp_path / "t.parquet")
    assert result.exit_code == 0 and f"(held-out cells off by up to {shown}): {what}" in " ".join(result.output.split())
    assert load_table(tmp_path / "t.parquet").attrs["sotlat"].method.flops["exact"] is False


@pytest.mark.parametrize("args, needle", [
    (["plan", "--gpu", "h100-sxm", "--arch", "tiny", "--shard-minutes", "0"], "Invalid value for '--shard-minutes'"),
    (["simulate", "--arch", "tiny", "--out", "t.parquet"], "Missing option '--gpu'. (see 'sotlat simulate --help')"),
    (["tables", "show"], "Missing argument"),
    (["estimate", "--decode-max", "3"], "No such option: --decode-max"),
    (["bogus"], "No such command 'bogus'"),
    (["--bogus"], "No such option: --bogus (see 'sotlat --help')"),
])
def test_usage_errors_are_one_line_too(args, needle):
    result = CliRunner().invoke(app, args, prog_name="sotlat")
    assert_user_error(result, needle)


def test_estimate_names_a_single_model_in_the_title_and_several_in_a_column(tmp_path):
    save_table(synthetic_table(), tmp_path / "t.parquet")
    one = write_jsonl(tmp_path / "one.jsonl", [trace("a", model="model-with-a-long-name-one", category="generic")])
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", one)
    assert result.exit_code == 0, result.output
    assert "means per category - traces of model-with-a-long-name-one on synthetic" in result.output
    assert "┃ model" not in result.output
    two = write_jsonl(tmp_path / "two.jsonl", [trace("b", model="model-b", category="generic")])
    result = invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", one, "--traces", two)
    assert result.exit_code == 0, result.output
    assert "means per model x category - synthetic" in result.output and "┃ model" in result.output
    assert "│ model-b " in result.output
    unnamed = write_jsonl(tmp_path / "unnamed.jsonl", [trace("c")])  # no model recorded: no "traces of -"
    assert "means per category - synthetic" in invoke("estimate", "--table", tmp_path / "t.parquet", "--traces", unnamed).output


def test_a_cuda_device_index_past_the_machines_is_refused_before_any_work(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert_user_error(invoke("profile", "--arch", "tiny", "--device", "cuda:2", "--out", "o.parquet"),
                      "--device: cuda:2: this machine has 2 CUDA device(s), cuda:0 to cuda:1")
    assert not (tmp_path / "o.parquet").exists()


def test_names_print_as_written_not_as_rich_markup(tmp_path):
    path = tmp_path / "llama[gpu]:smile:.parquet"  # '[gpu]' is a markup tag to rich, ':smile:' an emoji code
    save_table(synthetic_table(), path)
    result = invoke("tables", "show", path)
    assert result.exit_code == 0 and result.output.splitlines()[0].startswith(f"{path}  schema 2"), result.output
    assert invoke("tables", "list", tmp_path).output.splitlines()[0] == str(path)


def test_an_out_that_would_destroy_an_input_or_a_measured_table_is_refused_and_left_as_it_was(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "t.jsonl", [trace("a")])
    for name, batches in (("measured.parquet", (1, 2)), ("shard.parquet", (3, 4))):
        save_table(synthetic_table(batches=batches), tmp_path / name)
    other = synthetic_table(batches=(1, 2, 3, 4))
    edit(other, {"device": {"name": "another-device"}})
    save_table(other, tmp_path / "other.parquet")
    simulated = synthetic_table()
    edit(simulated, {"device": {"name": "L4"}, "simulated": True})
    save_table(simulated, tmp_path / "simulated.parquet")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for args, needle in [
        (["estimate", "--table", "measured.parquet", "--traces", "t.jsonl", "--out", "t.jsonl"], "t.jsonl is one of this command's inputs"),
        (["estimate", "--table", "simulated.parquet", "--traces", "t.jsonl", "--out", "./simulated.parquet"], "is one of this command's inputs"),
        (["stats", "--traces", "t.jsonl", "--out", "measured.parquet"], "measured.parquet holds a measured latency table"),
        (["simulate", "--gpu", "l4", "--arch", "tiny", "--out", "measured.parquet"], "measured.parquet holds a measured latency table"),
        (["tables", "merge", "measured.parquet", "shard.parquet", "-o", "other.parquet"], "other.parquet holds a measured latency table"),
        (["tables", "compare", "measured.parquet", "simulated.parquet", "--out", "simulated.parquet"], "is one of this command's inputs"),
    ]:
        assert_user_error(invoke(*args), needle)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, args
    # a simulated table may be simulated again; a merge may go over an earlier merge of its shards, or over one of
    # them: it keeps their cells
    assert invoke("simulate", "--gpu", "l4", "--arch", "tiny", "--batches", "1", "--decode-max", "4", "--prefill-lengths", "1:20:10",
                  "--out", "simulated.parquet").exit_code == 0
    for out in ("merged.parquet", "merged.parquet", "measured.parquet"):
        result = invoke("tables", "merge", "measured.parquet", "shard.parquet", "-o", out)
        assert result.exit_code == 0, result.output
        assert sorted(load_table(tmp_path / out).batch.unique()) == [1, 2, 3, 4]


def test_a_system_error_such_as_a_full_disk_is_one_line_and_exit_1(monkeypatch):
    from sotlat.cli import simulator

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(simulator.json, "dumps", full)  # what printing --json to a full disk (/dev/full) raises
    result = invoke("gpus", "--json")
    assert result.exit_code == 1 and result.output.splitlines() == ["error: No space left on device"]
