"""What a long run tells its caller as it goes: work done of the total, what it is doing, and notes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Tracker:
    """`update(done, total, what)` after each piece of work (forward passes, questions, traces);
    `say(line)` for what the caller should read before the run ends."""

    update: Callable[[int, int, str], None] = lambda done, total, what: None
    say: Callable[[str], None] = lambda line: None
    done: int = 0
    total: int = 0

    def advance(self, n: int, what: str) -> None:
        self.done += n
        self.update(self.done, self.total, what)
