"""Write files and folders all-or-nothing: a temporary one beside the target, then a rename.

The temporary name is made here rather than by `tempfile`, whose files are 0600 and folders
0700 whatever the umask: a table or report is created with the permissions any other file
the user writes gets.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from sotlat.errors import InputError


def _beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


@contextlib.contextmanager
def writable(path: Path):
    """The filesystem refusing the output (no such folder, no permission, a folder in the way) is the user's to fix."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{path}: cannot write it here ({exc.strerror or exc})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary file path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    with writable(path):
        tmp = _beside(path)
        tmp.touch(exist_ok=False)
    try:
        yield tmp
        with writable(path):
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder beside `path`; it replaces `path` whole only if the block succeeds."""
    path = Path(path)
    with writable(path):
        tmp = _beside(path)
        tmp.mkdir()
    try:
        yield tmp
        with writable(path):
            if path.is_dir():
                shutil.rmtree(path)
            tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_frame(frame, out: Path) -> None:
    """A DataFrame written by the suffix of `out` (.jsonl, .csv, .parquet), atomically."""
    out = Path(out)
    with atomic_path(out) as tmp:
        if out.suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True)
        elif out.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
