"""Distillation by supervised fine-tuning: rejection-sampled teacher data, filters, and the loss.

Data (the paper's rejection sampling, STaR/ReST style): sample a teacher k times per question,
keep only verified-correct responses, at most m per question (the paper keeps up to 8 for
self-distillation and up to 4 from a teacher). The samples themselves are stored with collect.py
(resumable, inspectable); what is kept is written as JSONL {"id", "question", "answer", "response"}.

Filters for the paper's "reasoning-only" arm:
- solvable: keep only questions the *student* already solves at least once in k samples
  (its in-distribution questions, X >= 1);
- knowledge (toy world only): drop any kept trace that states a fact the student's tutor never or
  rarely stated correctly (its hard gaps and partial facts). One lucky solve would otherwise let a
  clean trace carry the missing fact in.

Loss (training.completion_loss_backward, shared with toy pretraining): cross-entropy on response
tokens only (prompt and padding masked), no teacher logits, no KL:
    L = - sum_{i,t in response_i} log p_theta(y_it | x_i, y_i<t) / (number of response tokens in the batch)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .collect import QuestionRecord
from .tasks import read_jsonl_objects

_PRODUCT_STEP = re.compile(r"(?<![\d])(\d)\*(\d)=")


@dataclass
class Example:
    id: str
    question: str
    answer: str
    response: str


def rejection_sample(records: list[QuestionRecord], max_per_question: int) -> list[Example]:
    """The first `max_per_question` verified-correct responses of each question."""
    kept = []
    for r in records:
        correct = [s["text"] for s in r.samples if s["correct"]][:max_per_question]
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
    with open(path, "w") as f:
        for e in examples:
            f.write(json.dumps(e.__dict__) + "\n")


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
