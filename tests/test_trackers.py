"""The CUDA timer and memory tracker, unit-tested with fakes; the CPU ones for real."""

import pytest
import torch

from sotlat.profiler import memory as memory_mod
from sotlat.profiler import timer as timer_mod
from sotlat.profiler.run import decode_sweep
from sotlat.models.archs import build_model, load_config


class FakeEvent:
    clock = 0.0
    syncs = 0

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.t = None

    def record(self, stream):
        assert stream == ("stream of", FakeEvent.device)
        FakeEvent.clock += 2.5
        self.t = FakeEvent.clock

    def synchronize(self):
        FakeEvent.syncs += 1

    def elapsed_time(self, other):
        return other.t - self.t


def fake_cuda_events(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: ("stream of", device))
    FakeEvent.syncs, FakeEvent.device = 0, device


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_timer_reads_event_intervals_after_one_sync_on_the_devices_stream(monkeypatch, device):
    fake_cuda_events(monkeypatch, device)  # cuda:1's work timed on cuda:1's stream, not the current device's
    timer = timer_mod.timer_for(device)
    assert isinstance(timer, timer_mod.CudaTimer) and timer.name == "torch.cuda.Event"
    marks = [timer.mark() for _ in range(4)]
    assert timer.intervals_ms(marks) == [2.5, 2.5, 2.5]
    assert FakeEvent.syncs == 1


def test_sweep_with_cuda_events_syncs_once_per_sweep(monkeypatch):
    _, config = load_config("tiny")
    model = build_model(config, "cpu", torch.float32)  # first: on torch 2.4 its import of torch._dynamo rejects a fake Event
    fake_cuda_events(monkeypatch, "cuda")
    times, peaks, oom_at = decode_sweep(model, "cpu", 256, 2, 20, timer_mod.CudaTimer(), memory_mod.RssPeakMemory())
    assert times == [2.5] * 20 and oom_at is None and len(peaks) == 20
    assert FakeEvent.syncs == 1  # no host sync inside the sweep


def test_cuda_peak_memory_resets_then_reads(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: calls.append(("reset", str(device))))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: calls.append(("max", str(device))) or 12345)
    tracker = memory_mod.memory_tracker_for("cuda")
    with tracker:
        calls.append("work")
    assert calls == [("reset", "cuda"), "work", ("max", "cuda")]
    assert tracker.peak_bytes == 12345


def test_rss_tracker_reports_peak_growth_over_baseline(tmp_path):
    status, clear = tmp_path / "status", tmp_path / "clear_refs"
    status.write_text("Name:\tpython\nVmHWM:\t  3000 kB\nVmRSS:\t  1000 kB\n")
    clear.write_text("")
    tracker = memory_mod.RssPeakMemory(str(status), str(clear))
    status.write_text("VmHWM:\t  5000 kB\nVmRSS:\t  1200 kB\n")
    with tracker:
        pass
    assert clear.read_text() == "5"  # the high-water mark was reset first
    assert tracker.peak_bytes == (5000 - 1000) * 1024


def test_rss_tracker_without_clear_refs_reports_nothing(tmp_path):
    status = tmp_path / "status"
    status.write_text("VmHWM:\t  3000 kB\nVmRSS:\t  1000 kB\n")
    tracker = memory_mod.RssPeakMemory(str(status), str(tmp_path / "missing" / "clear_refs"))
    with tracker:
        pass
    assert tracker.peak_bytes is None


def test_cpu_tracker_never_asks_cuda():
    assert isinstance(memory_mod.memory_tracker_for("cpu"), memory_mod.RssPeakMemory)
    assert isinstance(timer_mod.timer_for("cpu"), timer_mod.CpuTimer)
    timer = timer_mod.CpuTimer()
    a, b = timer.mark(), timer.mark()
    assert timer.intervals_ms([a, b])[0] >= 0


def test_cuda_device_description_from_fakes(monkeypatch):
    """What a profile records of a GPU: properties, bandwidth from memory clock x bus width, nvidia-smi, catalogue entry."""
    import subprocess
    from types import SimpleNamespace

    from sotlat.models import device as device_mod

    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=85_520_809_984, multi_processor_count=132,
                            L2_cache_size=52_428_800, memory_bus_width=5120, memory_clock_rate=2_619_000,  # kHz
                            uuid="5a1d7d2c-0b3e-4c6f-9a8e-1f2d3c4b5a69")  # torch gives it bare
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(device_mod.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    smi, asked = "580.159.04, 1980 MHz, 2619 MHz, 1980 MHz, 2619 MHz, 700.00 W, P0", []
    monkeypatch.setattr(device_mod.subprocess, "run",
                        lambda args, **k: asked.append(args[1]) or subprocess.CompletedProcess(args, 0, stdout=smi + "\n"))
    info = device_mod.describe_device("cuda:0")
    assert asked == ["--id=GPU-5a1d7d2c-0b3e-4c6f-9a8e-1f2d3c4b5a69"]  # by UUID: CUDA_VISIBLE_DEVICES renumbers torch's indices
    del props.uuid
    device_mod.describe_device("cuda:1")
    assert asked[-1] == "--id=1"
    assert info["name"] == "NVIDIA H100 80GB HBM3" and info["compute_capability"] == "9.0" and info["multiprocessors"] == 132
    assert info["memory_bandwidth_bytes_per_s"] == 2 * 2_619_000e3 * 5120 / 8  # 3.35 TB/s, the H100 SXM's sheet figure
    assert info["driver"] == "580.159.04" and info["clocks"]["power.limit"] == "700.00 W"
    assert info["catalogue_id"] == "h100-sxm"

    from sotlat.profiler.run import ProfileSpec, _device_meta
    from sotlat.tables import PrefillGrid

    spec = ProfileSpec(arch="tiny", device="cuda", dtype="float16", batches=[1], prefill_lengths=PrefillGrid(1, 10, 10))
    assert _device_meta(spec).peak_tflops == 989  # dense FP16 tensor peak: Eq. 4's utilization needs no --peak-tflops
    assert _device_meta(ProfileSpec(**{**spec.__dict__, "dtype": "float32"})).peak_tflops == 67  # FP32 without tensor cores
    assert _device_meta(ProfileSpec(**{**spec.__dict__, "dtype": "float64"})).peak_tflops is None  # the catalogue has none
    monkeypatch.setattr(device_mod.shutil, "which", lambda name: None)  # no nvidia-smi: the rest is still there
    assert "driver" not in device_mod.describe_device("cuda") and device_mod.describe_device("cuda")["catalogue_id"] == "h100-sxm"
    assert info["memory_bandwidth_source"] == "memory clock x bus width"
    del props.memory_bus_width, props.memory_clock_rate  # torch 2.4's properties have neither: the catalogue's figure
    older = device_mod.describe_device("cuda")
    assert older["memory_bandwidth_bytes_per_s"] == 3350e9 and older["memory_bandwidth_source"] == "catalogue h100-sxm"
    props.name = "NVIDIA H100 NVL"  # no catalogue entry: unknown, not guessed
    assert device_mod.describe_device("cuda")["memory_bandwidth_bytes_per_s"] is None



def test_a_gpu_profile_records_how_busy_other_work_keeps_the_gpu(monkeypatch):
    """nvidia-smi's utilization.gpu of the GPU (by UUID), averaged over samples; none where it has no figure."""
    import subprocess
    from types import SimpleNamespace

    from sotlat.models import device as device_mod

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: SimpleNamespace(uuid="5a1d7d2c-0b3e"))
    monkeypatch.setattr(device_mod.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(device_mod.time, "sleep", lambda s: None)
    readings, asked = iter(["30 %", "60 %", "90 %"]), []
    monkeypatch.setattr(device_mod.subprocess, "run", lambda args, **k: asked.append(args[1:3])
                        or subprocess.CompletedProcess(args, 0, stdout=next(readings) + "\n"))
    load = device_mod.host_load("cuda:0")
    assert load["gpu_busy_pct"] == 60 and asked == [["--id=GPU-5a1d7d2c-0b3e", "--query-gpu=utilization.gpu"]] * 3
    assert "cpu_busy_pct" in load and "gpu_busy_pct" not in device_mod.host_load("cpu")
    readings = iter(["[N/A]"] * 3)  # a MIG instance has no utilization figure
    assert device_mod.gpu_busy_pct("cuda") is None
    monkeypatch.setattr(device_mod.shutil, "which", lambda name: None)
    assert device_mod.gpu_busy_pct("cuda") is None

def test_sweep_times_each_step_without_the_memory_trackers_work():
    _, config = load_config("tiny")
    model = build_model(config, "cpu", torch.float32)
    clock = [0.0]
    model.register_forward_pre_hook(lambda module, args: clock.__setitem__(0, clock[0] + 1e-3))  # a forward: 1 ms

    class Clock(timer_mod.CpuTimer):
        def mark(self):
            return clock[0]

    class SlowTracker:  # 1 s of work on entry and on exit
        peak_bytes = 7

        def __enter__(self):
            clock[0] += 1.0
            return self

        def __exit__(self, *exc):
            clock[0] += 1.0

    times, peaks, oom_at = decode_sweep(model, "cpu", 256, 2, 6, Clock(), SlowTracker())
    assert times == pytest.approx([1.0] * 6) and peaks == [7] * 6 and oom_at is None


def test_free_memory_is_the_gpus_free_memory_or_the_hosts_available(monkeypatch):
    import psutil
    import torch

    from sotlat.models.device import free_memory_bytes

    asked = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: asked.append(device) or (123, 456))  # (free, total)
    assert free_memory_bytes("cuda:1") == 123 and asked == [torch.device("cuda:1")]
    assert 0 < free_memory_bytes("cpu") <= psutil.virtual_memory().total
