"""Append-only JSONL files that survive interruption: one fsynced line per finished record."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from sotlat.atomic import writable
from sotlat.errors import InputError
from sotlat.interrupts import Interrupted, sigterm_as_keyboard_interrupt
from sotlat.estimator.traces import trace_key


def finished_keys(path: Path, resume: bool) -> set[tuple[str | None, str]]:
    """(model, id) of the traces already in `path` (for --resume); a torn last line is cut off.
    Refuses an existing file without resume."""
    if not path.exists():
        with writable(path):  # before any work: a file that cannot be written is found now, not after the first record
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            path.unlink()
        return set()
    if not resume:
        raise InputError(f"{path}: already exists; continue it with `resume`, or choose another `out`")
    with writable(path):
        data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # interrupted mid-write (perhaps mid-character): keep only whole lines
    try:
        text = whole.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot resume it: not a UTF-8 JSONL file ({exc})") from None
    if len(whole) < len(data):
        with writable(path), open(path, "r+b") as fh:
            fh.truncate(len(whole))
    keys = set()
    for number, line in enumerate(text.splitlines(), 1):
        try:
            keys.add(trace_key(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise InputError(f"{path}:{number}: not a record with an id; cannot resume this file") from None
    return keys


def append(path: Path, record: dict) -> None:
    with writable(path), open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def appending(path: Path, what: str):
    """Ctrl-C or SIGTERM in a loop that appends one finished record per line: the run ends with
    `Interrupted`, saying what is kept and how to go on."""
    try:
        with sigterm_as_keyboard_interrupt():
            yield
    except KeyboardInterrupt:
        kept = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
        raise Interrupted(f"interrupted: {kept} {what} in {path}; continue with `resume`") from None
