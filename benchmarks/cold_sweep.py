"""Why is a batch's first decode sweep slow, and what makes the warm ones scatter? Side by side, per
attention setting, each in a fresh process (what a first sight warms lives in the process):

- cold vs warm: sweep 1 over k = 1..N (every cache length new to the process), then `--warm`
  sweeps over the same k; the ratio of their mean step times;
- seen vs new: a last sweep over k = 1..2N, whose first N lengths were seen and the next N are new;
  the ratio of the new steps' mean to the seen ones';
- host vs device: each step's host time (the launches, no sync) beside its event time; if a cold
  step's extra time is in its host time too, the host does the extra work (a plan or graph built
  per new shape); the correlation of the two over the warm steps says whether the jitter is the
  host's;
- the caching allocator: `torch.cuda.memory_stats()` before and after each sweep (new segments,
  cudaMalloc calls, retries);
- what runs: the heaviest host operators and the device kernels of one new-length step and one
  seen-length step (torch.profiler).

Conditions: sdpa (transformers' default), eager (matmul-softmax-matmul), sdpa with the cuDNN, flash
or memory-efficient SDPA kernel switched off in turn (`torch.backends.cuda.enable_*_sdp(False)`),
and gc-on (the timed sweeps without `quiet`: Python's collector free to run inside them).

Usage: python benchmarks/cold_sweep.py --arch tiny --steps 64 [--batch 1] [--conditions sdpa,eager,...] [--json OUT]
(docs/method.md, "Warm-up and quiet timing", says what each outcome would mean.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time

import numpy as np
import torch

from sotlat.models.archs import build_model, load_config
from sotlat.models.device import default_device, describe_device
from sotlat.models.dtypes import default_dtype, torch_dtype
from sotlat.models.steps import decode_step, decoding, prefill
from sotlat.profiler.timer import quiet, timer_for

CONDITIONS = {  # name: (attention, SDPA kernels switched off, timed sweeps quiet)
    "sdpa": ("sdpa", (), True),
    "eager": ("eager", (), True),
    "sdpa-no-cudnn": ("sdpa", ("cudnn",), True),
    "sdpa-no-flash": ("sdpa", ("flash",), True),
    "sdpa-no-efficient": ("sdpa", ("mem_efficient",), True),
    "gc-on": ("sdpa", (), False),
}
MEMORY_KEYS = ("segment.all.allocated", "num_device_alloc", "num_alloc_retries", "reserved_bytes.all.current")


def sweep(model, device, vocab, batch, steps, timer, keep_quiet=True) -> dict:
    """One sweep of k = 1..steps: event and host milliseconds per step, and the allocator's counters' change."""
    ids = torch.randint(vocab, (batch, steps + 1), device=device)
    before = _memory(device)
    marks, host = [], []
    with quiet() if keep_quiet else contextlib.nullcontext(), decoding(model):
        cache = prefill(model, ids[:, :1])
        for k in range(1, steps + 1):
            tokens = ids[:, k : k + 1]
            t0 = time.perf_counter()
            marks.append(timer.mark())
            decode_step(model, tokens, cache)
            marks.append(timer.mark())
            host.append((time.perf_counter() - t0) * 1e3)
    event = timer.intervals_ms(marks)[::2]
    after = _memory(device)
    return {"event_ms": event, "host_ms": host, "memory": {k: after[k] - before[k] for k in after}}


def _memory(device: str) -> dict:
    if not device.startswith("cuda"):
        return {}
    stats = torch.cuda.memory_stats(device)
    return {k: stats.get(k, 0) for k in MEMORY_KEYS}


def top_ops(model, device, vocab, batch, k, seen_k) -> dict:
    """Host operators (self time) and device kernels of one step at a new length k and one at a seen length."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    out = {}
    for name, length in (("new", k), ("seen", seen_k)):
        ids = torch.randint(vocab, (batch, length + 1), device=device)
        cache = prefill(model, ids[:, :length])
        with decoding(model), profile(activities=activities) as prof:
            decode_step(model, ids[:, length : length + 1], cache)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
        events = prof.key_averages()
        host = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
        kernels = sorted({e.key for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA})
        out[name] = {"host_ops_ms": {e.key: round(e.self_cpu_time_total / 1e3, 3) for e in host}, "kernels": kernels[:40]}
    return out


def child(args) -> dict:
    attention, off, keep_quiet = CONDITIONS[args.child]
    for kernel in off:
        getattr(torch.backends.cuda, f"enable_{kernel}_sdp")(False)
    name, config = load_config(args.arch)
    model = build_model(config, args.device, torch_dtype(args.dtype), attention)
    timer, n, vocab = timer_for(args.device), args.steps, config.vocab_size
    sweeps = [sweep(model, args.device, vocab, args.batch, n, timer, keep_quiet) for _ in range(1 + args.warm)]
    last = sweep(model, args.device, vocab, args.batch, 2 * n, timer, keep_quiet)
    return {"condition": args.child, "arch": name, "batch": args.batch, "steps": n, "sweeps": sweeps, "seen_then_new": last,
            "ops": top_ops(model, args.device, vocab, args.batch, 3 * n, n)}


def summarize(result: dict) -> dict:
    """The side-by-side figures of one condition."""
    first, warm = result["sweeps"][0], result["sweeps"][1:]
    n, last = result["steps"], result["seen_then_new"]
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    warm_event = np.array([s["event_ms"] for s in warm])  # [sweep, k]
    warm_host = np.array([s["host_ms"] for s in warm])
    dev_e, dev_h = (warm_event - warm_event.mean(axis=0)).ravel(), (warm_host - warm_host.mean(axis=0)).ravel()
    return {
        "condition": result["condition"],
        "cold_ms": mean(first["event_ms"]), "warm_ms": mean(warm_event), "cold_over_warm": mean(first["event_ms"]) / mean(warm_event),
        "cold_host_ms": mean(first["host_ms"]), "warm_host_ms": mean(warm_host),
        "seen_ms": mean(last["event_ms"][:n]), "new_ms": mean(last["event_ms"][n:]), "new_over_seen": mean(last["event_ms"][n:]) / mean(last["event_ms"][:n]),
        "warm_sweep_medians_ms": [float(np.median(s)) for s in warm_event],
        "warm_cv_median": float(np.median(warm_event.std(axis=0) / warm_event.mean(axis=0))) if len(warm) > 1 else None,
        "host_event_corr": float(np.corrcoef(dev_e, dev_h)[0, 1]) if len(warm) > 1 and dev_e.std() and dev_h.std() else None,
        "memory_first": first["memory"], "memory_warm": warm[-1]["memory"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tiny")
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--dtype")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=64, help="N: the cold and warm sweeps' k = 1..N; the last sweep's 1..2N")
    parser.add_argument("--warm", type=int, default=3, help="warm sweeps after the cold one")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--json", help="write every step's figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dtype = args.dtype or default_dtype(args.device)
    if args.child:
        print(json.dumps(child(args)))
        return
    print(f"{describe_device(args.device)['name']}: {args.arch} {args.dtype}, B={args.batch}, N={args.steps}, {args.warm} warm sweeps; torch {torch.__version__}")
    results = []
    for condition in args.conditions.split(","):
        if condition not in CONDITIONS:
            sys.exit(f"--conditions: unknown {condition!r}; choose from {', '.join(CONDITIONS)}")
        cmd = [sys.executable, __file__, "--child", condition, *sys.argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"{condition}: failed ({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode})")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        s = summarize(results[-1])
        corr = "-" if s["host_event_corr"] is None else f"{s['host_event_corr']:+.2f}"
        print(f"{condition:<18} cold {s['cold_ms']:8.2f} ms vs warm {s['warm_ms']:7.2f} ms: {s['cold_over_warm']:5.2f}x | "
              f"host {s['cold_host_ms']:7.2f} vs {s['warm_host_ms']:6.2f} ms | new k {s['new_ms']:7.2f} vs seen {s['seen_ms']:6.2f} ms: "
              f"{s['new_over_seen']:5.2f}x | warm sweeps' medians {'/'.join(f'{m:.2f}' for m in s['warm_sweep_medians_ms'])} ms, "
              f"CV {s['warm_cv_median'] or 0:.1%}, corr(host, event) {corr} | allocator first {s['memory_first']} warm {s['memory_warm']}",
              flush=True)
        for which in ("new", "seen"):
            ops = results[-1]["ops"][which]
            print(f"  {which}-length step, heaviest host ops (ms): "
                  + ", ".join(f"{k} {v}" for k, v in list(ops["host_ops_ms"].items())[:5])
                  + (f"; kernels: {', '.join(k[:60] for k in ops['kernels'][:12])}" if ops["kernels"] else ""), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "results": results, "summary": [summarize(r) for r in results]}, fh)


if __name__ == "__main__":
    main()
