"""Verifier: hand cases and property-based fuzzing (never raises, stays fast)."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minireason.verifier import extract_answer, extract_boxed, is_correct, parse_number, reward


@pytest.mark.parametrize("text,boxed", [
    (r"so \boxed{42}", "42"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),  # nested braces
    (r"first \boxed{1} then \boxed{2}.", "2"),  # two boxes: the last
    (r"\boxed{7} and some text after the box", "7"),
    (r"\boxed{1,234}", "1,234"),
    (r"\boxed{3} \boxed{4", "3"),  # last box unbalanced: the last balanced one
    (r"no box at all 12", None),
    (r"\boxed{}", ""),
    (r"}{ \boxed{{5}} }", "{5}"),
])
def test_extract_boxed(text, boxed):
    assert extract_boxed(text) == boxed


@pytest.mark.parametrize("response,answer,ok", [
    (r"\boxed{42}", "42", True),
    (r"\boxed{ 42 }", "42", True),
    (r"\boxed{1,234}", "1234", True),  # thousands separators
    (r"\boxed{1,2345}", "12345", False),  # not a thousands grouping
    (r"\boxed{-0}", "0", True),
    (r"\boxed{3/6}", "1/2", True),
    (r"\boxed{\frac{3}{6}}", "0.5", True),
    (r"\boxed{0.50}", "1/2", True),
    (r"\boxed{-7}", "7", False),
    (r"\boxed{+7}", "7", True),
    (r"\boxed{$7$}", "7", True),
    (r"\boxed{1} wait, \boxed{2}", "1", False),  # two boxes: the last counts
    (r"\boxed{9} and then more words 10", "9", True),  # text after the box is ignored
    (r"the answer is 17.", "17", True),  # no box: last number
    (r"the answer is 1,000 apples", "1000", True),
    (r"I don't know", "3", False),
    (r"\boxed{x+1}", "1", False),
    (r"\boxed{1/0}", "0", False),
    (r"\boxed{12}", "12.0", True),
    (r"\boxed{3.}", "3", True),
])
def test_is_correct(response, answer, ok):
    assert is_correct(response, answer) is ok
    assert reward(response, answer) == (1.0 if ok else -1.0)
    assert reward(response, answer, wrong=0.0) == (1.0 if ok else 0.0)


def test_parse_number_rejects_huge_and_odd():
    assert parse_number("9" * 5000) is None
    assert parse_number("1e5") is None
    assert parse_number("١٢") is None or parse_number("١٢") == 12  # unicode digits: either refused or read right


adversarial = st.one_of(
    st.text(max_size=2000),
    st.text(alphabet="\\boxed{}0123456789,./-", max_size=3000),
    st.lists(st.sampled_from([r"\boxed{", "}", "{", "1", ",", "/", "-", "frac", " "]), max_size=2000).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(adversarial, st.text(max_size=30))
def test_never_raises_and_is_fast(text, answer):
    t = time.perf_counter()
    assert reward(text, answer) in (1.0, -1.0)
    extract_answer(text)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("text", [
    r"\boxed{" * 20_000,  # thousands of unbalanced boxes
    (r"\boxed{1}" * 20_000),  # thousands of boxes
    "{" * 100_000 + "}" * 100_000,
    "9" * 1_000_000,  # one huge number, no box
    "é" * 200_000 + r"\boxed{٣}",
])
def test_pathological_inputs_bounded(text):
    t = time.perf_counter()
    reward(text, "1")
    assert time.perf_counter() - t < 2.0
