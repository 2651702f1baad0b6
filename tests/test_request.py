"""`sotlat latency`: Eq. 1 and Eq. 4 for one request shape per batch, against hand computations."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import synthetic_table
from sotlat.cli import app
from sotlat.estimator import request_latency
from sotlat.tables import save_table
from test_estimator import F_D, T_D, eq1


def test_each_batch_is_eq1_and_eq4_of_the_request(table):
    rows = request_latency(table, 37, 64).set_index("batch")
    assert list(rows.index) == [1, 2, 3, 4]  # the table's batches
    for b in (1, 2, 3, 4):
        pre, dec = eq1(37, 64, b)  # t^P_B(31) and 65 decode terms, k = 37..101
        r = rows.loc[b]
        assert (r.prefill_ms, r.decode_ms, r.latency_ms) == pytest.approx((pre, dec, pre + dec))
        assert r.tokens_per_s == pytest.approx(b * 64 / (pre + dec) * 1e3)
        ks = range(37, 37 + 64 + 1)
        assert r.decode_tflops == pytest.approx(sum(F_D(b, k) for k in ks) / sum(T_D(b, k) for k in ks) / 1e9)
        assert r.peak_memory_bytes == 1000 * b + 101  # the largest cell it touches: decode k = 101
        assert r.missing is None and not r.extrapolated
    loop = request_latency(table, 37, 64, [2], decode_terms="loop").iloc[0]
    assert loop.decode_ms == pytest.approx(sum(T_D(2, k) for k in range(37, 37 + 63)))  # l_o - 1 steps


def test_batches_and_cells_the_table_lacks_are_named_not_guessed():
    table = synthetic_table(status=lambda phase, b, l: "oom" if b == 4 else "ok")
    rows = request_latency(table, 37, 180, [1, 4, 9]).set_index("batch")
    assert rows.loc[1, "missing"].startswith("t^D_1(k) up to k=217, but the table's decode for batch 1 ends at k=200")
    assert rows.loc[4, "missing"] == "t^P_4(31) for a 37-token prompt, which is oom in the table"
    assert rows.loc[9, "missing"] == "batch 9, but the table has batches 1-4"
    assert rows[["prefill_ms", "decode_ms", "latency_ms", "tokens_per_s"]].isna().all().all()
    extended = request_latency(table, 37, 180, [1], extrapolate=True).iloc[0]
    assert extended.extrapolated and extended.missing is None
    assert extended.decode_ms == pytest.approx(sum(T_D(1, k) for k in range(37, 218)))  # T_D is linear in k: extended exactly


def _invoke(tmp_path, table, *args):
    path = tmp_path / "t.parquet"
    save_table(table, path)
    return CliRunner().invoke(app, ["latency", "--table", str(path), *args])


def test_cli_prints_every_batch_with_figures_and_names_the_others(tmp_path, table):
    result = _invoke(tmp_path, table, "--prompt", "37", "--output", "64", "--batches", "1,3,9", "--peak-tflops", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    pre, dec = eq1(37, 64, 3)
    row = next(line for line in lines if line.startswith("│ 3 "))
    assert f"{pre:,.1f}" in row and f"{dec:,.1f}" in row and f"{pre + dec:,.1f}" in row
    assert "k = 37..101" in lines[0] + lines[1] and "of peak" in result.output
    assert lines[-1] == "B=9 needs batch 9, but the table has batches 1-4"
    no_peak = _invoke(tmp_path, table, "--prompt", "37", "--output", "64")  # a device of unknown peak: no utilization column
    assert no_peak.exit_code == 0, no_peak.output
    assert "of peak" not in no_peak.output and len([line for line in no_peak.output.splitlines() if line.startswith("│ ")]) == 4
    data = json.loads(_invoke(tmp_path, table, "--prompt", "37", "--output", "64", "--json").output)
    assert [r["batch"] for r in data["rows"]] == [1, 2, 3, 4] and data["decode_terms"] == "printed"
    assert data["rows"][0]["latency_ms"] == pytest.approx(sum(eq1(37, 64, 1)))


def test_cli_with_no_batch_answered_is_one_line_and_exit_2(tmp_path, table):
    result = _invoke(tmp_path, table, "--prompt", "150", "--output", "10")
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: {tmp_path / 't.parquet'}: B=1 needs t^P_1(151) for a 150-token prompt, but the "
                                          "prefill grid ends at 91 (the other 3 batches lack cells too)"]
    two = _invoke(tmp_path, table, "--prompt", "150", "--output", "10", "--batches", "1,2")
    assert two.exit_code == 2 and two.output.rstrip().endswith("ends at 91 (the other batch lacks cells too)")
    for bad in (["--prompt", "0", "--output", "5"], ["--prompt", "5", "--output", "5", "--batches", "2-1"],
                ["--prompt", "5", "--output", "5", "--decode-terms", "both"]):
        result = _invoke(tmp_path, table, *bad)
        assert result.exit_code == 2 and len(result.output.splitlines()) == 1 and result.output.startswith("error: ")


def test_a_batch_past_the_table_is_no_index_error(table):
    rows = request_latency(table, 5, 5, [4, 1000])
    assert np.isfinite(rows["latency_ms"].iloc[0]) and rows["missing"].iloc[1] == "batch 1000, but the table has batches 1-4"
