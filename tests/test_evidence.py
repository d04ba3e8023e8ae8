"""Edge evidence without a ground truth (core/evidence.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.evidence import (
    COLUMNS,
    HIGH,
    RELATIONS,
    direction_confidence,
    edge_table,
    label_free_indicators,
    relation_confidence,
    relation_type,
    wilson_interval,
)
from core.selection import Edges

# Hand-made pair of two 3-class domains, as COUNTS of 100 test images per class:
#   0:0 -> 1:0  80 % of 0:0, and 1:0 -> 0:0 90 %         -> equivalent
#   0:1 -> 1:1  90 % of 0:1, but 1:1 -> 0:1 only 30 %     -> narrower (0:1 is part of 1:1)
#   0:1 -> 1:2  10 % of 0:1, but 1:2 -> 0:1 100 %         -> broader  (1:2 is part of 0:1)
#   0:0 -> 1:1  20 % of 0:0, and 1:1 -> 0:0 30 %          -> overlap
N = 100
C01 = np.array([[80, 20, 0], [0, 90, 10], [0, 0, 100]], dtype=float)
C10 = np.array([[90, 0, 10], [30, 30, 40], [0, 100, 0]], dtype=float)
COUNTS = [np.full(3, N), np.full(3, N)]


def _pair(c01: np.ndarray = C01, c10: np.ndarray = C10) -> dict[tuple[int, int], np.ndarray]:
    return {(0, 1): c01, (1, 0): c10}


def _row(df: pd.DataFrame, a: int, i: int, b: int, j: int) -> pd.Series:
    hit = df[(df.a == a) & (df.i == i) & (df.b == b) & (df.j == j)]
    assert len(hit) == 1, f"expected one row for {(a, i, b, j)}, got {len(hit)}"
    return hit.iloc[0]


# ----------------------------------------------------------------------------- Wilson interval


def test_wilson_interval_known_values_and_vectorised() -> None:
    lo, hi = wilson_interval(1, 1)
    assert lo == pytest.approx(1 / (1 + 1.96**2))  # k = n: lo = n / (n + z^2)
    assert hi == pytest.approx(1.0)
    lo, hi = wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert lo.shape == hi.shape == (3,)
    # textbook value for 5 of 10 at 95 %: [0.2366, 0.7634]
    assert lo[1] == pytest.approx(0.2366, abs=1e-4) and hi[1] == pytest.approx(0.7634, abs=1e-4)
    # mirror symmetry: lo(k, n) = 1 - hi(n - k, n)
    assert lo[0] == pytest.approx(1 - hi[2]) and hi[0] == pytest.approx(1 - lo[2])


def test_wilson_interval_no_images_is_uninformative_and_narrows_with_n() -> None:
    lo, hi = wilson_interval(0, 0)
    assert (float(lo), float(hi)) == (0.0, 1.0)
    lo, hi = wilson_interval(np.array([3, 30, 300]), np.array([10, 100, 1000]))
    assert np.all(np.diff(hi - lo) < 0)
    assert np.all((lo < 0.3) & (hi > 0.3))


@pytest.mark.parametrize(
    ("k", "n", "z", "exc", "match"),
    [
        (5, 4, 1.96, ValueError, r"k must lie in \[0, n\].*k=5"),
        (-1, 4, 1.96, ValueError, r"k must lie in \[0, n\]"),
        (1, -2, 1.96, ValueError, "n must be >= 0"),
        (1, 2, 0.0, ValueError, "z must be a finite number > 0"),
        (1, 2, True, TypeError, "z must be a number"),
        (1, 2, np.nan, ValueError, "z must be a finite number"),
        ("a", 2, 1.96, TypeError, "k and n must be numeric"),
        (np.nan, 2, 1.96, ValueError, "k and n must be finite"),
    ],
)
def test_wilson_interval_rejects_bad_input(k: object, n: object, z: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        wilson_interval(k, n, z)


# ----------------------------------------------------------------------------- relation type


def test_relation_type_four_cases_from_hand_made_matrices() -> None:
    df = edge_table(_pair(), COUNTS)
    assert _row(df, 0, 0, 1, 0).relation == "equivalent"
    assert _row(df, 0, 1, 1, 1).relation == "narrower"
    assert _row(df, 0, 1, 1, 2).relation == "broader"
    assert _row(df, 0, 0, 1, 1).relation == "overlap"
    r = _row(df, 0, 1, 1, 1)
    assert (r.p_ab, r.p_ba, r.n_ab, r.n_ba) == pytest.approx((0.9, 0.3, N, N))


def test_relation_type_threshold_is_inclusive_and_constant_used() -> None:
    got = relation_type([HIGH, HIGH - 1e-9, HIGH, 0.0], [HIGH, HIGH, 0.0, HIGH - 1e-9])
    assert list(got) == ["equivalent", "broader", "narrower", "overlap"]
    assert set(RELATIONS) == {"equivalent", "narrower", "broader", "overlap"}


def test_count_and_share_matrices_give_the_same_table() -> None:
    shares = {(0, 1): C01 / C01.sum(axis=1, keepdims=True), (1, 0): C10 / C10.sum(axis=1, keepdims=True)}
    a = edge_table(_pair(), COUNTS)
    b = edge_table(shares, COUNTS)
    pd.testing.assert_frame_equal(a, b)
    assert _row(a, 1, 1, 0, 0).p_ab == pytest.approx(0.3)


def test_rows_summing_to_less_than_one_are_kept() -> None:
    soft = {(0, 1): np.array([[0.4, 0.0], [0.0, 0.4]]), (1, 0): np.array([[0.4, 0.0], [0.0, 0.4]])}
    df = edge_table(soft, [np.array([10, 10]), np.array([10, 10])])
    assert df.p_ab.tolist() == pytest.approx([0.4, 0.4, 0.4, 0.4])
    assert set(df.relation) == {"overlap"}


def test_columns_and_dtypes() -> None:
    df = edge_table(_pair(), COUNTS)
    assert list(df.columns) == COLUMNS
    for col in ("a", "i", "b", "j", "n_ab", "n_ba"):
        assert df[col].dtype == np.int64, col
    assert df.p_ab.dtype == df.p_ba.dtype == df.confidence.dtype == np.float64
    assert df.confidence.between(0, 1).all()
    assert list(df.sort_values(["a", "b", "i", "j"]).index) == list(df.index)


def test_min_p_decides_the_candidates() -> None:
    df = edge_table(_pair(), COUNTS, min_p=0.5)
    got = set(map(tuple, df[df.a == 0][["i", "j"]].to_numpy()))
    # P01 >= .5: (0,0), (1,1), (2,2); P10.T >= .5: (0,0), and (1,2) although P01[1,2] = .1
    assert got == {(0, 0), (1, 1), (2, 2), (1, 2)}
    assert len(df) == 2 * len(got)
    # min_p = 1: only the two 1.0 entries, each listed in both orientations
    assert len(edge_table(_pair(), COUNTS, min_p=1.0)) == 4
    assert len(edge_table(_pair(), COUNTS)) > len(df)


def test_optional_name_and_selected_columns() -> None:
    w01 = np.array([[0.8, 0, 0], [0, 0.9, 0], [0, 0, 1.0]])
    df = edge_table(
        _pair(),
        COUNTS,
        selected={(0, 1): w01},
        class_names=[["cat", "dog", "pup"], ["feline", "canine", "puppy"]],
        domain_names=["A", "B"],
    )
    assert list(df.columns) == COLUMNS + ["class_a", "class_b", "domain_a", "domain_b", "selected"]
    r = _row(df, 0, 1, 1, 2)
    assert (r.class_a, r.class_b, r.domain_a, r.domain_b, r.selected) == ("dog", "puppy", "A", "B", False)
    assert _row(df, 0, 1, 1, 1).selected and _row(df, 0, 0, 1, 0).selected
    assert not df[df.a == 1].selected.any()  # (1, 0) has no selection: nothing selected
    assert df.selected.dtype == bool
    edges = edge_table(_pair(), COUNTS, selected={(0, 1): Edges.from_dense(w01)})
    pd.testing.assert_series_equal(edges.selected, df.selected)


def test_empty_table_keeps_columns() -> None:
    z = {(0, 1): np.zeros((2, 2)), (1, 0): np.zeros((2, 2))}
    df = edge_table(
        z,
        [np.array([1, 1]), np.array([1, 1])],
        selected={},
        domain_names=["A", "B"],
        class_names=[["x", "y"], ["u", "v"]],
    )
    assert len(df) == 0
    assert list(df.columns) == COLUMNS + ["class_a", "class_b", "domain_a", "domain_b", "selected"]


# ----------------------------------------------------------------------------- confidence


def test_one_image_is_never_certain() -> None:
    assert float(direction_confidence(1.0, 1)) < 0.5
    assert float(direction_confidence(0.0, 1)) < 0.5
    one = {(0, 1): np.array([[1.0]]), (1, 0): np.array([[1.0]])}
    df = edge_table(one, [np.array([1]), np.array([1])])
    assert df.relation.tolist() == ["equivalent", "equivalent"]
    assert (df.confidence < 0.5).all()
    # one image on one side caps the edge even when the other side has many
    assert float(relation_confidence(1.0, 1, 1.0, 10_000)) < 0.5


@pytest.mark.parametrize(("p_ab", "p_ba"), [(0.9, 0.95), (0.9, 0.2), (0.1, 0.8), (0.2, 0.3)])
def test_confidence_grows_with_counts(p_ab: float, p_ba: float) -> None:
    n = np.array([2, 5, 10, 30, 100])
    conf = relation_confidence(p_ab, n, p_ba, n)
    assert np.all(np.diff(conf) > 0), conf
    assert conf[-1] > 0.95 and conf[0] < 0.5


def test_confidence_known_value_and_product_rule() -> None:
    from scipy.stats import norm

    # 9 of 10 against HIGH = .5: z = (|9 - 5| - 1/2) / sqrt(10 * .25)
    z = 3.5 / np.sqrt(2.5)
    assert float(direction_confidence(0.9, 10)) == pytest.approx(2 * norm.cdf(z) - 1)
    df = edge_table(_pair(), COUNTS)
    expected = direction_confidence(df.p_ab.to_numpy(), df.n_ab.to_numpy()) * direction_confidence(
        df.p_ba.to_numpy(), df.n_ba.to_numpy()
    )
    np.testing.assert_allclose(df.confidence, expected)
    assert 0 < df.confidence.min() < df.confidence.max() <= 1


def test_confidence_is_zero_at_the_threshold_and_without_images() -> None:
    assert float(direction_confidence(HIGH, 10_000)) == 0.0
    assert float(direction_confidence(0.9, 0)) == 0.0
    assert float(direction_confidence(HIGH + 0.05, 10_000)) > 0.99


def test_confidence_grows_with_counts_in_the_table() -> None:
    small = edge_table(_pair(C01 / 10, C10 / 10), [np.full(3, 10), np.full(3, 10)])
    big = edge_table(_pair(C01 * 10, C10 * 10), [np.full(3, 1000), np.full(3, 1000)])
    assert small.relation.tolist() == big.relation.tolist()
    assert np.all(big.confidence.to_numpy() > small.confidence.to_numpy())


def test_swapping_the_two_classes_mirrors_the_relation() -> None:
    rng = np.random.default_rng(3)
    p01 = rng.dirichlet(np.full(7, 0.3), size=5)
    p10 = rng.dirichlet(np.full(5, 0.3), size=7)
    counts = [rng.integers(1, 60, size=5), rng.integers(1, 60, size=7)]
    df = edge_table({(0, 1): p01, (1, 0): p10}, counts)
    fwd = df[df.a == 0].set_index(["i", "j"]).sort_index()
    rev = df[df.a == 1].rename(columns={"i": "j", "j": "i"}).set_index(["i", "j"]).sort_index()
    assert len(fwd) == len(rev) > 0
    assert fwd.index.equals(rev.index)
    swap = {"narrower": "broader", "broader": "narrower", "equivalent": "equivalent", "overlap": "overlap"}
    assert fwd.relation.map(swap).tolist() == rev.relation.tolist()
    assert set(fwd.relation) >= {"narrower", "broader"}  # the test covers both swapped types
    np.testing.assert_allclose(fwd.confidence, rev.confidence)
    np.testing.assert_allclose(fwd.p_ab, rev.p_ba)
    np.testing.assert_array_equal(fwd.n_ab, rev.n_ba)


def test_candidates_are_sparse_on_1000_by_1000() -> None:
    rng = np.random.default_rng(0)
    k, nnz = 1000, 3000
    p01, p10 = np.zeros((k, k)), np.zeros((k, k))
    r, c = rng.integers(0, k, nnz), rng.integers(0, k, nnz)
    p01[r, c] = rng.uniform(0, 0.2, nnz)
    r2, c2 = rng.integers(0, k, nnz), rng.integers(0, k, nnz)
    p10[r2, c2] = rng.uniform(0, 0.2, nnz)
    p01 /= np.maximum(1.0, p01.sum(axis=1, keepdims=True))  # shares: rows sum to <= 1
    p10 /= np.maximum(1.0, p10.sum(axis=1, keepdims=True))
    # independent count of the expected candidates of pair (0, 1)
    fwd = {(int(i), int(j)) for i, j in zip(r, c) if p01[i, j] >= 0.05}
    back = {(int(j), int(i)) for i, j in zip(r2, c2) if p10[i, j] >= 0.05}
    expected = len(fwd | back)
    df = edge_table({(0, 1): p01, (1, 0): p10}, [np.full(k, 40), np.full(k, 40)])
    assert (df.a == 0).sum() == expected
    assert len(df) == 2 * expected
    assert expected < 0.01 * k * k


# ----------------------------------------------------------------------------- edge_table errors


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"P": {(0, 1): C01}}, ValueError, r"lacks the reverse pair\(s\) \[\(1, 0\)\]"),
        ({"P": {}}, ValueError, "P is empty"),
        ({"P": {(0, 1): C01[:2], (1, 0): C10}}, ValueError, r"P\[\(0, 1\)\] has shape \(2, 3\)"),
        ({"P": {(0, 0): np.eye(3), (1, 0): C10}}, ValueError, "two different domains"),
        ({"P": [C01]}, TypeError, "P must be a dict"),
        ({"P": {(0, 1): -C01, (1, 0): C10}}, ValueError, "negative entry"),
        ({"counts": [np.array([N, N, N])]}, ValueError, "at least 2 domains"),
        ({"counts": np.array([1, 2])}, TypeError, "counts must be a list"),
        ({"counts": [np.array([N, N, -1]), COUNTS[1]]}, ValueError, r"counts\[0\] has a negative count"),
        ({"counts": [np.array([1.5, 2.0, 1.0]), COUNTS[1]]}, TypeError, r"counts\[0\] must hold whole"),
        ({"counts": [np.array([True, True, True]), COUNTS[1]]}, TypeError, r"counts\[0\] must hold integers"),
        ({"counts": [np.array([[N, N, N]]), COUNTS[1]]}, ValueError, r"counts\[0\] must be a non-empty 1-D"),
        ({"counts": [np.array([N, N]), COUNTS[1]]}, ValueError, r"P\[\(0, 1\)\] has shape \(3, 3\)"),
        ({"min_p": 0.0}, ValueError, r"min_p must be in \(0, 1\], got 0.0"),
        ({"min_p": 1.5}, ValueError, "min_p must be in"),
        ({"min_p": True}, TypeError, "min_p must be a number"),
        ({"class_names": [["a", "b", "c"]]}, ValueError, "class_names has 1 domains but counts has 2"),
        ({"class_names": [["a"], ["x", "y", "z"]]}, ValueError, r"class_names\[0\] must list 3 names"),
        ({"class_names": "ab"}, TypeError, "class_names must be a list"),
        ({"domain_names": ["A"]}, ValueError, "domain_names has 1 names but counts has 2"),
        ({"selected": {(0, 1): np.ones((2, 3))}}, ValueError, r"selected\[\(0, 1\)\] has shape"),
        ({"selected": {(0, 1): np.full((3, 3), np.nan)}}, ValueError, "NaN or inf"),
    ],
)
def test_edge_table_rejects_bad_input(kwargs: dict, exc: type, match: str) -> None:
    args = {"P": _pair(), "counts": COUNTS, **kwargs}
    with pytest.raises(exc, match=match):
        edge_table(args.pop("P"), args.pop("counts"), **args)


@pytest.mark.parametrize(
    ("p", "n", "match"),
    [
        (1.2, 10, r"p must hold proportions in \[0, 1\]"),
        (-0.1, 10, "p must hold proportions"),
        (0.5, -1, "n must be >= 0"),
    ],
)
def test_direction_confidence_rejects_bad_input(p: float, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        direction_confidence(p, n)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\), got 1.0"):
        direction_confidence(0.5, 10, threshold=1.0)


# ----------------------------------------------------------------------------- label-free indicators


W01 = np.array([[0.9, 0, 0], [0, 0.8, 0.2]])
W10 = np.array([[0.7, 0], [0, 0], [0, 0.6]])
M0 = np.array([[1, 0, 0, 0], [0, 1, 1, 0]])  # 0:1 splits into two universal classes
M1 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])  # 1:2 splits too


def test_label_free_indicators_hand_made() -> None:
    got = label_free_indicators({(0, 1): W01, (1, 0): W10}, [2, 3], [M0, M1])
    # edges 0:0->1:0, 0:1->1:1, 0:1->1:2, 1:0->0:0, 1:2->0:1: five; reverses selected for
    # 0:0<->1:0 (2 edges) and 0:1<->1:2 (2 edges); 0:1->1:1 has no reverse
    assert got["n_edges"] == 5
    assert got["bidirectional_agreement"] == pytest.approx(4 / 5)
    assert got["split_share"] == pytest.approx(2 / 5)
    assert got["n_universal"] == 4


def test_label_free_indicators_edges_input_and_no_mappings() -> None:
    got = label_free_indicators({(0, 1): Edges.from_dense(W01), (1, 0): W10}, [2, 3])
    assert set(got) == {"n_edges", "bidirectional_agreement"}
    assert got["n_edges"] == 5 and got["bidirectional_agreement"] == pytest.approx(0.8)
    one_way = label_free_indicators({(0, 1): W01}, [2, 3])
    assert one_way == {"n_edges": 3, "bidirectional_agreement": 0.0}


def test_label_free_indicators_without_edges() -> None:
    got = label_free_indicators({}, [2, 3])
    assert got["n_edges"] == 0 and np.isnan(got["bidirectional_agreement"])


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (({(0, 1): W01.T}, [2, 3], None), ValueError, r"selected\[\(0, 1\)\] has shape \(3, 2\)"),
        (({(0, 2): W01}, [2, 3], None), ValueError, "two different domains in 0..1"),
        (({}, [2, 0], None), ValueError, r"class_counts\[1\] must be >= 1"),
        (({}, [2, 3], [M0]), ValueError, "mappings has 1 matrices but class_counts has 2"),
        (({}, [2, 3], [M0, M1[:, :3]]), ValueError, r"mappings\[1\] has shape \(3, 3\), expected \(3, 4\)"),
        (({}, [2, 3], M0), TypeError, "mappings must be a list"),
        (({}, [2, 3], [M0, -M1]), ValueError, r"mappings\[1\] has a negative entry"),
    ],
)
def test_label_free_indicators_rejects_bad_input(args: tuple, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        label_free_indicators(*args)


def test_a_selected_edge_is_a_row_even_without_evidence() -> None:
    """A selected edge below the candidate floor both ways is still listed (evidence 0), so a
    taxonomy's relationships all have a row; unselected ones below the floor are not."""
    P = {(0, 1): np.array([[10.0, 0.0], [0.0, 10.0]]), (1, 0): np.array([[10.0, 0.0], [0.0, 10.0]])}
    W = {(0, 1): np.array([[0.0, 0.7], [0.0, 0.0]])}  # 0:0 -> 1:1, never predicted
    df = edge_table(P, [np.array([10, 10]), np.array([10, 10])], selected=W)
    row = df[(df.a == 0) & (df.i == 0) & (df.b == 1) & (df.j == 1)]
    assert len(row) == 1 and bool(row["selected"].iloc[0]) and row["p_ab"].iloc[0] == 0.0
    assert len(df[(df.a == 0) & (df.i == 1) & (df.b == 1) & (df.j == 0)]) == 0
    assert int(df["selected"].sum()) == 1
