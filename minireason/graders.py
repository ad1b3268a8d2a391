"""The graders a script can choose (`--grader`): the built-in exact grader, or math-verify, the paper's.

`math-verify` is the optional PyPI package `math-verify`: the library's own extraction from the whole response
(its README's use: `verify(parse(gold), parse(response))`), with one rule on top: a response whose last box never
closes (a truncated one) has no answer, where the library alone would credit an earlier box; where the library
finds nothing, the last closed box is read. `get_grader("auto", real_data)` picks math-verify for real data when
it is installed, else exact.
"""

from __future__ import annotations

from .answers import MAX_ANSWER_CHARS
from .verifier import ExactGrader, Grader, extract_answer, last_box_unclosed


def optional_math_verify():
    """The optional math-verify package (the paper's grader), or None; imported on first use, since importing it
    takes about a second that toy runs never need."""
    try:
        import math_verify
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return math_verify


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
