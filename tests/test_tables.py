import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import edit, synthetic_table
from sotlat.errors import InputError
from sotlat.tables import SCHEMA, load_table, merge_tables, save_table
from sotlat.tables.schema import META_KEY


def test_round_trip_keeps_cells_types_and_metadata(tmp_path, table):
    path = tmp_path / "t.parquet"
    save_table(table, path)
    loaded = load_table(path)
    assert pq.read_schema(path).remove_metadata() == SCHEMA
    assert loaded.attrs["sotlat"] == table.attrs["sotlat"]
    assert len(loaded) == len(table)
    row = loaded[(loaded.phase == "decode") & (loaded.batch == 2) & (loaded.length == 7)].iloc[0]
    assert row.latency_ms == pytest.approx(1.0 + 0.2 + 0.007)
    assert list(row.runs_ms) == [row.latency_ms] * 3
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def _write(path, table, meta):
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({META_KEY: meta} if meta is not None else {}), path)


@pytest.mark.parametrize(
    "mutate, meta, message",
    [
        (lambda t: t, None, "no 'sotlat' metadata"),
        (lambda t: t, b"{nope", "not valid JSON"),
        (lambda t: t, json.dumps({"schema_version": 1}).encode(), "lacks arch, device, dtype, method, created_at"),
        (lambda t: t.drop(columns=["flops"]), "ok", "column 'flops' is missing"),
        (lambda t: t.astype({"batch": "int64"}), "ok", "column 'batch' has type int64, expected int32"),
    ],
)
def test_loader_names_what_is_wrong(tmp_path, table, mutate, meta, message):
    path = tmp_path / "bad.parquet"
    good_meta = json.dumps(table.attrs["sotlat"].to_dict()).encode()
    cells = table.astype({"batch": "int32", "length": "int32"})
    cells.attrs = {}  # the metadata is written below, by hand
    _write(path, mutate(cells), good_meta if meta == "ok" else meta)
    with pytest.raises(InputError, match=message) as exc:
        load_table(path)
    assert str(path) in str(exc.value)


def test_loader_names_the_bad_row(tmp_path, table):
    table.loc[5, "latency_ms"] = None
    save_table(table, tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"row \d+ \(prefill, batch 1, length 51\): status is 'ok' but latency_ms is null"):
        load_table(tmp_path / "t.parquet")


def test_loader_rejects_duplicates_and_bad_phase(tmp_path, table):
    dup = table.copy()
    dup.loc[len(dup)] = dup.iloc[0]
    dup.attrs = table.attrs
    save_table(dup, tmp_path / "d.parquet")
    with pytest.raises(InputError, match="more than once"):
        load_table(tmp_path / "d.parquet")
    table.loc[0, "phase"] = "generate"
    save_table(table, tmp_path / "p.parquet")
    with pytest.raises(InputError, match="phase must be one of"):
        load_table(tmp_path / "p.parquet")


def test_loader_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_table(tmp_path / "none.parquet")
    with pytest.raises(InputError, match=f"^{tmp_path}: a folder, not a table file"):
        load_table(tmp_path)
    (tmp_path / "junk.parquet").write_text('{"id": "a trace"}\n')
    with pytest.raises(InputError, match="junk.parquet: not a Parquet file, so not a latency table"):
        load_table(tmp_path / "junk.parquet")
    (tmp_path / "torn.parquet").write_bytes(b"PAR1 cut short")  # a Parquet file, damaged
    with pytest.raises(InputError, match="torn.parquet: not a readable Parquet file"):
        load_table(tmp_path / "torn.parquet")


def test_merge_joins_batch_shards_and_refuses_overlap_or_other_profiles():
    a, b = synthetic_table(batches=(1, 2)), synthetic_table(batches=(3, 4))
    merged = merge_tables([a, b], ["a", "b"])
    assert sorted(merged.batch.unique()) == [1, 2, 3, 4]
    assert merged.attrs["sotlat"].method.grid.batches == (1, 2, 3, 4)
    assert len(merged) == len(a) + len(b)
    with pytest.raises(InputError, match=r"cell \(prefill, batch 2, length 1\) is in both a and c"):
        merge_tables([a, synthetic_table(batches=(2, 3))], ["a", "c"])
    other = synthetic_table(batches=(3,))
    edit(other, {"dtype": "bfloat16"})
    with pytest.raises(InputError, match="^o: not a shard of the same profile as a: dtype is 'bfloat16' there, 'float16' in a$"):
        merge_tables([a, other], ["a", "o"])
    newer = synthetic_table(batches=(3, 4))
    edit(newer, {"arch.gemms_per_layer": 7})  # a later sotlat records more of the arch: the same profile
    merged = merge_tables([a, newer], ["a", "n"])
    assert len(merged) == len(a) + len(newer) and merged.attrs["sotlat"].arch.gemms_per_layer == 7  # kept
    edit(newer, {"arch.config": {**newer.attrs["sotlat"].arch.config, "num_hidden_layers": 99}})
    with pytest.raises(InputError, match="not a shard of the same profile as a: arch.config.num_hidden_layers is 99 there, \\(missing\\) in a$"):
        merge_tables([a, newer], ["a", "n"])
    edit(newer, {"arch.name": "llama-7b"})  # another model: named first, not the first of its config's differences
    with pytest.raises(InputError, match="not a shard of the same profile as a: arch.name is 'llama-7b' there, 'synthetic' in a$"):
        merge_tables([a, newer], ["a", "n"])


def test_compare_gives_the_error_of_each_phase_and_batch_against_the_reference():
    from sotlat.tables.compare import compare_summary, compare_tables

    reference = synthetic_table(batches=(1, 2), decode_max=50)
    # decode 10% slower at B=2 only, prefill 5% faster; one more batch and an oom cell that the reference lacks
    table = synthetic_table(batches=(1, 2, 3), decode_max=50, t_prefill=lambda b, l: 0.95 * (10.0 * b + 0.5 * l),
                            t_decode=lambda b, k: (1.1 if b == 2 else 1.0) * (1.0 + 0.1 * b + 0.001 * k),
                            status=lambda phase, b, l: "oom" if (phase, b, l) == ("decode", 1, 50) else "ok")
    cells = compare_tables(table, reference)
    assert len(cells) == 2 * (10 + 50) - 1 and {"latency_ms", "latency_ms_reference", "error_pct"} <= set(cells.columns)
    summary = compare_summary(cells)
    assert summary["prefill"]["median_signed_pct"] == pytest.approx(-5.0) and summary["prefill"]["n"] == 20
    decode = summary["decode"]["by_batch"]
    assert decode[1]["max_abs_pct"] == pytest.approx(0.0, abs=1e-9) and decode[1]["n"] == 49
    assert decode[2]["median_signed_pct"] == pytest.approx(10.0) and decode[2]["p90_abs_pct"] == pytest.approx(10.0)
    with pytest.raises(InputError, match="no ok cell in common"):
        compare_summary(compare_tables(table, synthetic_table(batches=(5,))))


def test_tables_list_finds_tables_in_folders_says_why_others_are_not_and_refuses_a_bad_file_named(tmp_path):
    from typer.testing import CliRunner

    from sotlat.cli import app
    from sotlat.tables.listing import list_tables

    (tmp_path / "gpu" / "nested").mkdir(parents=True)
    save_table(synthetic_table(batches=(1, 2, 4), prefill=(1, 60, 20), decode_max=50), tmp_path / "gpu" / "a.parquet")
    partial = synthetic_table(batches=(3,))
    edit(partial, {"progress.complete": False, "progress.elapsed_s": 1.0})
    save_table(partial, tmp_path / "gpu" / "nested" / "b.parquet")
    (tmp_path / "gpu" / "notes.parquet").write_bytes(b"x")
    (tmp_path / "gpu" / "dir.parquet").mkdir()  # a folder named like a table: not a file, not listed
    for hidden in (".git", "venv"):  # hidden folders and virtual environments (pyarrow ships Parquet test files) are not searched
        (tmp_path / "gpu" / hidden).mkdir()
        (tmp_path / "gpu" / hidden / "x.parquet").write_bytes(b"x")
    (tmp_path / "gpu" / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    found, skipped = list_tables([tmp_path / "gpu"])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found["file"]] == ["gpu/a.parquet", "gpu/nested/b.parquet"]
    a = found.iloc[0].to_dict()
    assert [a[k] for k in ("arch", "device", "dtype", "batches", "prefill_lengths", "decode_max", "cells", "complete")] == [
        "synthetic", "test-device", "float16", "1,2,4", "1-41", 50, 3 * (3 + 50), True]
    assert a["status"] == {"ok": 159} and a["median_cv"] == 0.0
    assert not found.iloc[1]["complete"]
    assert len(skipped) == 1 and skipped[0].startswith(f"{tmp_path / 'gpu' / 'notes.parquet'}: not a Parquet file")

    result = CliRunner().invoke(app, ["tables", "list", str(tmp_path / "gpu"), "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["batches"] for line in result.output.splitlines()] == ["1,2,4", "3"]
    result = CliRunner().invoke(app, ["tables", "list", str(tmp_path / "gpu")])
    lines = result.output.splitlines()
    assert lines[:2] == [str(tmp_path / "gpu" / "a.parquet"), "  synthetic · test-device · float16 · B 1,2,4, l 1-41, k 1-50 · "
                                                                "cells ok 159 · median CV 0.0% · complete"]
    assert lines[3].endswith("INCOMPLETE (resume it)") and lines[4] == "2 latency tables" and lines[5].startswith("not a table: ")
    for bad, why in ((tmp_path / "gpu" / "notes.parquet", "not a Parquet file"), (tmp_path / "none", "no such file or folder")):
        result = CliRunner().invoke(app, ["tables", "list", str(bad)])
        assert result.exit_code == 2 and result.output.startswith(f"error: {bad}: {why}"), result.output


def test_a_table_of_schema_version_1_loads_upgraded_and_saves_as_version_2(tmp_path):
    from importlib import resources

    old = resources.files("sotlat") / "data" / "tables" / "smollm2-135m__cpu-amd-epyc-2c.parquet"
    raw = json.loads(pq.read_schema(old).metadata[META_KEY])
    assert raw["schema_version"] == 1 and "dispersion" not in raw and "attention" not in raw["method"]
    table = load_table(old)
    meta = table.attrs["sotlat"]
    assert meta.schema_version == 2 and meta.method.attention == "sdpa" and meta.method.decode.warmup is None and not meta.simulated
    assert meta.dispersion.decode.cells == 1024 and meta.arch.read_weight_bytes == raw["arch"]["weight_bytes"]  # SmolLM2 ties its head
    save_table(table, tmp_path / "t.parquet")
    written = json.loads(pq.read_schema(tmp_path / "t.parquet").metadata[META_KEY])
    assert written["schema_version"] == 2 and written["method"]["attention"] == "sdpa" and written["arch"]["config"] == raw["arch"]["config"]
    again = load_table(tmp_path / "t.parquet")
    assert again.attrs["sotlat"] == meta and again.equals(table)
