"""What profiler and simulator both know of models and devices: architectures and their configs,
shapes, the forward steps, FLOP counting, dtypes, the device at hand and the GPU catalogue."""
