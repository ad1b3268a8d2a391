"""Arithmetic tasks: determinism, disjoint splits, correct answers, JSONL round trip and errors."""

import json
import random

import pytest

from minireason.tasks import (
    LEVELS,
    fresh_problems,
    load_jsonl,
    load_problems,
    make_problem,
    save_jsonl,
    solution_facts,
    toy_split,
)

def test_splits_are_deterministic_and_disjoint():
    test, train = toy_split("test"), toy_split("train")
    assert len(test) == 600 and len(train) == 5000
    assert [p.question for p in test] == [p.question for p in toy_split("test")]
    assert not {p.question for p in test} & {p.question for p in train}
    assert len({p.question for p in train}) == len(train)
    assert {p.level for p in test} == set(LEVELS)
    assert all(sum(p.level == lvl for p in test) == 100 for lvl in LEVELS)
    fresh = fresh_problems(2000, seed=5)
    assert not {p.question for p in fresh} & {p.question for p in test}
    assert [p.question for p in fresh] == [p.question for p in fresh_problems(2000, seed=5)]
    assert [p.question for p in fresh] != [p.question for p in fresh_problems(2000, seed=6)]


def test_answers_are_right_by_pythons_arithmetic():
    for p in toy_split("test") + toy_split("train")[:500]:
        a, op, b = p.question.removeprefix("What is ").removesuffix("?").split()
        assert p.answer == str(int(a) + int(b) if op == "+" else int(a) * int(b))
        assert (p.a, p.b, p.op) == (int(a), int(b), op)


def test_facts_by_hand():
    assert solution_facts(347, 29, "*") == sorted({"2*7", "4*9", "3*9", "7*9", "2*4", "2*3"})
    assert solution_facts(59, 63, "+") == ["3+9", "5+6"]
    p = make_problem("mul2x1", random.Random(0))
    assert p.level == "mul2x1" and 10 <= p.a <= 99 and 2 <= p.b <= 9
    with pytest.raises(ValueError, match="unknown level 'div'"):
        make_problem("div", random.Random(0))


def test_jsonl_round_trip(tmp_path):
    problems = toy_split("test")[:20]
    save_jsonl(problems, tmp_path / "p.jsonl")
    assert load_jsonl(tmp_path / "p.jsonl") == problems
    assert load_problems(str(tmp_path / "p.jsonl")) == problems


def test_jsonl_own_data_minimal_fields(tmp_path):
    f = tmp_path / "gsm.jsonl"
    f.write_text(
        json.dumps({"question": "Tom has 3 apples...", "answer": 5})
        + "\n\n"
        + json.dumps({"question": "q2", "answer": "1/2", "level": "hard"})
        + "\n"
    )
    a, b = load_jsonl(f)
    assert (a.question, a.answer, a.id, a.level) == ("Tom has 3 apples...", "5", "gsm-0", None)
    assert (b.answer, b.level) == ("1/2", "hard")


@pytest.mark.parametrize("lines,message", [
    (['{"question": "q", "answer": 1}', '{"question": "q2", "answer": 2'], r"bad\.jsonl:2: not valid JSON"),
    (['{"question": "q"}'], r"bad\.jsonl:1: missing required key 'answer'"),
    (['[1, 2]'], r"bad\.jsonl:1: expected a JSON object"),
    (['{"question": "q", "answer": [1]}'], r"bad\.jsonl:1: 'answer' must be a string or a number"),
    ([''], r"bad\.jsonl: no problems"),
])
def test_jsonl_malformed_lines_name_the_line(tmp_path, lines, message):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        load_jsonl(f)


def test_missing_data_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_problems(str(tmp_path / "nope.jsonl"))
