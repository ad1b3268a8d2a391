"""pass@k against brute force, bins, transitions, entropy, reflection keywords."""

import itertools
import math

import numpy as np
import pytest

from minireason.metrics import (
    answer_entropy,
    answer_groups,
    bin_counts,
    default_bins,
    majority_correct,
    pass_at_k,
    pass_at_k_curve,
    per_bin_mean,
    reflection_count,
    transition_matrix,
    unsolved_bound,
)
from minireason.graders import MathVerifyGrader, optional_math_verify
from minireason.verifier import ExactGrader

math_verify = optional_math_verify()


@pytest.mark.parametrize("n", [1, 4, 7, 10])
def test_pass_at_k_equals_enumeration_over_all_subsets(n):
    for c in range(n + 1):
        outcomes = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    assert pass_at_k(256, 1, 256) == 1.0
    assert pass_at_k(256, 0, 100) == 0.0
    assert pass_at_k(1024, 3, 500) == pytest.approx(1 - math.comb(1021, 500) / math.comb(1024, 500), rel=1e-12)


def test_pass_at_k_unbiased_on_simulated_data():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, size=4000)
    n = 32
    counts = rng.binomial(n, p)
    curve = pass_at_k_curve(counts, n)
    for k in (1, 4, 16, 32):
        expected = np.mean(1 - (1 - p) ** k)
        assert curve[k - 1] == pytest.approx(expected, abs=0.01)
    assert curve[0] == pytest.approx(np.mean(counts / n))


def test_unsolved_bound_matches_paper():
    assert unsolved_bound(256) == pytest.approx(0.0116, abs=1e-4)  # the paper's "epsilon = 0.012"


def test_bins_at_paper_and_other_k():
    assert default_bins(256) == [(0, 0), (1, 4), (5, 16), (17, 64), (65, 128), (129, 256)]
    assert default_bins(64) == [(0, 0), (1, 4), (5, 16), (17, 32), (33, 64)]
    assert default_bins(128) == [(0, 0), (1, 4), (5, 16), (17, 64), (65, 128)]
    assert default_bins(512) == [(0, 0), (1, 4), (5, 16), (17, 128), (129, 256), (257, 512)]
    assert default_bins(8) == [(0, 0), (1, 1), (2, 2), (3, 4), (5, 8)]
    for k in (1, 2, 3, 5, 8, 16, 50, 64, 100, 256, 300, 1000):  # every X in 0..k falls in exactly one bin
        edges = default_bins(k)
        assert edges[0] == (0, 0) and edges[-1][1] == k
        assert all(a[1] + 1 == b[0] for a, b in zip(edges, edges[1:]))
    assert bin_counts([0, 0, 3, 4, 5, 64, 33, 32], default_bins(64)) == [2, 2, 1, 1, 2]


def test_transition_matrix_counts_by_hand():
    edges = [(0, 0), (1, 4), (5, 8)]
    ref = [0, 0, 1, 4, 8, 6]
    other = [0, 2, 0, 7, 8, 1]
    assert transition_matrix(ref, other, edges).tolist() == [[1, 1, 0], [1, 0, 1], [0, 1, 1]]
    assert per_bin_mean([0.0, 0.25, 0.0, 0.875, 1.0, 0.125], ref, edges) == [0.125, 0.4375, 0.5625]


def test_answer_entropy_by_hand():
    g = lambda answers: answer_groups(answers)  # noqa: E731 - plain string equality
    assert answer_entropy(g(["5"] * 8)) == 0.0
    assert answer_entropy(g(["1", "2"] * 4)) == pytest.approx(math.log(2))
    assert answer_entropy(g(["1", "1", "2", None])) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert answer_entropy([None, None]) == 0.0  # every response without an answer: one outcome


def test_majority_vote():
    assert majority_correct(answer_groups(["5", "6", "5", None]), [True, False, True, False])
    assert not majority_correct(answer_groups(["6", "6", "5"]), [False, False, True])
    assert not majority_correct(answer_groups([None, None]), [False, False])
    assert not majority_correct(answer_groups([None, None, None, "5"]), [False, False, False, False])
    assert majority_correct(
        answer_groups([None, None, None, "5"]), [False, False, False, True]
    )  # no-answers don't vote


GRADERS = [ExactGrader()] + ([MathVerifyGrader()] if math_verify is not None else [])


@pytest.mark.parametrize("grader", GRADERS, ids=lambda g: g.name)
def test_votes_and_entropy_group_by_value(grader):
    answers = ["1/2", "0.5", r"\frac{1}{2}", "3", "3"]
    groups = answer_groups(answers, grader.same)
    assert groups == [0, 0, 0, 1, 1]
    correct = [grader.equal(a, "1/2") for a in answers]
    assert majority_correct(groups, correct)  # 1/2 wins, 3 votes to 2
    assert answer_entropy(answer_groups(["1/2", "0.5"], grader.same)) == 0.0


@pytest.mark.parametrize("text,count", [
    ("Okay, so the token is 5.", 0),  # "ok" not inside "okay" or "token"
    ("ok. OK! ok,", 3),
    ("However, wait. Wait, however", 4),
    ("Hmm... let me think. Let me think again", 3),
    ("double-check: verify, verified, verifying", 2),  # "verify" alone, not "verified"
    ("correction: 5. Correction 6", 1),  # the phrase includes its colon
    ("I made a mistake; on second thought, to be sure", 3),
    ("awaited, actually, factually", 1),
    ("", 0),
])
def test_reflection_keywords(text, count):
    assert reflection_count(text) == count
