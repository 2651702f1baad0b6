"""Model architectures to profile, and random-weight models built straight on the device.

Latency does not depend on the weights' values, so weights are random (normal, std 0.02):
allocated on the device in the target dtype, with no init pass and nothing downloaded.
"""

from __future__ import annotations

import json
import os
import re

import torch
from accelerate import init_empty_weights
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from sotlat.errors import InputError, did_you_mean

_LLAMA_V1 = dict(vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0)

# hidden / layers / heads / intermediate as in the LLaMA paper; smollm2 as SmolLM2-135M/360M-Instruct;
# mixtral-8x7b as Mixtral-8x7B-v0.1's config.json (a mixture of experts: 8 per layer, 2 per token).
# transformers' attention implementations the profiler runs: SDPA (one fused kernel, transformers'
# default) or eager (matmul, softmax, matmul: how the paper's transformers 4.28 computed it).
ATTENTIONS = ("sdpa", "eager")

ARCHS: dict[str, dict] = {
    "llama-7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008, **_LLAMA_V1),
    "llama-13b": dict(hidden_size=5120, num_hidden_layers=40, num_attention_heads=40, intermediate_size=13824, **_LLAMA_V1),
    "llama-33b": dict(hidden_size=6656, num_hidden_layers=60, num_attention_heads=52, intermediate_size=17920, **_LLAMA_V1),
    "mixtral-8x7b": dict(
        model_type="mixtral", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=32000, max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1e6,
        num_local_experts=8, num_experts_per_tok=2, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
    ),
    "smollm2-135m": dict(
        hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        intermediate_size=1536, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5,
        rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    ),
    "smollm2-360m": dict(
        hidden_size=960, num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5,
        intermediate_size=2560, vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5,
        rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    ),
    "tiny": dict(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, vocab_size=256, max_position_embeddings=4096,
    ),
}


# sizes a config must give as positive integers, under HF's standard names and GPT-2's; the MLP
# width may be one per layer (Gemma 3n's)
_SIZES = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "vocab_size", "intermediate_size",
          "n_layer", "n_embd", "n_head")
_PER_LAYER_SIZES = ("intermediate_size",)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def load_config(arch: str | None, config_path: str | None = None) -> tuple[str, PretrainedConfig]:
    """(name, HF config) for a named architecture, an HF config.json (or model folder) of a causal
    LM, or a GGUF file; of a multimodal config, its text model's."""
    if config_path and config_path.endswith(".gguf"):
        return arch or config_name(config_path), gguf_config(config_path).get_text_config(decoder=True)
    if config_path:
        hint = ""
        if os.path.isdir(config_path):  # an HF model folder: its config.json
            ggufs = sorted(f for f in os.listdir(config_path) if f.endswith(".gguf"))
            hint = f" (the folder holds {', '.join(ggufs)}: give --config that file)" if ggufs else ""
            config_path = os.path.join(config_path, "config.json")
        try:
            with open(config_path, encoding="utf-8-sig") as fh:
                raw = json.load(fh)
        except FileNotFoundError:
            raise InputError(f"{config_path}: no such file{hint}") from None
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not text at all (UnicodeDecodeError)
            raise InputError(f"{config_path}: not a readable JSON config ({exc})") from None
        if not isinstance(raw, dict) or "model_type" not in raw:
            raise InputError(f"{config_path}: model_type is missing: not a Hugging Face config")
        if raw.get("quantization_config"):  # from_config would ignore it: a table of other weights than the name says
            method = raw["quantization_config"].get("quant_method", "?") if isinstance(raw["quantization_config"], dict) else "?"
            raise InputError(f"{config_path}: quantization_config ({method}): sotlat runs the weights unquantized, in --dtype; "
                             "delete quantization_config to profile or simulate the architecture so")
        for where, fields in (("", raw), ("text_config.", raw.get("text_config"))):
            for size in _SIZES if isinstance(fields, dict) else ():
                value = fields.get(size)
                per_layer = size in _PER_LAYER_SIZES and isinstance(value, list) and value and all(map(_positive_int, value))
                if value is not None and not per_layer and not _positive_int(value):
                    kind = "a positive integer" + (" or a list of them, one per layer" if size in _PER_LAYER_SIZES else "")
                    raise InputError(f"{config_path}: {where}{size} must be {kind}, not {value!r}")
        try:
            config = config_from_dict(raw)
        except (ValueError, KeyError) as exc:
            raise InputError(f"{config_path}: model_type: {exc}") from None
        except Exception as exc:  # transformers' own checks of the values, whatever they raise
            raise InputError(f"{config_path}: transformers refuses the config: {type(exc).__name__}: {exc}") from None
        # a multimodal config (LLaVA, Gemma 3/4, Llama 4) decodes text with its text model: that is what is profiled
        return arch or config_name(config_path), config.get_text_config(decoder=True)
    given, arch = arch, (arch or "").strip().lower()  # LLaMA-7B is llama-7b
    if arch not in ARCHS:
        raise InputError(f"unknown architecture {given!r}; {did_you_mean(arch, ARCHS)}choose one of {', '.join(ARCHS)} or give `config`", param="arch")
    return arch, AutoConfig.for_model(**{"model_type": "llama", **ARCHS[arch]})


def gguf_source(path: str) -> dict:
    """from_pretrained's arguments for a GGUF file: its folder and its name."""
    return {"pretrained_model_name_or_path": os.path.dirname(os.path.abspath(path)), "gguf_file": os.path.basename(path)}


def gguf_config(path: str) -> PretrainedConfig:
    """The HF config transformers reads from a GGUF file's metadata: the architecture transformers runs
    when it loads that file, its weights dequantised."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        return AutoConfig.from_pretrained(**gguf_source(path), local_files_only=True)
    except ImportError as exc:
        raise InputError(f"{path}: reading a GGUF file needs the package gguf ({exc})") from None
    except Exception as exc:  # the gguf reader's and transformers' errors, whatever they raise
        raise InputError(f"{path}: not a GGUF file transformers can read ({type(exc).__name__}: {exc})") from None


def config_from_dict(raw: dict) -> PretrainedConfig:
    """transformers' config of a config dict, its special floats decoded as transformers' own reader
    does: transformers 5 writes inf and nan as {"__float__": "Infinity"} (Falcon-H1's and Bamba's
    `time_step_limit`), in config.json and so in a table's metadata; transformers 4 writes a bare
    Infinity, which json reads."""
    decode = getattr(PretrainedConfig, "_decode_special_floats", None)
    return AutoConfig.for_model(**(decode(raw) if decode else raw))


def config_name(config_path: str) -> str:
    """A config's name in tables: its file's stem, or for an HF model folder's `config.json` the
    folder's name (`Llama-3-8B/config.json` is Llama-3-8B)."""
    path = os.path.abspath(config_path)
    stem, folder = os.path.splitext(os.path.basename(path))[0], os.path.basename(os.path.dirname(path))
    return folder if stem == "config" and folder else stem


def config_dict(config: PretrainedConfig) -> dict:
    """The config as plain JSON data, for table metadata."""
    return json.loads(config.to_json_string(use_diff=False))


def embedding_parameters(model: torch.nn.Module) -> int:
    """The parameters of embedding tables a forward pass gathers a few rows of and never reads whole,
    so not among the weights it reads: every embedding table but one the output head shares, e.g. an
    untied input embedding (Llama-3-8B's: 6.5% of its parameters), learned positions (GPT-2's),
    Gemma 3n's per-layer embeddings (a third of its parameters)."""
    tables = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    shared = {id(p) for m in model.modules() if not isinstance(m, torch.nn.Embedding) for p in m.parameters(recurse=False)}
    return sum(n for key, n in tables.items() if key not in shared)


def moe_routing(config: PretrainedConfig) -> tuple[int, int]:
    """(routed experts per layer, experts each token visits) of a mixture-of-experts config under
    transformers' names (Mixtral's, Qwen-MoE's, DeepSeek's); (0, 0) for a dense model."""
    experts = next((v for v in (getattr(config, n, None) for n in ("num_local_experts", "num_experts", "n_routed_experts")) if v), 0)
    per_token = getattr(config, "num_experts_per_tok", None) or 0
    return (experts, per_token) if experts and per_token else (0, 0)


def kv_layers(config: PretrainedConfig) -> tuple[int | None, ...] | None:
    """Per layer, the most tokens whose keys and values it caches (0: every one; None: no keys), read
    off the cache transformers builds for the config: a sliding-window layer keeps its window less
    one token (the new token completes the window); a recurrent layer (Mamba, linear attention) and
    a layer reusing another's cache keep none. None where every layer keeps every token, as all do
    before transformers 5, whose cache has no layers of its own."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

        layers = DynamicCache(config=config).layers
    except (ImportError, TypeError, KeyError):  # transformers 4 (no cache layers), or a layer type its cache does not know (DeepSeek-V4)
        return None

    def kept(layer) -> int | None:
        if isinstance(layer, DynamicSlidingWindowLayer):
            return layer.sliding_window - 1
        return 0 if isinstance(layer, DynamicLayer) else None

    return tuple(kept(layer) for layer in layers)


def expert_parameters(model: torch.nn.Module) -> int:
    """The routed experts' parameters, all layers (a shared expert, which every token visits, is not one)."""
    return sum(p.numel() for name, p in model.named_parameters() if ".experts." in name)


def read_parameters(parameters: int, embedding: int, routed: int, routing: tuple[int, int], tokens=1):
    """The parameters a forward pass over `tokens` tokens reads: all but the gathered embedding
    tables and, in a mixture of experts, the routed experts no token visits: each expert is missed
    by all of them with probability (1 - k/E)^tokens, k of E experts chosen per token uniformly,
    as random weights route."""
    experts, per_token = routing
    missed = (1.0 - per_token / experts) ** tokens if experts else 0.0
    return parameters - embedding - routed * missed


COUNTS = ("parameters", "expert_parameters", "embedding_parameters", "gemms_per_layer")  # parameter_counts' keys


def gemms_per_layer(model: torch.nn.Module) -> int:
    """The matrix products one decoder layer runs: the weights of two or more dimensions under its
    first layer (`layers.0.`, `h.0.`), one per kind (a mixture of experts' stacked or numbered
    experts count once: one grouped product each). What the simulator's per-kernel floors count."""
    kinds = set()
    for name, param in model.named_parameters():
        first = re.search(r"\.0\.(.*)$", name)
        if first and param.ndim >= 2:
            kinds.add(re.sub(r"\.\d+\.", ".N.", first[1]))
    return max(len(kinds), 1)


def parameter_counts(model: torch.nn.Module) -> dict:
    """All of a model's parameters, a mixture of experts' routed experts' and the gathered embedding
    tables' (`embedding_parameters`): what the weights a pass reads are computed from; and the
    matrix products of one layer (`gemms_per_layer`)."""
    routed = expert_parameters(model) if moe_routing(model.config)[0] else 0
    return {"parameters": sum(p.numel() for p in model.parameters()), "expert_parameters": routed,
            "embedding_parameters": embedding_parameters(model), "gemms_per_layer": gemms_per_layer(model)}


def arch_meta(name: str, config: PretrainedConfig, shapes: torch.nn.Module, dtype: torch.dtype) -> dict:
    """The table metadata's `arch`: name, HF config, parameter counts, weight bytes in `dtype`, and
    the bytes of the weights a one-token forward pass reads (all but the gathered embedding tables,
    and the experts the token does not visit)."""
    counts, size = parameter_counts(shapes), torch.empty((), dtype=dtype).element_size()
    read = read_parameters(counts["parameters"], counts["embedding_parameters"], counts["expert_parameters"], moe_routing(config))
    return {"name": name, "config": config_dict(config), **counts,
            "weight_bytes": counts["parameters"] * size, "read_weight_bytes": round(read * size)}


def build_model(config: PretrainedConfig, device: str, dtype: torch.dtype, attention: str = "sdpa") -> torch.nn.Module:
    """An eval-mode causal LM with random N(0, 0.02) weights allocated directly on `device`.

    Parameters start on the meta device (no allocation, no init pass); buffers such as the
    rotary frequencies are computed for real, then everything moves to `device`.
    """
    with init_empty_weights(include_buffers=False):
        model = causal_lm(config, attention)
    with torch.no_grad():
        for name, param in list(model.named_parameters()):
            owner, _, attr = name.rpartition(".")
            weights = torch.empty(param.shape, dtype=dtype, device=device).normal_(0.0, 0.02)
            setattr(model.get_submodule(owner), attr, torch.nn.Parameter(weights, requires_grad=False))
    model.tie_weights()
    return model.to(device).eval()


def check_weights_fit(name: str, shapes: torch.nn.Module, dtype: torch.dtype, device: str) -> None:
    """Refuse, before building the model, weights larger than the device's free memory: on a GPU
    the build would fail half-way, and on a CPU the kernel would kill the process without a word."""
    from sotlat.models.device import free_memory_bytes

    need = sum(p.numel() for p in shapes.parameters()) * torch.empty((), dtype=dtype).element_size()
    free = free_memory_bytes(device)
    if need > free:
        raise InputError(f"{name}: its weights take {need / 1e9:,.1f} GB in {str(dtype).removeprefix('torch.')}, "
                         f"more than the {free / 1e9:,.1f} GB free on {device}")


def meta_model(config: PretrainedConfig, attention: str | None = None) -> torch.nn.Module:
    """The architecture on the meta device: shapes only, for counting FLOPs at no cost. With
    `attention` (a config that cannot be built so fails here, before any work), or with no
    preference SDPA where transformers has it for the architecture, else eager: the same products (tested)."""
    with torch.device("meta"):
        try:
            return causal_lm(config, attention or "sdpa", **_COUNTED_EXPERTS).eval()
        except InputError:
            eager = None if attention else _builds(config, "eager", **_COUNTED_EXPERTS)
            if eager is None:
                raise
            return eager.eval()


def position_limit(model: torch.nn.Module) -> int | None:
    """How many positions a model with a learned position table (GPT-2's `wpe`, OPT's
    `embed_positions`) can take; None for rotary or ALiBi positions, which have no table to run past."""
    tables = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Embedding) and ("pos" in name or name.endswith("wpe"))]
    return getattr(model.config, "max_position_embeddings", None) if tables else None


def check_positions(model: torch.nn.Module, needed: int, what: str) -> None:
    """Refuse, before any work, what would index past a learned position table (an IndexError deep in torch)."""
    limit = position_limit(model)
    if limit is not None and needed > limit:
        raise InputError(f"config ({model.config.model_type}): its learned position table holds {limit:,} positions, "
                         f"but {what} needs {needed:,}")


def check_attention(attention: str) -> None:
    if attention not in ATTENTIONS:
        raise InputError(f"expected {' or '.join(ATTENTIONS)}, got {attention!r}", param="attention")


def causal_lm(config: PretrainedConfig, attention: str = "sdpa", **options) -> torch.nn.Module:
    """transformers' causal LM of `config` with `attention` (one of ATTENTIONS); a config it cannot
    build so (not a causal LM, an architecture without SDPA such as Bloom, or values that contradict
    each other, such as a pad token id past the vocabulary) is a user error."""
    check_attention(attention)
    try:
        return _from_config(config, attention, **options)
    except _BUILD_ERRORS as exc:
        reason = str(exc).split(". ")[0].split("\n")[0]
        reason = reason if isinstance(exc, ValueError) else f"{type(exc).__name__}: {reason}"  # KeyError: 'full_attention'
        if attention != "eager" and _builds(config, "eager") is not None:  # the attention is what fails
            raise InputError(f"config ({config.model_type}): transformers cannot build it as a causal LM with {attention} attention: "
                             f"{reason} (it builds with --attention eager)") from None
        raise InputError(f"config ({config.model_type}): transformers cannot build it as a causal LM: {reason}") from None


# what transformers raises for a config it cannot build: among them, from a default config, KeyError
# (Cohere Compass') and AttributeError (DBRX's)
_BUILD_ERRORS = (ValueError, AssertionError, TypeError, KeyError, AttributeError)


# On the meta device a mixture-of-experts layer runs its experts as one batched matmul over the
# (token, chosen expert) pairs: DeepSpeed counts it, and it is the FLOPs of the experts each token
# visits; transformers' default grouped matmul neither runs on meta in float32 nor is counted.
# (transformers before 5 has no such choice: its MoE loop cannot run on meta, and is refused.)
_COUNTED_EXPERTS = {"experts_implementation": "batched_mm"} if hasattr(PreTrainedModel, "get_experts_implementation") else {}


def _from_config(config: PretrainedConfig, attention: str, **options) -> torch.nn.Module:
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its advice ("add is_decoder=True") would come before, and apart from, our one line
    try:
        return AutoModelForCausalLM.from_config(config, attn_implementation=attention, **options)
    finally:
        hf_logging.set_verbosity(verbosity)


def _builds(config: PretrainedConfig, attention: str, **options) -> torch.nn.Module | None:
    """The model on the meta device if transformers can build it with `attention`, else None."""
    with torch.device("meta"):
        try:
            return _from_config(config, attention, **options)
        except _BUILD_ERRORS:
            return None
