"""The profiling grid: batch lists, the prefill length grid, and the paper's prefill lookup."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sotlat.errors import InputError


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


def parse_range(text: str, option: str = "--prefill-lengths") -> PrefillGrid:
    """'START:STOP:STEP' with Python's range meaning."""
    try:
        start, stop, step = (int(x) for x in text.split(":"))
    except ValueError:
        raise InputError(f"{option}: expected START:STOP:STEP (e.g. 1:700:10), got {text!r}") from None
    if start < 1 or step < 1 or stop <= start:
        raise InputError(f"{option}: need START >= 1, STEP >= 1 and STOP > START, got {text!r}")
    return PrefillGrid(start, stop, step)


def parse_batches(text: str, option: str = "--batches") -> list[int]:
    """An inclusive range 'A-B' or a comma list 'A,B,C' of positive batch sizes."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            batches = list(range(lo, hi + 1))
        else:
            batches = sorted({int(x) for x in text.split(",")})
    except ValueError:
        raise InputError(f"{option}: expected a range like 1-16 or a list like 1,2,4, got {text!r}") from None
    if not batches or batches[0] < 1:
        raise InputError(f"{option}: batch sizes must be positive integers, got {text!r}")
    return batches


def format_batches(batches: list[int]) -> str:
    """The --batches text of sorted batch sizes, as parse_batches reads it: 'A-B' when contiguous."""
    contiguous = len(batches) > 1 and batches == list(range(batches[0], batches[-1] + 1))
    return f"{batches[0]}-{batches[-1]}" if contiguous else ",".join(map(str, batches))
