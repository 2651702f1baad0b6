"""The GPU catalogue (data/gpus.json): memory, bandwidth, dense FP16 tensor and FP32 TFLOPS, SMs,
L2, each with its source and whether the sources confirm it."""

from __future__ import annotations

import json
import re
from importlib import resources

from sotlat.errors import InputError, did_you_mean

FIELDS = ("memory_gb", "bandwidth_gbps", "fp16_dense_tflops", "fp32_tflops", "sms", "l2_mb")


def peak_field(dtype: str) -> str | None:
    """The catalogue figure that is the compute peak of work in `dtype`: float16 and bfloat16 run on
    tensor cores, float32 without (PyTorch leaves TF32 off for matrix products); None for others."""
    return {"float16": "fp16_dense_tflops", "bfloat16": "fp16_dense_tflops", "float32": "fp32_tflops"}.get(dtype)


def load_catalogue() -> dict[str, dict]:
    with open(str(resources.files("sotlat") / "data" / "gpus.json"), encoding="utf-8") as fh:
        return json.load(fh)["gpus"]


def gpu_spec(gpu_id: str, dtype: str, peak_tflops: float | None = None, bandwidth_gbps: float | None = None) -> dict:
    """Plain figures of one GPU for work in `dtype`, its compute peak as `peak_tflops`; overrides
    replace missing or doubted figures. `unconfirmed` names the figures a simulation rests on
    (memory, bandwidth, the dtype's peak) that the sources leave unsure and no override replaced."""
    catalogue = load_catalogue()
    given, gpu_id = gpu_id, gpu_id.strip().lower()  # ids are lower case: A100-80GB-SXM is a100-80gb-sxm
    if gpu_id not in catalogue:
        raise InputError(f"unknown GPU {given!r}; {did_you_mean(gpu_id, catalogue)}`sotlat gpus` lists all {len(catalogue)}: {', '.join(catalogue)}",
                         param="gpu")
    entry, field = catalogue[gpu_id], peak_field(dtype)
    spec = {"id": gpu_id, "name": entry["name"], **{f: entry[f]["value"] for f in FIELDS}}
    spec["peak_tflops"] = peak_tflops or (spec[field] if field else None)
    if spec["peak_tflops"] is None:
        known = f"{field} is not known" if field else f"the catalogue has no compute peak for {dtype}"
        raise InputError(f"{gpu_id}: {known}; give `peak_tflops`")
    if bandwidth_gbps:
        spec["bandwidth_gbps"] = bandwidth_gbps
    for name, given in (("bandwidth_gbps", True), ("memory_gb", False)):
        if spec[name] is None:
            raise InputError(f"{gpu_id}: {name} is not known{f'; give `{name}`' if given else ''}")
    replaced = {"bandwidth_gbps": bandwidth_gbps, field: peak_tflops}
    used = [f for f in ("memory_gb", "bandwidth_gbps", field) if f and not replaced.get(f)]  # what a simulation rests on
    spec["unconfirmed"] = [f for f in used if not entry[f]["confirmed"]]
    return spec


def catalogue_id(device_name: str) -> str | None:
    """The entry whose `device_name` pattern matches the name the driver reports; None unless exactly one does."""
    found = [gid for gid, entry in load_catalogue().items() if re.search(entry["device_name"], device_name, re.IGNORECASE)]
    return found[0] if len(found) == 1 else None


def figure(gpu_id: str | None, field: str | None) -> float | None:
    """One figure of an entry (a FIELDS name, e.g. a dtype's compute peak, which the paper's
    utilization divides by, or the bandwidth); None for no entry or an unknown figure."""
    return load_catalogue()[gpu_id][field]["value"] if gpu_id and field else None
