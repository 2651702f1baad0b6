"""The GPU catalogue (data/gpus.json): memory, bandwidth, dense FP16 tensor TFLOPS, SMs, L2, each
with its source and whether the sources confirm it."""

from __future__ import annotations

import json
import re
from importlib import resources

from sotlat.errors import InputError

FIELDS = ("memory_gb", "bandwidth_gbps", "fp16_dense_tflops", "sms", "l2_mb")


def load_catalogue() -> dict[str, dict]:
    with open(str(resources.files("sotlat") / "data" / "gpus.json"), encoding="utf-8") as fh:
        return json.load(fh)["gpus"]


def gpu_spec(gpu_id: str, peak_tflops: float | None = None, bandwidth_gbps: float | None = None) -> dict:
    """Plain figures of one GPU; overrides replace missing or doubted figures."""
    catalogue = load_catalogue()
    if gpu_id not in catalogue:
        raise InputError(f"--gpu: unknown GPU {gpu_id!r}; `sotlat gpus` lists: {', '.join(catalogue)}")
    entry = catalogue[gpu_id]
    spec = {"id": gpu_id, "name": entry["name"], **{f: entry[f]["value"] for f in FIELDS}}
    if peak_tflops:
        spec["fp16_dense_tflops"] = peak_tflops
    if bandwidth_gbps:
        spec["bandwidth_gbps"] = bandwidth_gbps
    for field, option in (("fp16_dense_tflops", "--peak-tflops"), ("bandwidth_gbps", "--bandwidth-gbps"), ("memory_gb", None)):
        if spec[field] is None:
            raise InputError(f"{gpu_id}: {field} is not known{f'; give {option}' if option else ''}")
    spec["unconfirmed"] = [f for f in FIELDS if not entry[f]["confirmed"]]
    return spec


def catalogue_id(device_name: str) -> str | None:
    """The entry whose `device_name` pattern matches the name the driver reports; None unless exactly one does."""
    found = [gid for gid, entry in load_catalogue().items() if re.search(entry["device_name"], device_name, re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


def figure(gpu_id: str | None, field: str) -> float | None:
    """One figure of an entry (a FIELDS name, e.g. the dense FP16/BF16 peak the paper's utilization
    uses, or the bandwidth); None for no entry or an unknown figure."""
    return load_catalogue()[gpu_id][field]["value"] if gpu_id else None
