"""Run normal generation and SoT on one question with a real model, as one trace (docs/formats.md).

Normal: the question as the only user turn. SoT (§2.1): the skeleton request (Prompt 1, partial
answer "1.") at batch 1, its points parsed, then every point-expanding request (Prompt 2, partial
answer "{index}. {point}") as one left-padded batch. With no points parsed, SoT falls back to
normal generation: the trace then has no `sot`, and `sot_fallback` records the skeleton.
"""

from __future__ import annotations

import time
from pathlib import Path

from sotlat.progress import Tracker
from sotlat.sot import jsonl
from sotlat.sot.generate import generate
from sotlat.sot.prompts import chat_prompt, point_prompt, skeleton_prompt
from sotlat.sot.skeleton import parse_skeleton


def _run(model, tokenizer, texts: list[str], max_new_tokens: int, timer, eos) -> tuple[list[list[int]], list[list[int]], float]:
    prompts = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    result = generate(model, prompts, max_new_tokens, timer, eos, pad)
    return prompts, result.tokens, result.total_ms


def record_question(model, tokenizer, question: dict, max_new_tokens: int, timer, eos: list[int]) -> dict:
    """One trace: token counts, texts and measured latencies of normal generation and SoT."""
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    q = question["question"]
    (prompt,), (answer,), normal_ms = _run(model, tokenizer, [chat_prompt(tokenizer, q)], max_new_tokens, timer, eos)
    trace = {"id": question["id"], "category": question["category"], "question": q,
             "normal": {"prompt_tokens": len(prompt), "completion_tokens": len(answer), "latency_ms": normal_ms, "text": decode(answer)}}
    (s_prompt,), (s_answer,), s_ms = _run(model, tokenizer, [skeleton_prompt(tokenizer, q)], max_new_tokens, timer, eos)
    skeleton_text = ("1." + decode(s_answer)).strip()
    skeleton = {"prompt_tokens": len(s_prompt), "completion_tokens": len(s_answer), "latency_ms": s_ms, "text": skeleton_text}
    points = parse_skeleton(skeleton_text)
    if not points:
        trace["sot_fallback"] = {"skeleton": skeleton, "reason": "no numbered points in the skeleton"}
        return trace
    texts = [point_prompt(tokenizer, q, skeleton_text, i, p) for i, p in points]
    prompts, answers, points_ms = _run(model, tokenizer, texts, max_new_tokens, timer, eos)
    trace["sot"] = {
        "skeleton": skeleton,
        "points": [{"index": i, "skeleton": p, "prompt_tokens": len(pr), "completion_tokens": len(a), "text": decode(a)}
                   for (i, p), pr, a in zip(points, prompts, answers)],
        "points_latency_ms": points_ms,
    }
    return trace


def record_file(out: Path, questions: str = "vicuna", model: str | None = None, limit: int | None = None, max_new_tokens: int = 512,
                device: str = "cpu", resume: bool = False, progress: Tracker | None = None) -> dict:
    """Record a trace of each question (a built-in set or a file, the first `limit`) with `model` (a
    GGUF file, an HF model folder, or the embedded SmolLM2-135M-Instruct), one line appended to `out`
    as each finishes; with `resume`, the questions `out` holds are skipped. Returns how many traces
    were there before and how many were recorded."""
    from sotlat.models.device import describe_device
    from sotlat.profiler.timer import timer_for
    from sotlat.sot.model import eos_ids, load_model
    from sotlat.sot.questions import load_questions

    tracker = progress or Tracker()
    todo = load_questions(questions)[:limit]
    done = jsonl.finished_keys(out, resume)
    net, tokenizer, name = load_model(model, device)
    todo = [q for q in todo if (name, q["id"]) not in done]  # one file may hold several models' traces
    timer, eos, device_name = timer_for(device), eos_ids(net, tokenizer), describe_device(device)["name"]
    tokens, started, tracker.total = 0, time.monotonic(), len(todo)
    with jsonl.appending(out, "traces"):
        for q in todo:
            t = record_question(net, tokenizer, q, max_new_tokens, timer, eos)
            t["model"], t["device"], t["max_new_tokens"] = name, device_name, max_new_tokens
            jsonl.append(out, t)
            tokens += t["normal"]["completion_tokens"] + sum(x["completion_tokens"] for x in t.get("sot", {}).get("points", []))
            tokens += (t.get("sot") or t["sot_fallback"])["skeleton"]["completion_tokens"]
            tracker.advance(1, f"{q['id']} {tokens / (time.monotonic() - started):.1f} tokens/s")
    return {"before": len(done), "recorded": len(todo)}
