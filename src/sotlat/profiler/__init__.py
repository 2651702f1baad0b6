"""The profiler: measure prefill and decode latency and peak memory on a device (the models it runs: sotlat.models)."""
