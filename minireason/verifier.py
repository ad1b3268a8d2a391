"""Graders: is a response's final answer equal to the gold answer?

Two graders share one small interface (`Grader`):

- `exact` (built in, no dependencies, the toy world's default). The final answer is the content of
  the response's last `\\boxed{...}`, and only if that box closes: no box, or an unclosed last box,
  means no answer (there is no last-number fallback: "AZYUK2A" must not pass for 2, nor a solution
  cut off mid-sentence). Both sides are normalised to a canonical form (`canonical`) and compared:
  - numbers compare exactly as rationals: integers, decimals, thousands separators written without
    spaces ("1,234", "1{,}234", "1,\\!234"), fractions in every LaTeX spelling ("\\frac{4}{3}",
    "\\dfrac43", "\\frac 59", "\\frac9{19}", "4/3"), mixed numbers ("2\\frac{1}{2}"), percentages,
    degrees, dollars, a leading "x =", and trailing units in \\text{}, \\textnormal{} or \\mbox{};
  - tuples, intervals and matrices compare element by element; sets and bare comma lists ignore order;
  - anything else compares as a normalised string (LaTeX spacing, \\left/\\right, \\text{} removed),
    so an exact copy of "3\\sqrt{13}" is equal, while "32, 349" (a list) is not 32349 (a number).
- `math-verify` (the paper's grader, the optional PyPI package `math-verify`): the same last closed
  box, compared symbolically by `math_verify.verify`.

`get_grader("auto", real_data)` picks math-verify for real data when it is installed, else exact.
Every function here runs in time linear in the input and never raises on any response.

Reward (the paper's RLVR reward, §3): +1 when correct, -1 otherwise.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Protocol

try:  # optional: the paper's grader
    import math_verify
except ImportError:  # pragma: no cover - depends on the environment
    math_verify = None

MAX_ANSWER_CHARS = 1000  # a longer "final answer" is no answer we can grade
MAX_NUMBER_CHARS = 64  # a longer digit string is not read as a number
BOXES = ("\\boxed", "\\fbox")


# ----------------------------------------------------------------------------------------------
# Extraction


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), or None when there is none or it never closes."""
    start = max(text.rfind(b) for b in BOXES)
    if start < 0:
        return None
    i = start + (len("\\boxed") if text.startswith("\\boxed", start) else len("\\fbox"))
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None  # the last box never closes: no answer, never an earlier box


def extract_answer(text: str) -> str | None:
    """The response's final answer as written (the last closed box), or None."""
    boxed = extract_boxed(text)
    return boxed if boxed is not None and len(boxed) <= MAX_ANSWER_CHARS else None


# ----------------------------------------------------------------------------------------------
# Normalisation (the exact grader)

_DROP = ("\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\ ", "~", "\\$", "$",
         "^\\circ", "^{\\circ}", "\\circ", "°", "\\%", "%")
_UNITS = re.compile(r"\\(?:text|textnormal|mbox|mathrm)\{[^{}]*\}(?:\^\{?\d\}?)?$")
_WRAPPERS = re.compile(r"\\(?:text|textnormal|textbf|mbox|mathrm|mathbf|boxed)\{([^{}]*)\}")
_LEADING_VARIABLE = re.compile(r"^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?(?:=|\\in(?![a-zA-Z]))")
_ARG = r"(\{[^{}]*\}|\\[a-zA-Z]+|[^{}\\\s])"  # one argument: {...}, a command, or one character
_FRAC = re.compile(r"\\frac\s*" + _ARG + r"\s*" + _ARG)
_SQRT = re.compile(r"\\sqrt\s*" + _ARG)
_DECIMAL = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(rf"^{_DECIMAL}$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SLASH = re.compile(rf"^({_DECIMAL})/({_DECIMAL})$")
_TEX_FRAC = re.compile(rf"^\\frac\{{(-?{_DECIMAL})\}}\{{(-?{_DECIMAL})\}}$")
_MIXED = re.compile(r"^(\d+)\\frac\{(\d+)\}\{(\d+)\}$")
_SCIENTIFIC = re.compile(rf"^({_DECIMAL})(?:\\times|\\cdot)10\^\{{?(-?\d{{1,3}})\}}?$")
_MATRIX = re.compile(r"^\\begin\{([pbvB]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$")
_OPEN, _CLOSE = "([⦃{", ")]⦄}"
_ROW, _LIST_COMMA = "¶", "⸴"  # a matrix row break (\\), and a comma followed by a space


def _arg(a: str) -> str:
    return a if a.startswith("{") else "{" + a + "}"


def clean(answer: str) -> str:
    """LaTeX noise removed: spacing, dollars, degrees, percent, units, \\left/\\right, a leading 'x ='."""
    s = answer.strip().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("−", "-")
    s = s.replace("\\left", "").replace("\\right", "").replace("{,}", ",").replace("\\{", "⦃").replace("\\}", "⦄")
    s = re.sub(r",\s+", _LIST_COMMA, s.replace("\\\\", _ROW))  # "32, 349" is a list, "32,349" a number
    for token in _DROP:
        s = s.replace(token, "")
    s = s.strip()
    while (m := _UNITS.search(s)) and s[: m.start()].strip():  # "5\text{ cm}^2" -> "5"
        s = s[: m.start()].strip()
    for _ in range(3):  # \text{(C)} -> (C), nested wrappers one level at a time
        s = _WRAPPERS.sub(r"\1", s)
    s = re.sub(r"\s+", "", s)
    if s.count("=") <= 1 and (m := _LEADING_VARIABLE.match(s)) and s[m.end():]:
        s = s[m.end():]
    s = _FRAC.sub(lambda m: "\\frac" + _arg(m.group(1)) + _arg(m.group(2)), s)
    s = _SQRT.sub(lambda m: "\\sqrt" + _arg(m.group(1)), s)
    s = s.rstrip(".")
    while len(s) > 1 and s[0] == "{" and _matching(s, 0) == len(s) - 1:
        s = s[1:-1]
    if re.fullmatch(r"\(?([A-Z])\)?", s):  # a multiple-choice letter: "(C)" = "C"
        s = s.strip("()")
    return s


def _matching(s: str, i: int) -> int:
    """Index of the bracket closing the one at s[i] (any bracket kind counts for depth), or -1."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] in _OPEN:
            depth += 1
        elif s[j] in _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _split_top(s: str, sep: str) -> list[str]:
    """s split at the `sep` characters that no bracket or brace encloses."""
    parts, depth, start = [], 0, 0
    for j, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif (ch == sep or sep == "," and ch == _LIST_COMMA) and depth == 0:
            parts.append(s[start:j])
            start = j + 1
    return parts + [s[start:]]


def parse_number(s: str) -> Fraction | None:
    """An exact rational from a cleaned answer, or None if it is not a number."""
    if not s or len(s) > MAX_NUMBER_CHARS:
        return None
    sign = -1 if s[0] == "-" else 1
    body = s[1:] if s[0] in "+-" else s
    try:
        if _PLAIN.match(body):
            return sign * Fraction(body)
        if _THOUSANDS.match(body):
            return sign * Fraction(body.replace(",", ""))
        if m := _SLASH.match(body):
            return sign * Fraction(m.group(1)) / Fraction(m.group(2))
        if m := _TEX_FRAC.match(body):
            return sign * Fraction(m.group(1)) / Fraction(m.group(2))
        if m := _MIXED.match(body):
            return sign * (int(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3))))
        if m := _SCIENTIFIC.match(body):
            return sign * Fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    except ZeroDivisionError:
        return None
    return None


@lru_cache(maxsize=65536)
def canonical(answer: str | None) -> str | None:
    """A canonical string: two answers the exact grader calls equal have the same one. None: no answer."""
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return None
    s = clean(answer)
    return _canonical(s) if s else None


def _canonical(s: str) -> str:
    if (m := _MATRIX.match(s)) is not None:
        rows = [r for r in m.group(2).split(_ROW) if r]
        return "M[" + ";".join(",".join(_canonical(c) for c in r.split("&")) for r in rows) + "]"
    if len(s) > 1 and s[0] in "([⦃" and s[-1] in ")]⦄" and _matching(s, 0) == len(s) - 1:
        if len(items := _split_top(s[1:-1], ",")) > 1:
            items = [_canonical(x) for x in items]
            if s[0] == "⦃":  # a set: order does not matter
                return "{" + ",".join(sorted(items)) + "}"
            return s[0] + ",".join(items) + s[-1]
    number = parse_number(s)
    if number is not None:
        return str(number)
    if len(items := _split_top(s, ",")) > 1 and all(items):  # "1, 2": a list of solutions, any order
        return "{" + ",".join(sorted(_canonical(x) for x in items)) + "}"
    return s


# ----------------------------------------------------------------------------------------------
# Graders


class Grader(Protocol):
    name: str

    def gradable(self, gold: str) -> bool:
        """Can this gold answer ever be matched?"""

    def equal(self, answer: str | None, gold: str) -> bool:
        """Is the extracted answer equal to the gold answer?"""

    def same(self, a: str, b: str) -> bool:
        """Do two extracted answers say the same thing? (maj@k and answer entropy group by this)"""


class ExactGrader:
    """The built-in grader: canonical forms compared as strings (see the module docstring)."""

    name = "exact"

    def gradable(self, gold: str) -> bool:
        return canonical(str(gold)) is not None

    def equal(self, answer: str | None, gold: str) -> bool:
        c = canonical(answer)
        return c is not None and c == canonical(str(gold))

    def same(self, a: str, b: str) -> bool:
        return canonical(a) == canonical(b)


class MathVerifyGrader:
    """The paper's grader: math_verify.verify(parse(gold), parse(answer)), each wrapped in \\boxed{}."""

    name = "math-verify"

    def __init__(self):
        if math_verify is None:
            raise ValueError("--grader math-verify needs the optional package: pip install math-verify")

    @staticmethod
    @lru_cache(maxsize=65536)
    def _parse(answer: str):
        try:
            return math_verify.parse("\\boxed{" + answer + "}", parsing_timeout=5)
        except Exception:  # noqa: BLE001 - a grader never stops a run
            return []

    def gradable(self, gold: str) -> bool:
        return bool(self._parse(str(gold)))

    def equal(self, answer: str | None, gold: str) -> bool:
        if answer is None:
            return False
        parsed_gold, parsed = self._parse(str(gold)), self._parse(answer)
        if not parsed_gold or not parsed:
            return False
        try:
            return bool(math_verify.verify(parsed_gold, parsed, timeout_seconds=5))
        except Exception:  # noqa: BLE001
            return False

    def same(self, a: str, b: str) -> bool:
        return a == b or self.equal(a, b)


GRADERS = ("auto", "exact", "math-verify")


def get_grader(name: str, real_data: bool) -> Grader:
    """`exact`, `math-verify`, or `auto`: math-verify for real data when it is installed, else exact."""
    if name == "auto":
        name = "math-verify" if real_data and math_verify is not None else "exact"
    if name == "exact":
        return ExactGrader()
    if name == "math-verify":
        return MathVerifyGrader()
    raise ValueError(f"unknown grader {name!r}; expected one of {', '.join(GRADERS)}")


def grade(response: str, gold: str, grader: Grader | None = None) -> bool:
    """Is the response's final answer (its last closed box) equal to the gold answer?"""
    try:
        return (grader or ExactGrader()).equal(extract_answer(response), gold)
    except Exception:  # noqa: BLE001 - never let one odd response stop a run
        return False


def is_correct(response: str, answer: str) -> bool:
    """`grade` with the exact grader (the toy world's)."""
    return grade(response, answer)


def reward(correct: bool) -> float:
    """The paper's verifiable reward (§3, no format reward): +1 correct, -1 otherwise."""
    return 1.0 if correct else -1.0


def gold_report(golds: list[str], grader: Grader, examples: int = 3) -> str | None:
    """A warning naming how many gold answers the grader cannot parse (they cap pass@k), or None."""
    bad = [g for g in golds if not grader.gradable(g)]
    if not bad:
        return None
    shown = ", ".join(repr(g) for g in bad[:examples])
    return (f"warning: the {grader.name} grader cannot parse {len(bad)} of {len(golds)} gold answers "
            f"(e.g. {shown}); no response can be graded correct on them, so pass@k is capped at "
            f"{1 - len(bad) / len(golds):.3f}")
