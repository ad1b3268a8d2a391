"""Distillation by supervised fine-tuning: rejection-sampled teacher data, filters, and the loss.

Data (the paper's rejection sampling, STaR/ReST style): sample a teacher k times per question,
keep only verified-correct responses that ended with EOS, at most m per question (`protocol`: up to 8 of
256 for self-distillation; every correct one of a teacher's 8, though the paper's data size suggests it
kept up to 4, which `--max-per-question 4` reproduces). The samples themselves are stored with collect.py
(resumable, inspectable); what is kept is written as JSONL {"id", "question", "answer", "response"}.

The paper's "reasoning-only" arm keeps only questions the *student* already solves at least once in k
samples (its in-distribution questions, X >= 1: `solvable_ids`). In a toy world, train_distill.py also
drops traces that state knowledge the student's tutor lacks (lab_world.knowledge_filter).

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
from dataclasses import dataclass
from pathlib import Path

import torch

from .collect import QuestionRecord
from .files import atomic_write
from .model import Transformer
from .tasks import read_jsonl_objects
from .training import NonFiniteError, OptimConfig, completion_batch, micro_batches, optimizer_step, token_logprobs

def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """L = -sum(mask * logprobs) / n_tokens: a micro-batch's share of the batch's mean token cross-entropy.

    logprobs (B, T-1) from `training.token_logprobs`; mask (B, T-1) from `training.completion_batch`;
    n_tokens: response tokens in the whole batch (not just this micro-batch)."""
    return -(logprobs * mask).sum() / n_tokens


def sft_step(model: Transformer, opt: torch.optim.Optimizer, oc: OptimConfig, prompts: list[list[int]],
             completions: list[list[int]], pad_id: int, step: int, micro_batch_tokens: int,
             autocast=contextlib.nullcontext) -> dict:
    """One optimizer step on (prompt, completion) token pairs: each micro-batch (at most micro_batch_tokens
    padded tokens) adds its share of the loss gradient, then the shared optimizer step. Returns the loss, the
    pre-clip gradient norm and the number of loss tokens; raises NonFiniteError on a NaN/inf loss."""
    device = next(model.parameters()).device
    n_tokens = sum(len(c) for c in completions)
    total = 0.0
    for group in micro_batches([len(p) + len(c) for p, c in zip(prompts, completions)], micro_batch_tokens):
        ids, mask, _ = completion_batch([prompts[i] for i in group], [completions[i] for i in group], pad_id, device)
        with autocast():
            loss = sft_loss(token_logprobs(model, ids), mask, n_tokens)
        if not torch.isfinite(loss):
            opt.zero_grad(set_to_none=True)
            raise NonFiniteError(f"non-finite loss ({loss.item()}) at step {step}")
        loss.backward()
        total += loss.item()
    return {"loss": total, "grad_norm": optimizer_step(model, opt, oc, step), "tokens": n_tokens}


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
