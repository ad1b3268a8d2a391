"""GRPO: group-relative advantages and the clipped policy-gradient loss.

Sources: GRPO is DeepSeekMath (Shao et al. 2024, arXiv 2402.03300, eq. 3 and §4.1.2); the token-level
average is DAPO's (Yu et al. 2025, arXiv 2503.14476, eq. 12); the unscaled advantage and the constant
normaliser are Dr. GRPO's (Liu et al. 2025, arXiv 2503.20783, §3.2); the KL estimator is k3 from
J. Schulman, "Approximating KL divergence" (2020). The paper (Kim et al.) trains KL-free (beta = 0).

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
    "sequence" w_it = 1 / (|o_i| * number of responses)                 (original GRPO, eq. 3)
    "constant" w_it = 1 / (max_new_tokens * number of responses)        (Dr. GRPO)

The weights are computed once for the whole batch, so splitting it into micro-batches with
gradient accumulation gives exactly the full-batch gradient.

What pi_old is: the log-probs the sampler recorded while drawing the rollout, log softmax(logits) at
temperature 1 with no top-k/top-p filtering, i.e. the model's own distribution before this update.
Sampling itself uses T and top-k (that is how the rollouts are explored), but the ratio must compare the
same distribution before and after the update; so at the first of the mu optimizer steps theta = old and
every ratio is 1 (up to float error), as PPO's ratio is by construction.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, fields
from typing import Callable

import torch

from .decode_state import DecodeSession
from .sampler import SamplingParams, generate
from .tasks import Problem
from .tokenizer import format_prompt
from .training import (NonFiniteError, OptimConfig, completion_batch, micro_batches, optimizer_step,
                       token_logprobs)
from .verifier import ExactGrader, Grader, grade

AGGREGATIONS = ("token", "sequence", "constant")


def reward(correct: bool) -> float:
    """The paper's verifiable reward (§3, no format reward): +1 correct, -1 otherwise."""
    return 1.0 if correct else -1.0


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
    stats["ratio_max_deviation"] = (ratio.detach()[on] - 1).abs().max().item() if on.any() else 0.0
    return loss, stats


# ----------------------------------------------------------------------------------------------
# One GRPO step: rollouts, then mu optimizer steps on the loss above


@dataclass
class GRPOConfig:
    """The settings one GRPO step reads. Their defaults and flags are the training script's config
    (train_rl.RLConfig); `GRPOConfig.of(cfg)` takes them from it, so there is one config source."""

    group_size: int  # G responses per question
    temperature: float  # sampling (pi_old itself is always T = 1, unfiltered)
    top_k: int
    max_new_tokens: int
    max_rows: int  # sampler rows at once (0: sized by the machine)
    clip_eps: float  # PPO's epsilon
    mu: int  # optimizer steps per rollout
    aggregation: str  # token / sequence / constant (see token_weights)
    scale_std: bool  # divide advantages by the group's std (GRPO) or not (Dr. GRPO)
    beta: float  # k3 KL weight (the paper: 0)
    micro_batch_tokens: int  # padded tokens per forward/backward
    cuda_graphs: bool  # the sampler's decode step as CUDA graphs (on CUDA)

    @classmethod
    def of(cls, config) -> "GRPOConfig":
        """The GRPO settings of a script's config (any object with these attributes)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})


@dataclass
class Rollout:
    samples: list  # sampler.Sample, grouped: question i owns samples[i*G:(i+1)*G]
    rewards: torch.Tensor  # (N,) +1/-1
    advantages: torch.Tensor  # (N,)
    seconds: float


def rollout(model, tokenizer, questions, template: str, cfg: GRPOConfig, seed: int,
            grader: Grader | None = None, judge: Callable[[str, Problem], bool] | None = None,
            session: DecodeSession | None = None) -> Rollout:
    """G samples per question, verified rewards, group advantages. The reward is +1 when the response is
    right: by default when the grader accepts its last box (an outcome reward); `judge(text, question)`
    replaces that test (e.g. `toy.process_correct`, a process reward). `session`: the sampler's, kept across
    rollouts (decode_state.DecodeSession)."""
    t0 = time.time()
    grader = grader or ExactGrader()
    judge = judge or (lambda text, q: grade(text, q.answer, grader))
    params = SamplingParams(n=cfg.group_size, temperature=cfg.temperature, top_k=cfg.top_k,
                            max_new_tokens=cfg.max_new_tokens, max_rows=cfg.max_rows, seed=seed,
                            cuda_graph=cfg.cuda_graphs)
    samples = generate(model, tokenizer, [format_prompt(q.question, template) for q in questions], params,
                       session=session)
    rewards = torch.tensor([reward(judge(s.text, questions[s.prompt_index])) for s in samples])
    advantages = group_advantages(rewards.view(len(questions), cfg.group_size), cfg.scale_std).flatten()
    return Rollout(samples, rewards, advantages, time.time() - t0)


@dataclass
class Batch:
    """A rollout as training tensors (on the CPU; micro-batches move to the model's device)."""
    ids: torch.Tensor  # (N, T) prompt + response, right-padded
    mask: torch.Tensor  # (N, T-1) 1 where position t predicts a response token
    old: torch.Tensor  # (N, T-1) pi_old log-probs at those positions (the sampler's)
    weights: torch.Tensor  # (N, T-1) w_it of the chosen aggregation
    advantages: torch.Tensor  # (N,)
    lengths: list[int]  # prompt + response tokens per row
    rows: list[int]  # the rows that can contribute to the loss


def prepare_batch(ro: Rollout, cfg: GRPOConfig, pad_id: int) -> Batch:
    """Align ids, mask and old log-probs once (completion_batch), weight the tokens, pick the rows."""
    prompts, responses = [s.prompt_ids for s in ro.samples], [s.token_ids for s in ro.samples]
    ids, mask, old = completion_batch(prompts, responses, pad_id, completion_logprobs=[s.logprobs for s in ro.samples])
    weights = token_weights(mask, cfg.aggregation, cfg.max_new_tokens)
    # Without a KL term a zero-advantage response adds nothing to the loss: skip its forward pass.
    rows = [i for i in range(len(ro.samples)) if cfg.beta or ro.advantages[i] != 0]
    return Batch(ids, mask, old, weights, ro.advantages, [len(p) + len(r) for p, r in zip(prompts, responses)], rows)


def update(model, opt, oc: OptimConfig, ro: Rollout, cfg: GRPOConfig, step: int, pad_id: int,
           ref_model=None, autocast=contextlib.nullcontext) -> dict:
    """cfg.mu optimizer steps on the GRPO loss of one rollout; returns the step's statistics.

    loss and grad_norm are each epoch's (the loss summed over micro-batches), averaged over the mu epochs;
    with mu > 1 the per-epoch values are logged too, as loss_per_epoch and grad_norm_per_epoch."""
    batch = prepare_batch(ro, cfg, pad_id)  # ids, mask, pi_old, token weights, advantages: built once
    device = next(model.parameters()).device
    groups = [torch.tensor([batch.rows[j] for j in g])
              for g in micro_batches([batch.lengths[i] for i in batch.rows], cfg.micro_batch_tokens)]
    refs = [None] * len(groups)
    if ref_model is not None:  # the KL anchor's log-probs: once per rollout, whatever mu
        refs = [reference_logprobs(ref_model, batch, idx, autocast) for idx in groups]
    model.train()
    epochs = []
    for _ in range(cfg.mu if batch.rows else 0):
        epoch = {"loss": 0.0, "micro": []}
        for idx, ref in zip(groups, refs):
            T = max(batch.lengths[i] for i in idx.tolist())  # the micro-batch's rows, cut to its longest
            on = lambda t: t[idx, : T - 1].to(device)  # noqa: E731 - rows idx, positions that predict a token
            with autocast():
                logp, entropy = token_logprobs(model, batch.ids[idx, :T].to(device), with_entropy=True)  # log pi_theta
            loss, stats = policy_loss(logp, on(batch.old), batch.advantages[idx].to(device), on(batch.weights),
                                      cfg.clip_eps, ref, cfg.beta)
            if not torch.isfinite(loss):
                opt.zero_grad(set_to_none=True)
                raise NonFiniteError(f"non-finite loss ({loss.item()}) at step {step}")
            loss.backward()
            mask = on(batch.mask)
            stats["entropy"] = ((entropy * mask).sum() / mask.sum().clamp(min=1)).item()
            epoch["loss"] += loss.item()
            epoch["micro"].append(stats)
        epoch["grad_norm"] = optimizer_step(model, opt, oc, step)
        epochs.append(epoch)
    return {**rollout_stats(ro, cfg), **epoch_stats(epochs, cfg)}


@torch.no_grad()
def reference_logprobs(ref_model, batch: Batch, idx: torch.Tensor, autocast=contextlib.nullcontext) -> torch.Tensor:
    """log pi_ref of rows idx (the KL anchor), computed once per rollout and reused by every epoch."""
    T = max(batch.lengths[i] for i in idx.tolist())
    with autocast():
        return token_logprobs(ref_model, batch.ids[idx, :T].to(next(ref_model.parameters()).device))


def rollout_stats(ro: Rollout, cfg: GRPOConfig) -> dict:
    groups = ro.rewards.view(-1, cfg.group_size)
    n_tokens = sum(len(s.token_ids) for s in ro.samples)
    return {"reward_mean": ro.rewards.mean().item(), "frac_correct": (ro.rewards > 0).float().mean().item(),
            "frac_zero_variance_groups": (groups.std(dim=1) == 0).float().mean().item(),
            "response_tokens_mean": n_tokens / len(ro.samples),
            "right_per_group": (groups > 0).sum(dim=1).tolist()}  # per question, in batch order


def epoch_stats(epochs: list[dict], cfg: GRPOConfig) -> dict:
    """Means over epochs (loss, grad norm) and over every micro-batch of every epoch (the rest)."""
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    micro = [m for e in epochs for m in e["micro"]]
    out = {"loss": mean([e["loss"] for e in epochs]), "grad_norm": mean([e["grad_norm"] for e in epochs]),
           "entropy": mean([m["entropy"] for m in micro]), "clip_fraction": mean([m["clip_fraction"] for m in micro]),
           "ratio_max_deviation": max([m["ratio_max_deviation"] for m in micro], default=0.0)}
    if cfg.beta:
        out["kl"] = mean([m.get("kl", 0.0) for m in micro])
    if cfg.mu > 1:
        out["loss_per_epoch"] = [e["loss"] for e in epochs]
        out["grad_norm_per_epoch"] = [e["grad_norm"] for e in epochs]
    return out
