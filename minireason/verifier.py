"""The verifier: is a response's final answer equal to the gold answer?

The final answer is the content of the response's last `\\boxed{...}` (or `\\fbox{...}`), and only if that box
closes: no box, or an unclosed last box, means no answer (there is no last-number fallback: "AZYUK2A" must not pass
for 2, nor a solution cut off mid-sentence). Several final boxes in a row ("\\boxed{1}, \\boxed{2}") are one list,
and boxes that hold one value are that answer written again.

Every grader has one small interface (`Grader`): `correct(response, gold)` for a whole response (`grade` is the one
call every reward, pass@1 and stored sample goes through), `answer(response)` for the final answer as written (maj@k
and answer entropy group these with `same`), and `gradable(gold)`. The built-in `ExactGrader` compares the answers'
canonical forms (`answers.py`: for a toy answer, "10063" against "10063"); math-verify, the paper's grader, is in
`graders.py`. No grader raises on any response.
"""

from __future__ import annotations

import re
from typing import Protocol

from .answers import MAX_ANSWER_CHARS, canonical, names_agree, readings, same_answer

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
    before it when only commas, "and" or "or" stand between them (one answer split over several boxes); boxes
    that hold the same answer as a later one (`same_answer`) are that one answer, written again."""
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
        if not any(same_answer(box[0], b) for b in boxes):  # "\\boxed{2\\frac12}, or \\boxed{\\frac52}": one answer
            boxes.insert(0, box[0])
    answer = ", ".join(boxes)
    return answer if len(answer) <= MAX_ANSWER_CHARS else None


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
        return bool(readings(answer) & readings(str(gold))) and names_agree(answer, str(gold))

    def same(self, a: str, b: str) -> bool:
        return same_answer(a, b)


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
