import json

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from conftest import MIXTRAL, transformers_5
from sotlat.cli import app
from sotlat.models.archs import build_model, load_config, meta_model
from sotlat.models.flops import count_flops, fit_flops
from sotlat.models.steps import decode_step, prefill


@pytest.fixture(scope="module")
def tiny():
    _, config = load_config("tiny")
    return build_model(config, "cpu", torch.float32), meta_model(config)


@pytest.mark.parametrize("batch, length", [(1, 1), (2, 37), (3, 100)])
def test_deepspeed_count_on_meta_matches_torch_flop_counter(tiny, batch, length):
    model, shapes = tiny
    ids = torch.randint(0, 256, (batch, length))
    # The profiler's own steps, unwrapped from inference_mode: under it FlopCounterMode counts
    # nothing before torch 2.5 (pytorch/pytorch#126268); no_grad computes the same.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # math: SDPA as countable bmm
        prefill.__wrapped__(model, ids)
    assert count_flops(shapes, "prefill", batch, length) == counter.get_total_flops()
    cache = prefill(model, ids)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        decode_step.__wrapped__(model, ids[:, :1], cache)
    assert count_flops(shapes, "decode", batch, length) == counter.get_total_flops()


def test_fit_reproduces_counted_cells_exactly(tiny):
    _, shapes = tiny
    fit = fit_flops(shapes)
    assert fit.max_rel_error < 1e-9
    for phase, batch, length in [("decode", 5, 333), ("prefill", 4, 250), ("decode", 16, 1024)]:
        assert fit(phase, batch, length) == pytest.approx(count_flops(shapes, phase, batch, length), rel=1e-12)


def test_profiler_is_unpatched_after_an_exception(tiny):
    _, shapes = tiny
    linear = torch.nn.functional.linear
    with pytest.raises(Exception):
        count_flops(shapes, "decode", 1, 0)  # no tokens to cache: the forward fails
    assert torch.nn.functional.linear is linear


# The paper's Table 1 (A100, batch 1): TFLOPS x latency of a 128-token prefill and one decode step at k = 128.
@pytest.mark.parametrize("arch, prefill_flops, decode_flops", [
    ("llama-7b", 1.72e12, 13.2e9), ("llama-13b", 3.35e12, 25.6e9), ("llama-33b", 8.5e12, 64.5e9)])
def test_flops_command_agrees_with_paper_table_1(arch, prefill_flops, decode_flops):
    runner = CliRunner()
    for phase, expected in (("prefill", prefill_flops), ("decode", decode_flops)):
        result = runner.invoke(app, ["flops", "--arch", arch, "--phase", phase, "--batch", "1", "--length", "128", "--json"])
        assert result.exit_code == 0, result.output
        value = json.loads(result.output.strip().splitlines()[-1])["flops"]
        assert value == pytest.approx(expected, rel=0.05)
        text = runner.invoke(app, ["flops", "--arch", arch, "--phase", phase, "--batch", "1", "--length", "128"]).output
        assert text.strip() == f"{arch} {phase} B=1 length=128: {value:,.0f} FLOPs ({value / 1e9:.4g} GFLOP)"  # every digit, then readable


def test_a_fill_that_misses_held_out_cells_is_marked_inexact(tiny):
    _, shapes = tiny
    # FLOPs with a term the polynomial has no place for (cubic in l): the check on held-out cells catches it
    fit = fit_flops(shapes, count=lambda model, phase, b, n: 1e9 * b + 1e3 * n ** 3)
    assert not fit.exact and fit.max_rel_error > 1e-3 and fit.meta()["exact"] is False
    assert fit_flops(shapes).exact


def test_a_model_whose_forward_fails_on_the_meta_device_is_one_line_not_a_traceback(tiny, monkeypatch):
    from sotlat.errors import InputError

    _, shapes = tiny

    def fails(*args, **kwargs):  # as transformers' Mixtral experts do on meta tensors in float32
        raise RuntimeError("Expected inputs of BF16 type but got float32\nsecond line")

    monkeypatch.setattr(shapes, "forward", fails)
    with pytest.raises(InputError, match=r"^config \(llama\): its FLOPs cannot be counted: its forward pass fails on the meta "
                                         r"device \(RuntimeError: Expected inputs of BF16 type but got float32\)$"):
        count_flops(shapes, "decode", 1, 8)
    monkeypatch.undo()
    assert count_flops(shapes, "prefill", 1, 8) == fit_flops(shapes)("prefill", 1, 8)  # DeepSpeed's patches were undone


def test_eager_attention_counts_the_flops_of_sdpa():
    """The profiler counts FLOPs on the SDPA model; a profile with eager attention runs the same products."""
    from transformers import AutoModelForCausalLM

    _, config = load_config("tiny")
    with torch.device("meta"):
        eager = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    for phase, batch, length in (("prefill", 2, 37), ("decode", 3, 50)):
        assert count_flops(eager, phase, batch, length) == count_flops(meta_model(config), phase, batch, length)


@transformers_5
def test_a_mixture_of_experts_counts_the_experts_each_token_visits():
    from transformers import AutoConfig

    config = AutoConfig.for_model(**MIXTRAL)
    h, i, layers, kv = 64, 128, 2, 2 * 16
    per_token = layers * (h * (h + 2 * kv + h)  # q, k, v, o
                          + h * 4  # the router
                          + 2 * 3 * h * i)  # two of four experts, each gate, up and down
    head, scores = h * 256, layers * 4 * 16 * 2  # lm_head; q.k and p.v over one cached key per head
    rotary = 16 // 2  # inverse frequencies x one position, where transformers computes it as a matmul (5.17 does, 5.23 not)
    assert count_flops(meta_model(config), "prefill", 1, 1) in {2 * (per_token + head + scores), 2 * (per_token + head + scores + rotary)}
    fit = fit_flops(meta_model(config))
    assert fit.exact and fit("decode", 8, 100) == count_flops(meta_model(config), "decode", 8, 100)


@transformers_5
def test_a_mixtral_8x7b_decode_step_at_batch_1_multiplies_each_weight_it_reads_once():
    from sotlat.models.archs import arch_meta

    _, config = load_config("mixtral-8x7b")
    shapes = meta_model(config)
    read = arch_meta("mixtral-8x7b", config, shapes, torch.float16)["read_weight_bytes"] / 2
    assert count_flops(shapes, "decode", 1, 1) / 2 == pytest.approx(read, rel=1e-3)  # attention over one cached key: a few MACs more
