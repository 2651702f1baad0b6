"""The benchmarks compare what they claim: estimate() against a plain loop of Eq. 1-4 (equal
results), and the profiler's decode sweep against one step timed alone (the same cell)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from estimate_vs_loop import compare  # noqa: E402
from sweep_vs_isolated import compare as compare_sweep, isolated_step_ms  # noqa: E402

from sotlat.models.archs import build_model, load_config  # noqa: E402
from sotlat.profiler.memory import RssPeakMemory  # noqa: E402
from sotlat.profiler.run import decode_sweep  # noqa: E402
from sotlat.profiler.timer import CpuTimer  # noqa: E402


def test_vectorised_estimate_equals_plain_loop_on_the_paper_grid():
    result = compare(300)  # asserts equality of every compared column inside
    assert result["traces"] == 300 and result["loop_s"] > 0


def _spied_tiny():
    """The tiny model, recording each forward's (input shape, tokens already cached)."""
    _, config = load_config("tiny")
    model = build_model(config, "cpu", torch.float32)
    calls = []

    def record(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # its name from transformers 5.24, and before
        calls.append((tuple(kwargs["input_ids"].shape), 0 if cache is None else cache.get_seq_length()))

    model.register_forward_pre_hook(record, with_kwargs=True)
    return model, config.vocab_size, calls


def test_sweep_step_k_and_an_isolated_cell_k_both_time_one_token_against_k_cached():
    model, vocab, calls = _spied_tiny()
    decode_sweep(model, "cpu", vocab, 2, 5, CpuTimer(), RssPeakMemory())
    assert calls == [((2, 1), 0)] + [((2, 1), k) for k in range(1, 6)]  # the 1-token prefill, then steps k = 1..5
    calls.clear()
    assert isolated_step_ms(model, "cpu", vocab, 2, 5, CpuTimer()) > 0
    assert calls == [((2, 5), 0), ((2, 1), 5)]  # prefill to k = 5, then the one timed step


def test_sweep_vs_isolated_compares_each_requested_cell():
    model, vocab, calls = _spied_tiny()
    r = compare_sweep(model, "cpu", vocab, [1, 3], [1, 4], runs=2, isolated_warmup=1)
    assert [(row["batch"], row["k"]) for row in r["rows"]] == [(1, 1), (1, 4), (3, 1), (3, 4)]
    assert all(row["sweep_ms"] > 0 and row["isolated_ms"] > 0 and row["ratio"] == row["isolated_ms"] / row["sweep_ms"] for row in r["rows"])
    assert (r["sweep_cells"], r["isolated_cells"]) == (8, 4) and r["sweep_s"] > 0 and r["isolated_s"] > 0
    # per batch: 2 sweeps of 1 + 4 forwards; per k, 1 warm-up + 2 runs of a prefill and a step
    assert len(calls) == 2 * (2 * 5 + 2 * 3 * 2)
