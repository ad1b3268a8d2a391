"""GRPO: group-relative advantages and the clipped policy-gradient loss.

For each question q we sample a group of G responses o_1..o_G from the old policy and reward them
(+1 correct, -1 wrong). Each response's advantage is its reward relative to its group:

    A_i = (r_i - mean(r)) / (std(r) + eps)          GRPO  (std over the group, population form)
    A_i =  r_i - mean(r)                             Dr. GRPO (no std scaling)

A group whose rewards are all equal (all right or all wrong) has A = 0: it contributes no gradient.
Every token t of response i shares A_i. With the ratio rho_it = pi_theta(o_it | ...) / pi_old(o_it | ...),
the per-token objective (to maximise) is PPO's clipped surrogate, minus an optional KL penalty:

    l_it = min(rho_it A_i, clip(rho_it, 1 - eps, 1 + eps) A_i) - beta * KL_it
    KL_it = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1          (the k3 estimator, >= 0)

and the loss is -sum_it w_it l_it, where the weights w choose how tokens are averaged:

    "token"    w_it = 1 / (total response tokens in the batch)          (DAPO)
    "sequence" w_it = 1 / (|o_i| * number of responses)                 (original GRPO)
    "constant" w_it = 1 / (max_new_tokens * number of responses)        (Dr. GRPO)

The weights are computed once for the whole batch, so splitting it into micro-batches with
gradient accumulation gives exactly the full-batch gradient.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import torch

from .sampler import SamplingParams, generate
from .tokenizer import format_prompt
from .training import (NonFiniteError, OptimConfig, completion_batch, micro_batches, optimizer_step,
                       token_logprobs_and_entropy)
from .verifier import reward

AGGREGATIONS = ("token", "sequence", "constant")


def group_advantages(rewards: torch.Tensor, scale_std: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """rewards (num_groups, G) -> advantages (num_groups, G)."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale_std:
        return centred
    return centred / (rewards.std(dim=1, unbiased=False, keepdim=True) + eps)


def token_weights(mask: torch.Tensor, aggregation: str, max_new_tokens: int | None = None) -> torch.Tensor:
    """w (N, T) for a whole batch's response-token mask (N, T); see the module docstring."""
    n = mask.shape[0]
    if aggregation == "token":
        return mask / mask.sum().clamp(min=1)
    if aggregation == "sequence":
        return mask / (mask.sum(dim=1, keepdim=True).clamp(min=1) * n)
    if aggregation == "constant":
        if not max_new_tokens:
            raise ValueError("the 'constant' aggregation needs max_new_tokens")
        return mask / (max_new_tokens * n)
    raise ValueError(f"unknown loss aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate: exp(ref - logp) - (ref - logp) - 1."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    clip_eps: float = 0.2,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
) -> tuple[torch.Tensor, dict]:
    """The GRPO loss of one (micro-)batch: -sum w * (clipped surrogate - beta * KL); stats for logging.

    logprobs (N, T) under the current policy (with grad); old_logprobs (N, T) from sampling;
    advantages (N,) per response; weights (N, T) from `token_weights` (zero on prompt and padding).
    """
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
    surrogate = torch.minimum(unclipped, clipped)
    objective = surrogate
    stats = {}
    on = weights > 0
    if beta:
        kl = k3_kl(logprobs, ref_logprobs)
        objective = surrogate - beta * kl
        stats["kl"] = (kl.detach()[on]).mean().item() if on.any() else 0.0
    loss = -(weights * objective).sum()
    stats["clip_fraction"] = ((clipped < unclipped).detach()[on]).float().mean().item() if on.any() else 0.0
    return loss, stats


# ----------------------------------------------------------------------------------------------
# One GRPO step: rollouts, then mu optimizer steps on the loss above


@dataclass
class GRPOConfig:
    group_size: int = 8
    temperature: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 512
    clip_eps: float = 0.2
    mu: int = 1
    aggregation: str = "token"
    scale_std: bool = True
    beta: float = 0.0
    micro_batch_tokens: int = 16384


@dataclass
class Rollout:
    samples: list  # sampler.Sample, grouped: question i owns samples[i*G:(i+1)*G]
    rewards: torch.Tensor  # (N,) +1/-1
    advantages: torch.Tensor  # (N,)
    seconds: float


def rollout(model, tokenizer, questions, template: str, cfg: GRPOConfig, seed: int) -> Rollout:
    """G samples per question, verified rewards, group advantages."""
    t0 = time.time()
    params = SamplingParams(n=cfg.group_size, temperature=cfg.temperature, top_k=cfg.top_k,
                            max_new_tokens=cfg.max_new_tokens, seed=seed)
    samples = generate(model, tokenizer, [format_prompt(q.question, template) for q in questions], params)
    rewards = torch.tensor([reward(s.text, questions[s.prompt_index].answer) for s in samples])
    advantages = group_advantages(rewards.view(len(questions), cfg.group_size), cfg.scale_std).flatten()
    return Rollout(samples, rewards, advantages, time.time() - t0)


def update(model, opt, oc: OptimConfig, ro: Rollout, cfg: GRPOConfig, step: int, pad_id: int,
           ref_model=None, autocast=contextlib.nullcontext) -> dict:
    """cfg.mu optimizer steps on the GRPO loss of one rollout; returns the step's statistics."""
    device = next(model.parameters()).device
    seqs = [s.prompt_ids + s.token_ids for s in ro.samples]
    ids, mask = completion_batch([s.prompt_ids for s in ro.samples], [s.token_ids for s in ro.samples], pad_id)
    old = torch.zeros_like(mask)  # sampling log-probs on the same positions (t predicts token t+1)
    for i, s in enumerate(ro.samples):
        p = len(s.prompt_ids)
        old[i, p - 1 : p - 1 + len(s.token_ids)] = torch.tensor(s.logprobs)
    weights = token_weights(mask, cfg.aggregation, cfg.max_new_tokens)
    # Without a KL term a zero-advantage response adds nothing to the loss: skip its forward pass.
    rows = [i for i in range(len(seqs)) if cfg.beta or ro.advantages[i] != 0]
    model.train()
    stats = {"loss": 0.0, "grad_norm": 0.0, "clip_fraction": [], "kl": [], "entropy": []}
    for _ in range(cfg.mu):
        if not rows:
            break
        for group in micro_batches([len(seqs[i]) for i in rows], cfg.micro_batch_tokens):
            idx = torch.tensor([rows[j] for j in group])
            T = max(len(seqs[i]) for i in idx.tolist())
            mb_ids = ids[idx, :T].to(device)
            with autocast():
                logp, entropy = token_logprobs_and_entropy(model, mb_ids)
                ref = None
                if ref_model is not None:
                    with torch.no_grad():
                        ref = token_logprobs_and_entropy(ref_model, mb_ids)[0]
            loss, st = policy_loss(logp, old[idx, : T - 1].to(device), ro.advantages[idx].to(device),
                                   weights[idx, : T - 1].to(device), cfg.clip_eps, ref, cfg.beta)
            if not torch.isfinite(loss):
                opt.zero_grad(set_to_none=True)
                raise NonFiniteError(f"non-finite loss ({loss.item()}) at step {step}")
            loss.backward()
            m = mask[idx, : T - 1].to(device)
            stats["loss"] += loss.item()
            stats["clip_fraction"].append(st["clip_fraction"])
            stats["kl"].append(st.get("kl", 0.0))
            stats["entropy"].append(((entropy * m).sum() / m.sum().clamp(min=1)).item())
        stats["grad_norm"] = optimizer_step(model, opt, oc, step)
    groups = ro.rewards.view(-1, cfg.group_size)
    n_tokens = sum(len(s.token_ids) for s in ro.samples)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0
    out = {"reward_mean": ro.rewards.mean().item(), "frac_correct": (ro.rewards > 0).float().mean().item(),
           "frac_zero_variance_groups": (groups.std(dim=1) == 0).float().mean().item(),
           "response_tokens_mean": n_tokens / len(ro.samples), "loss": stats["loss"], "grad_norm": stats["grad_norm"],
           "entropy": mean(stats["entropy"]), "clip_fraction": mean(stats["clip_fraction"]),
           "rollout_s": round(ro.seconds, 3), "rollout_tokens_per_s": round(n_tokens / max(ro.seconds, 1e-9), 1)}
    if cfg.beta:
        out["kl"] = mean(stats["kl"])
    return out
