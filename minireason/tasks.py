"""Integer arithmetic problems: a seeded generator with difficulty levels, splits, and JSONL I/O.

Six levels, easiest first (operands drawn uniformly):

    level   example          solution steps
    add2    59 + 63          2 column sums
    add3    141 + 365        3 column sums
    mul2x1  75 * 9           2 single-digit products (+ carries)
    mul3x1  514 * 6          3 single-digit products (+ carries)
    mul2x2  47 * 28          2 x 2 products, then one multi-digit addition of the partial products
    mul3x2  347 * 29         3 x 2 products, then one multi-digit addition

Each `Problem` records the single-digit facts its column-by-column solution needs ("7*8", "3+5"),
so analyses can ask which knowledge a question requires. Questions are plain English
("What is 347 * 29?"), usable by real instruct models as well as the toy models.

Splits of the toy world: `test` (600 questions, 100 per level) and `train` (5,000 questions,
weighted towards the harder levels), disjoint by question text. `fresh_problems` draws any
number of further questions outside the test split (pretraining corpora, distillation pools).

JSONL: one object per line with `question` and `answer` (strings or numbers), and optional `id`,
`level` and `facts`; bring your own numeric-answer sets (e.g. GSM8K) in this format.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from .files import atomic_write, parse_json, read_text
from .answers import canonical
from .verifier import Grader, gold_report

LEVELS = ("add2", "add3", "mul2x1", "mul3x1", "mul2x2", "mul3x2")
_OPERANDS = {  # level: (first operand range, second operand range, operator)
    "add2": ((10, 99), (10, 99), "+"),
    "add3": ((100, 999), (100, 999), "+"),
    "mul2x1": ((10, 99), (2, 9), "*"),
    "mul3x1": ((100, 999), (2, 9), "*"),
    "mul2x2": ((10, 99), (10, 99), "*"),
    "mul3x2": ((100, 999), (10, 99), "*"),
}
TRAIN_LEVEL_WEIGHTS = (1.0, 1.0, 1.0, 1.2, 1.4, 1.6)
TEST_SIZE, TRAIN_SIZE = 600, 5000
TEST_SEED, TRAIN_SEED = 1234, 4321


@dataclass
class Problem:
    id: str
    question: str
    answer: str
    level: str | None = None
    facts: list[str] = field(default_factory=list)  # single-digit facts the solution uses, e.g. "7*8", "3+5"
    a: int | None = None  # operands, for the toy tutor (None for problems loaded from elsewhere)
    b: int | None = None
    op: str | None = None


def solution_facts(a: int, b: int, op: str) -> list[str]:
    """The single-digit facts of the column-by-column solution, each written smaller digit first."""
    da, db = [int(c) for c in str(a)], [int(c) for c in str(b)]
    if op == "+":
        pairs = zip(reversed(da), reversed(db))  # same number of digits at every level
        return sorted({f"{min(x, y)}+{max(x, y)}" for x, y in pairs})
    return sorted({f"{min(x, y)}*{max(x, y)}" for x in da for y in db})


def make_problem(level: str, rng: random.Random, pid: str = "") -> Problem:
    if level not in _OPERANDS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    (lo_a, hi_a), (lo_b, hi_b), op = _OPERANDS[level]
    a, b = rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)
    return Problem(pid, f"What is {a} {op} {b}?", str(a + b if op == "+" else a * b), level,
                   solution_facts(a, b, op), a, b, op)


def _draw(n: int, seed: int, weights, exclude: set[str], prefix: str) -> list[Problem]:
    rng = random.Random(seed)
    out, seen = [], set(exclude)
    while len(out) < n:
        p = make_problem(rng.choices(LEVELS, weights)[0], rng, f"{prefix}-{len(out)}")
        if p.question not in seen:
            seen.add(p.question)
            out.append(p)
    return out


@lru_cache(maxsize=None)
def _test_split() -> tuple[Problem, ...]:
    rng = random.Random(TEST_SEED)
    out, seen = [], set()
    for level in LEVELS:
        while len(out) < (LEVELS.index(level) + 1) * TEST_SIZE // len(LEVELS):
            p = make_problem(level, rng, f"test-{len(out)}")
            if p.question not in seen:
                seen.add(p.question)
                out.append(p)
    return tuple(out)


@lru_cache(maxsize=None)
def _train_split() -> tuple[Problem, ...]:
    return tuple(_draw(TRAIN_SIZE, TRAIN_SEED, TRAIN_LEVEL_WEIGHTS, {p.question for p in _test_split()}, "train"))


def toy_split(name: str) -> list[Problem]:
    """The toy world's fixed `train` or `test` questions (same on every machine)."""
    if name == "test":
        return list(_test_split())
    if name == "train":
        return list(_train_split())
    raise ValueError(f"unknown toy split {name!r}; expected 'train' or 'test'")


def fresh_problems(n: int, seed: int, weights=TRAIN_LEVEL_WEIGHTS, prefix: str = "fresh") -> list[Problem]:
    """n new questions, none of them in the test split (for pretraining corpora and distillation pools)."""
    return _draw(n, seed, weights, {p.question for p in _test_split()}, prefix)


TOY_SPLITS = ("train", "test")


def is_real_data(spec: str) -> bool:
    """Whether a data spec names a file of real questions rather than a toy split."""
    return str(spec) not in TOY_SPLITS


def load_problems(spec: str) -> list[Problem]:
    """`train`/`test` (the toy splits) or the path of a JSONL file."""
    if not is_real_data(spec):
        return toy_split(spec)
    return load_jsonl(spec)


def load_questions(spec: str, grader: Grader, limit: int | None = None) -> list[Problem]:
    """Problems of a toy split or JSONL file (the first `limit`); warns when the grader cannot parse some of
    their gold answers."""
    problems = load_problems(spec)[:limit]
    if warning := gold_report([p.answer for p in problems], grader):
        print(f"{spec}: {warning}")
    return problems


# ----------------------------------------------------------------------------------------------
# JSONL


def save_jsonl(problems: list[Problem], path: str | os.PathLike) -> None:
    atomic_write(path, (json.dumps({k: v for k, v in asdict(p).items() if v is not None and v != []}) + "\n"
                        for p in problems))


def read_jsonl_objects(path: str | os.PathLike, what: str):
    """Yield ("file:line", object) for each non-blank line of a JSONL file; a line that is not a JSON
    object fails with its file and line number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        row = parse_json(line, where)
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, row


def load_jsonl(path: str | os.PathLike) -> list[Problem]:
    """Problems from a JSONL file; a malformed line fails with its file and line number."""
    problems, seen, asked = [], set(), {}  # asked: question text -> (where, answer)
    for where, row in read_jsonl_objects(path, "data file (expected 'train', 'test' or a JSONL path)"):
        for key in ("question", "answer"):
            if key not in row:
                raise ValueError(f"{where}: missing required key {key!r}")
            if not isinstance(row[key], (str, int, float)) or isinstance(row[key], bool):
                raise ValueError(f"{where}: {key!r} must be a string or a number")
        facts = row.get("facts", [])
        if not isinstance(facts, list):
            raise ValueError(f"{where}: 'facts' must be a list")
        pid = str(row.get("id", f"{Path(path).stem}-{len(problems)}"))
        if pid in seen:
            raise ValueError(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        question, answer = str(row["question"]).strip(), str(row["answer"]).strip()
        first, first_answer = asked.setdefault(question, (where, answer))
        if first_answer != answer and canonical(first_answer) != canonical(answer):
            raise ValueError(f"{where}: asks the question of {first} again, with answer {answer!r} where that line "
                             f"has {first_answer!r}; one question needs one answer")
        problems.append(Problem(
            id=pid, question=str(row["question"]), answer=str(row["answer"]), level=row.get("level"),
            facts=[str(x) for x in facts], a=row.get("a"), b=row.get("b"), op=row.get("op"),
        ))
    if not problems:
        raise ValueError(f"{path}: no problems in the file")
    return problems
