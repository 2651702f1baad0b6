"""Backends: the static-cache path against the eager one (same logits over a whole decode sweep,
bucket changes included), the bucket rule, the graph layer's capture points (with a fake capture),
the backend in a table's metadata and in --resume's check, and cuda-graph refused on CPU."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from sotlat.cli import app
from sotlat.errors import InputError
from sotlat.models.archs import build_model, load_config
from sotlat.models.static import BUCKET_RULE, bucket
from sotlat.profiler import backend as backend_mod
from sotlat.profiler.backend import decoder, prefiller
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.sot.validate import mismatch
from sotlat.tables.grid import parse_range
from sotlat.tables.io import load_table, save_table
from sotlat.tables.stats import label

STEPS = 300  # crosses two bucket boundaries: k + 1 = 129 and 257


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    _, config = load_config("tiny", None)
    return build_model(config, "cpu", torch.float32, "sdpa"), config.vocab_size


def sweep_logits(backend: str, model, ids) -> list[torch.Tensor]:
    runner = decoder(backend, model, ids)
    out = []
    for k in range(1, ids.shape[1]):
        runner.load(k)
        out.append(runner.run()[:, -1].clone())
    return out


def test_the_static_path_gives_the_eager_logits_over_a_whole_sweep(tiny):
    model, vocab = tiny
    ids = torch.randint(vocab, (2, STEPS + 1))
    eager, static = sweep_logits("eager", model, ids), sweep_logits("static", model, ids)
    assert len(eager) == len(static) == STEPS
    worst = max((a - b).abs().max().item() for a, b in zip(eager, static))
    assert worst < 1e-5 * max(a.abs().max().item() for a in eager)
    shuffled = sweep_logits("static", model, torch.cat([ids[:, :1], ids[:, 1:].flip(1)], dim=1))  # other tokens: other logits
    assert max((a - b).abs().max().item() for a, b in zip(eager[5:], shuffled[5:])) > 1e-3 * eager[0].abs().max().item()


def test_the_static_prefill_gives_the_eager_logits(tiny):
    model, vocab = tiny
    ids = torch.randint(vocab, (3, 57))
    runner = prefiller("static", model, 3, 57)
    runner.load(ids)
    with torch.inference_mode():
        expected = model(input_ids=ids).logits[:, -1]
    assert torch.allclose(runner.run()[:, -1], expected, atol=1e-6)
    runner.load(ids)  # a second run rewrites the same positions
    assert torch.allclose(runner.run()[:, -1], expected, atol=1e-6)


@pytest.mark.parametrize("k, size", [(1, 128), (126, 128), (127, 128), (128, 256), (255, 256), (256, 384), (1023, 1024), (1024, 1152)])
def test_decode_at_k_holds_the_next_multiple_of_128_at_or_above_k_plus_1(k, size):
    assert bucket(k + 1) == size
    assert "next multiple of 128 at or above k + 1" in BUCKET_RULE


def test_a_sweep_refills_its_cache_only_when_it_outgrows_a_bucket(tiny, monkeypatch):
    model, vocab = tiny
    made = []
    real = backend_mod.static_cache
    monkeypatch.setattr(backend_mod, "static_cache", lambda m, b, n: made.append(n) or real(m, b, n))
    sweep_logits("static", model, torch.randint(vocab, (1, STEPS + 1)))
    assert made == [128, 256, 384]


def test_graphs_capture_once_per_bucket_and_replay_the_same_logits(tiny, monkeypatch):
    """The graph layer with a fake capture (no CUDA here): it runs the forward as the real one's
    warm-ups do, advancing the cache, and replays by running it again into the captured output."""
    model, vocab = tiny
    captures = []

    def fake_captured(forward, before):
        captures.append(1)
        for _ in range(2):  # the untimed eager calls before a capture
            before()
            forward()
        before()
        out = forward()

        @torch.inference_mode()
        def replay():
            out.copy_(forward())

        return replay, out

    monkeypatch.setattr(backend_mod, "captured", fake_captured)
    ids = torch.randint(vocab, (2, STEPS + 1))
    graphed, eager = sweep_logits("cuda-graph", model, ids), sweep_logits("eager", model, ids)
    assert len(captures) == 3  # one per bucket
    assert max((a - b).abs().max().item() for a, b in zip(eager, graphed)) < 1e-5 * eager[0].abs().max().item()
    runner = prefiller("cuda-graph", model, 2, 20)
    for _ in range(3):
        runner.load(ids[:, :20])
        runner.run()
    assert len(captures) == 4  # a prefill shape captured once, replayed by every run


def spec(backend: str, tmp=None) -> ProfileSpec:
    return ProfileSpec(arch="tiny", device="cpu", dtype="float32", batches=[1, 2], prefill_lengths=parse_range("1:30:10"), decode_max=140,
                       prefill_runs=2, prefill_warmup=1, decode_runs=1, decode_warmup=0, backend=backend)


def test_a_static_table_records_its_backend_and_resume_refuses_another(tmp_path):
    out = tmp_path / "static.parquet"
    table = profile(spec("static"), str(out))
    assert len(table) == 2 * (3 + 140) and (table["status"] == "ok").all()
    meta = load_table(out).attrs["sotlat"]
    assert (meta.method.backend, meta.method.cache_buckets) == ("static", BUCKET_RULE) and "StaticCache" in meta.method.forward
    assert label(table).endswith("· static")
    assert mismatch(meta, "tiny", "float32", "sdpa") == ("backend", "static", "eager")  # replay runs generate(): eager
    graph = table.copy()
    graph.attrs["sotlat"] = meta.with_(**{"method.backend": "cuda-graph"})
    save_table(graph, tmp_path / "graph.parquet")
    assert load_table(tmp_path / "graph.parquet").attrs["sotlat"] == graph.attrs["sotlat"]  # round-trips
    with pytest.raises(InputError, match="method.backend differs"):
        profile(spec("eager"), str(tmp_path / "graph.parquet"), resume=True)


def test_an_eager_table_written_before_backends_reads_as_eager(tmp_path):
    table = profile(spec("eager"), str(tmp_path / "e.parquet"))
    data = table.attrs["sotlat"].to_dict()
    assert data["method"]["backend"] == "eager" and "cache_buckets" not in data["method"]
    del data["method"]["backend"]
    from sotlat.tables.meta import TableMeta

    assert TableMeta.from_dict(data).method.backend == "eager"
    assert "eager" not in label(table)  # the paper's backend goes without saying


def test_cuda_graph_is_refused_on_cpu(tmp_path):
    with pytest.raises(InputError) as exc:
        spec("cuda-graph")
    assert exc.value.param == "backend"
    result = CliRunner().invoke(app, ["profile", "--arch", "tiny", "--device", "cpu", "--backend", "cuda-graph", "--out", str(tmp_path / "g.parquet")])
    assert result.exit_code == 2 and result.output.startswith("error: --backend: cuda-graph needs a CUDA device") and result.output.count("\n") == 1
    assert not (tmp_path / "g.parquet").exists()
