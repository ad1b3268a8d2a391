"""The training mechanics that RL, distillation and toy pretraining share: batching, token log-probs,
the optimizer and its schedule. (Checkpoints, logs and resume live in runs.py.)

Sequences are right-padded (the prompt first, then the completion), so plain causal attention is
exact for every real token and no attention mask is needed in training. Position t of a batch
predicts token t+1, so a completion that starts at index p of its row is scored at positions
p-1 .. p-2+len(completion): `completion_batch` builds that alignment once, for the loss mask and
for the sampler's log-probs (GRPO's pi_old) alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from .model import Transformer


def pad_right(seqs: list[list[int]], pad_id: int, device=None) -> torch.Tensor:
    """(B, T) tensor of the sequences, right-padded with pad_id."""
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device) if device is not None else out


def completion_batch(prompts: list[list[int]], completions: list[list[int]], pad_id: int, device=None,
                     completion_logprobs: list[list[float]] | None = None):
    """ids (B, T) of prompt+completion; mask (B, T-1), 1 where position t predicts a completion token
    (token t+1); and, given the sampler's per-token log-probs, old (B, T-1) holding them at those same
    positions (zero elsewhere), else None."""
    ids = pad_right([p + c for p, c in zip(prompts, completions)], pad_id, device)
    mask = torch.zeros(ids.shape[0], ids.shape[1] - 1, device=ids.device)
    old = torch.zeros_like(mask) if completion_logprobs is not None else None
    for i, (p, c) in enumerate(zip(prompts, completions)):
        mask[i, len(p) - 1 : len(p) - 1 + len(c)] = 1.0
        if old is not None:
            old[i, len(p) - 1 : len(p) - 1 + len(c)] = torch.tensor(completion_logprobs[i], device=ids.device)
    return ids, mask, old


LOGPROB_CHUNK_TOKENS = 1024  # tokens whose full-vocabulary logits exist at once in `token_logprobs`


def token_logprobs(model: Transformer, ids: torch.Tensor, with_entropy: bool = False,
                   chunk_tokens: int = LOGPROB_CHUNK_TOKENS):
    """log pi(ids[:, t+1] | ids[:, :t+1]) for every position: (B, T-1), in fp32. With with_entropy, also
    the policy's entropy H_t = -sum_v pi(v) log pi(v) at each position (no grad; for logging).

    The fp32 logits over a large vocabulary are the biggest tensor of training (4 bytes x 152k per token
    for Qwen), so they are made `chunk_tokens` positions at a time from the final hidden states, and each
    chunk is recomputed in the backward pass (activation checkpointing) instead of being kept.
    """
    hidden = model.hidden_states(ids[:, :-1])  # (B, T-1, hidden)
    targets = ids[:, 1:]  # (B, T-1)
    pieces = [
        checkpoint(_chunk_logprobs, model.logits, h, t, with_entropy, use_reentrant=False)
        if torch.is_grad_enabled() else _chunk_logprobs(model.logits, h, t, with_entropy)
        for h, t in zip(hidden.flatten(0, 1).split(chunk_tokens), targets.flatten().split(chunk_tokens))
    ]
    logp = torch.cat([p[0] for p in pieces]).view_as(targets)
    return (logp, torch.cat([p[1] for p in pieces]).view_as(targets)) if with_entropy else logp


def _chunk_logprobs(to_logits, hidden: torch.Tensor, targets: torch.Tensor, with_entropy: bool):
    """(N, hidden) states and (N,) targets -> log pi(target) (N,), and the entropy (N,) without grad (or None).
    to_logits: the model's fp32 `logits`."""
    logits = to_logits(hidden)  # (N, vocab), fp32
    log_z = torch.logsumexp(logits, -1)  # (N,)
    logp = logits.gather(-1, targets[:, None]).squeeze(-1) - log_z
    if not with_entropy:
        return logp, None
    with torch.no_grad():
        entropy = log_z - (logits.softmax(-1) * logits).sum(-1)  # H = log Z - E_pi[logit]
    return logp, entropy


def lr_at(step: int, lr: float, warmup: int, total: int | None = None, final_frac: float = 1.0) -> float:
    """Linear warmup over `warmup` steps, then constant (total None) or cosine decay to final_frac * lr."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if total is None or final_frac == 1.0:
        return lr
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def micro_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Split row indices into groups whose padded size (rows x longest row) stays within max_tokens.

    Rows are taken longest first, so each group pads little. A row longer than max_tokens gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * lengths[groups[-1][0]] <= max_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


# ----------------------------------------------------------------------------------------------
# Optimizer


@dataclass
class OptimConfig:
    lr: float
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.1
    warmup: int = 20
    grad_clip: float = 0.1
    mode: str = "adamw"  # "adamw" (fp32 weights and state) or "lowmem" (bf16 weights, see LowMemAdamW)
    total_steps: int | None = None  # with final_lr_frac < 1: cosine decay over total_steps
    final_lr_frac: float = 1.0


class LowMemAdamW(torch.optim.Optimizer):
    """AdamW for bf16 weights: an fp32 master copy of each weight and bf16 moments.

    12 bytes per parameter (bf16 weight + bf16 grad + fp32 master + 2 x bf16 moments) instead of 16
    for fp32 training, so Qwen2.5-1.5B's optimizer and weights need about 18.5 GB. The master copy keeps
    small updates (lr 1e-6) that bf16 weights alone would round away.
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w = w (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.0, eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (b1, b2), lr, wd, eps = group["betas"], group["lr"], group["weight_decay"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float32)
                    st["master"] = p.detach().float().clone()
                    st["exp_avg"] = torch.zeros_like(p, dtype=torch.bfloat16)
                    st["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.bfloat16)
                st["step"] += 1
                t = st["step"].item()
                g = p.grad.float()
                m = st["exp_avg"].float().mul_(b1).add_(g, alpha=1 - b1)
                v = st["exp_avg_sq"].float().mul_(b2).addcmul_(g, g, value=1 - b2)
                st["exp_avg"].copy_(m)
                st["exp_avg_sq"].copy_(v)
                master = st["master"]
                master.mul_(1 - lr * wd)
                master.addcdiv_(m, (v / (1 - b2**t)).sqrt_().add_(eps), value=-lr / (1 - b1**t))
                p.copy_(master)


def build_optimizer(model: Transformer, oc: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (decay on matrices only), or LowMemAdamW for bf16 weights."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": oc.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if oc.mode == "lowmem":
        return LowMemAdamW(groups, lr=oc.lr, betas=oc.betas)
    if oc.mode != "adamw":
        raise ValueError(f"unknown optimizer mode {oc.mode!r}; expected 'adamw' or 'lowmem'")
    return torch.optim.AdamW(groups, lr=oc.lr, betas=oc.betas)


def optimizer_step(model: Transformer, opt: torch.optim.Optimizer, oc: OptimConfig, step: int) -> float:
    """Clip, check, step, zero. Returns the pre-clip gradient norm; raises on a non-finite gradient."""
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), oc.grad_clip).item()
    if not math.isfinite(grad_norm):
        opt.zero_grad(set_to_none=True)
        raise NonFiniteError(f"non-finite gradient norm ({grad_norm}) at step {step}")
    for g in opt.param_groups:
        g["lr"] = lr_at(step, oc.lr, oc.warmup, oc.total_steps, oc.final_lr_frac)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return grad_norm


class NonFiniteError(RuntimeError):
    """A loss or gradient became NaN/inf: the run stops, its last checkpoint stays as it was."""
