"""Sample k responses per question, verify them, and store every sample in a resumable JSONL file.

The file's first line is a header naming the model (path and a fingerprint of its weights), the
questions, k and the sampling settings; each further line is one finished question:

    {"header": {"model": ..., "fingerprint": ..., "data": ..., "k": 64, "temperature": 0.9, ...}}
    {"id": "test-0", "question": ..., "answer": "90", "level": "add2", "facts": [...],
     "samples": [{"text": ..., "tokens": 31, "answer": "90", "correct": true, "finish": "eos"}, ...]}

Questions are sampled in blocks of about BLOCK_SAMPLES samples, and a block's lines are appended (and flushed)
as soon as it is done. A sample's random numbers are keyed on its number in the whole question list, so the
samples do not depend on the block size. Re-running with the same settings skips the finished questions and
produces exactly what an uninterrupted run would have; a file written with a different model, question set, k or
sampling settings is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import default_template, fingerprint, load_pretrained, resolve_model_dir
from .model import Transformer
from .files import append_lines, atomic_write, locked, read_text
from .decode_state import DecodeSession
from .sampler import SamplingParams, generate
from .tasks import Problem
from .tokenizer import Tokenizer, format_prompt
from .verifier import ExactGrader, Grader, grade


@dataclass
class QuestionRecord:
    id: str
    question: str
    answer: str
    level: str | None
    facts: list[str]
    samples: list[dict] = field(default_factory=list)

    @property
    def n_correct(self) -> int:
        return sum(s["correct"] for s in self.samples)


def questions_digest(problems: list[Problem]) -> str:
    return hashlib.sha256("\n".join(f"{p.id}\t{p.question}\t{p.answer}" for p in problems).encode()).hexdigest()[:16]


def verify_samples(samples, answer: str, grader: Grader) -> list[dict]:
    """The stored form of sampler outputs: text, token count, extracted answer, correctness, finish reason."""
    return [{"text": s.text, "tokens": len(s.token_ids), "answer": grader.answer(s.text),
             "correct": grade(s.text, answer, grader), "finish": s.finish_reason} for s in samples]


def _header(path: Path, first_line: str) -> dict:
    try:
        return json.loads(first_line)["header"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{path}:1: not a samples file (expected a header line)") from None


def read_samples_header(path: str | os.PathLike) -> dict:
    """The header of a samples file, read from its first line alone."""
    with open(path, "rb") as f:
        first = f.readline()
    return _header(Path(path), first.decode("utf-8", errors="replace"))


def read_samples_file(path: str | os.PathLike) -> tuple[dict, list[QuestionRecord]]:
    """Header and finished questions of a samples file (a torn last line from a kill is ignored)."""
    path = Path(path)
    lines = read_text(path).split("\n")
    header = _header(path, lines[0])
    records = []
    seen = set()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            records.append(QuestionRecord(**json.loads(line)))
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            if n == len(lines) or (n == len(lines) - 1 and not lines[-1]):
                warnings.warn(f"{path}:{n}: dropped a torn last line (an interrupted run); "
                              f"{len(records)} complete questions kept")
                break  # a resumed run samples that question again
            raise ValueError(f"{path}:{n}: malformed record ({e})") from None
        if records[-1].id in seen:
            raise ValueError(f"{path}:{n}: question {records[-1].id!r} is stored twice (did two processes write "
                             "this file?); sample it again into another folder")
        seen.add(records[-1].id)
    return header, records


BLOCK_SAMPLES = 2048  # samples per generate call (whole questions, at least one)


def collect(
    model: Transformer,
    tokenizer: Tokenizer,
    problems: list[Problem],
    out_file: str | os.PathLike,
    header: dict,
    params: SamplingParams,
    template: str,
    progress: bool = True,
    grader: Grader | None = None,
) -> list[QuestionRecord]:
    """Sample `params.n` responses for each problem into out_file, resuming what is already there. The file is
    locked while this runs (a second process on it is refused).

    Each `generate` call gets a block of about BLOCK_SAMPLES samples (the unit of resuming; enough to keep the
    sampler's rows full while its queue drains)."""
    out_file = Path(out_file)
    grader = grader or ExactGrader()
    if out_file.exists():
        _check_header(out_file, header, read_samples_header(out_file))  # refused before the lock: nothing written
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with locked(out_file.with_name(out_file.name + ".lock"), str(out_file)):
        done = _open_samples_file(out_file, header)
        per_block = max(1, BLOCK_SAMPLES // params.n)
        session = DecodeSession()  # the blocks reuse one KV cache (and on CUDA its captured graphs)
        starts = range(0, len(problems), per_block)
        bar = tqdm(total=len(problems), initial=sum(p.id in done for p in problems),
                   desc=f"sampling {out_file.stem}", unit="question", disable=not progress)
        for start in starts:
            block = problems[start : start + per_block]
            new = [p for p in block if p.id not in done]
            if not new:
                continue
            prompts = [format_prompt(p.question, template) for p in block]  # sampled whole: the same draws resumed
            block_params = SamplingParams(**{**params.__dict__, "first_sample": start * params.n})
            samples = generate(model, tokenizer, prompts, block_params, session=session)
            for i, p in enumerate(block):
                if p.id not in done:
                    responses = verify_samples(samples[i * params.n : (i + 1) * params.n], p.answer, grader)
                    done[p.id] = QuestionRecord(p.id, p.question, p.answer, p.level, p.facts, responses)
            append_lines(out_file, [json.dumps(done[p.id].__dict__) for p in new])
            bar.update(len(new))
        bar.close()
    return [done[p.id] for p in problems]


def _open_samples_file(out_file: Path, header: dict) -> dict[str, QuestionRecord]:
    """The questions already in out_file (refusing a file of another run), rewritten without a torn tail so that
    appends start on a clean line; a new file gets its header."""
    if not out_file.exists():
        _write(out_file, header, [])
        return {}
    old_header, records = read_samples_file(out_file)
    _check_header(out_file, header, old_header)
    _write(out_file, header, records)
    return {r.id: r for r in records}


def _check_header(out_file: Path, header: dict, old_header: dict) -> None:
    """Refuse a samples file drawn by another run: other weights, questions, k or sampling settings."""
    diff = sorted(k for k in set(header) | set(old_header) if header.get(k) != old_header.get(k))
    if diff == ["fingerprint"]:
        raise ValueError(f"{out_file}: the model {header['model']} changed since these samples were drawn (its "
                         f"files' fingerprint was {old_header['fingerprint']}, now {header['fingerprint']}); use "
                         "another results folder, or move the file away to sample the new weights")
    if diff:
        raise ValueError(
            f"{out_file} holds samples from a different run "
            f"({', '.join(f'{k}: {old_header.get(k)!r} vs now {header.get(k)!r}' for k in diff)}); "
            "use another results folder or delete the file to start over"
        )


def _write(path: Path, header: dict, records: list[QuestionRecord]) -> None:
    atomic_write(path, [json.dumps({"header": header}) + "\n", *(json.dumps(r.__dict__) + "\n" for r in records)])


def sample_model(model_dir: str, problems: list[Problem], out_file: str | os.PathLike, params: SamplingParams,
                 data_name: str, template: str | None = None, device: str | None = None,
                 progress: bool = True, grader: Grader | None = None) -> list[QuestionRecord]:
    """Load a model folder and `collect` its samples (the header is built from these arguments)."""
    path = resolve_model_dir(model_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = load_pretrained(path, dtype=dtype, device=device)
    tokenizer = Tokenizer.from_dir(path)
    template = template or default_template(path, tokenizer)
    grader = grader or ExactGrader()
    header = {"model": str(path), "fingerprint": fingerprint(path), "data": data_name, "questions": len(problems),
              "questions_digest": questions_digest(problems), "k": params.n, "temperature": params.temperature,
              "top_k": params.top_k, "top_p": params.top_p, "max_new_tokens": params.max_new_tokens,
              "seed": params.seed, "template": template, "grader": grader.name}
    return collect(model, tokenizer, problems, out_file, header, params, template, progress=progress, grader=grader)
