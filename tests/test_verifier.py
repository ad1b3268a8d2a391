"""Graders: a hand-written MATH-style case set, the extraction rules, math-verify, and fuzzing."""

import time
from decimal import Decimal, DecimalException, localcontext
from math import isqrt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader_cases import EQUAL, RESPONSES, WRONG
from minireason.answers import canonical, clean, evaluate, exact_value, parse_number
from minireason.graders import get_grader, optional_math_verify
from minireason.verifier import ExactGrader, extract_answer, extract_boxed, gold_report, grade, is_correct

EXACT = ExactGrader()
math_verify = optional_math_verify()
needs_math_verify = pytest.mark.skipif(math_verify is None, reason="math-verify is not installed")


def test_the_case_set_is_large_enough():
    assert len(EQUAL) + len(WRONG) + len(RESPONSES) >= 120


@pytest.mark.parametrize("answer,gold", EQUAL)
def test_exact_grader_equal_forms(answer, gold):
    assert EXACT.equal(answer, gold), (canonical(answer), canonical(gold))
    assert EXACT.equal(gold, answer)  # symmetric


@pytest.mark.parametrize("answer,gold", WRONG)
def test_exact_grader_has_no_false_positives(answer, gold):
    assert not EXACT.equal(answer, gold), (canonical(answer), canonical(gold))


@pytest.mark.parametrize("response,gold,ok", RESPONSES)
def test_responses(response, gold, ok):
    assert grade(response, gold) is ok
    assert is_correct(response, gold) is ok


@pytest.mark.parametrize("text,boxed", [
    (r"so \boxed{42}", "42"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),  # nested braces
    (r"first \boxed{1} then \boxed{2}.", "2"),
    (r"\boxed{3} \boxed{4", None),  # the last box is unclosed: no answer, not the earlier box
    (r"no box at all 12", None),
    (r"\boxed{}", ""),
    (r"}{ \boxed{{5}} }", "{5}"),
    (r"\boxed", None),
])
def test_extract_boxed(text, boxed):
    assert extract_boxed(text) == boxed


def test_extraction_regressions():
    assert not grade(r"the answer is \boxed{1", "1")  # an unclosed last box is not graded by an earlier one
    assert not grade(r"\boxed{2} hmm \boxed{1", "2")
    assert not grade("AZYUK2A", "2")  # no last-number fallback
    assert not grade("Adding the two parts gives 18 and then we divide by", "18")
    assert not grade(r"\boxed{32, 349}", "32349")


def test_parse_number():
    assert parse_number("1,234") == 1234 and parse_number("-3/6") == parse_number("-0.5")
    assert parse_number("9" * 5000) is None and parse_number("1e5") is None and parse_number("x") is None
    assert parse_number("0.\\overline{3}") == parse_number("1/3") and parse_number("0.\\overline{9}") == 1
    assert parse_number("-1.2\\overline{3}") == parse_number("-111/90")
    assert parse_number(".\\overline{09}") == parse_number("1/11")


with localcontext() as _ctx:
    _ctx.prec = 60  # pi to 50 digits; the letters x and y stand for ln 2 and ln 3 (transcendental)
    SYMBOLS = {"π": Decimal("3.14159265358979323846264338327950288419716939937510"), "x": Decimal(2).ln(),
               "y": Decimal(3).ln()}
leaves = st.one_of(st.integers(0, 12).map(lambda n: ("int", n)), st.integers(0, 30).map(lambda n: ("sqrt", n)),
                   st.just(("pi",)), st.sampled_from("xy").map(lambda letter: ("letter", letter)))
expressions = st.recursive(  # powers of leaves, and divisions by two-leaf sums (rationalised by a conjugate)
    st.one_of(leaves, st.tuples(st.just("^"), leaves, st.integers(-2, 3)),
              st.tuples(st.just("/"), leaves, st.tuples(st.sampled_from("+-"), leaves, leaves))),
    lambda inner: st.tuples(st.sampled_from("+-*/"), inner, inner), max_leaves=6)


def spell(tree, style: int) -> str:
    """LaTeX for an expression tree, every operand in parentheses; style 0 and style 1 write each operation
    differently (\\frac or /, \\cdot or side by side, \\sqrt{2} or \\sqrt2)."""
    if tree[0] == "int":
        return str(tree[1])
    if tree[0] == "sqrt":
        return f"\\sqrt{{{tree[1]}}}" if style == 0 or tree[1] > 9 else f"\\sqrt{tree[1]}"
    if tree[0] in ("pi", "letter"):
        return "\\pi" if tree[0] == "pi" else tree[1]
    a, b = spell(tree[1], style), spell(tree[2], style) if tree[0] != "^" else str(tree[2])
    return {"+": f"({a})+({b})", "-": f"({a})-({b})", "^": f"({a})^{{{b}}}",
            "*": f"({a})\\cdot({b})" if style == 0 else f"({a})({b})",
            "/": f"\\frac{{{a}}}{{{b}}}" if style == 0 else f"({a})/({b})"}[tree[0]]


def commuted(tree):
    """The same value written another way: every sum and product with its operands swapped."""
    if tree[0] in ("int", "sqrt", "pi", "letter", "^"):
        return tree
    a, b = commuted(tree[1]), commuted(tree[2])
    return (tree[0], b, a) if tree[0] in "+*" else (tree[0], a, b)


def decimal_value(tree) -> Decimal:
    """The reference: the same tree in 60-digit decimal arithmetic."""
    if tree[0] in ("int", "sqrt"):
        return Decimal(tree[1]) if tree[0] == "int" else Decimal(tree[1]).sqrt()
    if tree[0] in ("pi", "letter"):
        return SYMBOLS["π" if tree[0] == "pi" else tree[1]]
    a = decimal_value(tree[1])
    if tree[0] == "^":
        return a ** tree[2]
    b = decimal_value(tree[2])
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else Decimal("NaN")}[tree[0]]


def value_decimal(value: dict) -> Decimal:
    """The decimal of an exact value {(n, monomial): q} (the sum of q sqrt(n) monomial), its terms checked to be
    in normal form: n square-free, q nonzero, each symbol once in a monomial with a nonzero exponent."""
    assert all(q and all(n % (d * d) for d in range(2, isqrt(n) + 1)) for (n, _), q in value.items())
    assert all(len({s for s, _ in m}) == len(m) and all(e for _, e in m) for _, m in value)
    total = Decimal(0)
    for (n, monomial), q in value.items():
        term = Decimal(q.numerator) / Decimal(q.denominator) * Decimal(n).sqrt()
        for symbol, exponent in monomial:
            term *= SYMBOLS[symbol] ** exponent
        total += term
    return total


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("1e-40") * max(1, abs(a), abs(b))


@settings(max_examples=300, deadline=None)
@given(expressions, expressions)
def test_exact_values_against_decimal_arithmetic(left, right):
    """Each expression's exact value, read back, is its 60-digit decimal (pi to 50 digits, x = ln 2, y = ln 3); its
    two spellings and its commuted form give the same value; two expressions' values are equal exactly when their
    decimals are; the grader uses a value only when it has a root, pi or a letter."""
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            decimals = decimal_value(left), decimal_value(right)
        except DecimalException:  # 0^-1, 0^0
            return
        values = []
        for tree, decimal in zip((left, right), decimals):
            value = evaluate(clean(spell(tree, 0)))
            assert value == evaluate(clean(spell(tree, 1))) == evaluate(clean(spell(commuted(tree), 1)))
            assert value is None or close(value_decimal(value), decimal), (spell(tree, 0), value, decimal)
            rational = value is not None and set(value) <= {(1, ())}
            assert (exact_value(clean(spell(tree, 0))) is None) == (value is None or rational)
            values.append(value)
        if None not in values and not any(d.is_nan() for d in decimals):
            assert (values[0] == values[1]) == close(*decimals), (values, decimals)


@pytest.mark.parametrize("answer", [
    "2\\times3",  # "2 x 3" may be a size, not 6
    "2^10",  # TeX sets this as 2^1 followed by 0
    "1/2\\pi", "\\sqrt{2}/2\\pi",  # pi/2 or 1/(2 pi)?
    "2\\frac12\\pi", "2\\frac{1}{2}\\sqrt{3}",  # a mixed number, or a product?
    "\\sqrt{2}3", "\\sqrt{-4}", "\\sqrt[3]{8}", "\\sqrt{\\pi}", "\\sqrt{1+\\sqrt{2}}", "0^0", "0^{-1}", "\\frac{1}{0}",
    "\\frac{1}{\\sqrt{2}+\\sqrt{3}}", "\\frac{1}{x+1}", "1,000\\sqrt{2}", "3.\\overline{}", "\\overline{3}",
    "odd", "2xy", "f(x)", "2x(x+1)", "x_1", "f'", "\\sqrt{x}", "\\alpha", "x^{1/2}",  # words, functions, ...
    "2^{65}", "(1+\\pi)^{16}", "\\sqrt{1000000000001}", "(" * 40 + "1" + ")" * 40, "9" * 65,
])
def test_exact_values_refuse_guesses_and_bound_their_work(answer):
    assert evaluate(clean(answer)) is None


def test_get_grader_choices():
    assert get_grader("exact", real_data=True).name == "exact"
    assert get_grader("auto", real_data=False).name == "exact"
    assert get_grader("auto", real_data=True).name == ("math-verify" if math_verify else "exact")
    with pytest.raises(ValueError, match="unknown grader"):
        get_grader("sympy", real_data=True)


def test_gold_report_names_unparseable_golds():
    assert gold_report(["1", r"\frac12"], EXACT) is None
    message = gold_report(["1", "", "   "], EXACT)
    assert "cannot parse 2 of 3 gold answers" in message and "capped at 0.333" in message


MV_RESPONSES = [
    (r"The answer is $\frac{1}{2}$.", "0.5"), (r"so $x = 5$", "5"), (r"Final answer: \boxed{(3,2)}", "(3, 2)"),
    (r"\boxed{1}, \boxed{2}, \boxed{3}", "1,2,3"), (r"We get $\boxed{\frac{\sqrt{2}}{2}}$", r"\frac{1}{\sqrt2}"),
    (r"Thus the total is $12$ dollars.", "12"), (r"\boxed{7}", "8"), ("no answer here", "3"),
]


@needs_math_verify
def test_math_verify_grader_follows_the_library_on_whole_responses():
    """The library alone, used as its README says, decides every response whose last box closes; where it
    finds nothing, our last box is read; a response whose last box never closes has no answer."""
    mv = get_grader("math-verify", real_data=True)
    for response, gold in [(r, g) for r, g, _ in RESPONSES] + MV_RESPONSES:
        parsed = math_verify.parse(response)
        if extract_boxed(response) is None and r"\boxed" in response:
            expected = False
        elif parsed:
            expected = math_verify.verify(math_verify.parse("\\boxed{" + gold + "}"), parsed)
        else:
            expected = EXACT.correct(response, gold)
        assert grade(response, gold, mv) is expected, (response, gold)
    assert math_verify.verify(math_verify.parse("\\boxed{3}"), math_verify.parse(r"\boxed{3} and finally \boxed{1"))
    assert not grade(r"\boxed{3} and finally \boxed{1", "3", mv)  # the library alone credits the earlier box
    assert grade(r"\boxed {5}", "5", mv) and grade(r"\fbox{5}", "5", mv)  # the library alone finds nothing
    assert mv.answer(r"so $\boxed{\frac{1}{2}}$") == r"\frac{1}{2}" and mv.answer(r"\boxed{1") is None


@needs_math_verify
def test_math_verify_forgets_a_timed_out_parse(monkeypatch):
    """math_verify returns an empty parse after its own timeout; a busy moment must not make the gold
    unreadable for the rest of the run."""
    mv = get_grader("math-verify", real_data=True)
    real, calls = math_verify.parse, []

    def times_out_twice(text, **kwargs):
        calls.append(text)
        return [] if len(calls) <= 2 else real(text, **kwargs)

    monkeypatch.setattr(math_verify, "parse", times_out_twice)
    assert not mv.equal("1/2", "0.5")  # the gold's two parses (boxed, then bare) timed out
    assert mv.equal("1/2", "0.5")  # asked again: parsed anew, not the remembered failure


@needs_math_verify
def test_math_verify_grader():
    mv = get_grader("math-verify", real_data=True)
    for answer, gold in [(r"\frac{1}{2}", "0.5"), ("1/2", r"\dfrac{1}{2}"), (r"3\sqrt{13}", r"3\sqrt{13}"),
                         (r"(3,\frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)"), (r"x = 5", "5"),
                         (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")]:
        assert mv.equal(answer, gold), (answer, gold)
    for answer, gold in [("0.51", "0.5"), (r"3\sqrt{14}", r"3\sqrt{13}"), ("-7", "7")]:
        assert not mv.equal(answer, gold)
    assert not mv.equal(None, "1") and mv.gradable("1") and not mv.gradable("")


adversarial = st.one_of(
    st.text(max_size=2000),
    st.text(alphabet="\\boxed{}0123456789,./-fractx=() ", max_size=3000),
    st.lists(st.sampled_from([r"\boxed{", "}", "{", "1", ",", "/", "-", r"\frac", " ", r"\text{", "(", "]", "\\\\",
                              r"\{", "x=", "&"]), max_size=2000).map("".join),
    st.lists(st.sampled_from([r"\sqrt{", r"\sqrt[3]{", "}", "{", "(", ")", "99999999977", "7", ".", r"\overline{3}",
                              r"\pi", "x", "y", "^{64}", "^{-9}", "^2", "+", "-", r"\cdot", "*", "/", r"\frac{", "π"]),
             max_size=300).map(lambda tokens: r"\boxed{" + "".join(tokens) + "}"),  # the exact-value reader
)


@settings(max_examples=300, deadline=None)
@given(adversarial, st.text(max_size=30))
def test_never_raises_and_is_fast(text, answer):
    t = time.perf_counter()
    assert grade(text, answer) in (True, False)
    canonical(text[:1000])
    extract_answer(text)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("text", [
    r"\boxed{" * 20_000,  # thousands of unbalanced boxes
    (r"\boxed{1}" * 20_000),  # thousands of boxes
    "{" * 100_000 + "}" * 100_000,
    "9" * 1_000_000,  # one huge number, no box
    "é" * 200_000 + r"\boxed{٣}",
    r"\boxed{" + "{" * 499 + "}" * 499 + "}",
    r"\boxed{" + r"5\text{ cm}" * 90 + "}",
])
def test_pathological_inputs_bounded(text):
    t = time.perf_counter()
    grade(text, "1")
    assert time.perf_counter() - t < 2.0


def test_at_most_sixteen_final_boxes_are_joined_repeats_included():
    """A bound on the boxes looked at (not on the distinct ones) keeps extraction linear in the response."""
    many = ", ".join(f"\\boxed{{{i}}}" for i in range(20))
    assert extract_answer(many) == ", ".join(str(i) for i in range(4, 20))
    assert extract_answer("\\boxed{7}, " * 30 + "\\boxed{1}, \\boxed{2}") == "7, 1, 2"  # 14 sevens seen, one kept
