"""The verifier: extract a response's final answer and compare it exactly with the ground truth.

Extraction follows the paper: the content of the last `\\boxed{...}` whose braces balance. When a
response has no such box, we fall back to the last number written in it (a documented fallback; the
paper passes the whole response to math_verify, which does much the same for numeric answers).

Comparison is exact, as rationals (`fractions.Fraction`): "1,234" = "1234", "-0" = "0",
"3/6" = "1/2" = "0.5" = "\\frac{1}{2}", spaces and `$` ignored. Anything that is not a plain number
is wrong. Every function here runs in time linear in the input and never raises on any string.

Reward: +1 when correct, -1 otherwise (the paper's RLVR reward); `reward(..., wrong=0.0)` gives 1/0.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_ANSWER_CHARS = 64  # longer "answers" are not numbers we compare (and would be slow to parse)
BOX = "\\boxed{"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_FRAC = re.compile(r"^(-?)\\d?frac\{(-?\d+)\}\{(-?\d+)\}$")


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` with balanced braces, or None."""
    if BOX not in text:
        return None
    # One pass: match every "{" with its "}" (a stack), so each box's end is known in O(1).
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            close_of[stack.pop()] = i
    start = text.rfind(BOX)
    while start != -1:
        open_brace = start + len(BOX) - 1
        if open_brace in close_of:
            return text[open_brace + 1 : close_of[open_brace]]
        start = text.rfind(BOX, 0, start)
    return None


def extract_answer(text: str) -> str | None:
    """The boxed answer, else the last number in the text (fallback), else None."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    last = None
    for last in _NUMBER.finditer(text[-10_000:]):  # the fallback only looks at the end of long texts
        pass
    return last.group(0) if last else None


def parse_number(s: str) -> Fraction | None:
    """An exact rational from an answer string, or None if it is not a plain number."""
    s = s.strip().strip("$").replace(" ", "").replace("\\!", "").replace("{,}", ",")
    if not s or len(s) > MAX_ANSWER_CHARS:
        return None
    if s.startswith("+"):
        s = s[1:]
    s = s.rstrip(".")
    m = _FRAC.match(s)
    if m:
        sign, num, den = m.groups()
        return None if int(den) == 0 else Fraction(int(num), int(den)) * (-1 if sign else 1)
    if "," in s:
        if not _THOUSANDS.match(s):
            return None
        s = s.replace(",", "")
    try:
        if "/" in s:
            num, den = s.split("/")
            if not re.fullmatch(r"-?\d+", num) or not re.fullmatch(r"\d+", den) or int(den) == 0:
                return None
            return Fraction(int(num), int(den))
        if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", s):
            return None
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def is_correct(response: str, answer: str) -> bool:
    """Whether the response's final answer equals `answer` exactly (as rationals)."""
    try:
        predicted = extract_answer(response)
        truth = parse_number(str(answer))
        return predicted is not None and truth is not None and parse_number(predicted) == truth
    except Exception:  # never let one odd response stop a run
        return False


def reward(response: str, answer: str, correct: float = 1.0, wrong: float = -1.0) -> float:
    """The paper's verifiable reward: +1 correct, -1 otherwise."""
    return correct if is_correct(response, answer) else wrong
