"""The generation loop: left padding is invisible to each row, EOS stops a row, lengths can be forced."""

import pytest
import torch

from sotlat.models.archs import build_model, load_config
from sotlat.profiler.timer import CpuTimer
from sotlat.sot.generate import generate


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    _, config = load_config("tiny")
    return build_model(config, "cpu", torch.float32)


def test_left_padded_batch_generates_what_each_row_generates_alone(tiny):
    torch.manual_seed(1)
    prompts = [torch.randint(1, 256, (n,)).tolist() for n in (5, 17, 11)]
    batch = generate(tiny, prompts, 12, CpuTimer())
    alone = [generate(tiny, [p], 12, CpuTimer()).tokens[0] for p in prompts]
    assert batch.tokens == alone
    assert all(len(row) == 12 for row in batch.tokens)  # no EOS: exactly max_new_tokens
    assert 0 < batch.prefill_ms < batch.total_ms


def test_each_row_stops_at_its_eos_and_the_batch_when_all_have(tiny):
    torch.manual_seed(2)
    prompts = [torch.randint(1, 256, (n,)).tolist() for n in (6, 9)]
    free = generate(tiny, prompts, 10, CpuTimer()).tokens
    eos = free[0][3]  # row 0's fourth token
    assert eos not in free[0][:3]
    stopped = generate(tiny, prompts, 10, CpuTimer(), eos_ids=[eos]).tokens
    assert stopped[0] == free[0][:4]  # up to and including its EOS
    cut = free[1].index(eos) + 1 if eos in free[1] else 10
    assert stopped[1] == free[1][:cut]


def test_zero_new_tokens_is_a_prefill_only(tiny):
    out = generate(tiny, [[1, 2, 3]], 0, CpuTimer())
    assert out.tokens == [[]] and out.total_ms >= out.prefill_ms > 0


def test_decode_steps_run_as_transformers_generate_switches_them(tiny, monkeypatch):
    """generate() on a GPU decodes a mixture of experts with other expert kernels than its prefill:
    its switch, `_optimize_model_for_decode`, wraps the decode steps of generation and profiling."""
    import contextlib

    from sotlat.profiler.memory import memory_tracker_for
    from sotlat.profiler.run import decode_sweep

    state, seen = {"decoding": False}, []

    @contextlib.contextmanager
    def switch():
        state["decoding"] = True
        yield
        state["decoding"] = False

    monkeypatch.setattr(tiny, "_optimize_model_for_decode", switch, raising=False)
    forward = tiny.forward
    monkeypatch.setattr(tiny, "forward", lambda *args, **kwargs: seen.append(state["decoding"]) or forward(*args, **kwargs))
    generate(tiny, [[1, 2, 3]], 3, CpuTimer())
    assert seen == [False, True, True] and not state["decoding"]  # the prefill, then two decode steps
    seen.clear()
    decode_sweep(tiny, "cpu", 256, 2, 3, CpuTimer(), memory_tracker_for("cpu"))
    assert seen == [False, True, True, True] and not state["decoding"]  # the 1-token prefill, then k = 1..3
