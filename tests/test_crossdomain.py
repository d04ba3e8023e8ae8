import numpy as np
import pytest

from core.crossdomain import (
    count_matrix,
    cross_domain_matrices,
    empty_classes,
    normalize_rows,
    ordered_pairs,
    prediction_matrix,
)


def test_hard_counts_by_hand():
    true = [0, 0, 0, 1, 1]
    pred = [1, 1, 0, 2, 2]
    c = count_matrix(true, pred, 2, 3)
    np.testing.assert_array_equal(c, [[1, 2, 0], [0, 0, 2]])
    np.testing.assert_allclose(prediction_matrix(true, pred, 2, 3), [[1 / 3, 2 / 3, 0], [0, 0, 1]])


def test_soft_mode_sums_probabilities():
    true = [0, 0, 1]
    probs = [[0.5, 0.5], [0.2, 0.8], [1.0, 0.0]]
    np.testing.assert_allclose(count_matrix(true, probs, 2, 2), [[0.7, 1.3], [1.0, 0.0]])
    np.testing.assert_allclose(prediction_matrix(true, probs, 2, 2), [[0.35, 0.65], [1, 0]])


def test_class_without_images_gives_zero_row_and_is_reported():
    with pytest.warns(UserWarning, match=r"1 class\(es\) of domain a have no images.*\[1\]"):
        p = prediction_matrix([0, 0, 2], [0, 1, 1], 3, 2)
    np.testing.assert_array_equal(p[1], [0, 0])
    np.testing.assert_array_equal(empty_classes(count_matrix([0, 0, 2], [0, 1, 1], 3, 2)), [1])


def test_rows_sum_to_one_or_zero(rng):
    true = rng.integers(0, 7, size=200)
    pred = rng.integers(0, 5, size=200)
    true[true == 3] = 4  # class 3 gets no image
    with pytest.warns(UserWarning, match=r"\[3\]"):
        p = prediction_matrix(true, pred, 7, 5)
    assert not p[3].any()
    sums = p.sum(axis=1)
    assert np.all(np.isclose(sums, 1) | (sums == 0))
    np.testing.assert_allclose(normalize_rows(np.zeros((2, 2))), 0)


def test_ordered_pairs():
    assert ordered_pairs(3) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    with pytest.raises(ValueError, match="at least 2 domains, got 1"):
        ordered_pairs(1)
    with pytest.raises(TypeError, match="n_domains must be an int"):
        ordered_pairs(2.0)


def test_cross_domain_matrices_every_pair():
    true = [np.array([0, 1]), np.array([0, 0, 1])]
    preds = {(0, 1): np.array([1, 0]), (1, 0): np.array([0, 0, 1])}
    out = cross_domain_matrices(true, preds, [2, 2])
    np.testing.assert_array_equal(out[(0, 1)], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(out[(1, 0)], [[1, 0], [0, 1]])


@pytest.mark.parametrize(
    "true,pred,ka,kb,err,match",
    [
        ([0, 3], [0, 0], 2, 2, ValueError, "true has class index 3 outside 0..1"),
        ([0, 1], [0, 5], 2, 2, ValueError, "predicted has class index 5"),
        ([0, 1], [0], 2, 2, ValueError, "true has 2 labels but predicted has 1"),
        ([[0, 1]], [0], 2, 2, ValueError, r"true must be 1-D \(N,\)"),
        ([0, 1], [[0.5, 0.5]], 2, 2, ValueError, r"soft predictions must have shape \(N, K_b\)"),
        ([0], [[2.0, -1.0]], 2, 2, ValueError, "not logits"),
        ([0], [[0.2, 0.2]], 2, 2, ValueError, "rows must sum to 1"),
        ([0.5], [0], 2, 2, TypeError, "integer class indices"),
        ([0], [0], 0, 2, ValueError, "n_classes_a must be an int >= 1"),
    ],
)
def test_bad_input(true, pred, ka, kb, err, match):
    with pytest.raises(err, match=match):
        count_matrix(true, pred, ka, kb)
