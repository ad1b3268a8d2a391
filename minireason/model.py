"""A compact decoder-only transformer, in the shapes of the Hugging Face checkpoints it loads (checkpoint.py).

One module covers the three families the paper and our toy world use:

    family        q/k/v bias   q/k RMSNorm   RoPE scaling      typical model
    qwen2         yes          no            none              Qwen2.5-Math-1.5B, Qwen2.5-0.5B-Instruct
    qwen3         config       yes           none              Qwen3-0.6B
    llama         config       no            none or llama3    Llama 3.2, SmolLM2, our toy models

Every block is pre-norm:  h = x + Attn(RMSNorm(x));  out = h + MLP(RMSNorm(h)),
with grouped-query attention through `F.scaled_dot_product_attention`, rotary position
embeddings (RoPE) and a SwiGLU MLP:  MLP(x) = W_down (silu(W_gate x) * (W_up x)).
A decode step may instead pass `row_attention.row_block_mask`'s block mask: each row's one new token then attends
only to that row's own slots, through FlexAttention (the sampler's `row_attention`).

Parameter names equal transformers' names (`fused.py` keeps them for the fused projections), so a
`model.safetensors` file written here loads in `transformers` and the other way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fused import FusedLinear, keep_checkpoint_names
from .row_attention import row_attention

if TYPE_CHECKING:  # importing it imports torch._dynamo: at run time only where a block mask is made
    from torch.nn.attention.flex_attention import BlockMask

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
    """What a layer needs from a KV cache (see `decode_state.KVCache`)."""

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


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
            y = row_attention(q, k, v, mask, enable_gqa=self.n_kv != self.n_heads)
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


def build_model(cfg: ModelConfig, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                seed: int | None = None) -> Transformer:
    """A freshly initialised model (toy pretraining, benchmarks with random weights)."""
    model = Transformer(cfg).init_weights(seed=seed).to(device=device, dtype=dtype)
    model.inv_freq = rope_inv_freq(cfg).to(device)  # RoPE frequencies stay fp32 whatever the weights' dtype
    return model
