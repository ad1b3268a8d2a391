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
  Recall rules on top, none of which may add a false positive: an answer named on one side only
  ("(p,q)=(3,2)", "f(x)=2x+3"), several final boxes in a row ("\\boxed{1}, \\boxed{2}") read as one list,
  lists joined by "and"/"or", "\\pm a" as the set {-a, a}, a percentage also equal to its decimal
  ("10\\%" = 0.1), units written as words ("5 cm"). Digits separated by a space are never glued together
  ("1 2" is not 12; "1 1/2" is the mixed number 3/2).
- `math-verify` (the paper's grader, the optional PyPI package `math-verify`): the library's own
  extraction from the whole response (its README's use: `verify(parse(gold), parse(response))`), with one
  rule on top: a response whose last box never closes (a truncated one) has no answer, where the library
  alone would credit an earlier box.

`get_grader("auto", real_data)` picks math-verify for real data when it is installed, else exact.
Every grader answers `correct(response, gold)` for a whole response (`grade` is the one call every reward,
pass@1 and stored sample goes through), `answer(response)` for the final answer as written (maj@k and
answer entropy group these with `same`), and `gradable(gold)`. The exact grader runs in time linear in
the input; no grader raises on any response.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Protocol


def optional_math_verify():
    """The optional math-verify package (the paper's grader), or None; imported on first use, since importing it
    takes about a second that toy runs never need."""
    try:
        import math_verify
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return math_verify


MAX_ANSWER_CHARS = 1000  # a longer "final answer" is no answer we can grade
MAX_NUMBER_CHARS = 64  # a longer digit string is not read as a number
BOXES = ("\\boxed", "\\fbox")


# ----------------------------------------------------------------------------------------------
# Extraction


def _last_box(text: str) -> tuple[str, int, int] | None:
    """(content, start, end) of the last `\\boxed{...}` (or `\\fbox{...}`), or None when there is none or it
    never closes."""
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
                return text[i + 1 : j], start, j + 1
    return None  # the last box never closes: no answer, never an earlier box


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), or None when there is none or it never closes."""
    box = _last_box(text)
    return box[0] if box else None


def last_box_unclosed(text: str) -> bool:
    """Whether the response's last box never closes (a truncated response: it has no answer)."""
    return max(text.rfind(b) for b in BOXES) >= 0 and _last_box(text) is None


# What may stand between final boxes that together hold one answer: "\\boxed{1}, \\boxed{2} and \\boxed{3}".
_BOX_SEPARATORS = re.compile(r"(?:\s|,|;|\$|\\text\{\s*(?:and|or)?\s*\}|\band\b|\bor\b)*")
MAX_JOINED_BOXES = 16


def extract_answer(text: str) -> str | None:
    """The response's final answer as written, or None: the last closed box, joined with the boxes right
    before it when only commas, "and" or "or" stand between them (one answer split over several boxes)."""
    box = _last_box(text)
    if box is None:
        return None
    boxes = [box[0]]
    for _ in range(MAX_JOINED_BOXES - 1):  # boxes looked at, repeats included: linear time
        window = max(0, box[1] - 200)  # separators are short: look back a bounded way (linear time)
        sep = next(m for m in _BOX_SEPARATORS.finditer(text, window, box[1]) if m.end() == box[1])
        box = _last_box(text[: sep.start()])
        if box is None or box[2] != sep.start():
            break
        if box[0] not in boxes:
            boxes.insert(0, box[0])
    answer = ", ".join(boxes)
    return answer if len(answer) <= MAX_ANSWER_CHARS else None


# ----------------------------------------------------------------------------------------------
# Normalisation (the exact grader)

_DROP = ("\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\ ", "~", "\\$", "$",
         "^\\circ", "^{\\circ}", "\\circ", "°", "\\%", "%")
_UNITS = re.compile(r"\\(?:text|textnormal|mbox|mathrm)\{[^{}]*\}(?:\^\{?\d\}?)?$")
_WRAPPERS = re.compile(r"\\(?:text|textnormal|textbf|mbox|mathrm|mathbf|boxed)\{([^{}]*)\}")
_NAME = r"(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?'*"  # x, x_1, \theta, f'
# An answer named on its left: "x =", "f(x) =", "(p, q) =", "x \in" (removed: it names, it does not answer).
_ARGS = rf"(?:{_NAME}|\d+)(?:[,⸴](?:{_NAME}|\d+))*"  # "x", "1, y"
_LEADING_NAME = re.compile(rf"^(?:{_NAME}(?:\({_ARGS}\))?|\({_NAME}(?:[,⸴]{_NAME})+\))(?:=|\\in(?![a-zA-Z]))")
# "1 and 2", "1 \text{ or } 2", "1, 2, and 3": a list of answers.
_CONNECTIVES = re.compile(r"\s*,?\s*(?:\\(?:text|textnormal|mbox)\{\s*(?:and|or)\s*\}|\b(?:and|or)\b)\s*")
# Units written as words after a number: "5 cm", "12 square feet", "3 cm^2".
_WORD_UNITS = re.compile(r"^([-+]?[\d.,]*\d|\\frac\{\d+\}\{\d+\})\s+((?:[a-zA-Z]{2,}(?:\^\{?\d\}?)?\.?\s*){1,3})$")
_NOT_UNITS = {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "cot", "sec", "csc", "exp", "inf", "infty", "times"}
_MIXED_SPACED = re.compile(r"^(-?\d+)\s+(\d+)/(\d+)$")  # "1 1/2" = 3/2
_SPACED_DIGITS = re.compile(r"(?<=\d)\s+(?=\d)")  # "1 2": kept apart, never 12
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
_ROW, _LIST_COMMA, _GAP, _CUP = "¶", "⸴", "␣", "∪"  # \\\\ (matrix row), ", ", a space between digits, \\cup


def _arg(a: str) -> str:
    return a if a.startswith("{") else "{" + a + "}"


def clean(answer: str) -> str:
    """LaTeX noise removed: spacing, dollars, degrees, percent, units, \\left/\\right, a leading 'x =' or
    'f(x) ='; "and"/"or" between answers become list commas; digits a space apart stay apart."""
    s = answer.strip().replace("−", "-")
    for frac in ("\\dfrac", "\\tfrac", "\\cfrac"):
        s = s.replace(frac, "\\frac")
    s = s.replace("\\left", "").replace("\\right", "").replace("{,}", ",").replace("\\{", "⦃").replace("\\}", "⦄")
    s = _CONNECTIVES.sub(", ", s).replace("\\cup", _CUP)
    s = re.sub(r",\s+", _LIST_COMMA, s.replace("\\\\", _ROW))  # "32, 349" is a list, "32,349" a number
    for token in _DROP:
        s = s.replace(token, "")
    s = s.strip()
    while (m := _UNITS.search(s)) and s[: m.start()].strip():  # "5\text{ cm}^2" -> "5"
        s = s[: m.start()].strip()
    for _ in range(3):  # \text{(C)} -> (C), nested wrappers one level at a time
        s = _WRAPPERS.sub(r"\1", s)
    if (m := _WORD_UNITS.match(s)) and not _NOT_UNITS & set(re.findall(r"[a-zA-Z]+", m.group(2))):
        s = m.group(1)
    s = _MIXED_SPACED.sub(r"\1\\frac{\2}{\3}", s)
    s = re.sub(r"\s+", "", _SPACED_DIGITS.sub(_GAP, s))
    if s.count("=") <= 1 and (m := _LEADING_NAME.match(s)) and s[m.end():]:
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
    if len(parts := _split_top(s, _CUP)) > 1 and all(parts):  # a union of sets: any order
        return _CUP.join(sorted(_canonical(x) for x in parts))
    if s.count("\\pm") == 1:  # "\\pm 3" is the two answers -3 and 3
        return "{" + ",".join(sorted({_canonical(s.replace("\\pm", sign)) for sign in "+-"})) + "}"
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
    return s.replace(_LIST_COMMA, ",")  # "f(1, 2)" = "f(1,2)"


def readings(answer: str | None) -> set[str]:
    """The canonical forms an answer may mean: one, or for a percentage both the number and its fraction
    ("10\\%" is 10 and 0.1)."""
    c = canonical(answer)
    if c is None:
        return set()
    if "%" in answer and parse_number(c) is not None:
        return {c, str(Fraction(c) / 100)}
    return {c}


# ----------------------------------------------------------------------------------------------
# Graders


class Grader(Protocol):
    name: str

    def gradable(self, gold: str) -> bool:
        """Can this gold answer ever be matched?"""

    def answer(self, response: str) -> str | None:
        """The response's final answer as written, or None (maj@k and answer entropy group these)."""

    def correct(self, response: str, gold: str) -> bool:
        """Is the whole response's final answer equal to the gold answer?"""

    def equal(self, answer: str | None, gold: str) -> bool:
        """Is an extracted answer equal to the gold answer?"""

    def same(self, a: str, b: str) -> bool:
        """Do two extracted answers say the same thing? (maj@k and answer entropy group by this)"""


class ExactGrader:
    """The built-in grader: the final box (`extract_answer`), canonical forms compared as strings."""

    name = "exact"

    def gradable(self, gold: str) -> bool:
        return canonical(str(gold)) is not None

    def answer(self, response: str) -> str | None:
        return extract_answer(response)

    def correct(self, response: str, gold: str) -> bool:
        return self.equal(extract_answer(response), gold)

    def equal(self, answer: str | None, gold: str) -> bool:
        return bool(readings(answer) & readings(str(gold)))

    def same(self, a: str, b: str) -> bool:
        return canonical(a) == canonical(b)


MAX_MV_CACHE = 65536


class MathVerifyGrader:
    """The paper's grader: math_verify.verify(parse(gold), parse(response)), the library's own extraction from
    the whole response, except that a response whose last box never closes has no answer. Gold answers are
    parsed as the content of a box (MATH's golds are bare LaTeX)."""

    name = "math-verify"

    def __init__(self):
        self.mv = optional_math_verify()
        if self.mv is None:
            raise ValueError("--grader math-verify needs the optional package: pip install math-verify")
        self._parsed: dict[str, list] = {}

    def _parse(self, text: str) -> list:
        """math_verify.parse, remembered. An empty parse is never remembered: math_verify returns one after its
        own timeout too, and a busy moment must not make an answer unreadable for the rest of the run."""
        if text in self._parsed:
            return self._parsed[text]
        try:
            parsed = self.mv.parse(text, parsing_timeout=5)
        except Exception:  # noqa: BLE001 - a grader never stops a run
            return []
        if parsed and len(text) <= MAX_ANSWER_CHARS + 10:  # golds and boxed answers; responses rarely repeat
            if len(self._parsed) >= MAX_MV_CACHE:
                self._parsed.clear()
            self._parsed[text] = parsed
        return parsed

    def _gold(self, gold: str) -> list:
        return self._parse("\\boxed{" + str(gold) + "}") or self._parse(str(gold))

    def _verify(self, gold: str, parsed: list) -> bool:
        parsed_gold = self._gold(gold)
        if not parsed_gold or not parsed:
            return False
        try:
            return bool(self.mv.verify(parsed_gold, parsed, timeout_seconds=5))
        except Exception:  # noqa: BLE001
            return False

    def gradable(self, gold: str) -> bool:
        return bool(self._gold(gold))

    def _response(self, response: str) -> list:
        """The library's parse of the whole response; where it finds nothing, our last closed box (the library
        misses "\\boxed {5}" and "\\fbox{5}"); nothing when the last box never closes."""
        if last_box_unclosed(response):
            return []
        boxed = extract_answer(response)
        return self._parse(response) or (self._parse("\\boxed{" + boxed + "}") if boxed is not None else [])

    def answer(self, response: str) -> str | None:
        parsed = self._response(response)
        return str(parsed[-1]) if parsed else None

    def correct(self, response: str, gold: str) -> bool:
        return self._verify(gold, self._response(response))

    def equal(self, answer: str | None, gold: str) -> bool:
        return answer is not None and self._verify(gold, self._parse("\\boxed{" + answer + "}"))

    def same(self, a: str, b: str) -> bool:
        return a == b or self.equal(a, b)


GRADERS = ("auto", "exact", "math-verify")


def get_grader(name: str, real_data: bool) -> Grader:
    """`exact`, `math-verify`, or `auto`: math-verify for real data when it is installed, else exact."""
    if name == "auto":
        name = "math-verify" if real_data and optional_math_verify() is not None else "exact"
    if name == "exact":
        return ExactGrader()
    if name == "math-verify":
        return MathVerifyGrader()
    raise ValueError(f"unknown grader {name!r}; expected one of {', '.join(GRADERS)}")


def grade(response: str, gold: str, grader: Grader | None = None) -> bool:
    """Is the response's final answer equal to the gold answer? The one call every reward, pass@1 and stored
    sample goes through (the exact grader by default)."""
    try:
        return (grader or ExactGrader()).correct(response, gold)
    except Exception:  # noqa: BLE001 - never let one odd response stop a run
        return False


def is_correct(response: str, answer: str) -> bool:
    """`grade` with the exact grader (the toy world's)."""
    return grade(response, answer)


def gold_report(golds: list[str], grader: Grader, examples: int = 3) -> str | None:
    """A warning naming how many gold answers the grader cannot parse (they cap pass@k), or None."""
    bad = [g for g in golds if not grader.gradable(g)]
    if not bad:
        return None
    shown = ", ".join(repr(g) for g in bad[:examples])
    return (f"warning: the {grader.name} grader cannot parse {len(bad)} of {len(golds)} gold answers "
            f"(e.g. {shown}); no response can be graded correct on them, so pass@k is capped at "
            f"{1 - len(bad) / len(golds):.3f}")
