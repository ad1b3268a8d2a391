"""A compact decoder-only transformer that loads and saves Hugging Face checkpoints.

One module covers the three families the paper and our toy world use:

    family        q/k/v bias   q/k RMSNorm   RoPE scaling      typical model
    qwen2         yes          no            none              Qwen2.5-Math-1.5B, Qwen2.5-0.5B-Instruct
    qwen3         config       yes           none              Qwen3-0.6B
    llama         config       no            none or llama3    Llama 3.2, SmolLM2, our toy models

Every block is pre-norm:  h = x + Attn(RMSNorm(x));  out = h + MLP(RMSNorm(h)),
with grouped-query attention through `F.scaled_dot_product_attention`, rotary position
embeddings (RoPE) and a SwiGLU MLP:  MLP(x) = W_down (silu(W_gate x) * (W_up x)).
A decode step may instead pass `row_block_mask`'s block mask: each row's one new token then attends only
to that row's own slots, through FlexAttention (the sampler's `row_attention`).

Parameter names equal transformers' names, so a `model.safetensors` file written here loads in
`transformers` and the other way round. `load_pretrained` reads single-file and sharded folders;
`save_pretrained` writes `config.json` + `model.safetensors`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

if TYPE_CHECKING:  # importing it imports torch._dynamo: at run time only where a block mask is made
    from torch.nn.attention.flex_attention import BlockMask

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3", "llama")
ARCHITECTURES = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}


class ModelLoadError(ValueError):
    """A model folder, its config or its weights are not what we can load."""


# ----------------------------------------------------------------------------------------------
# Config


@dataclass
class ModelConfig:
    model_type: str = "llama"
    vocab_size: int = 32
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # None, or {"rope_type": "llama3", "factor": ..., ...}
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = True
    qkv_bias: bool = False  # bias on q/k/v projections (always on for qwen2)
    o_bias: bool = False  # bias on the output projection (llama/qwen3 `attention_bias`)
    mlp_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm on q and k before RoPE (qwen3)
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    extra: dict = field(default_factory=dict, repr=False)  # keys we keep but do not use

    @staticmethod
    def from_hf_dict(raw: dict, source: str = "config.json") -> "ModelConfig":
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

    def to_hf_dict(self) -> dict:
        """The `config.json` transformers reads for this family (old-style rope keys, read by v4 and v5)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("extra", "qkv_bias", "o_bias", "qk_norm")}
        d["architectures"] = [ARCHITECTURES[self.model_type]]
        d["hidden_act"] = "silu"
        if self.model_type != "qwen2":
            d["attention_bias"] = self.o_bias
        if self.rope_scaling is None:
            del d["rope_scaling"]
        return {**self.extra, **d}


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
    return ModelConfig.from_hf_dict(raw, source=str(path))


# ----------------------------------------------------------------------------------------------
# Layers


class RMSNorm(nn.Module):
    """y = w * x / sqrt(mean(x^2) + eps), computed in fp32 then cast back."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:  # the residual stream, also under autocast
            return F.rms_norm(x, x.shape[-1:], self.weight, self.eps)  # one fused kernel on CUDA
        x32 = x.float()  # bf16 weights: normalise in fp32, round, then scale (as transformers does)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """theta_i = base^(-2i/d) for i < d/2, optionally rescaled with Llama 3's frequency-dependent rule."""
    d = cfg.head_dim
    # on the CPU even while a model is built on the meta device, whose maths imports torch._dynamo (over a second)
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64, device="cpu").float() / d))
    if cfg.rope_scaling is None:
        return inv_freq
    # Llama 3: long wavelengths (> original_ctx / low_freq_factor) are divided by `factor`, short ones
    # (< original_ctx / high_freq_factor) kept, and the band between interpolated smoothly.
    s = cfg.rope_scaling
    factor, lo, hi, ctx = (
        s["factor"],
        s["low_freq_factor"],
        s["high_freq_factor"],
        s["original_max_position_embeddings"],
    )
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > ctx / lo, inv_freq / factor, inv_freq)
    smooth = (ctx / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= ctx / hi) & (wavelen <= ctx / lo)
    return torch.where(medium, smoothed, scaled)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i+d/2}) by angle pos*theta_i (RoFormer, Su et al. 2021, eq. 34, in the half-split
    layout of Llama/Qwen checkpoints):  x*cos + rotate_half(x)*sin,  rotate_half(x) = (-x2, x1).
    `signed_sin` = (-sin, sin) over the two halves, made once per forward, so rotate_half(x)*sin is
    roll(x, d/2)*signed_sin: three ops (mul, roll, addcmul) instead of five."""
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, -1), signed_sin)


class KVCacheLike(Protocol):
    """What a layer needs from a KV cache (see `sampler.KVCache`)."""

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class FusedLinear(nn.Linear):
    """Several projections of one input as one matmul (Q, K and V; gate and up): one kernel instead of three or
    two in every decode step. Checkpoints keep the Hugging Face names: see `keep_checkpoint_names`."""

    def __init__(self, in_features: int, parts: dict[str, int], bias: bool):
        super().__init__(in_features, sum(parts.values()), bias=bias)
        self.parts = parts  # checkpoint name -> rows, in order

    def split(self, state: dict, prefix: str, name: str) -> None:
        """Replace `prefix+name.weight` (and bias) in a state dict by its parts' rows, under their names."""
        for kind in ("weight", "bias"):
            if f"{prefix}{name}.{kind}" in state:
                rows = state.pop(f"{prefix}{name}.{kind}").split(list(self.parts.values()))
                state.update({f"{prefix}{part}.{kind}": r for part, r in zip(self.parts, rows)})

    def join(self, state: dict, prefix: str, name: str) -> None:
        """The inverse of `split`: the parts' tensors, concatenated under `prefix+name`."""
        for kind in ("weight", "bias"):
            keys = [f"{prefix}{part}.{kind}" for part in self.parts]
            if all(k in state for k in keys):
                state[f"{prefix}{name}.{kind}"] = torch.cat([state.pop(k) for k in keys])


def keep_checkpoint_names(owner: nn.Module) -> None:
    """Make `owner`'s state dict read and write its FusedLinear children under their parts' Hugging Face names,
    in the Hugging Face order (the parts first), so checkpoints, loaders and converters never see a fused name.
    The hooks sit on the owner: load_state_dict hands a child only the keys under the child's own prefix."""
    fused = {name: child for name, child in owner.named_children() if isinstance(child, FusedLinear)}

    def split(module, state: dict, prefix: str, local_metadata) -> None:
        for name, child in fused.items():
            child.split(state, prefix, name)
        first = [f"{prefix}{part}.{kind}" for child in fused.values() for part in child.parts
                 for kind in ("weight", "bias")]
        first = [k for k in first if k in state]
        state.update({k: state.pop(k) for k in first + [k for k in state if k.startswith(prefix) and k not in first]})

    def join(module, state: dict, prefix: str, *args) -> None:
        for name, child in fused.items():
            child.join(state, prefix, name)

    owner.register_state_dict_post_hook(split)
    owner.register_load_state_dict_pre_hook(join)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer, self.n_heads, self.n_kv, self.head_dim = (
            layer,
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        kv_size = self.n_kv * self.head_dim
        self.qkv_proj = FusedLinear(cfg.hidden_size, {"q_proj": self.n_heads * self.head_dim,
                                    "k_proj": kv_size, "v_proj": kv_size}, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=cfg.o_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
        keep_checkpoint_names(self)

    def forward(self, x, cos, signed_sin, mask, kv_cache):
        """mask: None (causal over x), a 0/-inf float mask (B, 1, T, S), or row_block_mask's block mask (T = 1)."""
        B, T, _ = x.shape
        qkv = self.qkv_proj(x).view(B, T, self.n_heads + 2 * self.n_kv, self.head_dim).transpose(1, 2)
        qk, v = qkv.split([self.n_heads + self.n_kv, self.n_kv], dim=1)  # (B, heads + kv_heads, T, d), (B, kv, T, d)
        if hasattr(self, "q_norm"):
            q, k = qk.split([self.n_heads, self.n_kv], dim=1)
            qk = torch.cat((self.q_norm(q), self.k_norm(k)), dim=1)
        q, k = apply_rope(qk, cos, signed_sin).split([self.n_heads, self.n_kv], dim=1)  # RoPE on Q and K at once
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer, k, v)  # (B, kv_heads, S, head_dim): every cached slot it returns
        if mask is not None and not isinstance(mask, torch.Tensor):  # a block mask: each row reads its own slots
            # q .to: under autocast RoPE returns fp32 queries beside the cache's bf16 keys, and FlexAttention
            # (unlike SDPA) does not cast them
            flex = flex_attention_for(k.device.type)
            y = flex(q.to(k.dtype), k, v, block_mask=mask, enable_gqa=self.n_kv != self.n_heads)
        elif T == 1 and self.n_kv != self.n_heads:
            y = grouped_decode_attention(q, k, v, mask)
        else:
            # mask None: plain causal attention over x itself (training). Never is_causal=True with a
            # cache: for a 1-token query SDPA aligns the causal mask top-left, so it would see only key 0.
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=self.n_kv != self.n_heads
            )  # (B, heads, T, head_dim)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


def grouped_decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None):
    """Attention of one new token per row when G query heads share each key/value head.

    q (B, heads, 1, d) is viewed as (B, kv_heads, G, d): the G heads of a group become G queries against
    their shared k, v (B, kv_heads, S, d), which are then read once instead of once per query head.
    """
    B, n_heads, _, d = q.shape
    G = n_heads // k.shape[1]
    y = F.scaled_dot_product_attention(q.view(B, k.shape[1], G, d), k, v, attn_mask=mask)  # (B, kv_heads, G, d)
    return y.reshape(B, n_heads, 1, d)  # reshape, not view: CUDA kernels may return it non-contiguous


def check_row_attention() -> None:
    """Refuse row attention in one line on a torch whose BlockMask cannot be made from per-row block counts
    (`BlockMask.from_kv_blocks` with seq_lengths and compute_q_blocks: torch 2.9 and later; the default path runs
    from torch 2.5 on)."""
    from torch.nn.attention.flex_attention import BlockMask  # noqa: F811 (at run time, here only)

    missing = sorted({"seq_lengths", "compute_q_blocks"} - set(inspect.signature(BlockMask.from_kv_blocks).parameters))
    if missing:
        raise ValueError(f"row_attention needs torch >= 2.9 (BlockMask.from_kv_blocks takes no {', '.join(missing)} "
                         f"in this torch, {torch.__version__}); leave it off")


def row_block_mask(ends: torch.Tensor, slots: int, block: int = 128) -> BlockMask:
    """FlexAttention's block mask for one new token per row whose keys are the row's first ends[b] of `slots` slots.

    Row b reads key blocks 0 .. ceil(ends[b] / block) - 1 only (`kv_num_blocks`; an end past `slots`, as a free
    row's stale position can be, reads them all), and in its last block the mask_mod hides the slots from ends[b]
    on. So a short row costs what its own length costs, where SDPA's mask makes every row compute scores up to
    the longest row's slots. Without a backward pass no query-side block lists are needed (compute_q_blocks=False),
    which keeps this a few tensor ops: cheap, and safe to capture.
    """
    from torch.nn.attention.flex_attention import BlockMask  # noqa: F811 (at run time, here only)

    rows = len(ends)
    kv_num_blocks = ((ends.clamp(max=slots) + block - 1) // block).to(torch.int32).view(rows, 1, 1)  # (rows, 1, 1)
    kv_indices = torch.arange(-(-slots // block), dtype=torch.int32, device=ends.device).expand(rows, 1, 1, -1)
    return BlockMask.from_kv_blocks(kv_num_blocks, kv_indices, BLOCK_SIZE=block, seq_lengths=(1, slots),
                                    mask_mod=lambda b, h, q, kv: kv < ends[b], compute_q_blocks=False)


@functools.cache
def flex_attention_for(device_type: str):
    """FlexAttention as decoding runs it: on CUDA compiled once for every shape (dynamic=True), since only the
    compiled kernel skips the blocks a block mask leaves out; elsewhere eager, which computes every score (no
    faster than SDPA: a reference). On the CPU torch 2.13's compiled kernel fails to build (a C++ error in
    Inductor's generated code) once the row count changes under dynamic shapes, as packed rows make it do."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=True) if device_type == "cuda" else flex_attention


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_up_proj = FusedLinear(cfg.hidden_size, {
            "gate_proj": cfg.intermediate_size, "up_proj": cfg.intermediate_size}, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=cfg.mlp_bias)
        keep_checkpoint_names(self)

    def forward(self, x):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, signed_sin, mask, kv_cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, signed_sin, mask, kv_cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """The `model.` prefix of a transformers checkpoint: embeddings, blocks, final norm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        # _weight: no default init (weights are loaded, or drawn by init_weights); on the meta device torch's
        # normal_ would import torch._dynamo, 1-1.5 s of every script's start
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, _weight=torch.empty(cfg.vocab_size,
                                                                                              cfg.hidden_size))
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


def causal_key_mask(key_real: torch.Tensor, T: int) -> torch.Tensor:
    """(B, S) real-key flags -> (B, 1, T, S) boolean attention mask, True = may attend.

    Query i sits at slot S - T + i and sees key j when j <= S - T + i and key j is real. A query that
    would see no key at all (a padding token) sees its own slot instead, so its softmax is not NaN.
    """
    S = key_real.shape[1]
    q_slot = torch.arange(S - T, S, device=key_real.device)[:, None]  # (T, 1)
    k_slot = torch.arange(S, device=key_real.device)[None, :]  # (1, S)
    mask = (k_slot <= q_slot) & key_real[:, None, :]  # (B, T, S)
    mask = mask | ((k_slot == q_slot) & ~mask.any(-1, keepdim=True))
    return mask[:, None]  # (B, 1, T, S): the same for every head


def additive_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A boolean attention mask as the 0 / -inf float mask attention adds to its scores, in the dtype attention
    computes in (the autocast dtype under autocast). SDPA would otherwise convert a boolean mask in every layer."""
    device = like.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else like.dtype
    return torch.zeros(mask.shape, dtype=dtype, device=like.device).masked_fill_(~mask, float("-inf"))


# ----------------------------------------------------------------------------------------------
# The model


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.model = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)
        self.gradient_checkpointing = False

    def init_weights(self, std: float = 0.02, seed: int | None = None) -> "Transformer":
        """Random init for from-scratch training: normal(0, std) matrices, zero biases, unit norms. Tensors are drawn
        in checkpoint order with checkpoint shapes (a fused projection's parts one by one; a tied head once)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        seen = set()
        for name, p in self.state_dict(keep_vars=True).items():
            if p.data_ptr() in seen:
                continue
            seen.add(p.data_ptr())
            with torch.no_grad():
                if name.endswith("norm.weight"):
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | BlockMask | None = None,
        kv_cache: KVCacheLike | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids (B, T).

        attention_mask: None for plain causal attention over these T tokens; or (B, S), true (or 1) for
        each key slot that holds a real token, S = T without a cache and S = the slots the cache returns
        with one. The T queries sit at the last T slots; each sees the real keys at or before its own.
        Or, for T = 1 with a cache, `row_block_mask`'s block mask over those S slots (position_ids given).
        position_ids: (B, T); by default the count of real tokens before each one (left padding safe).
        """
        return self.logits(self.hidden_states(input_ids, position_ids, attention_mask, kv_cache))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """`lm_head` of final hidden states, in fp32 whatever autocast computes elsewhere: log-probs, and the ratio
        pi/pi_old between the sampler's and training's, need it (a bf16 logit of 20 is rounded by up to 0.125).
        Weights stored in bf16 (sampling a model loaded in bf16, never training) keep a bf16 product, so no fp32
        copy of a 150k-row head is made at each step."""
        weight = self.lm_head.weight
        if weight.dtype != torch.float32:
            return F.linear(hidden.to(weight.dtype), weight).float()
        with torch.autocast(hidden.device.type, enabled=False):
            return F.linear(hidden.float(), weight)

    def hidden_states(self, input_ids, position_ids=None, attention_mask=None, kv_cache=None) -> torch.Tensor:
        """The final-norm hidden states (B, T, hidden) that `lm_head` turns into logits; arguments as `forward`."""
        B, T = input_ids.shape
        mask = None
        if attention_mask is not None and not isinstance(attention_mask, torch.Tensor):  # row_block_mask's
            if T != 1 or position_ids is None:
                raise ValueError("a block mask (row_block_mask) is for one new token per row, with position_ids")
            mask = attention_mask
        elif attention_mask is not None:
            key_real = attention_mask.bool()  # (B, S)
            mask = causal_key_mask(key_real, T)  # (B, 1, T, S)
            if position_ids is None:
                position_ids = (key_real.long().cumsum(-1) - 1).clamp(min=0)[:, -T:]
        elif kv_cache is not None:
            raise ValueError("forward with a kv_cache needs an attention_mask over the cache slots")
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device).expand(B, T)
        angles = position_ids[:, None, :, None].float() * self.inv_freq.float()  # (B, 1, T, head_dim/2)
        x = self.model.embed_tokens(input_ids)  # (B, T, hidden)
        cos, sin = angles.cos(), angles.sin()
        cos, sin = torch.cat((cos, cos), -1).to(x.dtype), torch.cat((-sin, sin), -1).to(x.dtype)  # (B, 1, T, d)
        if isinstance(mask, torch.Tensor):
            mask = additive_mask(mask, x)  # once, not in every layer
        for block in self.model.layers:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, cos, sin, mask, kv_cache, use_reentrant=False)
            else:
                x = block(x, cos, sin, mask, kv_cache)
        return self.model.norm(x)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, out_dir: str | os.PathLike) -> None:
        """Write `config.json` + `model.safetensors` (tied lm_head omitted, as transformers does)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if self.config.tie_word_embeddings:
            tensors.pop("lm_head.weight", None)
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        (out / "config.json").write_text(json.dumps(self.config.to_hf_dict(), indent=2) + "\n")


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


def build_model(cfg: ModelConfig, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                seed: int | None = None) -> Transformer:
    """A freshly initialised model (toy pretraining, benchmarks with random weights)."""
    model = Transformer(cfg).init_weights(seed=seed).to(device=device, dtype=dtype)
    model.inv_freq = rope_inv_freq(cfg).to(device)  # RoPE frequencies stay fp32 whatever the weights' dtype
    return model
