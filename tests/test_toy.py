"""The toy world's tutor and tokenizer (the shipped models are checked in test_toy_models.py)."""

import random

from minireason.tasks import fresh_problems
from minireason.toy import EOS, Tutor, build_tokenizer
from minireason.verifier import extract_answer, is_correct

PROBLEMS = fresh_problems(600, seed=11)


def test_clean_tutor_is_always_right_and_boxes_its_answer():
    tutor, rng = Tutor.clean(), random.Random(0)
    for p in PROBLEMS:
        text = tutor.solve(p, rng)
        assert extract_answer(text) == p.answer, (p.question, text)


def test_solution_format_by_hand():
    from minireason.tasks import Problem

    p = Problem("x", "What is 347 * 29?", "10063", "mul3x2", [], 347, 29, "*")
    assert Tutor.clean().solve(p, random.Random(0)) == (
        "7*9=63,4*9=36+6=42,3*9=27+4=31:3123;7*2=14,4*2=8+1=9,3*2=6:694;3123+6940=10063 \\boxed{10063}")
    add = Problem("y", "What is 59 + 63?", "122", "add2", [], 59, 63, "+")
    assert Tutor.clean().solve(add, random.Random(0)) == "9+3=12,5+6+1=12 \\boxed{122}"


def test_hard_gaps_are_never_solved_even_with_slips():
    tutor = Tutor(slip=0.3, hard_slip=0.5, carry_slip=0.3, final_slip=0.5)  # slips everywhere
    rng = random.Random(1)
    gap = [p for p in PROBLEMS if any(f in p.facts for f in tutor.gap_facts)]
    assert len(gap) > 30
    assert not any(is_correct(tutor.solve(p, rng), p.answer) for p in gap for _ in range(50))


def test_every_error_is_upward_so_wrong_answers_are_too_large():
    tutor, rng = Tutor(slip=0.2, hard_slip=0.4), random.Random(2)
    for p in PROBLEMS[:300]:
        got = int(extract_answer(tutor.solve(p, rng)))
        assert got >= int(p.answer)


def test_partial_facts_are_sometimes_right():
    tutor = Tutor(slip=0, hard_slip=0, carry_slip=0, final_slip=0, gap_facts=(), partial_facts=(("3*8", 0.3),))
    rng = random.Random(3)
    from minireason.tasks import Problem, solution_facts

    p = Problem("z", "What is 13 * 8?", "104", "mul2x1", solution_facts(13, 8, "*"), 13, 8, "*")
    assert p.facts == ["1*8", "3*8"]
    rate = sum(is_correct(tutor.solve(p, rng), p.answer) for _ in range(2000)) / 2000
    assert 0.25 < rate < 0.35


def test_tokenizer_digits_are_single_tokens_and_round_trip():
    tok = build_tokenizer()
    text = "What is 347 * 29?"
    ids = tok.encode(text).ids
    assert len(ids) == 14  # "What" + 13 characters
    assert tok.decode(ids) == text
    sol = "7*9=63 \\boxed{10063}"
    ids = tok.encode(sol + EOS).ids
    assert ids[-1] == tok.token_to_id(EOS) and tok.token_to_id("\\boxed{") in ids
    assert tok.decode(ids) == sol
    assert all(tok.id_to_token(tok.token_to_id(d)) == d for d in "0123456789")


