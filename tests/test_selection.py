import numpy as np
import pytest

from core._reference import select_loop
from core.selection import METHODS, Edges, rank_rows, select_edges, select_relationships

P = np.array(
    [
        [0.5, 0.3, 0.2, 0.0],
        [0.25, 0.25, 0.25, 0.25],  # all tied
        [0.0, 0.0, 0.0, 0.0],  # class without images
        [0.1, 0.45, 0.45, 0.0],  # tie at the top
    ]
)


def test_threshold_by_hand():
    w = select_relationships(P, "threshold", t=0.25)
    np.testing.assert_allclose(w, [[0.5, 0.3, 0, 0], [0.25] * 4, [0] * 4, [0, 0.45, 0.45, 0]])


def test_mcfp_ties_take_the_lowest_index_and_zero_rows_give_none():
    w = select_relationships(P, "mcfp")
    np.testing.assert_allclose(w, [[0.5, 0, 0, 0], [0.25, 0, 0, 0], [0] * 4, [0, 0.45, 0, 0]])
    wb = select_relationships(P, "mcfp_binary")
    np.testing.assert_array_equal(wb, (w > 0).astype(float))


def test_density_includes_the_crossing_element():
    # row 0: 0.5 < 0.6, 0.5 + 0.3 = 0.8 >= 0.6 -> the crossing element 0.3 is included
    w = select_relationships(P, "density", p=0.6)
    np.testing.assert_allclose(w[0], [0.5, 0.3, 0, 0])
    np.testing.assert_allclose(w[1], [0.25, 0.25, 0.25, 0])  # ties: lowest indices first
    np.testing.assert_allclose(w[3], [0, 0.45, 0.45, 0])
    # p reached exactly by the first element: nothing more
    np.testing.assert_allclose(select_relationships(P, "density", p=0.5)[0], [0.5, 0, 0, 0])


def test_hypothesis_by_hand_including_k0():
    # row [0.5, 0.5, 0, 0]: k=2 costs 0 -> two edges
    # row [0.25]*4: k=0 costs 0 (uniform) -> no edge, although k=4 would also cost 0 (ties: smallest k)
    # row [0.9, 0.1, 0, 0]: k=1 costs 0.1 + 0.1 = 0.2 < k=2 (0.4+0.4=0.8) -> one edge
    p = np.array([[0.5, 0.5, 0, 0], [0.25] * 4, [0.9, 0.1, 0, 0]])
    w = select_relationships(p, "hypothesis", k_max=4)
    np.testing.assert_allclose(w, [[0.5, 0.5, 0, 0], [0] * 4, [0.9, 0, 0, 0]])
    # k_max=1 never gives two edges
    assert (select_relationships(p, "hypothesis", k_max=1) > 0).sum(axis=1).max() == 1


def test_hypothesis_k0_wins_for_a_flat_row():
    p = np.array([[0.3, 0.25, 0.25, 0.2]])  # close to uniform: k=0 costs 0.1, k=1 costs 1.4
    assert not select_relationships(p, "hypothesis", k_max=3).any()


@pytest.mark.parametrize(
    "method,params",
    [
        ("threshold", {"t": 0.0}),
        ("threshold", {"t": 0.07}),
        ("threshold", {"t": 1.0}),
        ("mcfp", {}),
        ("mcfp_binary", {}),
        ("density", {"p": 0.3}),
        ("density", {"p": 0.9}),
        ("density", {"p": 1.0}),
        ("hypothesis", {"k_max": 1}),
        ("hypothesis", {"k_max": 5}),
    ],
)
@pytest.mark.parametrize("n_candidates,sparse_row", [(24, 128), (1, 0), (3, 0)])
def test_vectorised_equals_per_row_loop(method, params, n_candidates, sparse_row, rng):
    """The fast path (partial sort + fallbacks) agrees with an obvious per-row loop, ties included."""
    for _ in range(20):
        ka, kb = rng.integers(1, 8), rng.integers(1, 30)
        c = rng.integers(0, 5, size=(ka, kb)).astype(float)  # counts: many ties
        c[rng.random(ka) < 0.2] = 0
        p = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
        r = rank_rows(p, n_candidates=n_candidates, sparse_row=sparse_row)
        np.testing.assert_allclose(select_edges(r, method, **params).dense(), select_loop(p, method, **params))


def test_deeper_ranking_of_dense_rows(rng):
    """Dense rows whose answer lies past the candidates are ranked deeper, still exactly."""
    p = rng.dirichlet(np.full(600, 0.3), size=40)
    for method, params in [("density", {"p": 0.95}), ("threshold", {"t": 0.001}), ("hypothesis", {"k_max": 40})]:
        np.testing.assert_allclose(select_relationships(p, method, **params), select_loop(p, method, **params))


def test_mcfp_edges_are_a_subset_of_threshold_edges_below_every_row_max(rng):
    p = rng.dirichlet(np.ones(12), size=9)
    t = float(p.max(axis=1).min()) - 1e-9
    mcfp = select_relationships(p, "mcfp") > 0
    thr = select_relationships(p, "threshold", t=t) > 0
    assert np.all(thr[mcfp])
    assert mcfp.sum() == 9


@pytest.mark.parametrize("method", list(METHODS))
def test_weights_come_from_p_and_shape_is_kept(method, rng):
    p = rng.dirichlet(np.ones(6), size=5)
    w = select_relationships(p, method)
    assert w.shape == p.shape
    sel = w > 0
    expected = 1.0 if method == "mcfp_binary" else p[sel]
    np.testing.assert_allclose(w[sel], expected)


def test_rows_summing_above_one_are_normalised_with_a_warning():
    with pytest.warns(UserWarning, match=r"1 row\(s\) sum to more than 1 \(row 0 sums to 4\)"):
        w = select_relationships([[3.0, 1.0], [0.5, 0.5]], "mcfp")
    np.testing.assert_allclose(w, [[0.75, 0], [0.5, 0]])


def test_sub_stochastic_rows_are_used_as_they_are():
    w = select_relationships([[0.4, 0.2, 0.0]], "threshold", t=0.1)
    np.testing.assert_allclose(w, [[0.4, 0.2, 0.0]])


def test_edges_round_trip():
    e = select_edges(P, "threshold", t=0.2)
    np.testing.assert_allclose(Edges.from_dense(e.dense()).dense(), e.dense())


@pytest.mark.parametrize(
    "p,method,params,err,match",
    [
        (P, "median", {}, ValueError, "unknown selection method 'median'; valid: threshold, mcfp"),
        (P, "threshold", {"t": 1.5}, ValueError, r"t must be in \[0, 1\], got 1.5"),
        (P, "threshold", {"t": -0.1}, ValueError, r"t must be in \[0, 1\]"),
        (P, "threshold", {"t": "0.3"}, TypeError, "t must be a number, got '0.3'"),
        (P, "density", {"p": 0.0}, ValueError, r"p must be in \(0, 1\], got 0.0"),
        (P, "hypothesis", {"k_max": 0}, ValueError, r"k_max must be in \[1, 100000\], got 0"),
        (P, "hypothesis", {"k_max": 2.5}, TypeError, "k_max must be an int"),
        (P, "mcfp", {"t": 0.3}, ValueError, "method 'mcfp' takes no parameters"),
        ([[np.nan, 1.0]], "mcfp", {}, ValueError, r"NaN or inf entry at \(0, 0\)"),
        ([[np.inf, 1.0]], "mcfp", {}, ValueError, "NaN or inf"),
        ([[-0.1, 1.1]], "mcfp", {}, ValueError, r"negative entry at \(0, 0\): -0.1"),
        ([0.5, 0.5], "mcfp", {}, ValueError, r"must be 2-D \(K_a, K_b\), got shape \(2,\)"),
        (np.zeros((0, 3)), "mcfp", {}, ValueError, "at least one row and one column"),
        ("P", "mcfp", {}, TypeError, "must be a 2-D numeric array, got str"),
        ([["a", "b"]], "mcfp", {}, TypeError, "must be a 2-D numeric array"),
    ],
)
def test_bad_input(p, method, params, err, match):
    with pytest.raises(err, match=match):
        select_relationships(p, method, **params)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_matrix_and_its_ranking_give_the_same_edges_in_the_same_order(method, rng):
    c = rng.integers(0, 4, size=(7, 11)).astype(float)
    p = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    direct, ranked = select_edges(p.tolist(), method), select_edges(rank_rows(p, n_candidates=2, sparse_row=0), method)
    for a, b in [(direct.rows, ranked.rows), (direct.cols, ranked.cols), (direct.weights, ranked.weights)]:
        np.testing.assert_array_equal(a, b)
