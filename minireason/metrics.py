"""Accuracy, capability and difficulty bins, from per-question success counts (pure numpy).

Notation (the paper's §3): question i was sampled n times and X_i of the samples were correct.
- accuracy  Acc = mean_i X_i / n                     (pass@1)
- pass@k    = mean_i [1 - C(n - X_i, k) / C(n, k)]    (unbiased for k <= n; capability = pass@n)
- maj@k     = share of questions whose most frequent answer among the samples is right; answers are
              grouped by the grader's equality (`answer_groups`), so "0.5" and "1/2" vote together
- a question with X_i = 0 is "unsolved"; with 95% confidence its p_i < 1 - 0.05^(1/n).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one question: 1 - C(n-c, k)/C(n, k), as a stable product.

    C(n-c, k)/C(n, k) = prod_{j=n-c+1}^{n} (1 - k/j)   (the probability that k draws without
    replacement from n samples all miss the c correct ones), so no huge binomials are formed.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_curve(counts: Sequence[int], n: int) -> np.ndarray:
    """Mean pass@k over questions for every k = 1..n (index k-1)."""
    return np.array([np.mean([pass_at_k(n, c, k) for c in counts]) for k in range(1, n + 1)])


def unsolved_bound(n: int, confidence: float = 0.95) -> float:
    """p below which X = 0 out of n is expected with the given confidence: 1 - (1-confidence)^(1/n)."""
    return 1.0 - (1.0 - confidence) ** (1.0 / n)


def answer_groups(answers: Sequence[str | None], same: Callable[[str, str], bool] = str.__eq__) -> list[int | None]:
    """A group label per answer: answers the grader calls the same share one ("0.5", "1/2" and "\\frac{1}{2}"
    under either grader). An answer joins the first group whose first member it equals. None: no answer."""
    firsts: list[str] = []
    labels: list[int | None] = []
    for a in answers:
        if a is None:
            labels.append(None)
            continue
        label = next((g for g, first in enumerate(firsts) if a == first or same(a, first)), None)
        if label is None:
            firsts.append(a)
            label = len(firsts) - 1
        labels.append(label)
    return labels


def majority_correct(groups: Sequence[int | None], correct: Sequence[bool]) -> bool:
    """maj@k for one question: is the most frequent answer group a correct one? Responses with no answer do
    not vote; with no answer at all the question counts as wrong. Ties go to the group seen first."""
    votes = Counter(g for g in groups if g is not None)
    if not votes:
        return False
    top = votes.most_common(1)[0][0]
    return any(ok for g, ok in zip(groups, correct) if g == top)


def answer_entropy(groups: Sequence[int | None]) -> float:
    """Shannon entropy (nats) of the distribution of answer groups; all responses with no answer together
    count as one more outcome."""
    counts = np.array(list(Counter(groups).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


# ----------------------------------------------------------------------------------------------
# Difficulty bins


def default_bins(k: int) -> list[tuple[int, int]]:
    """Difficulty bins over X in 0..k.

    k >= 256: the paper's main-text bins [0],[1-4],[5-16],[17-64],[65-128],[129-256], upper edges
    scaled by k/256. 64 <= k < 256: [0],[1-4],[5-16],[17-k/2],[k/2+1-k] (k=64 gives the toy world's
    [0],[1-4],[5-16],[17-32],[33-64]; k=128 gives the paper's upper bins). k < 64: [0], then ranges
    halving from the top, e.g. k=16: [0],[1],[2],[3-4],[5-8],[9-16].
    """
    if k >= 256:
        a, b = 64 * k // 256, 128 * k // 256
        return [(0, 0), (1, 4), (5, 16), (17, a), (a + 1, b), (b + 1, k)]
    if k >= 64:
        return [(0, 0), (1, 4), (5, 16), (17, k // 2), (k // 2 + 1, k)]
    edges, hi = [], k
    while hi >= 1:
        lo = hi // 2 + 1
        edges.append((lo, hi))
        hi = lo - 1
    return [(0, 0)] + edges[::-1]


def bin_index(x: int, edges: Sequence[tuple[int, int]]) -> int:
    for i, (lo, hi) in enumerate(edges):
        if lo <= x <= hi:
            return i
    raise ValueError(f"count {x} is outside the bins {edges}")


def bin_counts(counts: Sequence[int], edges: Sequence[tuple[int, int]]) -> list[int]:
    out = [0] * len(edges)
    for x in counts:
        out[bin_index(x, edges)] += 1
    return out


def bin_label(edge: tuple[int, int]) -> str:
    lo, hi = edge
    return f"[{lo}]" if lo == hi else f"[{lo}-{hi}]"


def transition_matrix(ref_counts: Sequence[int], other_counts: Sequence[int], edges) -> np.ndarray:
    """M[i, j] = number of questions in reference bin i that the other model puts in bin j."""
    m = np.zeros((len(edges), len(edges)), dtype=int)
    for a, b in zip(ref_counts, other_counts):
        m[bin_index(a, edges), bin_index(b, edges)] += 1
    return m


def per_bin_mean(values: Sequence[float], ref_counts: Sequence[int], edges) -> list[float | None]:
    """Mean of values over the questions in each reference bin (None for an empty bin)."""
    sums, ns = [0.0] * len(edges), [0] * len(edges)
    for v, x in zip(values, ref_counts):
        i = bin_index(x, edges)
        sums[i] += v
        ns[i] += 1
    return [s / n if n else None for s, n in zip(sums, ns)]


# ----------------------------------------------------------------------------------------------
# Reflection keywords (the paper's Table 5)

REFLECTION_PHRASES = (
    "actually", "aha", "alternatively", "correction:", "another approach", "different method",
    "checking our work", "double-check", "hmm", "however", "I made a mistake", "I need to reconsider",
    "I realize", "let me recalculate", "let me think", "let's check", "let's reconsider", "looking back",
    "make sure", "ok", "on second thought", "retracing", "to be sure", "to confirm", "verify", "wait",
    "we could also",
)
# Case-insensitive, and word-bounded on both sides: "ok" does not match inside "okay" or "token".
_REFLECTION = re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p in REFLECTION_PHRASES), re.IGNORECASE)


def reflection_count(text: str) -> int:
    """Occurrences of the 27 reflection phrases in a response."""
    return len(_REFLECTION.findall(text))
