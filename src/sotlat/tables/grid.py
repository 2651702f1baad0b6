"""The profiling grid: batch lists, the prefill length grid, and the paper's prefill lookup."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sotlat.errors import InputError

MAX_BATCH = 65_536  # past any batch a GPU holds; larger sizes are typos
# 57 times the paper's 17,504 cells: a bigger grid is a typo ('1:700000:1'), not a plan, and would
# take days to profile and more memory than this machine has to simulate.
MAX_CELLS = 1_000_000


@dataclass(frozen=True)
class PrefillGrid:
    """Prefill lengths range(start, stop, step), as the paper writes range(1, 700, 10)."""

    start: int
    stop: int
    step: int

    @property
    def lengths(self) -> list[int]:
        return list(range(self.start, self.stop, self.step))

    def index(self, prompt_len):
        """Eq. 1's t~^P: grid index j = floor(l / step), i.e. length start + j*step.

        On the paper's grid (start 1, step 10) this is t^P(floor(l/10)*10 + 1). Works on arrays.
        """
        return np.asarray(prompt_len) // self.step

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PrefillGrid":
        return cls(int(d["start"]), int(d["stop"]), int(d["step"]))

    @classmethod
    def reaching(cls, prompt_len: int, start: int, step: int) -> "PrefillGrid":
        """The shortest grid from `start` by `step` whose lookup (`index`) answers prompts up to `prompt_len`."""
        return cls(start, start + (prompt_len // step) * step + 1, step)

    def __str__(self) -> str:
        """As --prefill-lengths takes it."""
        return f"{self.start}:{self.stop}:{self.step}"


def parse_range(text: str, param: str = "prefill_lengths") -> PrefillGrid:
    """'START:STOP:STEP' with Python's range meaning."""
    try:
        start, stop, step = (int(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"expected START:STOP:STEP (e.g. 1:700:10), got {text!r}", param=param) from None
    if start < 1 or step < 1 or stop <= start:
        raise InputError(f"need START >= 1, STEP >= 1 and STOP > START, got {text!r}", param=param)
    return PrefillGrid(start, stop, step)


def parse_batches(text: str, param: str = "batches") -> list[int]:
    """Positive batch sizes: a comma list of sizes and inclusive ranges, '1-16', '1,2,4', '1-8,12,16'."""
    batches = set()
    for item in text.split(","):
        try:
            lo, dash, hi = item.partition("-")
            lo = int(lo)
            hi = int(hi) if dash else lo
        except ValueError:
            raise InputError(f"expected sizes and ranges like 1-16, 1,2,4 or 1-8,12,16, got {text!r}", param=param) from None
        if lo < 1:
            raise InputError(f"batch sizes must be positive integers, got {text!r}", param=param)
        if hi < lo:
            raise InputError(f"the range {item.strip()!r} runs backwards; write it {hi}-{lo}", param=param)
        if hi > MAX_BATCH:
            raise InputError(f"batch sizes go up to {MAX_BATCH:,}, got {hi:,} in {text!r}", param=param)
        batches.update(range(lo, hi + 1))
    return sorted(batches)


def check_grid(batches: list[int], prefill_lengths: PrefillGrid, decode_max: int) -> None:
    """Refuse a grid of more than MAX_CELLS cells before anything is built, measured or simulated."""
    n_prefill = len(range(prefill_lengths.start, prefill_lengths.stop, prefill_lengths.step))
    cells = len(batches) * (n_prefill + decode_max)
    if cells > MAX_CELLS:
        raise InputError(f"`batches`, `prefill_lengths` and `decode_max` give {cells:,} cells ({len(batches):,} batch{'es' * (len(batches) != 1)} x "
                         f"({n_prefill:,} prefill lengths + {decode_max:,} decode steps)); a table holds at most {MAX_CELLS:,} "
                         "(the paper's grid: 17,504)")


def as_options(params: dict) -> dict:
    """Grid parameters (batches, prefill_lengths, decode_max) as the options `profile` and `simulate` take them."""
    return {f"--{name.replace('_', '-')}": value for name, value in params.items()}


def check_runs(prefill_runs: int, prefill_warmup: int) -> None:
    """The prefill warm-ups are dropped from a cell's runs: at least one run must be kept."""
    if prefill_warmup >= prefill_runs:
        raise InputError(f"{prefill_warmup} must be smaller than `prefill_runs` ({prefill_runs})", param="prefill_warmup")


def format_batches(batches: list[int]) -> str:
    """The --batches text of sorted batch sizes, as parse_batches reads it: 'A-B' for a contiguous
    list, and for any run of three or more within a list ('1,3,5-8,14')."""
    runs = []
    for b in batches:
        if runs and b == runs[-1][-1] + 1:
            runs[-1].append(b)
        else:
            runs.append([b])
    if len(runs) == 1 and len(batches) > 1:
        return f"{batches[0]}-{batches[-1]}"
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ",".join(map(str, r)) for r in runs)
