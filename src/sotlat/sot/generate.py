"""Greedy generation with a KV cache, for one prompt or a left-padded batch, timed per stage.

The loop a user runs: one prefill forward that yields the first token, then one forward per
further token, run as transformers' generate() runs its decode steps (`decoding`). Each row stops
at its EOS (later tokens are padding); the batch ends when every row has ended or at `max_new_tokens`. With no EOS ids it generates exactly `max_new_tokens`
tokens per row (replay forces recorded lengths that way).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sotlat.models.steps import cache_argument, cache_of, decoding


@dataclass
class Generation:
    tokens: list[list[int]]  # per row: the generated ids, up to and including its EOS
    prefill_ms: float  # the prefill forward (it produces the first token)
    total_ms: float  # prefill and all decode steps


@torch.inference_mode()
def generate(model, prompts: list[list[int]], max_new_tokens: int, timer, eos_ids=(), pad_id: int = 0) -> Generation:
    device = model.device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    eos = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    steps = []

    marks = [timer.mark()]
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    marks.append(timer.mark())
    token = out.logits[:, -1].argmax(-1)
    with decoding(model):
        for step in range(max_new_tokens):
            steps.append(token)
            if len(eos):
                done |= torch.isin(token, eos)
            if step + 1 == max_new_tokens or (len(eos) and bool(done.all())):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                        **{cache_argument(type(model)): cache_of(out)})
            token = torch.where(done, pad_id, out.logits[:, -1].argmax(-1))
    marks.append(timer.mark())
    prefill_ms, decode_ms = timer.intervals_ms(marks)
    generated = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in prompts]
    return Generation([_until_eos(row, set(eos_ids)) for row in generated], prefill_ms, prefill_ms + decode_ms)


def _until_eos(row: list[int], eos: set) -> list[int]:
    for i, token in enumerate(row):
        if token in eos:
            return row[: i + 1]
    return row
