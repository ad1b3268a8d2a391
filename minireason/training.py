"""What RL, distillation and toy pretraining share: batching, the masked token loss, the optimizer
and its schedule.

Sequences are right-padded (the prompt first, then the completion), so plain causal attention is
exact for every real token and no attention mask is needed in training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .model import Transformer


def pad_right(seqs: list[list[int]], pad_id: int, device=None) -> torch.Tensor:
    """(B, T) tensor of the sequences, right-padded with pad_id."""
    T = max(len(s) for s in seqs)
    out = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device) if device is not None else out


def completion_batch(prompts: list[list[int]], completions: list[list[int]], pad_id: int, device=None):
    """ids (B, T) of prompt+completion, and loss_mask (B, T-1): 1 where token t+1 is a completion token."""
    ids = pad_right([p + c for p, c in zip(prompts, completions)], pad_id, device)
    mask = torch.zeros(ids.shape[0], ids.shape[1] - 1, device=ids.device)
    for i, (p, c) in enumerate(zip(prompts, completions)):
        mask[i, len(p) - 1 : len(p) - 1 + len(c)] = 1.0
    return ids, mask


def token_logprobs(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """log pi(ids[:, t+1] | ids[:, :t+1]) for every position: (B, T-1), in fp32."""
    logits = model(ids[:, :-1]).float()
    return -F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")


def make_optimizer(model: Transformer, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.1) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


def lr_at(step: int, lr: float, warmup: int, total: int | None = None, final_frac: float = 1.0) -> float:
    """Linear warmup over `warmup` steps, then constant (total None) or cosine decay to final_frac * lr."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if total is None or final_frac == 1.0:
        return lr
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))
