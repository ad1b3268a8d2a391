"""Distillation by supervised fine-tuning: rejection-sampled teacher data, filters, and the loss.

Data (the paper's rejection sampling, STaR/ReST style): sample a teacher k times per question,
keep only verified-correct responses that ended with EOS, at most m per question (`protocol`: up to 8 of
256 for self-distillation; every correct one of a teacher's 8, though the paper's data size suggests it
kept up to 4, which `--max-per-question 4` reproduces). The samples themselves are stored with collect.py
(resumable, inspectable); what is kept is written as JSONL {"id", "question", "answer", "response"}.

Filters for the paper's "reasoning-only" arm:
- solvable: keep only questions the *student* already solves at least once in k samples
  (its in-distribution questions, X >= 1);
- knowledge (toy world only): drop any kept trace that states a fact the student's tutor never or
  rarely stated correctly (its hard gaps and partial facts). One lucky solve would otherwise let a
  clean trace carry the missing fact in.

Loss (`sft_loss`, also toy pretraining's): cross-entropy on response tokens only (prompt and padding
masked), no teacher logits, no KL (the paper's SFT, §7 and App. A.11):
    L = - sum_{i,t in response_i} log p_theta(y_it | x_i, y_i<t) / (number of response tokens in the batch)
`sft_step` mirrors `grpo.update`: build each micro-batch, add its share of the loss gradient, then one
shared optimizer step. The normaliser counts the whole batch, so micro-batching leaves the gradient exact.

The protocol (`protocol`): which k and which cap the paper used, per variant.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .collect import QuestionRecord
from .files import atomic_write
from .model import Transformer
from .tasks import read_jsonl_objects
from .training import NonFiniteError, OptimConfig, completion_batch, optimizer_step, token_logprobs

_PRODUCT_STEP = re.compile(r"(?<![\d])(\d)\*(\d)=")


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """L = -sum(mask * logprobs) / n_tokens: a micro-batch's share of the batch's mean token cross-entropy.

    logprobs (B, T-1) from `training.token_logprobs`; mask (B, T-1) from `training.completion_batch`;
    n_tokens: response tokens in the whole batch (not just this micro-batch)."""
    return -(logprobs * mask).sum() / n_tokens


def sft_backward(model: Transformer, prompts: list[list[int]], completions: list[list[int]], groups: list[list[int]],
                 pad_id: int, autocast=contextlib.nullcontext) -> float:
    """Accumulate the gradient of the batch's loss, one micro-batch (a group of row indices) at a time.
    Returns the loss; raises NonFiniteError on a NaN/inf loss."""
    device = next(model.parameters()).device
    n_tokens = sum(len(c) for c in completions)
    total = 0.0
    for group in groups:
        ids, mask, _ = completion_batch([prompts[i] for i in group], [completions[i] for i in group], pad_id, device)
        with autocast():
            loss = sft_loss(token_logprobs(model, ids), mask, n_tokens)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"non-finite loss ({loss.item()})")
        loss.backward()
        total += loss.item()
    return total


def sft_step(model: Transformer, opt: torch.optim.Optimizer, oc: OptimConfig, prompts: list[list[int]],
             completions: list[list[int]], groups: list[list[int]], pad_id: int, step: int,
             autocast=contextlib.nullcontext) -> dict:
    """One optimizer step on (prompt, completion) token pairs: `sft_backward`, then the shared optimizer step.
    Returns the loss, the pre-clip gradient norm and the number of loss tokens."""
    try:
        loss = sft_backward(model, prompts, completions, groups, pad_id, autocast)
    except NonFiniteError as e:
        opt.zero_grad(set_to_none=True)
        raise NonFiniteError(f"{e} at step {step}") from None
    return {"loss": loss, "grad_norm": optimizer_step(model, opt, oc, step), "tokens": sum(len(c) for c in completions)}


def protocol(variant: str, toy: bool) -> dict:
    """Rejection-sampling defaults per variant: teacher samples k, correct responses kept per question, and
    the student's k for the solvable filter. The paper (§7 E4, §9 E6) works at its evaluation's k = 256:
    self and RL distillation keep up to 8 correct of 256 samples; teacher distillation draws 8 samples and
    keeps the correct ones, on questions the student solves at least once in 256 (X_256 >= 1). The toy
    world evaluates at k = 64, so it uses 64 where the paper uses 256, and keeps at most 4 teacher
    responses (its clean teacher is right 8 times in 8 on nearly every question)."""
    eval_k = 64 if toy else 256
    if variant in ("self", "rl"):
        return {"k": eval_k, "max_per_question": 8, "student_k": eval_k}
    return {"k": 8, "max_per_question": 4 if toy else 8, "student_k": eval_k}


@dataclass
class Example:
    id: str
    question: str
    answer: str
    response: str


def rejection_sample(records: list[QuestionRecord], max_per_question: int) -> list[Example]:
    """The first `max_per_question` verified-correct responses of each question that ended with EOS (a
    response cut off by the token limit is never kept, even when its box is right)."""
    kept = []
    for r in records:
        correct = [s["text"] for s in r.samples if s["correct"] and s.get("finish") == "eos"][:max_per_question]
        kept += [Example(r.id, r.question, r.answer, text) for text in correct]
    return kept


def solvable_ids(student_records: list[QuestionRecord]) -> set[str]:
    """Questions the student solves at least once (X >= 1)."""
    return {r.id for r in student_records if r.n_correct > 0}


def facts_stated(response: str) -> set[str]:
    """Single-digit products a toy trace writes, e.g. "7*8=56" -> "7*8" (smaller digit first)."""
    return {f"{min(a, b)}*{max(a, b)}" for a, b in _PRODUCT_STEP.findall(response)}


def drop_traces_stating(examples: list[Example], facts: set[str]) -> list[Example]:
    """Examples whose response states none of `facts`."""
    return [e for e in examples if not facts_stated(e.response) & facts]


def save_examples(examples: list[Example], path: str | os.PathLike) -> None:
    """Write the kept pairs as JSONL, atomically (a temporary file renamed when complete)."""
    atomic_write(path, (json.dumps(e.__dict__) + "\n" for e in examples))


def load_examples(path: str | os.PathLike) -> list[Example]:
    """(question, response) pairs from JSONL; a malformed line fails with its line number."""
    out = []
    for where, row in read_jsonl_objects(path, "SFT data file"):
        if not all(isinstance(row.get(k), str) for k in ("question", "response")):
            raise ValueError(f"{where}: expected an object with string 'question' and 'response'")
        out.append(Example(str(row.get("id", f"{Path(path).stem}-{len(out)}")), row["question"],
                           str(row.get("answer", "")), row["response"]))
    if not out:
        raise ValueError(f"{path}: no examples in the file")
    return out
