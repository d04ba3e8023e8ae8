"""Sparse mappings M_a (scipy.sparse) and streamed cross-domain prediction."""

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import sparse

from core import steps
from core.config import HeadConfig, TrainConfig
from core.crossdomain import PairAccumulator, count_matrix, normalize_rows
from core.heads import build_head
from core.selection import Edges
from core.taxonomy import build_universal_taxonomy
from core.universal import (
    UniversalObjective,
    as_sparse_mapping,
    domain_predictions,
    domain_scores,
    evaluate_universal,
    rule_accuracies,
    soft_targets,
    train_universal,
)


def _mappings(seed: int = 0, sizes=(6, 9), U: int = 11) -> list[np.ndarray]:
    """Random sparse-ish mappings (K_a, U) with every row mapped (weights in (0, 1])."""
    rng = np.random.default_rng(seed)
    out = []
    for k in sizes:
        m = rng.random((k, U)) * (rng.random((k, U)) < 0.25)
        m[np.arange(k), rng.integers(0, U, k)] = rng.random(k) + 0.1
        out.append(m)
    return out


def test_sparse_and_dense_give_identical_targets_predictions_and_scores():
    rng = np.random.default_rng(1)
    for M in _mappings():
        S = sparse.csr_array(M)
        labels = rng.integers(0, M.shape[0], 40)
        t_dense, t_sparse = soft_targets(M, labels), soft_targets(S, labels)
        assert isinstance(t_dense, np.ndarray) and sparse.issparse(t_sparse)
        assert np.array_equal(t_dense, t_sparse.toarray())
        assert np.allclose(t_dense.sum(axis=1), 1.0)
        p = rng.dirichlet(np.ones(M.shape[1]), 40)
        assert np.array_equal(domain_predictions(p, M), domain_predictions(p, S))
        assert np.allclose(domain_predictions(p, M), p @ M.T)
        z = rng.normal(size=(40, M.shape[1])) * 3
        for rule in ("probs", "logits"):
            assert np.array_equal(domain_scores(z, M, inference=rule), domain_scores(z, S.tocoo(), inference=rule))
    dom, y = rng.integers(0, 2, 40), None
    y = np.array([rng.integers(0, (6, 9)[d]) for d in dom])
    z = rng.normal(size=(40, 11))
    dense, sp = _mappings(), [sparse.csr_array(M) for M in _mappings()]
    for rule in ("probs", "logits"):
        assert rule_accuracies(z, dom, y, dense, inference=rule) == rule_accuracies(z, dom, y, sp, inference=rule)


def test_sparse_mapping_checks_name_the_bad_row():
    with pytest.raises(ValueError, match=r"class row\(s\) \[1\] map to no universal class"):
        as_sparse_mapping(sparse.csr_array(np.array([[1.0, 0.0], [0.0, 0.0]])))
    with pytest.raises(ValueError, match="finite and non-negative"):
        as_sparse_mapping(sparse.csr_array(np.array([[1.0, -1.0]])))
    with pytest.raises(ValueError, match=r"must be \(K_a, U\)"):
        as_sparse_mapping(np.ones(3))


def test_objective_identical_for_sparse_and_dense():
    dense = _mappings(2)
    sp = [sparse.csr_array(M) for M in dense]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 11, generator=g)
    dom = torch.randint(0, 2, (30,), generator=g)
    lab = torch.tensor([int(torch.randint(0, (6, 9)[int(d)], (1,), generator=g)) for d in dom])
    for loss in ("soft", "partial"):
        a, b = UniversalObjective(dense, loss=loss), UniversalObjective(sp, loss=loss)
        assert torch.equal(a.loss_fn(logits, dom, lab), b.loss_fn(logits, dom, lab))
        assert torch.equal(a.correct_fn(logits, dom, lab), b.correct_fn(logits, dom, lab))
    # the gathered batch targets are the mapping's normalised rows
    obj = UniversalObjective(dense)
    rows = obj._rows(dom, lab)
    want = np.concatenate([M / M.sum(axis=1, keepdims=True) for M in dense])[rows.numpy()]
    assert np.allclose(obj.targets(rows).numpy(), want, atol=1e-7)
    # and the scores are M p restricted to the sample's domain
    p = torch.softmax(logits, 1).numpy()
    for n in range(30):
        d = int(dom[n])
        assert int(obj.correct_fn(logits[n : n + 1], dom[n : n + 1], lab[n : n + 1])) == int(
            domain_predictions(p[n : n + 1], dense[d]).argmax() == lab[n]
        )


def test_trained_heads_identical_for_sparse_and_dense():
    rng = np.random.default_rng(0)
    dense = _mappings(3, sizes=(4, 5), U=6)
    sp = [sparse.csr_array(M) for M in dense]
    n = 120
    X = rng.normal(size=(n, 8)).astype(np.float32)
    dom = rng.integers(0, 2, n)
    y = np.array([rng.integers(0, (4, 5)[d]) for d in dom])
    kw = dict(head=HeadConfig(depth=1), train=TrainConfig(epochs=3, batch_size=32), seed=5)
    r1 = train_universal(X[:90], dom[:90], y[:90], X[90:], dom[90:], y[90:], dense, **kw)
    r2 = train_universal(X[:90], dom[:90], y[:90], X[90:], dom[90:], y[90:], sp, **kw)
    s1, s2 = r1.model.state_dict(), r2.model.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    timing = {"samples_per_s", "epoch_s", "eta_s"}
    strip = lambda h: [{k: v for k, v in e.items() if k not in timing} for e in h]  # noqa: E731
    assert strip(r1.history) == strip(r2.history)
    for rule in ("probs", "logits"):
        a = evaluate_universal(r1.model, X, dom, y, dense, inference=rule)
        assert a == evaluate_universal(r2.model, X, dom, y, sp, inference=rule)


def test_evaluate_streams_in_chunks(monkeypatch):
    import core.universal as uni

    dense = _mappings(4)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 5)).astype(np.float32)
    dom = rng.integers(0, 2, 50)
    y = np.array([rng.integers(0, (6, 9)[d]) for d in dom])
    torch.manual_seed(0)
    model = build_head(5, 11, HeadConfig(depth=1))
    whole = evaluate_universal(model, X, dom, y, dense)
    monkeypatch.setattr(uni, "EVAL_ELEMENTS", 7 * 11)  # chunks of 7 rows (U = 11)
    assert evaluate_universal(model, X, dom, y, dense) == whole


def _large_relationships():
    """2 domains (1,000 and 49,500 classes), 500 bidirectional pairs: U = 50,000 universal
    classes (500 shared + 500 + 49,000 singletons); dense M_a would take 0.4 GB and 19.8 GB."""
    K = [1000, 49_500]
    rows = np.arange(0, 1000, 2)
    cols = np.random.default_rng(0).choice(K[1], rows.size, replace=False)
    w = np.full(rows.size, 0.7)
    return {(0, 1): Edges(rows, cols, w, (K[0], K[1])), (1, 0): Edges(cols, rows, w, (K[1], K[0]))}, K, cols


def test_large_taxonomy_maps_sparse():
    rel, K, cols = _large_relationships()
    tax = build_universal_taxonomy(rel, K)
    maps = tax.sparse_mappings
    U = tax.n_universal
    assert U == 50_000
    assert all(sparse.issparse(m) and m.format == "csr" for m in maps)
    assert [m.shape for m in maps] == [(K[0], U), (K[1], U)]
    assert [m.nnz for m in maps] == [1000, 49_500]
    lm = tax.label_map()  # built from the CSR rows
    u = lm["label_map"]["A"][0]
    assert u == int(maps[0][[0]].indices[0])
    assert lm["label_map"]["B"][int(cols[0])] == u  # the shared pair points at one universal class
    assert lm["label_map_multi"]["B"][int(cols[0])] == [[u, 0.7]]
    z = np.random.default_rng(1).normal(size=(3, U)).astype(np.float32)
    scores = domain_scores(z, maps[0])  # the sparse rule over U = 50,000
    assert scores.shape == (3, K[0])
    assert np.allclose(scores, domain_predictions(np.exp(z) / np.exp(z).sum(1, keepdims=True), maps[0]))


@pytest.mark.slow  # tracemalloc slows the Python-heavy taxonomy build about tenfold
def test_large_taxonomy_peak_memory_far_below_dense():
    rel, K, _ = _large_relationships()
    tracemalloc.start()
    try:
        tax = build_universal_taxonomy(rel, K)
        maps = tax.sparse_mappings
        domain_scores(np.zeros((3, tax.n_universal), np.float32), maps[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_bytes = K[0] * tax.n_universal * 8  # the smaller domain's dense M_a: 400 MB
    assert peak < dense_bytes / 4, f"peak {peak / 1e6:.0f} MB"


def test_label_map_matches_dense_mapping():
    tax = build_universal_taxonomy({(0, 1): np.array([[0.9, 0.0], [0.0, 0.4], [0.3, 0.0]])}, [3, 2])
    lm = tax.label_map()
    for a, m in enumerate(tax.mappings):
        name = tax.domain_names[a]
        assert lm["label_map"][name] == [int(u) for u in np.argmax(m, axis=1)]
        assert lm["label_map_multi"][name] == [[[int(u), float(row[u])] for u in np.flatnonzero(row)] for row in m]
        assert np.array_equal(tax.sparse_mappings[a].toarray(), m)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_streamed_pair_equals_one_shot(chunk):
    rng = np.random.default_rng(chunk)
    n, ka, kb = 300, 9, 13
    t = rng.integers(0, ka, n)
    p = rng.dirichlet(np.ones(kb) * 0.3, n)
    acc = PairAccumulator(ka, kb)
    hard = np.concatenate([acc.add(t[s : s + chunk], p[s : s + chunk]) for s in range(0, n, chunk)])
    assert np.array_equal(hard, p.argmax(axis=1))
    assert np.array_equal(acc.count, count_matrix(t, hard, ka, kb))
    assert np.array_equal(acc.soft_sum, count_matrix(t, p, ka, kb))
    ref = np.zeros((ka, kb))
    np.add.at(ref, t, p)  # the reference order of the sums
    assert np.array_equal(acc.soft_sum, ref)
    with pytest.raises(ValueError, match=r"shape \(N, K_b\) = \(2, 13\)"):
        acc.add([0, 1], np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="sum to 1"):
        acc.add([0], np.ones((1, kb)))


def _fake_ctx(n_domains=3, seed=0):
    rng = np.random.default_rng(seed)
    K = [4, 6, 5][:n_domains]
    domains = [SimpleNamespace(name=f"d{a}", class_names=[str(i) for i in range(k)]) for a, k in enumerate(K)]
    data = {a: (rng.normal(size=(37, 8)).astype(np.float32), rng.integers(0, K[a], 37)) for a in range(n_domains)}
    torch.manual_seed(seed)
    models = [build_head(8, k, HeadConfig(depth=1)) for k in K]
    out = {}
    run = SimpleNamespace(
        load_model=lambda b: (models[b], {}),
        baseline_model_path=lambda b: b,
        write_crossdomain=lambda *args: out.setdefault("args", args),
    )
    ctx = SimpleNamespace(
        cfg=SimpleNamespace(finetune=False),
        all_domains=lambda: domains,
        run=run,
        device="cpu",
        log=lambda msg: None,
        progress=lambda *a, **k: None,
    )
    return ctx, data, out, models, K


def test_step_crossdomain_streams_and_equals_one_shot(monkeypatch):
    from core.training import predict_logits

    ctx, data, out, models, K = _fake_ctx()
    monkeypatch.setattr(steps, "split_data", lambda ctx, a, s: (*data[a], np.arange(len(data[a][1]))))
    monkeypatch.setattr(steps, "CROSSDOMAIN_CHUNK", 5)
    steps.step_crossdomain(ctx)
    mats, true, item, pred, conf = out["args"]
    assert sorted(mats["soft"]) == [(a, b) for a in range(3) for b in range(3) if a != b]
    for (a, b), soft in mats["soft"].items():
        X, y = data[a]
        probs = steps._softmax(predict_logits(models[b], X))
        hard = probs.argmax(axis=1)
        assert np.array_equal(pred[a, b], hard)
        assert np.array_equal(conf[a, b], probs.max(axis=1).astype(np.float16))
        assert np.array_equal(mats["count"][a, b], count_matrix(y, hard, K[a], K[b]))
        assert np.array_equal(mats["hard"][a, b], normalize_rows(count_matrix(y, hard, K[a], K[b])))
        assert np.array_equal(soft, normalize_rows(count_matrix(y, probs, K[a], K[b])))


def test_stream_domain_refuses_a_bad_chunk():
    from core.crossdomain import stream_domain

    with pytest.raises(ValueError, match="chunk must be an int >= 1, got 0"):
        stream_domain([0], np.zeros((1, 2)), 2, {1: 2}, lambda b, x: np.full((len(x), 2), 0.5), chunk=0)
    out = stream_domain([0, 1, 1], np.zeros((3, 2)), 2, {1: 2}, lambda b, x: np.full((len(x), 2), 0.5), chunk=2)
    acc, pred, conf = out[1]
    assert pred.tolist() == [0, 0, 0] and conf.dtype == np.float16 and acc.n == 3
    assert np.array_equal(acc.soft_sum, [[0.5, 0.5], [1.0, 1.0]])


# ---------------------------------------------------------------------------- sparse storage in the run folder


def _stored_run(tmp_path):
    from core.runs import Run
    from core.runs.folder import init_run_dir

    return Run(init_run_dir(tmp_path / "run"))


def test_mostly_zero_matrices_are_stored_sparse_and_read_back_dense(tmp_path):
    from core.crossdomain import compact

    rng = np.random.default_rng(0)
    count = np.zeros((40, 30))
    count[rng.integers(0, 40, 25), rng.integers(0, 30, 25)] = rng.integers(1, 9, 25)
    soft = normalize_rows(rng.random((40, 30)))
    assert sparse.issparse(compact(count)) and not sparse.issparse(compact(soft))
    run = _stored_run(tmp_path)
    mats = {"count": {(0, 1): compact(count)}, "hard": {(0, 1): normalize_rows(count)}, "soft": {(0, 1): soft}}
    run.write_crossdomain(mats, {0: np.zeros(3, np.int64)}, {}, {}, {})
    with np.load(run.path / "crossdomain" / "matrices.npz") as npz:
        assert "count/0-1@csr/data" in npz.files and "soft/0-1" in npz.files
    for kind, want in (("count", count), ("hard", normalize_rows(count)), ("soft", soft)):
        got = run.matrices(kind)[(0, 1)]
        assert isinstance(got, np.ndarray) and np.array_equal(got, want)


def test_relationships_round_trip_through_csr(tmp_path):
    w = np.zeros((50, 60))
    w[[1, 7, 7, 49], [0, 3, 59, 2]] = [0.5, 0.25, 1.0, 0.75]
    run = _stored_run(tmp_path)
    run.write_selection("mcfp", {(0, 1): sparse.csr_array(w), (1, 0): w.T.copy()}, {"method": "mcfp"})
    got = run.relationships("mcfp")
    assert np.array_equal(got[(0, 1)], w) and np.array_equal(got[(1, 0)], w.T)


def test_a_damaged_sparse_matrix_is_refused(tmp_path):
    from core.fsio import CorruptFileError, write_npz
    from core.runs.run import pack_matrix

    w = np.zeros((20, 20))
    w[3, 4] = 1.0
    parts = pack_matrix("count/0-1", w)
    run = _stored_run(tmp_path)
    (run.path / "crossdomain").mkdir(exist_ok=True)
    huge = dict(parts, **{"count/0-1@csr/shape": np.asarray([20, 10**12])})  # would allocate 160 TB dense
    parts["count/0-1@csr/indices"] = np.asarray([99], dtype=np.int32)  # a column outside the matrix
    for bad in (parts, huge):
        write_npz(run.path / "crossdomain" / "matrices.npz", bad)
        with pytest.raises(CorruptFileError, match="damaged sparse matrix"):
            run.matrices("count")
