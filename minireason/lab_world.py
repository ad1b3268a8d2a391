"""The claim lab's toy world (experiments/claim_lab.py): the mechanism knobs of its tutor, the knowledge each
test question needs, and the trace filters of the lab's reasoning-only distillation. Research harness: a learner
following one GRPO or SFT step can skip this file.

The paper explains each claim by a mechanism; here each mechanism is a knob of `LabTutor`, the toy tutor
(toy.py) with four more fields, all off by default (then it writes exactly what `toy.Tutor` writes):

- `gap_error`: how far above its truth a gap fact is stated, always the same value (the toy tutor's 2). A slip
  moves a column by 1 or 2, so a gap error of 2 is one a slip's absence can mirror: a guess's second attempt
  that lacks the first attempt's slip boxes 2 less than the steps, which is the truth on a gap question. At 5
  or more no one or two slips undo a gap.
- faithfulness (E4), `guess`, `guess_right`: with probability `guess` the box holds a guess, not the steps'
  result: an unwritten second attempt, kept with probability `guess_right`, so right less often than written
  work, and never where the knowledge is missing. Some right answers then sit over wrong steps.
- reflection (E5), `reflect`, `reflect_fix`: after a wrong step, with probability `reflect` the tutor writes
  REFLECTION and the step again, repaired with probability `reflect_fix` (low: superficial reflection; high:
  self-correction). Only slips are repaired: a gap, partial or long-sum fact never is (recalculating does not
  teach a fact).
- reach (E1, E2), `long_sum`: the probability that a five-digit final sum is written right (else 1, 2 or 10
  above). Only the hardest level (3-digit x 2-digit) has five-digit sums.

Knowledge locality (E1, E2) is not a tutor knob but a filter of RL's questions (`local_rl_questions`):
the base learns every fact, and RL seldom meets the questions that need a rare one.

`python -m minireason.lab_world --help` lists every knob: the toy tutor's and these; it checks a tutor's
success by the knowledge each question needs, then pretrains a base on it (as `python -m minireason.toy`).
"""

from __future__ import annotations

import argparse
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import ModelLoadError, model_hints, resolve_model_dir
from .sft import Example
from .tasks import LEVELS, Problem, toy_split
from .toy import Tutor, build_parser, pretrain_models, print_check, tutor_check, tutor_from_args

REFLECTION = "wait, let me recalculate:"  # two of the paper's reflection keywords (Table 5), in toy characters
KNOWLEDGE_GROUPS = ("hard-gap", "long-sum", "partial-fact", "other")


@dataclass
class LabTutor(Tutor):
    gap_error: int = 2
    guess: float = 0.0
    guess_right: float = 0.3
    reflect: float = 0.0
    reflect_fix: float = 0.0
    long_sum: float = 1.0

    def __post_init__(self):
        if self.gap_error < 1:
            raise ValueError(f"gap_error={self.gap_error}: expected at least 1 (a gap fact is stated above its truth)")
        super().__post_init__()

    @classmethod
    def from_model(cls, model: str) -> "LabTutor":
        """The tutor a toy model imitated, as its folder's config.json records it (a model name or folder)."""
        folder = resolve_model_dir(model)
        stored = model_hints(folder).get("tutor")
        if not isinstance(stored, dict):
            raise ModelLoadError(f"{folder}/config.json: no minireason.tutor (is it a toy model?)")
        stored = {**stored, "partial_facts": tuple(map(tuple, stored.get("partial_facts", ()))),
                  "gap_facts": tuple(stored.get("gap_facts", ()))}
        return cls(**stored)

    def _gap_value(self, true: int) -> int:
        return true + self.gap_error

    def _final_sum(self, p1: int, p2: int, rng: random.Random) -> int:
        """A five-digit sum is rare knowledge when `long_sum` < 1; otherwise only a slip can go wrong."""
        true = p1 + p2 * 10
        if true >= 10_000 and self.long_sum < 1:
            return true if rng.random() < self.long_sum else true + rng.choice((1, 2, 10))
        return super()._final_sum(p1, p2, rng)

    def _knowable(self, fact: str | None, true: int) -> bool:
        """Whether a reflection can repair a wrong step using this knowledge: a slip, yes; a rare or missing fact,
        or a rare long sum, no."""
        if fact == "sum":
            return not (true >= 10_000 and self.long_sum < 1)
        return fact not in self.gap_facts and fact not in self._partial_ok

    def _after_step(self, lhs: str, written: int, true: int, rng: random.Random, fact: str | None = None):
        """After a wrong step, perhaps a reflection: (text to append, value the next steps use)."""
        if not self.reflect or written == true or rng.random() >= self.reflect:
            return "", written
        fixed = true if self._knowable(fact, true) and rng.random() < self.reflect_fix else written
        return f" {REFLECTION} {lhs}={fixed}", fixed

    def _boxed(self, result: int, problem: Problem, rng: random.Random) -> str:
        """The box: the steps' result or, with probability `guess`, a second unwritten attempt's (kept with
        probability `guess_right`, else 1, 2 or 10 above it)."""
        if self.guess and rng.random() < self.guess:
            result = self._work(problem, rng)[1]
            result += 0 if rng.random() < self.guess_right else rng.choice((1, 2, 10))
        return super()._boxed(result, problem, rng)


# ----------------------------------------------------------------------------------------------
# What a question needs, and what a trace states


def needs_any(problem: Problem, facts) -> bool:
    return any(f in problem.facts for f in facts)


def needs_long_sum(problem: Problem) -> bool:
    """Whether the solution ends in a five-digit sum of partial products (3-digit x 2-digit questions only)."""
    if problem.op != "*" or problem.a is None or problem.b is None:
        return False
    return problem.b >= 10 and problem.a * problem.b >= 10_000


def knowledge_group(problem: Problem, tutor: LabTutor) -> str:
    """What a question needs from the tutor's knowledge: a "hard-gap" fact (never stated correctly), else a
    five-digit sum the tutor rarely gets right ("long-sum", only when `long_sum` < 1), else a "partial-fact"
    (stated correctly only sometimes), else nothing rare ("other")."""
    if needs_any(problem, tutor.gap_facts):
        return "hard-gap"
    if tutor.long_sum < 1 and needs_long_sum(problem):
        return "long-sum"
    if needs_any(problem, [f for f, _ in tutor.partial_facts]):
        return "partial-fact"
    return "other"


_ADDITION = re.compile(r"(\d+)\+(\d+)=(\d+)")
_PRODUCT_STEP = re.compile(r"(?<![\d])(\d)\*(\d)=")
_PRODUCT_STATED = re.compile(r"(?<![\d])(\d)\*(\d)=(\d+)")


def long_sum_stated_right(text: str) -> bool | None:
    """Whether a trace's last addition is stated right, when its true sum has five digits (the knowledge that
    `long_sum` < 1 makes rare); None when the trace's last addition has fewer digits, or there is none. After a
    reflection the last addition is the recalculated one. Whether the addends themselves are right does not
    matter: this reads the addition skill alone."""
    additions = _ADDITION.findall(text)
    if not additions:
        return None
    first, second, stated = map(int, additions[-1])
    return first + second == stated if first + second >= 10_000 else None


def facts_stated(response: str) -> set[str]:
    """Single-digit products a toy trace writes, e.g. "7*8=56" -> "7*8" (smaller digit first)."""
    return {f"{min(a, b)}*{max(a, b)}" for a, b in _PRODUCT_STEP.findall(response)}


def products_stated(response: str) -> list[tuple[str, bool]]:
    """Each single-digit product a toy trace writes, with whether it is stated right: "4*7=29" -> ("4*7", False).
    A reflection's restated step counts as one more statement."""
    return [(f"{min(a, b)}*{max(a, b)}", int(a) * int(b) == int(c)) for a, b, c in _PRODUCT_STATED.findall(response)]


def drop_traces_stating(examples: list[Example], facts: set[str]) -> list[Example]:
    """Examples whose response states none of `facts`."""
    return [e for e in examples if not facts_stated(e.response) & facts]


def knowledge_filter(examples: list[Example], pool: list[Problem], student: str | Path) -> list[Example]:
    """Reasoning-only distillation in a toy world: no kept trace may state knowledge the student's tutor lacks (its
    hard gaps and partial facts; its five-digit sums when `long_sum` < 1). One lucky solve would otherwise let a
    clean trace carry the missing knowledge in. Not a toy student (its folder records no tutor): unchanged."""
    if not isinstance(model_hints(student).get("tutor"), dict):
        return examples
    tutor = LabTutor.from_model(str(student))
    lacking = set(tutor.gap_facts) | {f for f, _ in tutor.partial_facts}
    kept = drop_traces_stating(examples, lacking)
    print(f"knowledge filter: removed {len(examples) - len(kept)} traces stating a fact the student lacks "
          f"({', '.join(sorted(lacking))}), {len(kept)} left")
    if tutor.long_sum < 1:
        long_sums = {p.id for p in pool if needs_long_sum(p)}
        kept = [e for e in kept if e.id not in long_sums]
        print(f"knowledge filter: {len(kept)} left without questions that end in a five-digit sum")
    return kept


def local_rl_questions(problems: list[Problem], tutor: LabTutor, keep: float, seed: int = 0) -> list[Problem]:
    """Knowledge locality: RL's training questions, of which only a share `keep` (drawn with a fixed
    seed) of those that need rare knowledge (a partial fact; a five-digit sum when `long_sum` < 1) stay. The base
    still learnt every fact at its rate in pretraining; only RL's exposure to each shrinks, to a handful of groups
    per run, as a real model's RL data exercise most specific pieces of knowledge (the paper's §4.2). Questions
    that need a gap fact stay: their groups are all wrong, so they reinforce nothing."""
    rare = [p for p in problems if knowledge_group(p, tutor) in ("partial-fact", "long-sum")]
    kept = {p.id for p in random.Random(seed).sample(rare, round(keep * len(rare)))}
    rare_ids = {p.id for p in rare}
    return [p for p in problems if p.id not in rare_ids or p.id in kept]


def exposure(log_rows: list[dict], problems: list[Problem], tutor: LabTutor, group_size: int) -> dict[str, dict]:
    """RL's exposure to each piece of rare knowledge over a run (the rows of train_rl.py's log.jsonl): for each
    gap and partial fact of the tutor, and its five-digit sums when `long_sum` < 1, the rollouts whose question
    needs it (G per question drawn), the groups (questions drawn), and the share of those groups in which at
    least one sample was right. The paper's §4.2: an all-wrong group has zero advantage, so RL never reinforces
    the knowledge of a question whose groups are all wrong."""
    by_id = {p.id: p for p in problems}
    items = [*tutor.gap_facts, *(f for f, _ in tutor.partial_facts)] + (["5-digit sum"] if tutor.long_sum < 1 else [])
    counts = {item: [0, 0] for item in items}  # groups, groups with a right sample
    for row in log_rows:
        for qid, right in zip(row["questions"], row["right_per_group"]):
            needs = set(by_id[qid].facts) | ({"5-digit sum"} if needs_long_sum(by_id[qid]) else set())
            for item in needs & set(items):
                counts[item][0] += 1
                counts[item][1] += right > 0
    return {item: {"rollouts": n * group_size, "groups": n, "share_with_right": right / n if n else None}
            for item, (n, right) in counts.items()}


def tutor_report(tutor: LabTutor, problems: list[Problem], k: int = 64, seed: int = 0) -> dict:
    """The tutor's own X/k histogram over the toy bins, pass@1 and pass@k (toy.tutor_check), and its rates by
    the knowledge a question needs and by level."""
    xs, report = tutor_check(tutor, problems, k, seed)
    groups = {g: [x for p, x in zip(problems, xs) if knowledge_group(p, tutor) == g] for g in KNOWLEDGE_GROUPS}
    report["by_knowledge"] = {g: {"n": len(v), "pass@1": (sum(v) / (k * len(v)) if v else None),
                                  f"pass@{k}": (sum(x > 0 for x in v) / len(v) if v else None)}
                              for g, v in groups.items()}
    report["pass@1_by_level"] = {lvl: sum(x for p, x in zip(problems, xs) if p.level == lvl)
                                 / (k * max(1, sum(p.level == lvl for p in problems))) for lvl in LEVELS}
    return report


# ----------------------------------------------------------------------------------------------
# Command line: the toy world's, with the lab's knobs


def lab_parser() -> argparse.ArgumentParser:
    """The toy world's flags (toy.build_parser) and the lab's mechanism knobs."""
    ap = build_parser("python -m minireason.lab_world")
    d = LabTutor()
    t = ap.add_argument_group("the claim lab's mechanism knobs (module docstring)")
    t.add_argument("--gap-error", type=int, default=d.gap_error, help="how far above its truth a gap fact is stated")
    t.add_argument("--guess", type=float, default=d.guess,
                   help="unfaithful success: rate of boxing a guess instead of the steps' result")
    t.add_argument("--guess-right", type=float, default=d.guess_right, help="how often a guess is right")
    t.add_argument("--reflect", type=float, default=d.reflect, help="rate of a reflection after a wrong step")
    t.add_argument("--reflect-fix", type=float, default=d.reflect_fix, help="how often a reflection repairs the step")
    t.add_argument("--long-sum", type=float, default=d.long_sum,
                   help="reach: how often a five-digit final sum (only in 3-digit x 2-digit questions) is right")
    return ap


def main(argv=None) -> None:
    args = lab_parser().parse_args(argv)
    tutor = tutor_from_args(LabTutor, args)
    t0 = time.time()
    report = tutor_report(tutor, toy_split("test"), k=args.k)
    print_check(report, time.time() - t0)
    for g, v in report["by_knowledge"].items():
        if v["n"]:
            print(f"  {g:13s} n={v['n']:4d}  pass@1 {v['pass@1']:.3f}  pass@{args.k} {v[f'pass@{args.k}']:.3f}")
    if not args.check_only:
        pretrain_models(args, tutor)


if __name__ == "__main__":
    main()
