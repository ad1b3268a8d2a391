"""The shipped toy models: a smaller re-check of the spread measured in benchmarks/RESULTS.md."""

import pytest

from minireason.checkpoint import load_pretrained, model_hints, resolve_model_dir
from minireason.sampler import SamplingParams, generate
from minireason.tasks import LEVELS, toy_split
from minireason.tokenizer import Tokenizer
from minireason.verifier import is_correct

K = 32
GAP_FACTS = {"7*8", "6*9"}


def success_counts(name, problems, k):
    d = resolve_model_dir(name)
    model, tok = load_pretrained(d), Tokenizer.from_dir(d)
    samples = generate(
        model, tok, [p.question for p in problems],
        SamplingParams(n=k, temperature=1.0, max_new_tokens=model_hints(d)["max_new_tokens"]))
    counts = [0] * len(problems)
    for s in samples:
        counts[s.prompt_index] += is_correct(s.text, problems[s.prompt_index].answer)
    return counts


@pytest.mark.slow
def test_shipped_base_has_a_broad_spread_and_unsolvable_gaps():
    test = toy_split("test")
    problems = [p for lvl in LEVELS for p in [q for q in test if q.level == lvl][:50]]  # 300 questions
    x = success_counts("toy-base", problems, K)
    n = len(problems)
    pass1 = sum(x) / (K * n)
    assert 0.28 <= pass1 <= 0.50  # measured 0.363 (world on's base; the earlier plain-tutor toy-base: 0.48)
    assert 0.10 <= sum(c == 0 for c in x) / n <= 0.30  # [0]; measured 0.20
    assert sum(1 <= c <= 2 for c in x) / n >= 0.04  # the rarely-solved questions exist ([1-4] at k=64)
    assert sum(3 <= c <= 16 for c in x) / n >= 0.10  # the middle is populated
    assert sum(c > 16 for c in x) / n <= 0.65
    gap = [c for p, c in zip(problems, x) if GAP_FACTS & set(p.facts)]
    assert len(gap) >= 20 and sum(c > 0 for c in gap) <= 1  # hard gaps: (almost) never solved


@pytest.mark.slow
def test_shipped_teacher_beats_base_on_the_hardest_level():
    hardest = [p for p in toy_split("test") if p.level == "mul3x2"][:60]
    base, teacher = success_counts("toy-base", hardest, 8), success_counts("toy-teacher", hardest, 8)
    assert sum(teacher) / (8 * 60) - sum(base) / (8 * 60) >= 0.20
