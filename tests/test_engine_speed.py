"""The fast per-call selection path (core.selection: blocks, sparse/dense kinds, remembered work)
and the one-pass scoring scan (core.metrics) give exactly what the references give, ties included."""

import gc
import os
import signal
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import core._validation as validation
import core.selection as selection
from core._reference import select_loop
from core.metrics import relationship_scores
from core.selection import DENSE_EDGES, PREPARED, Edges, rank_rows, select_edges, select_relationships

CASES = [
    ("threshold", {"t": 0.0}),
    ("threshold", {"t": 0.05}),
    ("threshold", {"t": 0.25}),
    ("threshold", {"t": 1.0}),
    ("mcfp", {}),
    ("mcfp_binary", {}),
    ("density", {"p": 1e-10}),
    ("density", {"p": 0.3}),
    ("density", {"p": 0.5}),
    ("density", {"p": 0.8}),
    ("density", {"p": 1.0}),
    ("hypothesis", {"k_max": 1}),
    ("hypothesis", {"k_max": 3}),
    ("hypothesis", {"k_max": 4}),
    ("hypothesis", {"k_max": 12}),
]

# Settings that force each way through the engine: blocks of a few rows, dense or sparse kinds,
# prefix steps shorter than the answer, hypothesis by partial sort or by argmax.
PATHS = {
    "defaults": {},
    "dense kind, tiny blocks, short steps": {
        "SPARSE_ROW": 0,
        "SAMPLE_ROWS": 1,
        "PREFIX_STEPS": (1, 3),
        "SMALL_TOP": 0,
        "BLOCK_BYTES": 8 * 3 * 40,
    },
    "dense kind, argmax picks": {"SPARSE_ROW": 0, "SAMPLE_ROWS": 1, "SMALL_TOP": 8, "BLOCK_BYTES": 8 * 5 * 40},
    "sparse kind, dense rows inside": {"SPARSE_ROW": 3, "SAMPLE_ROWS": 2, "PREFIX_STEPS": (2,), "SMALL_TOP": 2},
    "sparse kind only, one-row blocks": {"SPARSE_ROW": 10_000, "BLOCK_BYTES": 1},
    "dense kind on two threads, tiny blocks": {
        "SPARSE_ROW": 0,
        "SAMPLE_ROWS": 1,
        "BLOCK_BYTES": 8 * 2 * 40,
        "WORKERS": 2,
        "PARALLEL_BYTES": 0,
    },
}


@pytest.fixture(autouse=True)
def fresh_memos():
    PREPARED.clear()
    DENSE_EDGES.clear()
    yield
    PREPARED.clear()
    DENSE_EDGES.clear()


def use_path(monkeypatch, name: str) -> None:
    for key, value in PATHS[name].items():
        monkeypatch.setattr(
            validation if key in ("BLOCK_BYTES", "WORKERS", "PARALLEL_BYTES") else selection, key, value
        )


def tie_heavy(rng: np.random.Generator, kind: int) -> np.ndarray:
    """A random P with many ties: counts, repeated values, all-zero rows, rows summing < 1."""
    ka, kb = int(rng.integers(1, 12)), int(rng.integers(1, 40))
    if kind == 0:  # counts of a few images: ties everywhere, all-zero rows
        c = rng.integers(0, int(rng.integers(1, 6)), size=(ka, kb)).astype(float)
        c[rng.random(ka) < 0.2] = 0
        return c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    if kind == 1:  # sparse counts with some dense rows
        c = (rng.random((ka, kb)) < 0.1) * rng.integers(1, 4, size=(ka, kb))
        dense = rng.random(ka) < 0.3
        c[dense] = rng.integers(0, 3, size=(int(dense.sum()), kb))
        return c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    if kind == 2:  # a few repeated values, rows summing to less than 1
        v = rng.choice([0.0, 0.01, 0.02, 0.05, 0.1, 0.25], size=(ka, kb))
        s = v.sum(axis=1, keepdims=True)
        return np.where(s > 1, v / np.maximum(s, 1e-300) * 0.9, v)
    if kind == 3:  # uniform rows (hypothesis: k = 0 ties k = K_b) and exact halves
        p = np.full((ka, kb), 1.0 / kb)
        p[rng.random(ka) < 0.5, :] = 0
        if kb >= 2:
            p[0, :] = 0
            p[0, :2] = 0.5
        return p
    p = rng.dirichlet(np.full(kb, rng.choice([0.05, 0.5, 2.0])), size=ka)  # soft, then quantised
    return np.round(p * 32) / 32 if kind == 5 else p


@pytest.mark.parametrize("path", list(PATHS))
def test_every_method_equals_the_reference_on_tie_heavy_matrices(path, monkeypatch, rng):
    use_path(monkeypatch, path)
    for trial in range(60):
        p = tie_heavy(rng, trial % 6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # quantised rows may sum a hair above 1
            for method, params in CASES:
                want = select_loop(selection.as_probability_matrix(p), method, **params)
                got = select_relationships(p, method, **params)
                np.testing.assert_array_equal(got, want, err_msg=f"{path} {method} {params} trial {trial}")
                again = select_relationships(p, method, **params)  # remembered work, where there is some
                np.testing.assert_array_equal(again, want)


def test_blocks_mixing_sparse_and_dense_rows(monkeypatch, rng):
    """Counts in the first rows, soft rows after: blocks of either kind in one matrix."""
    monkeypatch.setattr(validation, "BLOCK_BYTES", 8 * 30 * 4)  # 4 rows a block
    monkeypatch.setattr(selection, "SPARSE_ROW", 10)
    c = (rng.random((12, 30)) < 0.1) * rng.integers(1, 5, size=(12, 30)).astype(float)
    c[:, 0] += 1
    p = c / c.sum(axis=1, keepdims=True)
    p[6:] = rng.dirichlet(np.ones(30), size=6)
    for method, params in CASES:
        np.testing.assert_array_equal(select_relationships(p, method, **params), select_loop(p, method, **params))
    assert len(PREPARED) == 0  # not all sparse: nothing remembered


def test_dense_rows_deeper_than_every_prefix_step(rng):
    """Soft rows whose density prefix needs a full sort, and hypothesis beyond the argmax picks."""
    p = rng.dirichlet(np.full(700, 0.5), size=30)
    for method, params in [("density", {"p": 0.97}), ("hypothesis", {"k_max": 40}), ("threshold", {"t": 0.001})]:
        np.testing.assert_array_equal(select_relationships(p, method, **params), select_loop(p, method, **params))


def test_edges_are_row_major_for_every_method_and_path(rng):
    c = rng.integers(0, 4, size=(9, 17)).astype(float)
    p = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    for source in (p, rank_rows(p, n_candidates=1, sparse_row=0)):
        for method, params in CASES:
            e = select_edges(source, method, **params)
            keys = e.rows * 17 + e.cols
            assert np.all(np.diff(keys) > 0), (method, params)


def test_a_sparse_matrix_passed_again_is_not_scanned_again(monkeypatch, rng):
    c = rng.integers(0, 3, size=(20, 50)) * (rng.random((20, 50)) < 0.2)
    p = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    calls = []
    real = selection._sparse_of
    monkeypatch.setattr(selection, "_sparse_of", lambda *a: calls.append(1) or real(*a))
    first = select_relationships(p, "density", p=0.6)
    n_first = len(calls)
    assert n_first >= 1 and len(PREPARED) == 1
    for method, params in CASES:
        np.testing.assert_array_equal(select_relationships(p, method, **params), select_loop(p, method, **params))
    np.testing.assert_array_equal(select_relationships(p, "density", p=0.6), first)
    assert len(calls) == n_first  # every later call reused the first one's work


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.__setitem__((0, np.flatnonzero(p[0])[0]), 0.0),  # a non-zero becomes 0
        lambda p: p.__setitem__((1, np.flatnonzero(p[1] == 0)[0]), 0.05),  # a zero becomes non-zero
        lambda p: p.__setitem__((2, np.flatnonzero(p[2])[:2]), p[2, np.flatnonzero(p[2])[:2][::-1]]),  # swap
        lambda p: p[3:4].__setitem__(slice(None), np.roll(p[3], 1)),  # through a view: the row moves
        lambda p: p.__setitem__((slice(None), slice(None)), p[::-1]),  # every row moves: same sums
    ],
)
def test_a_matrix_changed_in_place_is_selected_afresh(change, rng):
    c = rng.integers(1, 4, size=(6, 40)) * (rng.random((6, 40)) < 0.3)
    c[:, 0] += 1
    c[:, 1] += 2
    p = c / c.sum(axis=1, keepdims=True)
    before = [select_relationships(p, m, **prm) for m, prm in CASES]
    assert len(PREPARED) == 1
    change(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a row may now sum above 1: normalised
        want = [select_loop(selection.as_probability_matrix(p), m, **prm) for m, prm in CASES]
        for (method, params), w in zip(CASES, want):
            np.testing.assert_array_equal(select_relationships(p, method, **params), w)
    assert any(not np.array_equal(b, w) for b, w in zip(before, want))


def test_a_nan_written_after_the_first_call_is_still_refused():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    select_relationships(p, "mcfp")
    p[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf entry at \(1, 2\)"):
        select_relationships(p, "mcfp")


def test_a_reshaped_matrix_is_not_mistaken_for_the_old_one():
    p = np.zeros((4, 6))
    p[:, 0] = 1.0
    p[0, 1] = 0.0
    select_relationships(p, "mcfp")
    p.shape = (6, 4)  # same memory, same non-zeros, other rows
    np.testing.assert_array_equal(select_relationships(p, "mcfp"), select_loop(p, "mcfp"))


def test_only_arrays_the_check_can_read_are_remembered(rng):
    c = rng.integers(0, 3, size=(5, 8)).astype(float)
    c[:, 0] += 1
    p = c / c.sum(axis=1, keepdims=True)
    for other in (p.tolist(), p.astype(np.float32), np.asfortranarray(p), p[::2], p[:, :4]):
        np.testing.assert_array_equal(select_relationships(other, "mcfp"), select_loop(np.asarray(other), "mcfp"))
    assert len(PREPARED) == 0  # converted or strided: nothing the check could read in place
    rows = p[1:3]  # a C-contiguous view is an array of its own
    select_relationships(rows, "mcfp")
    assert len(PREPARED) == 1
    p[1, 0] = 0.0  # written through its base: seen
    np.testing.assert_array_equal(select_relationships(rows, "mcfp"), select_loop(rows, "mcfp"))
    PREPARED.clear()
    with pytest.warns(UserWarning, match=r"5 row\(s\) sum to more than 1 \(row 0 sums to"):
        w = select_relationships(c, "mcfp")  # counts: normalised copies, nothing to remember
    assert len(PREPARED) == 0
    np.testing.assert_array_equal(w, select_loop(p, "mcfp"))


def test_remembered_work_goes_with_its_matrix_and_within_its_budget(monkeypatch, rng):
    mats = [np.eye(30)[rng.permutation(30)] for _ in range(4)]
    for m in mats:
        select_relationships(m, "mcfp")
    assert len(PREPARED) == 4
    del mats[0]
    gc.collect()
    assert len(PREPARED) == 3
    monkeypatch.setattr(PREPARED, "max_bytes", 2 * PREPARED._items[next(iter(PREPARED._items))].nbytes)
    select_relationships(np.eye(30), "mcfp")
    assert len(PREPARED) <= 2  # the oldest went


def test_scores_follow_a_w_changed_after_selection(rng):
    c = rng.integers(0, 3, size=(8, 8)).astype(float)
    c[:, 0] += 1
    p = c / c.sum(axis=1, keepdims=True)
    true = {(0, 1): np.eye(8), (1, 0): np.eye(8)}
    w = select_relationships(p, "threshold", t=0.2)
    pred = {(0, 1): w, (1, 0): select_relationships(p.T.copy() / 8, "mcfp")}
    first = relationship_scores(pred, true, [8, 8])
    assert len(DENSE_EDGES) >= 2
    w[:] = np.eye(8)  # now the truth itself
    second = relationship_scores(pred, true, [8, 8])
    assert second != first
    assert second == relationship_scores({k: v.copy() for k, v in pred.items()}, true, [8, 8])
    true[(0, 1)][0, 1] = 0.5  # a truth changed between calls
    assert relationship_scores(pred, true, [8, 8]) == relationship_scores(
        {k: v.copy() for k, v in pred.items()}, {k: v.copy() for k, v in true.items()}, [8, 8]
    )
    w[2, 3] = -1.0
    with pytest.raises(ValueError, match=r"pred\[\(0, 1\)\] has a negative entry at \(2, 3\): -1.0"):
        relationship_scores(pred, true, [8, 8])


def test_scores_equal_with_edges_in_any_order(rng):
    true = {(0, 1): (rng.random((6, 5)) < 0.3).astype(float)}
    w = rng.random((6, 5)) * (rng.random((6, 5)) < 0.4)
    e = Edges.from_dense(w)
    order = rng.permutation(e.rows.size)
    shuffled = Edges(e.rows[order], e.cols[order], e.weights[order], e.shape)
    want = relationship_scores({(0, 1): w}, true, [6, 5])
    assert relationship_scores({(0, 1): shuffled}, true, [6, 5]) == pytest.approx(want, abs=1e-15)
    assert relationship_scores({(0, 1): e}, true, [6, 5]) == want


@pytest.mark.parametrize(
    "w,match",
    [
        ([[-1.0, 0.5], [0.0, np.nan]], r"NaN or inf entry at \(1, 1\): nan"),  # NaN named before the negative
        ([[0.0, 0.5], [-1.0, np.inf]], r"NaN or inf entry at \(1, 1\): inf"),
        ([[0.0, 0.5], [-1.0, 0.0]], r"negative entry at \(1, 0\): -1.0"),
    ],
)
def test_one_pass_scan_names_the_entry_as_before(w, match, monkeypatch):
    monkeypatch.setattr(validation, "BLOCK_BYTES", 8)  # one row a block
    with pytest.raises(ValueError, match=match):
        validation.nonzero_entries(w, name="W")
    with pytest.raises(ValueError, match=match):
        validation.as_matrix(w, name="W")
    with pytest.raises(ValueError, match=match):
        select_relationships(w, "mcfp")


def test_normalising_warning_counts_rows_over_every_block(monkeypatch):
    monkeypatch.setattr(validation, "BLOCK_BYTES", 8 * 2)  # one row a block
    p = [[0.5, 0.5], [1.0, 3.0], [0.2, 0.2], [2.0, 2.0]]
    with pytest.warns(UserWarning, match=r"P: 2 row\(s\) sum to more than 1 \(row 1 sums to 4\); normalising"):
        w = select_relationships(p, "threshold", t=0.0)
    np.testing.assert_allclose(w, [[0.5, 0.5], [0.25, 0.75], [0.2, 0.2], [0.5, 0.5]])


def test_nonzero_entries_reads_every_block(monkeypatch, rng):
    monkeypatch.setattr(validation, "BLOCK_BYTES", 8 * 7 * 2)
    w = rng.random((9, 7)) * (rng.random((9, 7)) < 0.4)
    w[3, 2] = -0.0  # a negative zero is a zero
    shape, flat, vals = validation.nonzero_entries(w)
    assert shape == (9, 7)
    np.testing.assert_array_equal(flat, np.flatnonzero(w))
    np.testing.assert_array_equal(vals, w.ravel()[flat])


def test_threads_selecting_from_the_same_matrices_agree(rng):
    mats = [rng.integers(0, 3, size=(40, 60)) * (rng.random((40, 60)) < 0.2) / 200.0 for _ in range(4)]
    want = [[select_loop(p, m, **prm) for m, prm in CASES] for p in mats]

    def run(i: int) -> bool:
        p = mats[i % 4]
        return all(np.array_equal(select_relationships(p, m, **prm), w) for (m, prm), w in zip(CASES, want[i % 4]))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(run, range(16)))


def test_a_matrix_passed_again_is_ranked_once_and_still_equals_the_reference(rng):
    c = rng.integers(0, 4, size=(30, 40)) * (rng.random((30, 40)) < 0.3)
    c[:, 5] += 1  # ties at the top of many rows
    p = c / c.sum(axis=1, keepdims=True)
    select_relationships(p, "threshold", t=0.1)
    (item,) = PREPARED._items.values()
    assert item.value.rank is None  # seen once: nothing ranked yet
    for method, params in CASES:
        np.testing.assert_array_equal(select_relationships(p, method, **params), select_loop(p, method, **params))
    (again,) = PREPARED._items.values()
    assert again.value.rank is not None and again.nbytes > item.nbytes  # ranked, and counted by the memo
    ranked = again.value
    order = np.lexsort((ranked.flat % 40, -ranked.vals, ranked.rows))  # rows, value desc, column asc
    np.testing.assert_array_equal(ranked.rank[order], np.concatenate([np.arange(n) for n in np.bincount(ranked.rows)]))


def test_map_large_keeps_the_order_and_the_first_error(monkeypatch):
    monkeypatch.setattr(validation, "WORKERS", 2)
    monkeypatch.setattr(validation, "PARALLEL_BYTES", 0)
    assert validation.map_large(lambda x: x * x, list(range(50)), 1) == [x * x for x in range(50)]

    def fails(x: int) -> int:
        if x in (7, 30):
            raise ValueError(f"bad {x}")
        return x

    with pytest.raises(ValueError, match="bad 7"):
        validation.map_large(fails, list(range(50)), 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_scores_on_threads_equal_the_loop_and_name_the_first_bad_matrix(workers, monkeypatch, rng):
    monkeypatch.setattr(validation, "WORKERS", workers)
    monkeypatch.setattr(validation, "PARALLEL_BYTES", 0)
    ks = [30, 25, 40]
    pairs = [(a, b) for a in range(3) for b in range(3) if a != b]
    pred = {(a, b): select_relationships(rng.dirichlet(np.ones(ks[b]), size=ks[a]), "density", p=0.5) for a, b in pairs}
    true = {(a, b): (rng.random((ks[a], ks[b])) < 0.05) * 1.0 for a, b in pairs}
    want = relationship_scores({k: Edges.from_dense(w) for k, w in pred.items()}, true, ks)
    assert relationship_scores(pred, true, ks) == want
    bad = {k: w.copy() for k, w in pred.items()}
    bad[(1, 0)][2, 3], bad[(2, 1)][0, 0] = -1.0, np.nan
    with pytest.raises(ValueError, match=r"pred\[\(1, 0\)\] has a negative entry at \(2, 3\): -1.0"):
        relationship_scores(bad, true, ks)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_worker_threads(monkeypatch, rng):
    monkeypatch.setattr(validation, "WORKERS", 2)
    monkeypatch.setattr(validation, "PARALLEL_BYTES", 0)
    p = rng.dirichlet(np.ones(30), size=40)
    want = select_relationships(p, "density", p=0.5)  # the parent's pool now exists
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are gone; a hang here fails the test by timeout
        ok = np.array_equal(select_relationships(p, "density", p=0.5), want)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the parent's worker pool")
