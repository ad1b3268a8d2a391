"""Accuracy, capability and difficulty bins, from per-question success counts (pure numpy).

Notation (the paper's §3): question i was sampled n times and X_i of the samples were correct.
- accuracy  Acc = mean_i X_i / n                     (pass@1)
- pass@k    = mean_i [1 - C(n - X_i, k) / C(n, k)]    (unbiased for k <= n; capability = pass@n)
- maj@k     = share of questions whose most frequent answer among the samples is right
- a question with X_i = 0 is "unsolved"; with 95% confidence its p_i < 1 - 0.05^(1/n).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

PAPER_BINS_256 = [(0, 0), (1, 4), (5, 16), (17, 64), (65, 128), (129, 256)]


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


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """maj@k for one question: is the most frequent extracted answer a correct one? (ties: first seen)."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    top = votes.most_common(1)[0][0]
    return any(ok for a, ok in zip(answers, correct) if a == top)


def answer_entropy(answers: Sequence[str | None]) -> float:
    """Shannon entropy (nats) of the distribution of final answers (no answer counts as one answer)."""
    counts = np.array(list(Counter(answers).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


# ----------------------------------------------------------------------------------------------
# Difficulty bins


def default_bins(k: int) -> list[tuple[int, int]]:
    """The paper's bins at k=256 — [0],[1-4],[5-16],[17-64],[65-128],[129-256] — scaled to other k.

    For k=64 this gives the toy world's bins [0],[1-4],[5-16],[17-32],[33-64] (the paper's appendix
    edges 4/16/32/64 read as fractions 1/64, 1/16, 1/8 of ... scaled so that the low edges, which matter
    most for "hardest questions", stay at counts 1-4 and 5-16 when k >= 64).
    """
    if k >= 256:
        scale = k / 256
        return [(0, 0)] + [(max(1, math.floor((lo - 1) * scale) + 1), math.floor(hi * scale))
                           for lo, hi in PAPER_BINS_256[1:]]
    if k >= 64:
        return [(0, 0), (1, 4), (5, 16), (17, k // 2), (k // 2 + 1, k)]
    # small k: [0], then halve the remaining range repeatedly: ..., [k/4+1, k/2], [k/2+1, k]
    edges, hi = [], k
    while hi > 1:
        lo = hi // 2 + 1
        edges.append((lo, hi))
        hi = lo - 1
    edges.append((1, hi)) if hi >= 1 else None
    return [(0, 0)] + sorted(edges)


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
