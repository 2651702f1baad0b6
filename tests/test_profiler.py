"""The profile loop on the tiny architecture: grid, runs, OOM, checkpoints, interrupts, resume."""

import math
import os
import signal

import numpy as np
import pytest
import torch

from conftest import edit
from sotlat.errors import InputError
from sotlat.profiler import run as run_mod
from sotlat.models.archs import build_model, load_config
from sotlat.interrupts import Interrupted
from sotlat.profiler.run import ProfileSpec, profile
from sotlat.tables import PrefillGrid, load_table, save_table

# no decode warm-up, so that the forward passes the tests count are the measured ones (warm-ups: test_warmup.py)
SPEC = ProfileSpec(arch="tiny", device="cpu", dtype="float32", batches=[1, 2, 3], prefill_lengths=PrefillGrid(1, 40, 10),
                   decode_max=12, prefill_runs=4, prefill_warmup=1, decode_runs=2, decode_warmup=0)


class Wrapped(torch.nn.Module):
    """The tiny model, counting forward passes, optionally failing like a GPU out of memory."""

    def __init__(self, prefill_oom=lambda b, l: False, decode_oom=lambda b, k: False, on_call=None):
        super().__init__()
        _, config = load_config("tiny")
        self.inner = build_model(config, "cpu", torch.float32)
        self.prefill_oom, self.decode_oom, self.on_call = prefill_oom, decode_oom, on_call
        self.calls = []

    def forward(self, input_ids, past_key_values=None, **kwargs):
        b, n = input_ids.shape
        k = past_key_values.get_seq_length() if past_key_values is not None else 0
        key = ("decode", b, k) if past_key_values is not None else ("prefill", b, n)
        if self.on_call:
            self.on_call(len(self.calls))
        if (key[0] == "prefill" and n > 1 and self.prefill_oom(b, n)) or (key[0] == "decode" and self.decode_oom(b, k)):
            raise torch.cuda.OutOfMemoryError("fake: out of memory")
        self.calls.append(key)
        return self.inner(input_ids=input_ids, past_key_values=past_key_values, **kwargs)


def test_profile_covers_the_grid_with_the_kept_runs(tmp_path):
    out = tmp_path / "t.parquet"
    profile(SPEC, str(out))
    table = load_table(out)
    meta = table.attrs["sotlat"]
    assert meta.progress.complete and meta.arch.name == "tiny" and meta.dtype == "float32"
    assert meta.to_dict()["method"]["grid"] == {"batches": [1, 2, 3], "prefill_lengths": {"start": 1, "stop": 40, "step": 10}, "decode_max": 12}
    assert meta.device.kind == "cpu" and meta.method.timer == "time.perf_counter" and meta.schema_version == 2
    pre, dec = table[table.phase == "prefill"], table[table.phase == "decode"]
    assert sorted(set(zip(pre.batch, pre.length))) == [(b, l) for b in (1, 2, 3) for l in (1, 11, 21, 31)]
    assert sorted(set(zip(dec.batch, dec.length))) == [(b, k) for b in (1, 2, 3) for k in range(1, 13)]
    assert (table.status == "ok").all()
    assert pre.runs_ms.map(len).eq(3).all() and dec.runs_ms.map(len).eq(2).all()  # 4 runs - 1 warm-up; 2 sweeps
    row = pre.iloc[0]
    assert row.latency_ms == pytest.approx(math.exp(np.mean(np.log(row.runs_ms))))  # geometric mean
    assert (table.flops > 0).all() and table.peak_memory_bytes.notna().all()
    # decode FLOPs: affine in k (a constant more per cached token) and affine in B
    d1, d2, d3 = (dec[dec.batch == b].sort_values("length").flops.to_numpy() for b in (1, 2, 3))
    assert np.allclose(np.diff(d1), d1[1] - d1[0]) and (np.diff(d1) > 0).all()
    assert np.allclose(d3 - d2, d2 - d1) and (d2 > d1).all()


def test_existing_file_needs_resume(tmp_path):
    out = tmp_path / "t.parquet"
    profile(SPEC, str(out))
    with pytest.raises(InputError, match="already exists; continue it with `resume`"):
        profile(SPEC, str(out))


def test_prefill_oom_marks_larger_batches_without_trying(tmp_path):
    model = Wrapped(prefill_oom=lambda b, l: b >= 2 and l >= 21)
    table = profile(SPEC, str(tmp_path / "t.parquet"), model=model)
    status = {(r.batch, r.length): r.status for r in table[table.phase == "prefill"].itertuples()}
    assert [k for k, s in status.items() if s == "oom"] == [(2, 21), (2, 31), (3, 21), (3, 31)]
    assert ("prefill", 3, 21) not in model.calls and ("prefill", 3, 11) in model.calls
    oom = table[table.status == "oom"]
    assert oom.latency_ms.isna().all() and oom.runs_ms.map(len).eq(0).all()


def test_decode_oom_stops_that_sweep_and_larger_batches(tmp_path):
    tried = []
    model = Wrapped(decode_oom=lambda b, k: tried.append((b, k)) or (b >= 2 and k >= 8))
    table = profile(SPEC, str(tmp_path / "t.parquet"), model=model)
    dec = table[table.phase == "decode"]
    for b in (2, 3):
        rows = dec[dec.batch == b].sort_values("length")
        assert list(rows.status) == ["ok"] * 7 + ["oom"] * 5
    assert (dec[dec.batch == 1].status == "ok").all()
    assert (2, 8) in tried and max(k for b, k in tried if b == 3) == 7  # batch 3 never tried k >= 8
    load_table(tmp_path / "t.parquet")


def _interrupt_at(n, how):
    def on_call(count):
        if count == n:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise KeyboardInterrupt
    return on_call


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_interrupt_saves_finished_cells_and_resume_finishes_without_remeasuring(tmp_path, how):
    out = tmp_path / "t.parquet"
    handler = signal.getsignal(signal.SIGTERM)
    # forward passes per batch: 4 cells x 4 runs = 16 prefill, then 2 sweeps x (1 + 12)
    first = Wrapped(on_call=_interrupt_at(16 + 26 + 5, how))
    with pytest.raises(Interrupted, match="cells saved to .*continue with `resume`"):
        profile(SPEC, str(out), model=first)
    partial = load_table(out)
    assert not partial.attrs["sotlat"].progress.complete
    assert len(partial) == 4 + 12 + 1  # batch 1 whole, the first prefill cell of batch 2
    assert signal.getsignal(signal.SIGTERM) == handler  # restored
    second = Wrapped()
    table = profile(SPEC, str(out), resume=True, model=second)
    assert len(table) == 3 * (4 + 12) and table.attrs["sotlat"].progress.complete
    assert not any(c[1] == 1 for c in second.calls)  # batch 1 was finished
    assert second.calls.count(("prefill", 2, 1)) == SPEC.decode_runs  # only the sweeps' 1-token prefills
    assert ("prefill", 2, 11) in second.calls
    finished = partial[(partial.phase == "prefill") & (partial.batch == 2)].iloc[0]
    kept = table[(table.phase == "prefill") & (table.batch == 2) & (table.length == 1)].iloc[0]
    assert kept.latency_ms == finished.latency_ms  # the finished cell was kept, not re-measured


def _decode_runs(table, batch):
    dec = table[(table.phase == "decode") & (table.batch == batch)].sort_values("length")
    return list(dec.status), [list(r) for r in dec.runs_ms]


@pytest.mark.parametrize("oom_from", [None, 8])
def test_an_interrupted_batch_keeps_its_finished_decode_sweeps(tmp_path, oom_from):
    out = tmp_path / "t.parquet"
    oom = (lambda b, k: b >= 2 and k >= oom_from) if oom_from else (lambda b, k: False)
    # batch 1: 16 prefill + 2 sweeps x 13 calls; batch 2: 16 prefill, its first sweep, then 3 calls into the second
    first_sweep = 13 if oom_from is None else 1 + oom_from - 1  # the 1-token prefill and the steps before the OOM
    with pytest.raises(Interrupted, match=r"20 cells and 1 finished decode sweep of an unfinished batch saved"):
        profile(SPEC, str(out), model=Wrapped(decode_oom=oom, on_call=_interrupt_at(42 + 16 + first_sweep + 3, "sigint")))
    steps = 12 if oom_from is None else oom_from - 1
    status, saved = _decode_runs(load_table(out), 2)
    assert status == ["unfinished"] * steps and all(len(r) == 1 for r in saved)  # one sweep of two, kept
    tried = []
    second = Wrapped(decode_oom=lambda b, k: tried.append((b, k)) or oom(b, k))
    table = profile(SPEC, str(out), resume=True, model=second)
    assert second.calls.count(("prefill", 2, 1)) == 1  # only the sweep still to run
    assert max(k for b, k in tried if b == 2) == steps  # ... and it never tried the step that ran out of memory
    status, runs = _decode_runs(table, 2)
    assert status == ["ok"] * steps + ["oom"] * (12 - steps)
    assert [r[0] for r in runs[:steps]] == [r[0] for r in saved] and all(len(r) == 2 for r in runs[:steps])
    assert table.attrs["sotlat"].progress.complete and (table.status != "unfinished").all()
    assert table[table.status == "ok"].peak_memory_bytes.notna().all()  # the saved sweep's peaks came back too


def test_checkpoints_are_written_while_running(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "CHECKPOINT_SECONDS", 0.0)
    out = tmp_path / "t.parquet"
    seen = []

    def on_call(count):
        if count == 16 + 26 + 8:  # inside batch 2's prefill cells
            seen.append(len(load_table(out)))

    profile(SPEC, str(out), model=Wrapped(on_call=on_call))
    assert seen and seen[0] >= 4 + 12 + 1


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "t.parquet"
    profile(SPEC, str(out))
    other = ProfileSpec(**{**SPEC.__dict__, "decode_runs": 3})
    with pytest.raises(InputError, match=r"cannot resume: method.decode.runs differs from the file.s \(2 in the file, 3 now\)"):
        profile(other, str(out), resume=True)
    other = ProfileSpec(**{**SPEC.__dict__, "dtype": "bfloat16"})
    with pytest.raises(InputError, match=r"cannot resume: .*(dtype|arch).* differs"):
        profile(other, str(out), resume=True)
    other = ProfileSpec(**{**SPEC.__dict__, "attention": "eager"})
    with pytest.raises(InputError, match=r"cannot resume: method.attention differs from the file.s \('sdpa' in the file, 'eager' now\)"):
        profile(other, str(out), resume=True)


def test_eager_attention_is_profiled_and_recorded(tmp_path, monkeypatch):
    built = []
    real = run_mod.build_model
    monkeypatch.setattr(run_mod, "build_model", lambda *a: built.append(a[-1]) or real(*a))
    spec = ProfileSpec(**{**SPEC.__dict__, "batches": [1], "attention": "eager"})
    table = profile(spec, str(tmp_path / "t.parquet"))
    assert built == ["eager"] and table.attrs["sotlat"].method.forward.startswith("transformers causal LM, eager attention,")
    assert (table.status == "ok").all()
    with pytest.raises(InputError, match="^attention: expected sdpa or eager, got 'flash'"):
        profile(ProfileSpec(**{**SPEC.__dict__, "attention": "flash"}), str(tmp_path / "f.parquet"))


def test_resume_of_a_file_from_a_sotlat_that_recorded_less_of_the_arch(tmp_path):
    out = tmp_path / "t.parquet"
    with pytest.raises(Interrupted):
        profile(SPEC, str(out), model=Wrapped(on_call=_interrupt_at(16 + 26 + 5, "sigint")))
    older = load_table(out)
    edit(older, {"arch.read_weight_bytes": None})  # derived from the config, which is the same
    save_table(older, out)
    table = profile(SPEC, str(out), resume=True, model=Wrapped())
    assert table.attrs["sotlat"].progress.complete and table.attrs["sotlat"].arch.read_weight_bytes > 0


def test_unknown_arch_and_config_file(tmp_path):
    with pytest.raises(InputError, match="unknown architecture 'llama-99b'"):
        profile(ProfileSpec(**{**SPEC.__dict__, "arch": "llama-99b"}), str(tmp_path / "t.parquet"))
    cfg = tmp_path / "c.json"
    cfg.write_text('{"hidden_size": 8}')
    with pytest.raises(InputError, match="model_type is missing"):
        profile(ProfileSpec(**{**SPEC.__dict__, "arch": None, "config_path": str(cfg)}), str(tmp_path / "t.parquet"))
    cfg.write_text('{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "vocab_size": 100, "pad_token_id": 100}')
    with pytest.raises(InputError, match=r"config \(llama\): transformers cannot build it .*: Padding_idx must be within num_embeddings"):
        profile(ProfileSpec(**{**SPEC.__dict__, "arch": None, "config_path": str(cfg)}), str(tmp_path / "t.parquet"))
    assert not (tmp_path / "t.parquet").exists()


def test_any_error_transformers_raises_building_a_config_is_one_line(monkeypatch):
    from transformers import AutoModelForCausalLM

    from sotlat.models.archs import meta_model

    def broken(config, **options):  # as transformers 5.24 builds its default Cohere Compass config
        raise KeyError("full_attention")

    monkeypatch.setattr(AutoModelForCausalLM, "from_config", broken)
    with pytest.raises(InputError, match=r"^config \(llama\): transformers cannot build it as a causal LM: KeyError: 'full_attention'$"):
        meta_model(load_config("tiny")[1])


def test_any_hf_config_can_be_profiled(tmp_path):
    cfg = tmp_path / "mistral.json"
    cfg.write_text('{"model_type": "mistral", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,'
                   ' "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": 128}')
    spec = ProfileSpec(**{**SPEC.__dict__, "arch": None, "config_path": str(cfg), "batches": [1]})
    table = profile(spec, str(tmp_path / "t.parquet"))
    assert table.attrs["sotlat"].arch.name == "mistral"
    assert table.attrs["sotlat"].arch.config["model_type"] == "mistral"
    assert (table.status == "ok").all() and len(table) == 4 + 12



def test_a_multimodal_config_is_profiled_as_its_text_model(tmp_path):
    """SoT decodes text: of a LLaVA config (a vision tower + a text model) the text model is profiled."""
    cfg = tmp_path / "llava-tiny.json"
    cfg.write_text('{"model_type": "llava", "text_config": {"model_type": "mistral", "hidden_size": 32, "num_hidden_layers": 1,'
                   ' "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": 128},'
                   ' "vision_config": {"model_type": "clip_vision_model", "hidden_size": 16, "num_hidden_layers": 1,'
                   ' "num_attention_heads": 2, "intermediate_size": 32}}')
    name, config = load_config(None, str(cfg))
    assert name == "llava-tiny" and config.model_type == "mistral" and config.hidden_size == 32
    table = profile(ProfileSpec(**{**SPEC.__dict__, "arch": None, "config_path": str(cfg), "batches": [1]}), str(tmp_path / "t.parquet"))
    assert table.attrs["sotlat"].arch.config["model_type"] == "mistral" and (table.status == "ok").all()

def test_a_config_is_named_for_its_file_or_for_its_hf_model_folder(tmp_path):
    folder = tmp_path / "Llama-3-8B"
    folder.mkdir()
    for path in (tmp_path / "mistral-small.json", folder / "config.json"):
        path.write_text('{"model_type": "mistral", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4}')
    assert load_config(None, str(tmp_path / "mistral-small.json"))[0] == "mistral-small"
    assert load_config(None, str(folder / "config.json"))[0] == "Llama-3-8B"  # every HF download's file is config.json
    assert load_config(None, str(folder))[0] == "Llama-3-8B"  # the folder itself, as from_pretrained takes it
    with pytest.raises(InputError, match=r"empty\W+config.json: no such file$"):
        (tmp_path / "empty").mkdir()
        load_config(None, str(tmp_path / "empty"))
    (tmp_path / "llama.cpp").mkdir()
    (tmp_path / "llama.cpp" / "model-Q4_K_M.gguf").write_bytes(b"GGUF")
    with pytest.raises(InputError, match=r"config.json: no such file \(the folder holds model-Q4_K_M.gguf: give --config that file\)"):
        load_config(None, str(tmp_path / "llama.cpp"))


def test_a_gguf_file_is_read_as_the_architecture_transformers_runs_it_as():
    """--config takes a GGUF file: the embedded SmolLM2-135M-Instruct's is the built-in smollm2-135m."""
    from sotlat.sot.model import default_gguf

    path = default_gguf()
    name, config = load_config(None, str(path))
    ours = load_config("smollm2-135m")[1]
    assert name == "SmolLM2-135M-Instruct.Q4_1" and config.model_type == "llama"
    for size in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
                 "vocab_size", "tie_word_embeddings", "max_position_embeddings"):
        assert getattr(config, size) == getattr(ours, size), size


def test_a_grid_past_a_learned_position_table_is_refused_before_any_work_and_one_within_it_runs(tmp_path):
    from sotlat.models.archs import meta_model, position_limit

    cfg = tmp_path / "gpt2.json"
    cfg.write_text('{"model_type": "gpt2", "n_embd": 32, "n_head": 2, "n_layer": 1, "n_positions": 16, "vocab_size": 128,'
                   ' "bos_token_id": 0, "eos_token_id": 0}')
    assert position_limit(meta_model(load_config(None, str(cfg))[1])) == 16
    assert position_limit(meta_model(load_config("tiny")[1])) is None  # rotary: no table to run past
    base = {**SPEC.__dict__, "arch": None, "config_path": str(cfg), "batches": [1], "prefill_lengths": PrefillGrid(1, 17, 5)}
    with pytest.raises(InputError, match=r"config \(gpt2\): its learned position table holds 16 positions, but the grid "
                                         r"\(`prefill_lengths` up to 16, `decode_max` 16\) needs 17"):
        profile(ProfileSpec(**{**base, "decode_max": 16}), str(tmp_path / "t.parquet"))  # torch's IndexError, before
    assert not (tmp_path / "t.parquet").exists()
    table = profile(ProfileSpec(**{**base, "decode_max": 15}), str(tmp_path / "t.parquet"))  # positions 1..16
    assert (table["status"] == "ok").all() and table["length"].max() == 16
