import numpy as np
import pandas as pd
import pytest

from core.metrics import best_parameters, per_pair_scores, relationship_scores, score_selection, sweep
from core.selection import METHODS, rank_rows
from core.synthetic import make_synthetic_taxonomy, sample_cross_counts

COUNTS = [2, 2]


def test_perfect_graph_scores_f1_one_and_edr_zero():
    true = {(0, 1): np.array([[0.7, 0], [0, 1.0]]), (1, 0): np.array([[1.0, 0], [0, 0]])}
    s = relationship_scores(true, true, COUNTS)
    assert s == {"edr": 0.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_hand_computed_scores_with_self_loops():
    # true: 0:0 -> 1:0 (1.0). Classes 0:1 and 1:1 have no edge -> self-loops of weight 1.
    true = {(0, 1): np.array([[1.0, 0], [0, 0]])}
    # pred: 0:0 -> 1:0 (0.5) and 0:1 -> 1:1 (0.5). Every class has an edge -> no self-loop.
    pred = {(0, 1): np.array([[0.5, 0], [0, 0.5]])}
    s = relationship_scores(pred, true, COUNTS)
    # |diff|: 0.5 (shared edge) + 0.5 (pred-only edge) + 1 + 1 (true self-loops) = 3
    # max:    1.0 + 0.5 + 1 + 1 = 3.5
    assert s["edr"] == pytest.approx(3 / 3.5)
    assert s["precision"] == pytest.approx(1 / 2)  # 1 of 2 predicted edges is true
    assert s["recall"] == pytest.approx(1 / 3)  # 1 of 3 true entries (edge + 2 self-loops)
    assert s["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_both_empty_graphs_are_identical():
    s = relationship_scores({}, {}, COUNTS)  # every class has a self-loop in both
    assert s == {"edr": 0.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_edr_is_symmetric_and_in_unit_interval(rng):
    a = {(0, 1): rng.random((2, 2)) * (rng.random((2, 2)) > 0.5)}
    b = {(0, 1): rng.random((2, 2)) * (rng.random((2, 2)) > 0.5)}
    ab, ba = relationship_scores(a, b, COUNTS), relationship_scores(b, a, COUNTS)
    assert ab["edr"] == pytest.approx(ba["edr"])
    assert 0 <= ab["edr"] <= 1
    assert ab["precision"] == pytest.approx(ba["recall"])


def test_per_pair_breakdown():
    true = {(0, 1): np.array([[1.0, 0], [0, 0]]), (1, 0): np.array([[0, 1.0], [0, 0]])}
    pred = {(0, 1): np.array([[1.0, 0], [0, 1.0]]), (1, 0): np.zeros((2, 2))}
    df = per_pair_scores(pred, true, COUNTS, domain_names=["A", "B"])
    assert list(df[["a", "b"]].itertuples(index=False, name=None)) == [("A", "B"), ("B", "A")]
    row = df.iloc[0]
    assert (row.edges_pred, row.edges_true, row.edges_shared) == (2, 1, 1)
    assert row.precision == 0.5 and row.recall == 1.0
    assert df.iloc[1].recall == 0.0


@pytest.fixture
def noisy_world(seed):
    tax = make_synthetic_taxonomy(80, 3, 40, 16, 2, 1, seed=seed)
    counts = sample_cross_counts(tax, images_per_class=30, noise=0.3, seed=seed)
    mats = {k: c / c.sum(axis=1, keepdims=True) for k, c in counts.items()}
    return tax, mats


def test_sweep_is_tidy_and_best_parameters_pick_the_max(noisy_world):
    tax, mats = noisy_world
    table = sweep(
        mats,
        tax.true_relationships(),
        tax.class_counts,
        grid={"threshold": [0.1, 0.2, 0.5], "density": [0.5, 0.9], "hypothesis": [1, 3]},
    )
    assert list(table.columns) == ["method", "param", "value", "edr", "precision", "recall", "f1"]
    assert len(table) == 3 + 1 + 1 + 2 + 2
    best = best_parameters(table)
    assert list(best["method"]) == list(METHODS)
    for _, row in best.iterrows():
        assert row.f1 == table[table.method == row.method].f1.max()
    best_edr = best_parameters(table, by="edr")
    for _, row in best_edr.iterrows():
        assert row.edr == table[table.method == row.method].edr.min()


def test_score_selection_equals_dense_path(noisy_world):
    tax, mats = noisy_world
    from core.selection import select_relationships

    ranked = {k: rank_rows(p) for k, p in mats.items()}
    fast = score_selection(ranked, tax.true_relationships(), tax.class_counts, "density", p=0.8)
    dense = relationship_scores(
        {k: select_relationships(p, "density", p=0.8) for k, p in mats.items()},
        tax.true_relationships(),
        tax.class_counts,
    )
    assert fast == pytest.approx(dense)


@pytest.mark.parametrize(
    "pred,counts,err,match",
    [
        (
            {(0, 1): np.zeros((3, 2))},
            COUNTS,
            ValueError,
            r"pred\[\(0, 1\)\] has shape \(3, 2\), but class_counts gives \(2, 2\)",
        ),
        ({(0, 0): np.zeros((2, 2))}, COUNTS, ValueError, "two different domains"),
        ({(0, 5): np.zeros((2, 2))}, COUNTS, ValueError, "two different domains in 0..1"),
        ({"ab": np.zeros((2, 2))}, COUNTS, TypeError, "keys must be pairs of domain indices"),
        ({(0, 1): np.full((2, 2), np.nan)}, COUNTS, ValueError, "NaN or inf"),
        ({(0, 1): -np.ones((2, 2))}, COUNTS, ValueError, "negative entry"),
        ({}, [2, 0], ValueError, r"class_counts\[1\] must be >= 1"),
        ({}, [], ValueError, "class_counts is empty"),
        ({}, "22", TypeError, "class_counts must be a sequence of ints"),
        ([np.zeros((2, 2))], COUNTS, TypeError, r"pred must be a dict \{\(a, b\): matrix\}"),
    ],
)
def test_bad_input(pred, counts, err, match):
    with pytest.raises(err, match=match):
        relationship_scores(pred, {}, counts)


def test_bad_sweep_arguments(noisy_world):
    tax, mats = noisy_world
    with pytest.raises(ValueError, match="unknown selection method 'best'"):
        sweep(mats, tax.true_relationships(), tax.class_counts, methods=["best"])
    with pytest.raises(ValueError, match="by must be one of"):
        best_parameters(sweep(mats, tax.true_relationships(), tax.class_counts, methods=["mcfp"]), by="auc")


def test_parameter_grids():
    from core.metrics import parameter_grid

    thesis = parameter_grid("thesis")
    assert thesis["threshold"] == tuple(round(0.05 * k, 2) for k in range(21))  # 0, 0.05, .., 1
    assert thesis["density"] == tuple(round(0.05 * k, 2) for k in range(1, 21))  # p = 0 is refused here
    assert thesis["hypothesis"] == tuple(range(1, 10))  # the thesis's upper bounds 2..10
    assert set(thesis) == {m for m, s in METHODS.items() if s.param}
    fine = parameter_grid("fine")
    assert {m: tuple(v) for m, v in fine.items()} == {m: tuple(s.grid) for m, s in METHODS.items() if s.param}
    with pytest.raises(ValueError, match="grid must be one of thesis, fine; got 'coarse'"):
        parameter_grid("coarse")


def _table(rows):
    return pd.DataFrame(rows, columns=["method", "param", "value", "edr", "precision", "recall", "f1"])


def test_best_parameters_ties_go_to_the_smallest_value():
    t = _table(
        [
            ("threshold", "t", 0.3, 0.4, 0.5, 0.5, 0.5),
            ("threshold", "t", 0.1, 0.4 + 1e-15, 0.5, 0.5, 0.5),  # float noise: a tie
            ("threshold", "t", 0.2, 0.4, 0.6, 0.6, 0.6),
            ("mcfp", "", np.nan, 0.7, 0.9, 0.1, 0.18),
        ]
    )
    assert best_parameters(t, by="edr").set_index("method").loc["threshold"].value == 0.1
    assert best_parameters(t, by="f1").set_index("method").loc["threshold"].value == 0.2
    assert list(best_parameters(t, by="edr").method) == ["threshold", "mcfp"]  # METHODS order
    with pytest.raises(ValueError, match="the sweep table is empty"):
        best_parameters(t.iloc[:0])


def test_best_on_average_reports_mean_f1_and_f1_of_means():
    from core.metrics import best_on_average, best_per_run

    # t = 0.2 is best on average by EDR although each run prefers another value
    r1 = _table([("threshold", "t", 0.1, 0.2, 1.0, 0.2, 1 / 3), ("threshold", "t", 0.2, 0.3, 1.0, 0.2, 1 / 3)])
    r2 = _table([("threshold", "t", 0.1, 0.6, 0.2, 1.0, 1 / 3), ("threshold", "t", 0.2, 0.25, 0.2, 1.0, 1 / 3)])
    per_run = best_per_run({"r1": r1, "r2": r2}, by="edr")
    assert per_run[["run", "value"]].values.tolist() == [["r1", 0.1], ["r2", 0.2]]
    avg = best_on_average({"r1": r1, "r2": r2}, by="edr").iloc[0]
    assert avg.value == 0.2 and avg.edr == pytest.approx(0.275) and avg.n_runs == 2
    assert (avg.precision, avg.recall) == pytest.approx((0.6, 0.6))
    assert avg.f1_mean == pytest.approx(1 / 3)  # mean of the runs' F1
    assert avg.f1_of_mean == pytest.approx(0.6)  # F1 of mean P = mean R = 0.6
    by_f1 = best_on_average({"r1": r1, "r2": r2}, by="f1").iloc[0]
    assert by_f1.value == 0.1  # equal mean F1: the smallest value
    with pytest.raises(ValueError, match="run 'r2' was swept on another grid"):
        best_on_average({"r1": r1, "r2": r2.iloc[:1]})
    with pytest.raises(ValueError, match="by must be one of edr, f1; got 'precision'"):
        best_on_average({"r1": r1}, by="precision")
    with pytest.raises(ValueError, match="no runs to compare"):
        best_on_average({})
