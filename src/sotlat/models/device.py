"""What the profiled device is: everything readable about it, for the table's metadata."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time

import torch

from sotlat.models.catalogue import catalogue_id, figure

_SMI_FIELDS = ["driver_version", "clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem", "power.limit", "pstate"]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """cuda, cuda:N or cpu, checked against this machine; None is cuda where there is one, else cpu."""
    from sotlat.errors import InputError

    device = device or default_device()
    cuda = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not cuda and device != "cpu":
        raise InputError(f"expected cuda, cuda:N or cpu, got {device!r}", param="device")
    if cuda and not torch.cuda.is_available():
        raise InputError(f"{device}: no CUDA device is available here (use cpu)", param="device")
    if cuda and cuda[1] and int(cuda[1]) >= torch.cuda.device_count():
        raise InputError(f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}",
                         param="device")
    return device


def free_memory_bytes(device: str) -> int:
    """Memory free for new allocations: the GPU's free memory, or the host's available memory."""
    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    import psutil

    return psutil.virtual_memory().available


def describe_device(device: str) -> dict:
    return _describe_cuda(device) if device.startswith("cuda") else _describe_cpu()


def memory_bandwidth(props) -> float | None:
    """Peak DRAM bandwidth in bytes/s from the memory clock (kHz) and bus width (bits), double data rate."""
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8


def _describe_cuda(device: str) -> dict:
    index = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(index)
    entry = catalogue_id(props.name)
    bandwidth, source = memory_bandwidth(props), "memory clock x bus width"
    if bandwidth is None and entry:  # older torch has neither property: the catalogue's sheet figure
        bandwidth, source = figure(entry, "bandwidth_gbps") * 1e9, f"catalogue {entry}"
    info = {
        "name": props.name,
        "kind": "cuda",
        "index": index,
        "compute_capability": f"{props.major}.{props.minor}",
        "total_memory_bytes": int(props.total_memory),
        "multiprocessors": props.multi_processor_count,
        "l2_cache_bytes": getattr(props, "L2_cache_size", None),
        "memory_bus_width_bits": getattr(props, "memory_bus_width", None),
        "memory_clock_khz": getattr(props, "memory_clock_rate", None),
        "memory_bandwidth_bytes_per_s": bandwidth,
        "memory_bandwidth_source": source if bandwidth else None,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "catalogue_id": entry,
    }
    info.update(_nvidia_smi(_smi_id(props, index)))
    return info


def _smi_id(props, index: int) -> str:
    """nvidia-smi's id of the GPU: its UUID, since torch's indices follow CUDA_VISIBLE_DEVICES and
    nvidia-smi's do not (torch gives the UUID bare, nvidia-smi wants it as GPU-…)."""
    uuid = getattr(props, "uuid", None)
    if uuid is None:
        return str(index)
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _nvidia_smi(gpu: str) -> dict:
    """Driver and clocks from nvidia-smi, when it is there."""
    values = _smi_query(gpu, _SMI_FIELDS)
    if values is None:
        return {}
    driver, *clocks = values
    return {"driver": driver, "clocks": dict(zip(_SMI_FIELDS[1:], clocks))}


def host_load(device: str) -> dict:
    """How busy other work kept the machine, sampled with this process idle before a timed run: the
    CPUs' busy share over half a second and the 1-minute load average, which lags; on a GPU also the
    GPU's utilization. Another torch process oversubscribing the cores can slow a CPU run many times;
    another process's kernels on the GPU slow every step."""
    import psutil

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    host = {"cpu_busy_pct": psutil.cpu_percent(interval=0.5), "load_1min": load, "logical_cpus": os.cpu_count()}
    return {**host, "gpu_busy_pct": gpu_busy_pct(device)} if device.startswith("cuda") else host


def gpu_busy_pct(device: str) -> float | None:
    """How busy other work keeps the GPU while this process runs nothing on it (see `utilization`)."""
    index = torch.device(device).index or 0
    return utilization(_smi_id(torch.cuda.get_device_properties(index), index))


def utilization(gpu: str, samples: int = 3, pause_s: float = 0.25) -> float | None:
    """nvidia-smi's utilization.gpu, the share of its last sample period in which a kernel ran, averaged
    over a few samples; None without nvidia-smi or where it has no figure (MIG). Another process's
    kernels slow every timed cell, as other work on the CPUs slows a CPU profile."""
    readings = []
    for i in range(samples):
        if i:
            time.sleep(pause_s)
        values = _smi_query(gpu, ["utilization.gpu"])
        try:
            readings.append(float(values[0].split()[0]))  # "85 %"
        except (TypeError, ValueError, IndexError):  # no nvidia-smi, or "[N/A]"
            return None
    return sum(readings) / len(readings)


def _smi_query(gpu: str, fields: list[str]) -> list[str] | None:
    """One line of `nvidia-smi --query-gpu` for the GPU, split into its fields; None if it cannot answer."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={gpu}", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    values = [v.strip() for v in out.split(",")]
    return values if len(values) == len(fields) else None


def _describe_cpu() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1]) * 1024
    except (OSError, StopIteration):
        pass
    return {
        "name": f"cpu: {model}",
        "kind": "cpu",
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "total_memory_bytes": mem,
        "platform": platform.platform(),
    }
