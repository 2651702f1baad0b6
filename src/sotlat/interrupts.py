"""Stopping a long run without losing it: Ctrl-C and SIGTERM (a job scheduler's or `timeout`'s stop)
both arrive as KeyboardInterrupt, and the run ends with `Interrupted` once its work is saved."""

from __future__ import annotations

import contextlib
import signal


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: what was finished is saved, the run can be resumed."""


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt():
    """Within the block SIGTERM raises KeyboardInterrupt, so one handler saves the work for both."""

    def on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
