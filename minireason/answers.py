"""MATH answer algebra for the exact grader: when do two final answers, as written, say the same thing?

`canonical(answer)` maps an answer to a string such that two answers the exact grader calls equal have the same
one (`readings` adds a percentage's second reading, `names_agree` keeps "y = 3" apart from "x = 3"):
  - numbers compare exactly as rationals: integers, decimals, thousands separators written without
    spaces ("1,234", "1{,}234", "1,\\!234"), fractions in every LaTeX spelling ("\\frac{4}{3}",
    "\\dfrac43", "\\frac 59", "\\frac9{19}", "4/3"), mixed numbers ("2\\frac{1}{2}"), percentages,
    degrees, dollars, a leading "x =", trailing units in \\text{}, \\textnormal{} or \\mbox{}, and
    repeating decimals ("0.\\overline{3}" = 1/3);
  - tuples, intervals and matrices compare element by element; sets and bare comma lists ignore order;
  - sums of rationals times square roots, powers of pi and powers of one-letter variables compare by their
    exact value (`exact_value`): "2\\sqrt{3}" = "\\sqrt{12}", "\\frac{1}{\\sqrt2}" = "\\sqrt{2}/2", "\\frac\\pi2" =
    "0.5\\pi", "2x+1+x^2" = "(x+1)^2"; a reading that would be a guess ("1/2\\pi", "2\\frac12\\pi") is no value, a
    word is not a product of letters, and a computation with a rational result ("2^{10}", "66+24") is not its
    result;
  - anything else compares as a normalised string (LaTeX spacing, \\left/\\right, \\text{} removed, one spelling
    of each symbol: \\leq is \\le, π is \\pi, \\varnothing is \\emptyset, x^{2} is x^2), so an exact copy of
    "\\ln 2" is equal, while "32, 349" (a list) is not 32349 (a number).
Recall rules on top, none of which may add a false positive: an answer named on one side only, or by the same name
on both ("(p,q)=(3,2)", "f(x)=2x+3"; never two different names), lists joined by "and"/"or", "\\pm a" as the set
{-a, a}, a percentage also equal to its decimal ("10\\%" = 0.1), units written as words ("5 cm"). Digits separated
by a space are never glued together ("1 2" is not 12; "1 1/2" is the mixed number 3/2). Everything here runs in
time linear in the input and never raises on an answer.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from math import gcd, isqrt

MAX_ANSWER_CHARS = 1000  # a longer "final answer" is no answer we can grade
MAX_NUMBER_CHARS = 64  # a longer digit string is not read as a number


# ----------------------------------------------------------------------------------------------
# Normalisation (the exact grader)

# Two spellings of one symbol (the longer first where one contains the other: \leqslant before \leq).
_SYNONYMS = (("−", "-"), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"), ("π", "\\pi"),
             ("∞", "\\infty"), ("\\varnothing", "\\emptyset"), ("∅", "\\emptyset"), ("\\leqslant", "\\le"),
             ("\\geqslant", "\\ge"), ("\\leq", "\\le"), ("\\geq", "\\ge"), ("\\neq", "\\ne"), ("≤", "\\le"),
             ("≥", "\\ge"), ("≠", "\\ne"))
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
_SQRT = re.compile(r"\\sqrt\s*(\[[^\[\]{}]*\])?\s*" + _ARG)  # \sqrt2, \sqrt[3]2
_DECIMAL = r"(?:\d+(?:\.\d*)?|\.\d+)"
_REPEATING = r"(\d*)\.(\d*)\\overline(?:\{(\d+)\}|(\d))"  # 0.\overline{3}, 0.1\overline{6}, 1.\overline{09}
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
    'f(x) ='; one spelling of each symbol; "and"/"or" between answers become list commas; digits a space apart
    stay apart."""
    return clean_named(answer)[1]


def clean_named(answer: str) -> tuple[str | None, str]:
    """(the name the answer gives itself on its left, or None; `clean`'s answer without it): "f(x)" and "2x+3"
    for "f(x) = 2x + 3"."""
    name, s = None, answer.strip()
    for spelling, same in _SYNONYMS:
        s = s.replace(spelling, same)
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
    s = re.sub(r"([_^])\{([^{}\\])\}", r"\1\2", s)  # x^{2} = x^2, 1011_{2} = 1011_2
    if s.count("=") <= 1 and (m := _LEADING_NAME.match(s)) and s[m.end():]:
        name, s = s[: m.end()].removesuffix("=").removesuffix("\\in").replace(_LIST_COMMA, ","), s[m.end():]
    s = _FRAC.sub(lambda m: "\\frac" + _arg(m.group(1)) + _arg(m.group(2)), s)
    s = _SQRT.sub(lambda m: "\\sqrt" + (m.group(1) or "") + _arg(m.group(2)), s)
    s = s.rstrip(".")
    while len(s) > 1 and s[0] == "{" and _matching(s, 0) == len(s) - 1:
        s = s[1:-1]
    if re.fullmatch(r"\(?([A-Z])\)?", s):  # a multiple-choice letter: "(C)" = "C"
        s = s.strip("()")
    return name, "\\emptyset" if s == "⦃⦄" else s


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


def _repeating(m: re.Match) -> Fraction:
    """A repeating decimal (a `_REPEATING` match): a.b\\overline{c} = (abc - ab) / (10^|b| (10^|c| - 1)), where abc
    is the digits of a, b and c read as one integer (0.\\overline{3} = 3/9, 0.1\\overline{6} = 15/90)."""
    whole, digits, period = m.group(1), m.group(2), m.group(3) or m.group(4)
    repeats = int(whole + digits + period) - int(whole + digits or "0")
    return Fraction(repeats, 10 ** len(digits) * (10 ** len(period) - 1))


def parse_number(s: str) -> Fraction | None:
    """An exact rational from a cleaned answer, or None if it is not a number."""
    if not s or len(s) > MAX_NUMBER_CHARS:
        return None
    sign = -1 if s[0] == "-" else 1
    body = s[1:] if s[0] in "+-" else s
    try:
        if m := re.fullmatch(_REPEATING, body):
            return sign * _repeating(m)
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


# ----------------------------------------------------------------------------------------------
# Exact values (the exact grader): sums of rationals times square roots, powers of pi and powers of one-letter
# variables, so that "2\sqrt{3}" = "\sqrt{12}", "\frac{1}{\sqrt2}" = "\frac{\sqrt2}{2}", "\frac\pi2" = "0.5\pi" and
# "2x+1+x^2" = "x^2+2*x+1".
#
# A value is a map {(n, monomial): q}, the sum of q * sqrt(n) * monomial over its terms, with n square-free, q a
# nonzero rational and the monomial a product of powers of pi and of letters, such as pi^2 x y^-1. Square roots of
# distinct square-free integers are linearly independent over the rationals (Besicovitch, 1940), pi is
# transcendental and letters are indeterminates, so each such value has exactly one map: two answers are equal
# exactly when their maps are (for letters: equal as polynomials, so for every value of the letters), with no
# floating point and no tolerance. An answer the reader cannot put in this form exactly (a word, a function
# f(x), a comma, \times, a root of a root, a division by most sums) has no value and is compared as a normalised
# string. A value with no root, pi or letter is not used: an expression with a rational value is a computation
# left undone, not an answer (see `exact_value`).

Monomial = tuple[tuple[str, int], ...]  # (("x", 1), ("π", 2)) is pi^2 x; () is 1
Value = dict[tuple[int, Monomial], Fraction]
RATIONAL: tuple[int, Monomial] = (1, ())  # the key of a value's rational part
MAX_TERMS, MAX_BITS, MAX_EXPONENT, MAX_RADICAND, MAX_NESTING = 16, 4096, 64, 10**12, 32
_LITERAL = re.compile(rf"{_REPEATING}|{_DECIMAL}")
_LETTER = re.compile(r"[a-zA-Z](?![a-zA-Z(])")  # x, but not a word ("odd") nor a function ("f(x)")
_EXPONENT = re.compile(r"\{(-?\d{1,3})\}|(\d)")  # 2^{10}, 2^{-1}, 2^3 (TeX's "2^10" is 2^1 then a 0: no value)
_IMPLICIT = re.compile(r"\\frac|\\sqrt|\\pi|[({a-zA-Z]")  # what may follow a factor with no operator: 2\pi, 2x
_MIXED_INSIDE = re.compile(r"\d\\frac\{\d+\}\{\d+\}")  # "2\frac{1}{2}\pi": 2 1/2 or 2 * 1/2? ambiguous


class _NoValue(Exception):
    """The answer is not an expression the reader evaluates exactly, or reading it would be a guess."""


def _checked(value: Value) -> Value:
    """value without its zero terms, or no value once it grows past the bounds (the reader stays fast)."""
    value = {key: q for key, q in value.items() if q}
    if len(value) > MAX_TERMS or any(max(q.numerator.bit_length(), q.denominator.bit_length()) > MAX_BITS
                                     for q in value.values()):
        raise _NoValue
    return value


def _add(a: Value, b: Value, sign: int) -> Value:
    out = dict(a)
    for key, q in b.items():
        out[key] = out.get(key, 0) + sign * q
    return _checked(out)


def _times(a: Monomial, b: Monomial, sign: int = 1) -> Monomial:
    """The monomial a * b^sign: exponents added (sign 1) or subtracted (sign -1)."""
    powers = dict(a)
    for symbol, exponent in b:
        powers[symbol] = powers.get(symbol, 0) + sign * exponent
    return tuple(sorted((symbol, e) for symbol, e in powers.items() if e))


def _multiply(a: Value, b: Value) -> Value:
    """sqrt(n1) sqrt(n2) = g sqrt(n1 n2 / g^2), g = gcd(n1, n2); n1 n2 / g^2 is square-free again."""
    out: Value = {}
    for (n1, m1), q1 in a.items():
        for (n2, m2), q2 in b.items():
            g = gcd(n1, n2)
            key = ((n1 // g) * (n2 // g), _times(m1, m2))
            out[key] = out.get(key, 0) + q1 * q2 * g
    return _checked(out)


def _inverse(value: Value) -> Value:
    """1 / (q sqrt(n) m) = sqrt(n) / (q n) * m^-1 for a monomial m, and with the conjugate, 1 / ((a + b sqrt(n)) m)
    = (a - b sqrt(n)) / (a^2 - b^2 n) * m^-1 (never 0 / 0: sqrt(n) is irrational). Other sums: no value."""
    if not value:
        raise ZeroDivisionError
    if len(value) == 1:
        [((n, m), q)] = value.items()
        return {(n, _times((), m, -1)): 1 / (q * n)}
    if len(value) != 2:
        raise _NoValue
    (one, m), (n, m_other) = sorted(value)
    if one != 1 or n == 1 or m != m_other:
        raise _NoValue
    a, b, m_inverse = value[(1, m)], value[(n, m)], _times((), m, -1)
    norm = a * a - b * b * n
    return _checked({(1, m_inverse): a / norm, (n, m_inverse): -b / norm})


def _square_free(m: int) -> tuple[int, int]:
    """(a, n) with m = a^2 n and n square-free. Trial division up to the cube root of what is left leaves a
    cofactor with at most two prime factors, both above that root: square-free unless it is a square."""
    a, n, d = 1, 1, 2
    while d * d * d <= m:
        while m % (d * d) == 0:
            m, a = m // (d * d), a * d
        if m % d == 0:
            m, n = m // d, n * d
        d += 1
    root = isqrt(m)
    return (a * root, n) if root * root == m else (a, n * m)


def _sqrt(value: Value) -> Value:
    """sqrt(p/q) = sqrt(p q) / q for a rational p/q >= 0; a root of a root, of pi, of a letter or of a negative:
    no value."""
    if not value:
        return {}
    if set(value) != {RATIONAL} or value[RATIONAL] < 0:
        raise _NoValue
    p, q = value[RATIONAL].numerator, value[RATIONAL].denominator
    if p * q > MAX_RADICAND:
        raise _NoValue
    a, n = _square_free(p * q)
    return {(n, ()): Fraction(a, q)}


def _power(value: Value, exponent: int) -> Value:
    if not value and exponent <= 0:
        raise _NoValue  # 0^0, 0^-1
    if abs(exponent) > MAX_EXPONENT:
        raise _NoValue
    if exponent < 0:
        value, exponent = _inverse(value), -exponent
    out: Value = {RATIONAL: Fraction(1)}
    for _ in range(exponent):
        out = _multiply(out, value)
    return out


class _Reader:
    """Recursive descent over a cleaned answer:
        expression = [+-] term ([+-] term)*
        term       = factor ((\\cdot | * | /) factor | factor)*       (no operator: 2\\sqrt{3}, 2\\pi, 2x, (1+x)(3))
        factor     = primary [^ integer]
        primary    = number | letter | \\pi | \\frac{expression}{expression} | \\sqrt{expression} | (expression)
                     | {expression}
    Two readings that could be guesses are refused: a factor right after a division's divisor with no operator
    ("1/2\\pi": pi/2 or 1/(2 pi)?), and a number next to an integer fraction (a mixed number?)."""

    def __init__(self, text: str):
        self.text, self.at, self.depth = text, 0, 0

    def take(self, token: str) -> bool:
        if self.text.startswith(token, self.at):
            self.at += len(token)
            return True
        return False

    def expression(self) -> Value:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _NoValue
        value: Value = {}
        sign = -1 if self.take("-") else 1
        if sign == 1:
            self.take("+")
        while sign:
            value = _add(value, self.term(), sign)
            sign = 1 if self.take("+") else -1 if self.take("-") else 0
        self.depth -= 1
        return value

    def term(self) -> Value:
        value, after_divisor = self.factor(), False
        while True:
            if self.take("\\cdot") or self.take("*"):
                value, after_divisor = _multiply(value, self.factor()), False
            elif self.take("/"):
                value, after_divisor = _multiply(value, _inverse(self.factor())), True
            elif _IMPLICIT.match(self.text, self.at):
                if after_divisor:
                    raise _NoValue
                value = _multiply(value, self.factor())
            else:
                return value

    def factor(self) -> Value:
        base = self.primary()
        if not self.take("^"):
            return base
        if not (m := _EXPONENT.match(self.text, self.at)):
            raise _NoValue
        self.at = m.end()
        return _power(base, int(m.group(1) or m.group(2)))

    def primary(self) -> Value:
        if m := _LITERAL.match(self.text, self.at):
            self.at = m.end()
            if len(m.group(0)) > MAX_NUMBER_CHARS:
                raise _NoValue
            return _checked({RATIONAL: _repeating(m) if m.group(3) or m.group(4) else Fraction(m.group(0))})
        if self.take("\\pi"):
            return {(1, (("π", 1),)): Fraction(1)}
        if m := _LETTER.match(self.text, self.at):
            self.at = m.end()
            return {(1, ((m.group(0), 1),)): Fraction(1)}
        if self.take("\\sqrt"):
            return _sqrt(self.group("{", "}"))
        if self.take("\\frac"):
            return _multiply(self.group("{", "}"), _inverse(self.group("{", "}")))
        return self.group("(", ")") if self.text.startswith("(", self.at) else self.group("{", "}")

    def group(self, opening: str, closing: str) -> Value:
        if not self.take(opening):
            raise _NoValue
        value = self.expression()
        if not self.take(closing):
            raise _NoValue
        return value


def evaluate(answer: str) -> Value | None:
    """The exact value of a cleaned answer, or None when it is not a sum of rationals times square roots, powers of
    pi and powers of one-letter variables (or reading it would be a guess)."""
    if _MIXED_INSIDE.search(answer):
        return None
    reader = _Reader(answer)
    try:
        value = reader.expression()
    except (_NoValue, ZeroDivisionError):
        return None
    return value if reader.at == len(answer) else None


def exact_value(answer: str) -> str | None:
    """The canonical string of a cleaned answer's exact value when it has a root, pi or a letter, or None. A
    rational value is never used: a computation is not its result ("2^{10}" is not 1024, and the toy question's
    own "66+24" must not earn the reward for 90), and rational answers are `parse_number`'s."""
    value = evaluate(answer)
    if value is None or set(value) <= {RATIONAL}:
        return None
    terms = (f"{q}·√{n}" + "".join(f"·{symbol}^{e}" for symbol, e in m) for (n, m), q in sorted(value.items()))
    return "⟦" + " + ".join(terms) + "⟧"


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
    if (value := exact_value(s)) is not None:  # 2\sqrt{3}, \frac{\pi}{2}
        return value
    if len(items := _split_top(s, ",")) > 1 and all(items):  # "1, 2": a list of solutions, any order
        return "{" + ",".join(sorted(_canonical(x) for x in items)) + "}"
    return s.replace(_LIST_COMMA, ",")  # "f(1, 2)" = "f(1,2)"


@lru_cache(maxsize=65536)
def answer_name(answer: str | None) -> str | None:
    """The name an answer gives itself on its left ("x" of "x = 5", "\\sin(x)" of "\\sin(x)=\\frac{4}{5}"), or None."""
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return None
    return clean_named(answer)[0]


def names_agree(a: str | None, b: str | None) -> bool:
    """A name may be dropped only where one side has none ("x = 3" is 3) or both give the same one: "y = 3" is
    not "x = 3", nor "\\sin(x)=\\frac{42}{59}" "\\cos(x)=\\frac{42}{59}"."""
    name_a, name_b = answer_name(a), answer_name(b)
    return name_a is None or name_b is None or name_a == name_b


def same_answer(a: str | None, b: str | None) -> bool:
    """Do two answers say the same thing: one canonical form, and names that agree?"""
    return canonical(a) == canonical(b) and names_agree(a, b)


def readings(answer: str | None) -> set[str]:
    """The canonical forms an answer may mean: one, or for a percentage both the number and its fraction
    ("10\\%" is 10 and 0.1)."""
    c = canonical(answer)
    if c is None:
        return set()
    if "%" in answer and parse_number(c) is not None:
        return {c, str(Fraction(c) / 100)}
    return {c}
