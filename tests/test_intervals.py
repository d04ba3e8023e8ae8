"""Bootstrap intervals of accuracies and paired differences (core/intervals.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from core.intervals import (
    bootstrap_accuracy,
    mcnemar_exact,
    mean_over_domains,
    paired_difference,
    seed_spread,
)


def _half(n: int = 10_000) -> np.ndarray:
    c = np.zeros(n, dtype=bool)
    c[: n // 2] = True
    return c


# ----------------------------------------------------------------------------- bootstrap_accuracy


def test_all_correct_and_all_wrong_are_exact() -> None:
    assert bootstrap_accuracy(np.ones(50, dtype=bool)) == (1.0, 1.0, 1.0)
    assert bootstrap_accuracy(np.zeros(50, dtype=bool)) == (0.0, 0.0, 0.0)


def test_half_of_ten_thousand_is_about_plus_minus_one_percent() -> None:
    mean, lo, hi = bootstrap_accuracy(_half())
    assert mean == 0.5
    # binomial standard error sqrt(.25 / 1e4) = .005; 95 % -> +- 1.96 * .005 = .0098
    assert lo == pytest.approx(0.5 - 0.0098, abs=0.0015)
    assert hi == pytest.approx(0.5 + 0.0098, abs=0.0015)


def test_matches_explicit_resampling_of_images() -> None:
    rng = np.random.default_rng(7)
    c = rng.random(200) < 0.7
    n_boot = 4000
    idx = rng.integers(0, c.size, size=(n_boot, c.size))
    explicit = np.quantile(c[idx].mean(axis=1), [0.025, 0.975])
    _, lo, hi = bootstrap_accuracy(c, n_boot=n_boot, seed=1)
    assert lo == pytest.approx(explicit[0], abs=0.011)
    assert hi == pytest.approx(explicit[1], abs=0.011)


def test_seeded_and_level_widens() -> None:
    c = np.random.default_rng(0).random(300) < 0.6
    assert bootstrap_accuracy(c, seed=3) == bootstrap_accuracy(c, seed=3)
    assert bootstrap_accuracy(c, seed=3) != bootstrap_accuracy(c, seed=4)
    _, lo90, hi90 = bootstrap_accuracy(c, level=0.9)
    _, lo99, hi99 = bootstrap_accuracy(c, level=0.99)
    assert lo99 < lo90 < hi90 < hi99


def test_interval_narrows_with_more_images() -> None:
    _, lo_s, hi_s = bootstrap_accuracy(_half(100))
    _, lo_b, hi_b = bootstrap_accuracy(_half(10_000))
    assert hi_b - lo_b < (hi_s - lo_s) / 5


# ----------------------------------------------------------------------------- paired_difference


def test_identical_arrays_are_within_noise() -> None:
    c = np.random.default_rng(1).random(500) < 0.5
    got = paired_difference(c, c)
    assert got == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "p_value": 1.0, "within_noise": True}


def test_clearly_different_is_not_within_noise() -> None:
    a = np.ones(1000, dtype=bool)
    b = _half(1000)
    got = paired_difference(a, b)
    assert got["diff"] == 0.5
    assert got["within_noise"] is False
    assert 0.45 < got["lo"] < 0.5 < got["hi"] < 0.55
    assert got["p_value"] < 1e-100
    flipped = paired_difference(b, a)
    assert flipped["diff"] == -0.5 and flipped["within_noise"] is False


def test_pairing_detects_a_small_consistent_gain() -> None:
    # b = a plus 60 more correct images of 10,000: a 0.6 % gain that unpaired intervals
    # (each about +- 1 %) would not resolve; the paired interval does.
    a = _half()
    b = a.copy()
    b[5000:5060] = True
    got = paired_difference(a, b)
    assert got["diff"] == pytest.approx(-0.006)
    assert got["within_noise"] is False and got["hi"] < 0
    hi_a = bootstrap_accuracy(a)[2]
    lo_b = bootstrap_accuracy(b)[1]
    assert lo_b < hi_a  # the unpaired intervals overlap


def test_small_noisy_difference_is_within_noise() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(200) < 0.7
    b = a.copy()
    flip = rng.choice(200, size=6, replace=False)
    b[flip[:3]] = True
    b[flip[3:]] = ~b[flip[3:]]
    got = paired_difference(a, b)
    assert got["within_noise"] is True
    assert got["lo"] <= 0 <= got["hi"] and got["p_value"] > 0.05


@pytest.mark.parametrize(("only_a", "only_b"), [(10, 2), (2, 10), (0, 7), (50, 50), (1, 0), (300, 250)])
def test_mcnemar_matches_the_binomial_test(only_a: int, only_b: int) -> None:
    expected = binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(only_a, only_b) == pytest.approx(expected, rel=1e-9)
    assert mcnemar_exact(0, 0) == 1.0


# ----------------------------------------------------------------------------- mean_over_domains


def test_mean_over_domains_weights_domains_equally() -> None:
    big = _half(10_000)  # 0.5 on 10,000 images
    small = np.ones(100, dtype=bool)  # 1.0 on 100 images
    mean, lo, hi = mean_over_domains([big, small])
    assert mean == pytest.approx(0.75)  # pooled accuracy would be 0.505
    assert lo < 0.75 < hi
    assert mean_over_domains([np.ones(5, bool), np.ones(9, bool)]) == (1.0, 1.0, 1.0)


def test_mean_over_domains_is_stratified() -> None:
    # domains at 0.2 and 0.8 with 1,000 images each: resampling within domains gives the
    # variance of the mean of two binomial shares, sd = sqrt(2 * .16 / 1000) / 2 = .0089
    a = np.zeros(1000, bool)
    a[:200] = True
    b = np.zeros(1000, bool)
    b[:800] = True
    mean, lo, hi = mean_over_domains([a, b], n_boot=4000)
    assert mean == pytest.approx(0.5)
    assert (hi - lo) / 2 == pytest.approx(1.96 * 0.0089, abs=0.003)
    # a pooled bootstrap of the 2,000 images (sd .0112) would be wider than this
    _, plo, phi = bootstrap_accuracy(np.concatenate([a, b]), n_boot=4000)
    assert hi - lo < phi - plo


def test_mean_over_domains_single_domain_equals_bootstrap_accuracy() -> None:
    c = np.random.default_rng(2).random(400) < 0.3
    m1, lo1, hi1 = mean_over_domains([c], seed=9)
    m2, lo2, hi2 = bootstrap_accuracy(c, seed=9)
    assert m1 == pytest.approx(m2)
    assert (lo1, hi1) == pytest.approx((lo2, hi2), abs=0.02)


# ----------------------------------------------------------------------------- seed_spread


def test_seed_spread() -> None:
    mean, std, n = seed_spread([0.5, 0.6, 0.7])
    assert (mean, std, n) == (pytest.approx(0.6), pytest.approx(0.1), 3)
    mean, std, n = seed_spread(np.array([0.8]))
    assert mean == 0.8 and np.isnan(std) and n == 1


# ----------------------------------------------------------------------------- errors


GOOD = np.array([True, False, True])


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (np.array([], dtype=bool), ValueError, "correct is empty"),
        (np.array([1, 0, 1]), TypeError, "correct must be a bool array .* got dtype int64"),
        (np.array([0.5, 1.0]), TypeError, "got dtype float64"),
        (np.ones((2, 2), dtype=bool), ValueError, r"correct must be 1-D \(N,\), got shape \(2, 2\)"),
        ("TTF", TypeError, "correct must be a 1-D bool array, got str"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_bootstrap_accuracy_rejects_bad_correct(x: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        bootstrap_accuracy(x)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"level": 0.0}, ValueError, r"level must be in \(0, 1\), got 0.0"),
        ({"level": 1.0}, ValueError, r"level must be in \(0, 1\), got 1.0"),
        ({"level": 95}, ValueError, r"level must be in \(0, 1\), got 95"),
        ({"level": "0.95"}, TypeError, "level must be a number"),
        ({"n_boot": 99}, ValueError, "n_boot must be >= 100, got 99"),
        ({"n_boot": 1000.0}, TypeError, "n_boot must be an int, got 1000.0"),
        ({"n_boot": True}, TypeError, "n_boot must be an int, got True"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"seed": None}, TypeError, "seed must be an int, got None"),
    ],
)
def test_bootstrap_parameters_are_checked_everywhere(kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        bootstrap_accuracy(GOOD, **kwargs)
    with pytest.raises(exc, match=match):
        paired_difference(GOOD, GOOD, **kwargs)
    with pytest.raises(exc, match=match):
        mean_over_domains([GOOD, GOOD], **kwargs)


def test_paired_difference_rejects_mismatched_or_bad_arrays() -> None:
    with pytest.raises(ValueError, match="correct_a has 3 images but correct_b has 2"):
        paired_difference(GOOD, GOOD[:2])
    with pytest.raises(TypeError, match="correct_b must be a bool array"):
        paired_difference(GOOD, GOOD.astype(int))
    with pytest.raises(ValueError, match="correct_a is empty"):
        paired_difference(np.array([], bool), np.array([], bool))


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        ([], ValueError, "correct_by_domain is empty"),
        (GOOD, TypeError, "correct_by_domain must be a list of bool arrays"),
        ("ab", TypeError, "correct_by_domain must be a list"),
        ([GOOD, np.array([], bool)], ValueError, r"correct_by_domain\[1\] is empty"),
        ([GOOD, np.array([1, 0])], TypeError, r"correct_by_domain\[1\] must be a bool array"),
    ],
)
def test_mean_over_domains_rejects_bad_input(x: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        mean_over_domains(x)


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        ([], ValueError, "values is empty"),
        (["a", "b"], TypeError, "values must be a 1-D array of numbers"),
        ([True, False], TypeError, "values must be a 1-D array of numbers"),
        ([[0.1, 0.2]], ValueError, r"values must be 1-D \(n_seeds,\), got shape \(1, 2\)"),
        ([0.1, float("nan")], ValueError, "values must be finite, got nan"),
    ],
)
def test_seed_spread_rejects_bad_input(x: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        seed_spread(x)


@pytest.mark.parametrize(
    ("only_a", "only_b", "match"),
    [
        (-1, 2, "only_a must be an int >= 0, got -1"),
        (1, 2.0, "only_b must be an int >= 0, got 2.0"),
    ],
)
def test_mcnemar_rejects_bad_counts(only_a: object, only_b: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mcnemar_exact(only_a, only_b)


def test_five_discordant_images_are_never_a_real_difference() -> None:
    """360 images, model b right on 5 more of them: the percentile interval excludes 0, but the
    exact test (p = 0.0625) does not reject, so the difference stays within noise."""
    a = np.ones(360, dtype=bool)
    a[:40] = False
    b = a.copy()
    b[:5] = True
    got = paired_difference(b, a, n_boot=2000, seed=0)
    assert got["p_value"] == pytest.approx(0.0625)
    assert got["lo"] > 0  # the interval alone would call it real
    assert got["within_noise"] is True
