"""The claim lab's tutor (lab_world.LabTutor): each mechanism knob does what its docstring says, is off by
default (then the toy tutor's traces come out unchanged), and round-trips through a model's config.json."""

import random

import pytest

from minireason.lab_world import (LabTutor, knowledge_group, long_sum_stated_right, needs_any, needs_long_sum,
                                  tutor_report)
from minireason.tasks import fresh_problems, toy_split
from minireason.toy import Tutor
from minireason.verifier import extract_answer, is_correct

PROBLEMS = fresh_problems(600, seed=11)


def test_with_every_knob_off_the_lab_tutor_writes_the_toy_tutors_traces():
    problems = toy_split("test")
    assert [LabTutor().solve(p, random.Random(i)) for i, p in enumerate(problems)] == \
        [Tutor().solve(p, random.Random(i)) for i, p in enumerate(problems)]


def test_gap_error_is_how_far_above_its_truth_a_gap_fact_is_stated():
    from minireason.tasks import Problem

    p = Problem("g", "What is 18 * 7?", "126", "mul2x1", [], 18, 7, "*")
    no_slips = dict(slip=0, hard_slip=0, carry_slip=0, final_slip=0, partial_facts=())
    for error in (2, 5):
        text = LabTutor(gap_error=error, **no_slips).solve(p, random.Random(0))
        assert text.startswith(f"8*7={56 + error},") and extract_answer(text) == str(126 + error)
    with pytest.raises(ValueError, match="gap_error=0"):
        LabTutor(gap_error=0)


def test_guess_offsets_match_a_gap_error_of_2_but_not_of_5():
    """Why world on's gap error is 5: a guess boxes a second attempt, so the box sits below the steps'
    result by the first attempt's extra slips, mostly 1 or 2 in one column; a model that learns those offsets
    undoes a gap stated 2 too high, not one stated 5 too high."""
    guessing, rng = LabTutor(guess=1.0, guess_right=1.0), random.Random(3)
    two_digit = [p for p in PROBLEMS if p.level in ("mul2x2", "mul3x2")]
    offsets = []
    for p in two_digit * 10:
        text = guessing.solve(p, rng)  # "...;p1+p2=S \\boxed{B}": S is the steps' result
        steps_result = int(text.rsplit(" ", 1)[0].rsplit("=", 1)[1])
        offsets.append(steps_result - int(extract_answer(text)))
    columns = lambda size: sum(any(d == size * 10**j for j in range(6)) for d in offsets) / len(offsets)  # noqa: E731
    assert columns(2) > 0.05 and columns(5) < 0.005, (columns(2), columns(5))


def test_tutor_histogram_is_broad_and_quick():
    report = tutor_report(LabTutor(), toy_split("test"), k=64)
    n = report["n"]
    counts = report["bin_counts"]
    assert 0.08 <= counts[0] / n <= 0.20
    assert all(c >= 30 for c in counts)
    assert report["by_knowledge"]["hard-gap"]["pass@64"] == 0.0


def test_guessing_tutor_boxes_right_answers_under_wrong_steps_and_is_off_by_default():
    from minireason.toy import clean_solution, process_correct

    problems = toy_split("test")[:60]
    plain, guessing = LabTutor(), LabTutor(guess=1.0, guess_right=1.0)
    # off by default: the same random stream and the same traces as before the knob existed
    assert [plain.solve(p, random.Random(i)) for i, p in enumerate(problems)] == \
        [LabTutor(guess=0.0).solve(p, random.Random(i)) for i, p in enumerate(problems)]
    traces = [(p, guessing.solve(p, random.Random(i))) for i, p in enumerate(problems * 4)]
    # the box is a second, unwritten attempt: right over wrong steps (unfaithful), and wrong over right ones
    assert any(is_correct(t, p.answer) and not process_correct(t, p) for p, t in traces)
    assert any(not is_correct(t, p.answer) and t.rsplit(" ", 1)[0] == clean_solution(p).rsplit(" ", 1)[0]
               for p, t in traces)
    gap = [p for p in toy_split("test") if "7*8" in p.facts][:20]
    assert sum(LabTutor(guess=1.0, guess_right=1.0).success_counts(gap, 16)) == 0  # no guess supplies a missing fact
    # a kept guess (guess_right 0.5) succeeds half as often as written work on the same questions
    written, guessed = sum(plain.success_counts(problems, 64)), sum(LabTutor(guess=1.0, guess_right=0.5)
                                                                     .success_counts(problems, 64, seed=1))
    assert 0.42 < guessed / written < 0.58


def test_reflection_knob_writes_the_papers_keywords_and_repairs_only_what_the_tutor_knows():
    from minireason.metrics import reflection_count
    from minireason.toy import UNK, build_tokenizer

    problems = toy_split("test")[:200]
    plain = LabTutor()
    assert [plain.solve(p, random.Random(i)) for i, p in enumerate(problems)] == \
        [LabTutor(reflect=0.0, reflect_fix=1.0).solve(p, random.Random(i)) for i, p in enumerate(problems)]
    fixing = [(p, LabTutor(reflect=1.0, reflect_fix=1.0).solve(p, random.Random(i))) for i, p in enumerate(problems)]
    superficial = [(p, LabTutor(reflect=1.0, reflect_fix=0.0).solve(p, random.Random(i)))
                   for i, p in enumerate(problems)]
    for p, t in fixing:  # every slip is reflected on and repaired; a gap or rare fact the tutor lacks is not
        lacking = list(plain.gap_facts) + [f for f, _ in plain.partial_facts]
        assert is_correct(t, p.answer) or needs_any(p, lacking)
    assert sum(is_correct(t, p.answer) for p, t in fixing) > sum(plain.success_counts(problems, 1))
    reflected = [t for _, t in superficial if reflection_count(t) > 0]
    assert reflected and all(reflection_count(t) % 2 == 0 for t in reflected)  # "wait" + "let me recalculate"
    # superficial reflection repairs nothing: a reflected trace is as wrong as its first wrong step
    assert sum(is_correct(t, p.answer) for p, t in superficial if reflection_count(t)) == 0
    unk = build_tokenizer().token_to_id(UNK)
    assert unk not in build_tokenizer().encode(reflected[0]).ids


def test_long_sum_knob_makes_five_digit_sums_rare_knowledge_of_the_hardest_level_only():
    from minireason.tasks import LEVELS
    
    problems = toy_split("test")
    long_sum = [p for p in problems if needs_long_sum(p)]
    assert long_sum and {p.level for p in long_sum} == {LEVELS[-1]}  # only 3-digit x 2-digit questions
    assert all(p.a * p.b >= 10_000 for p in long_sum)
    # off by default: the same random stream as before the knob existed
    assert [LabTutor().solve(p, random.Random(i)) for i, p in enumerate(problems[-80:])] == \
        [LabTutor(long_sum=1.0).solve(p, random.Random(i)) for i, p in enumerate(problems[-80:])]
    never = LabTutor(long_sum=0.0, reflect=1.0, reflect_fix=1.0)  # not even a reflection repairs missing knowledge
    assert sum(never.success_counts(long_sum[:30], 16)) == 0
    others = [p for p in problems if not needs_long_sum(p)][:60]
    fixing = LabTutor(reflect=1.0, reflect_fix=1.0)
    assert never.success_counts(others, 8, seed=3) == fixing.success_counts(others, 8, seed=3)
    rare = LabTutor(long_sum=0.05, slip=0, hard_slip=0, carry_slip=0, final_slip=0, partial_facts=(), gap_facts=())
    rate = sum(rare.success_counts(long_sum, 64)) / (64 * len(long_sum))
    assert 0.03 < rate < 0.07  # clean steps otherwise: right exactly when the five-digit sum is
    assert knowledge_group(long_sum[0], LabTutor(long_sum=0.05, gap_facts=(), partial_facts=())) == "long-sum"
    assert knowledge_group(long_sum[0], LabTutor(gap_facts=(), partial_facts=())) == "other"


def test_pretrain_writes_a_loadable_model_that_records_its_tutor_and_context(tmp_path):
    from minireason.checkpoint import load_pretrained, model_hints
    from minireason.toy import PretrainConfig, pretrain

    tutor = LabTutor(long_sum=0.05, guess=0.3, guess_right=0.5, reflect=0.3, reflect_fix=0.1)
    pc = PretrainConfig(steps=3, batch_size=8, warmup=1, hidden_size=24, layers=1, context=384)
    summary = pretrain(tutor, pc, tmp_path / "m", "m", progress=False, device="cpu")
    assert summary["steps"] == 3 and summary["loss_tokens"] > 0
    assert LabTutor.from_model(str(tmp_path / "m")) == tutor  # the knobs round-trip through config.json
    assert model_hints(tmp_path / "m")["max_new_tokens"] == 240  # room for reflections, within 384 positions
    assert load_pretrained(tmp_path / "m").config.max_position_embeddings == 384


def test_long_sum_stated_right_reads_the_last_five_digit_addition_only():
    base = "7*9=63,4*9=36+6=42,3*9=27+4=31:3123;7*2=14,4*2=8+1=9,3*2=6:694;"
    assert long_sum_stated_right(base + "3123+6940=10063 \\boxed{10063}") is True  # 347 * 29, hand-checked
    assert long_sum_stated_right(base + "3123+6940=10073 \\boxed{10073}") is False
    reflected = base + "3123+6940=10073 wait, let me recalculate: 3123+6940=10063 \\boxed{10063}"
    assert long_sum_stated_right(reflected) is True  # the recalculated addition counts
    assert long_sum_stated_right("6*6=36,9*6=59+3=62:626;626+3850=4476 \\boxed{4476}") is None  # four digits
    assert long_sum_stated_right("7*8=56 \\boxed{56}") is None
    # a wrong addend does not matter: 3124 + 6940 is stated right
    assert long_sum_stated_right(base.replace(":3123", ":3124") + "3124+6940=10064 \\boxed{10064}") is True
    # against the tutor: with every other step clean, a long-sum trace is right exactly when its sum is
    rare = LabTutor(long_sum=0.05, slip=0, hard_slip=0, carry_slip=0, final_slip=0, partial_facts=(), gap_facts=())
    problems = toy_split("test")
    traces = [(p, rare.solve(p, random.Random(i))) for i, p in enumerate(problems * 4)]
    stated = [(long_sum_stated_right(t), is_correct(t, p.answer)) for p, t in traces if needs_long_sum(p)]
    assert all(s == right for s, right in stated) and 0 < sum(s for s, _ in stated) < len(stated) / 4
    assert all(long_sum_stated_right(t) is None for p, t in traces if not needs_long_sum(p))


def test_exposure_counts_the_groups_that_need_each_rare_fact_and_those_with_a_right_sample():
    from minireason.lab_world import exposure
    from minireason.tasks import Problem, solution_facts

    def problem(pid, a, b):
        return Problem(pid, f"What is {a} * {b}?", str(a * b), None, solution_facts(a, b, "*"), a, b, "*")

    # 87 * 6 needs 6*7 (partial) and 6*8; 9 * 6 needs 6*9 (a gap); 349 * 29 needs a five-digit sum, 2*9, 3*9, 4*9
    problems = [problem("a", 87, 6), problem("b", 9, 6), problem("c", 349, 29)]
    rows = [{"questions": ["a", "b"], "right_per_group": [3, 0]}, {"questions": ["a", "c"], "right_per_group": [0, 1]}]
    tutor = LabTutor(gap_facts=("6*9",), partial_facts=(("6*7", 0.2), ("2*9", 0.3)), long_sum=0.05)
    got = exposure(rows, problems, tutor, group_size=4)
    assert got["6*7"] == {"rollouts": 8, "groups": 2, "share_with_right": 0.5}  # drawn twice, right once
    assert got["6*9"] == {"rollouts": 4, "groups": 1, "share_with_right": 0.0}
    assert got["2*9"] == got["5-digit sum"] == {"rollouts": 4, "groups": 1, "share_with_right": 1.0}
    assert "5-digit sum" not in exposure(rows, problems, LabTutor(long_sum=1.0), group_size=4)


def test_locality_keeps_every_other_question_and_the_given_share_of_those_needing_rare_knowledge():
    from minireason.lab_world import local_rl_questions

    tutor = LabTutor.from_model("toy-base")  # partial facts, gap facts and rare long sums
    train = toy_split("train")
    groups = {p.id: knowledge_group(p, tutor) for p in train}
    rare = [p for p in train if groups[p.id] in ("partial-fact", "long-sum")]
    kept = local_rl_questions(train, tutor, keep=0.02)
    assert [p.id for p in kept] == [p.id for p in train if p in kept]  # the split's order
    assert {p.id for p in train if groups[p.id] in ("other", "hard-gap")} <= {p.id for p in kept}
    assert sum(groups[p.id] in ("partial-fact", "long-sum") for p in kept) == round(0.02 * len(rare))
    assert kept == local_rl_questions(train, tutor, keep=0.02)  # a fixed draw
    assert local_rl_questions(train, tutor, keep=1.0) == train
    assert all(groups[p.id] in ("other", "hard-gap") for p in local_rl_questions(train, tutor, keep=0.0))


def test_products_stated_reads_every_single_digit_product_and_whether_it_is_right():
    from minireason.lab_world import products_stated

    trace = "7*4=29 wait, let me recalculate: 7*4=28,3*4=12+2=14:148 \\boxed{148}"  # 37 * 4, a repaired slip
    assert products_stated(trace) == [("4*7", False), ("4*7", True), ("3*4", True)]
    assert products_stated("12+34=46 \\boxed{46}") == []
