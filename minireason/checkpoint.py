"""Model folders: Hugging Face's config.json and safetensors read into our Transformer and written back.

`read_config` turns a transformers `config.json` (Qwen2, Qwen3, Llama; old `rope_theta`/`rope_scaling` keys or new
`rope_parameters`) into a `ModelConfig`, refusing in one line, naming the file and key, what we cannot build.
`load_pretrained` reads single-file and sharded folders, checking every tensor's name, shape and finiteness;
`save_pretrained` writes `config.json` + `model.safetensors` that transformers reads back. `resolve_model_dir`
finds a local folder or a shipped toy model by name (nothing is ever downloaded), `model_hints` reads what our toy
models ask for, and `fingerprint` hashes every byte of a folder's weights (a samples file records it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .model import ModelConfig, Transformer, rope_inv_freq

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3", "llama")
ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}


class ModelLoadError(ValueError):
    """A model folder, its config or its weights are not what we can load."""


# ----------------------------------------------------------------------------------------------
# Config


def config_from_hf(raw: dict, source: str = "config.json") -> ModelConfig:
    """Read a transformers `config.json` dict (old `rope_theta`/`rope_scaling` or new `rope_parameters`)."""
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"{source}: unsupported model_type {model_type!r}; expected one of {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    try:
        hidden, n_heads = int(raw["hidden_size"]), int(raw["num_attention_heads"])
        rope_theta, rope_scaling = _rope_settings(raw, source)
        attention_bias = bool(raw.get("attention_bias", False))
        known = {
            "model_type": model_type,
            "vocab_size": int(raw["vocab_size"]),
            "hidden_size": hidden,
            "intermediate_size": int(raw["intermediate_size"]),
            "num_hidden_layers": int(raw["num_hidden_layers"]),
            "num_attention_heads": n_heads,
            "num_key_value_heads": int(raw.get("num_key_value_heads") or n_heads),
            "head_dim": int(raw.get("head_dim") or hidden // max(n_heads, 1)),
            "rms_norm_eps": float(raw.get("rms_norm_eps", 1e-6)),
            "rope_theta": rope_theta,
            "rope_scaling": rope_scaling,
            "max_position_embeddings": int(raw.get("max_position_embeddings", 2048)),
            "tie_word_embeddings": bool(raw.get("tie_word_embeddings", model_type != "llama")),
            "qkv_bias": True if model_type == "qwen2" else attention_bias,
            "o_bias": False if model_type == "qwen2" else attention_bias,
            "mlp_bias": bool(raw.get("mlp_bias", False)),
            "qk_norm": model_type == "qwen3",
            "bos_token_id": raw.get("bos_token_id"),
            "eos_token_id": raw.get("eos_token_id"),
            "pad_token_id": raw.get("pad_token_id"),
        }
    except KeyError as e:
        raise ModelLoadError(f"{source}: missing required key {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        if isinstance(e, ModelLoadError):
            raise
        raise ModelLoadError(f"{source}: bad value ({e})") from None
    _check_shape(known, raw, source)
    extra = {k: v for k, v in raw.items() if k not in known and k not in _DERIVED_KEYS}
    return ModelConfig(**known, extra=extra)


def config_to_hf(cfg: ModelConfig) -> dict:
    """The `config.json` transformers reads for this family (old-style rope keys, read by v4 and v5)."""
    d = {k: v for k, v in asdict(cfg).items() if k not in ("extra", "qkv_bias", "o_bias", "qk_norm")}
    d["architectures"] = [ARCHITECTURES[cfg.model_type]]
    d["hidden_act"] = "silu"
    if cfg.model_type != "qwen2":
        d["attention_bias"] = cfg.o_bias
    if cfg.rope_scaling is None:
        del d["rope_scaling"]
    return {**cfg.extra, **d}


def _check_shape(known: dict, raw: dict, source: str) -> None:
    """Sizes a transformer can be built with: every size at least 1, whole query groups, no sliding window."""
    sizes = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "num_key_value_heads", "head_dim")
    if bad := [k for k in sizes if known[k] < 1]:
        raise ModelLoadError(f"{source}: {bad[0]} must be at least 1, got {known[bad[0]]}")
    if known["num_attention_heads"] % known["num_key_value_heads"]:
        raise ModelLoadError(
            f"{source}: num_attention_heads ({known['num_attention_heads']}) must be a multiple of "
            f"num_key_value_heads ({known['num_key_value_heads']})")
    if raw.get("use_sliding_window"):
        raise ModelLoadError(f"{source}: use_sliding_window=true is not supported")


def _rope_settings(raw: dict, source: str) -> tuple[float, dict | None]:
    """RoPE base and scaling from a config.json dict (old `rope_theta`/`rope_scaling` or new `rope_parameters`)."""
    rope = dict(raw.get("rope_parameters") or {})  # transformers >= 5
    rope.update(raw.get("rope_scaling") or {})  # checkpoints in the wild
    rope_theta = float(raw.get("rope_theta", rope.get("rope_theta", 10000.0)))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "default":
        return rope_theta, None
    if rope_type != "llama3":
        raise ModelLoadError(
            f"{source}: unsupported rope_scaling type {rope_type!r}; expected none ('default') or 'llama3'")
    return rope_theta, {
        "rope_type": "llama3",
        **{k: float(rope[k]) for k in ("factor", "low_freq_factor", "high_freq_factor")},
        "original_max_position_embeddings": int(rope["original_max_position_embeddings"]),
    }


# Keys of config.json that we derive ourselves when writing, so we do not carry stale copies.
_DERIVED_KEYS = {"architectures", "hidden_act", "attention_bias", "rope_parameters", "rope_scaling", "rope_theta",
                 "quantization_config", "transformers_version", "dtype", "torch_dtype"}


def read_config(model_dir: str | os.PathLike) -> ModelConfig:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{path}: no config.json in the model folder")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return config_from_hf(raw, source=str(path))


def save_pretrained(model: Transformer, out_dir: str | os.PathLike) -> None:
    """Write `config.json` + `model.safetensors` (tied lm_head omitted, as transformers does)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config_to_hf(model.config), indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# Loading


_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
TOY_MODELS_DIR = Path(__file__).parent / "toy_models"


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """A local model folder, or a shipped toy model's name (e.g. `toy-base`). Nothing is downloaded."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if (TOY_MODELS_DIR / str(name_or_path)).is_dir():
        return TOY_MODELS_DIR / str(name_or_path)
    if path.exists():
        raise ModelLoadError(f"{name_or_path}: expected a model folder, found a file")
    hint = ""
    if _HUB_NAME.match(str(name_or_path)):
        hint = (f" (a hub name? download the folder first, e.g. `huggingface-cli download {name_or_path} "
                f"--local-dir models/{str(name_or_path).split('/')[-1]}`, then pass its path)")
    raise ModelLoadError(f"{name_or_path}: no such model folder{hint}")


def _weight_files(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ModelLoadError(f"{index}: malformed shard index ({e})") from None
        files = [model_dir / f for f in sorted(set(weight_map.values()))]
        for f in files:
            if not f.is_file():
                raise ModelLoadError(f"{index}: names shard {f.name}, which is missing")
        return files
    single = model_dir / "model.safetensors"
    if single.is_file():
        return [single]
    raise ModelLoadError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")


def load_pretrained(
    model_dir: str | os.PathLike, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> Transformer:
    """Build our Transformer from a Hugging Face folder (config.json + safetensors, single or sharded)."""
    model_dir = resolve_model_dir(model_dir)
    cfg = read_config(model_dir)
    with torch.device("meta"):
        model = Transformer(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        expected.pop("lm_head.weight")
    state: dict[str, torch.Tensor] = {}
    for f in _weight_files(model_dir):
        try:
            state.update(_read_weights(f, expected, cfg, dtype, device))
        except (SafetensorError, OSError) as e:  # a truncated or corrupt file, or one that cannot be read
            raise ModelLoadError(f"{f}: not a readable safetensors file ({e}); truncated? copy it again") from None
    missing = sorted(set(expected) - set(state))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ModelLoadError(f"{model_dir}: missing tensors {missing[:5]}{more}")
    model.load_state_dict(state, strict=False, assign=True)
    if cfg.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.inv_freq = rope_inv_freq(cfg).to(device)
    return model.eval()


def _read_weights(f: Path, expected: dict, cfg: ModelConfig, dtype, device) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file, each checked against the shapes config.json implies."""
    state = {}
    with safe_open(str(f), framework="pt") as fh:
        for key in fh.keys():
            if key == "lm_head.weight" and cfg.tie_word_embeddings:
                continue  # some tied checkpoints store a copy; the embedding is the one we use
            if key.endswith("rotary_emb.inv_freq"):
                continue  # older transformers saved this buffer; we compute it
            if key not in expected:
                raise ModelLoadError(f"{f}: unexpected tensor {key!r} for a {cfg.model_type} model with this config")
            t = fh.get_tensor(key)
            if tuple(t.shape) != expected[key]:
                raise ModelLoadError(
                    f"{f}: tensor {key!r} has shape {tuple(t.shape)}, config.json implies {expected[key]}")
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ModelLoadError(f"{f}: tensor {key!r} holds NaN or infinite values; the weights are broken "
                                     "(a diverged run's checkpoint?)")
            state[key] = t.to(device=device, dtype=dtype)
    return state


def model_hints(model_dir: str | os.PathLike) -> dict:
    """Defaults a model folder asks for: our toy models store `prompt_template`, `max_new_tokens`,
    `temperature` and their tutor under config.json's "minireason" key. Empty for other models."""
    path = Path(model_dir) / "config.json"
    try:
        return dict(json.loads(path.read_text()).get("minireason", {}))
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}


def default_template(model_dir: str | os.PathLike, tokenizer) -> str:
    """The prompt template a model folder asks for, else the one its tokenizer suggests."""
    return model_hints(model_dir).get("prompt_template") or tokenizer.default_template()


def fingerprint(model_dir: str | os.PathLike) -> str:
    """A short hash of config.json and every byte of every weight file (a changed value changes it; about a
    second per GB)."""
    d = Path(model_dir)
    h = hashlib.sha256((d / "config.json").read_bytes())
    for f in sorted(d.glob("*.safetensors")):
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()[:16]
