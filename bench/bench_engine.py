"""Engine benchmark: prints times and ratios measured in this one run.

1. Selection + scores for all five methods over 10 domains x ~1000 classes (90 ordered pairs of
   ~1000 x 1000 count-based matrices from the synthetic noise model): cold (validation and
   ranking included) and per slider move (ranking cached, as in the app), against a per-row
   Python loop (run on a few pairs, scaled to 90 pairs).
2. Universal taxonomy build at that size with ~2 edges per row, and against the literal
   restart-after-every-change engine on sizes where that one still finishes.
3. The public per-call path, as a script calls it: ``select_relationships(P, method, **params)``
   for threshold (t=0.2), mcfp, density (p=0.8) and hypothesis (k_max=4) on each of the 90
   pairs of 10 domains x ~1000 classes, then ``relationship_scores`` against the dense truth;
   on count matrices and on soft (mean-probability) ones, before (a frozen copy of the earlier
   engine, below) and now, interleaved in this one run, with the ratio, the targets
   (count < 1.5 s, soft < 3 s) and a check that both give identical W and scores. "Now" is
   timed twice: on one thread, and with the engine's worker threads (core._validation.WORKERS,
   2 on a 2-core machine: the scores' passes over the dense W and truth matrices, and the dense
   blocks of a soft P, overlap); the load average is printed, as the machine may be shared.
   Wall time is the target; CPU seconds count every thread.

Run: .venv/bin/python bench/bench_engine.py [--quick] [--only selection|taxonomy|public] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core._validation as validation  # noqa: E402
from core._reference import build_taxonomy_restart, select_loop  # noqa: E402
from core.crossdomain import normalize_rows  # noqa: E402
from core.metrics import rank_all, relationship_scores, score_selection  # noqa: E402
from core.selection import DENSE_EDGES, PREPARED, Edges, select_edges, select_relationships  # noqa: E402
from core.synthetic import make_synthetic_taxonomy, sample_cross_counts  # noqa: E402
from core.taxonomy import build_universal_taxonomy  # noqa: E402

PARAMS = {"threshold": {"t": 0.2}, "mcfp": {}, "mcfp_binary": {}, "density": {"p": 0.7}, "hypothesis": {"k_max": 3}}


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_selection(n_domains: int, concepts: int, loop_pairs: int) -> None:
    world = make_synthetic_taxonomy(concepts * 3 // 2, n_domains, concepts, 100, 2, 1, seed=0)
    counts = sample_cross_counts(world, images_per_class=50, noise=0.3, seed=0)
    mats = {k: normalize_rows(c) for k, c in counts.items()}
    true = {k: Edges.from_dense(w) for k, w in world.true_relationships().items()}
    k = world.class_counts
    print(f"selection + scores: {n_domains} domains, classes {min(k)}..{max(k)}, {len(mats)} pairs")

    def cold():
        ranked = rank_all(mats)
        return [score_selection(ranked, true, k, m, **p) for m, p in PARAMS.items()]

    t_cold, _ = timed(cold)
    ranked = rank_all(mats)
    t_warm, _ = timed(lambda: [score_selection(ranked, true, k, m, **p) for m, p in PARAMS.items()])
    t_move, _ = timed(lambda: score_selection(ranked, true, k, "threshold", t=0.25), repeat=5)
    some = dict(list(mats.items())[:loop_pairs])
    some_true = {key: true[key].dense() for key in some}
    t_loop, _ = timed(
        lambda: [
            relationship_scores({key: select_loop(p, m, **prm) for key, p in some.items()}, some_true, k)
            for m, prm in PARAMS.items()
        ],
        repeat=1,
    )
    t_loop_all = t_loop * len(mats) / loop_pairs
    print(f"  all five methods, cold (validate + rank + select + score): {t_cold:.3f} s")
    print(f"  all five methods, ranking cached:                          {t_warm:.3f} s")
    print(f"  one slider move (threshold, all pairs):                    {t_move * 1000:.1f} ms")
    print(f"  per-row Python loop, {loop_pairs} pairs scaled to {len(mats)}:           {t_loop_all:.1f} s")
    print(f"  ratio loop / cold: {t_loop_all / t_cold:.0f}x   loop / cached: {t_loop_all / t_warm:.0f}x")


def random_edges(rng, n_domains: int, k: int, per_row: float) -> dict:
    rel = {}
    for a in range(n_domains):
        for b in range(n_domains):
            if a != b:
                n = int(per_row * k)
                key = np.unique(rng.integers(0, k, n) * k + rng.integers(0, k, n))
                r, c = np.divmod(key, k)
                rel[(a, b)] = Edges(r, c, np.round(rng.random(r.size), 2) + 0.01, (k, k))
    return rel


def bench_taxonomy(n_domains: int, k: int) -> None:
    rng = np.random.default_rng(0)
    rel = random_edges(rng, n_domains, k, 2.0)
    t, tax = timed(lambda: build_universal_taxonomy(rel, [k] * n_domains), repeat=1)
    n_edges = sum(e.rows.size for e in rel.values())
    print(
        f"taxonomy: {n_domains} domains x {k} classes, {n_edges} edges -> "
        f"{tax.n_universal} universal classes in {t:.3f} s"
    )
    for small in (10, 20, 40):
        rel_s = {key: e.dense() for key, e in random_edges(rng, 3, small, 2.0).items()}
        t_fast, _ = timed(lambda rel_s=rel_s, small=small: build_universal_taxonomy(rel_s, [small] * 3))
        t_slow, _ = timed(lambda rel_s=rel_s, small=small: build_taxonomy_restart(rel_s, [small] * 3), repeat=1)
        print(
            f"  3 domains x {small:3d} classes: worklist {t_fast * 1000:7.1f} ms, restart engine "
            f"{t_slow * 1000:9.1f} ms, ratio {t_slow / t_fast:6.0f}x"
        )


# --- 3. The public per-call path: select_relationships(P, method) + relationship_scores --------------
# "Before" is a frozen copy of the engine as it was before the direct per-call path (commit efddcbf):
# every call validated P (three reductions), ranked every row (partial sort of the top 24 of dense
# rows, a lexsort of all candidates), built the dense W, and the scores re-validated and re-scanned
# every dense W and truth matrix.

_EPS = 1e-9


def _old_prob_matrix(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not (arr.min() >= 0 and np.isfinite(arr.sum())):
        raise ValueError("bad entry")
    sums = arr.sum(axis=1)
    off = sums > 1.0 + 1e-6
    if off.any():
        arr = arr.copy()
        arr[off] = arr[off] / sums[off, None]
    return arr


def _old_rank(p: np.ndarray, m: int, sparse_row: int = 128) -> dict:
    k_a, k_b = p.shape
    flat = np.flatnonzero(p)
    rows = flat // k_b
    nnz = np.bincount(rows, minlength=k_a)
    floor = np.zeros(k_a)
    dense_rows = np.flatnonzero(nnz > max(m, sparse_row))
    if m >= k_b and k_a:
        order = np.argsort(-p, axis=1, kind="stable")
        srt = np.take_along_axis(p, order, axis=1)
        flat = np.flatnonzero(srt)
        rows = flat // k_b
        cols, vals = order.ravel()[flat], srt.ravel()[flat]
    else:
        if dense_rows.size:
            sub = p if dense_rows.size == k_a else p[dense_rows]
            floor[dense_rows] = np.partition(sub, k_b - m, axis=1)[:, k_b - m]
            keep = p.ravel()[flat] >= floor[rows]
            flat, rows = flat[keep], rows[keep]
        cols = flat - rows * k_b
        vals = p.ravel()[flat]
        order = np.lexsort((-vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=k_a)
    indptr = np.zeros(k_a + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    complete = counts == nnz
    c = 1.0 / k_b
    excess = np.bincount(rows, weights=np.maximum(vals - c, 0.0), minlength=k_a)
    if not complete.all():
        part = np.flatnonzero(~complete)
        sub = p if part.size == k_a else p[part]
        excess[part] = np.maximum(sub, c).sum(axis=1) - c * k_b
    cost0 = 2.0 * excess + 1.0 - p.sum(axis=1)
    rr = np.repeat(np.arange(k_a), np.diff(indptr))
    return {
        "P": p,
        "indptr": indptr,
        "cols": cols.astype(np.int64),
        "vals": vals,
        "floor": floor,
        "complete": complete,
        "cost0": cost0,
        "rows": rr,
        "shape": p.shape,
    }


def _old_pos_in_row(r: dict) -> np.ndarray:
    return np.arange(r["cols"].size) - np.repeat(r["indptr"][:-1], np.diff(r["indptr"]))


def _old_threshold(r: dict, t: float):
    pos = np.flatnonzero(r["vals"] >= t)
    return pos, r["vals"][pos], np.flatnonzero(~r["complete"] & (r["floor"] >= t))


def _old_mcfp(r: dict):
    pos = r["indptr"][:-1][np.diff(r["indptr"]) > 0]
    return pos, r["vals"][pos], np.zeros(0, dtype=np.int64)


def _old_density(r: dict, p: float):
    vals, indptr = r["vals"], r["indptr"]
    csum = np.cumsum(vals)
    starts = np.repeat(indptr[:-1], np.diff(indptr))
    before = csum - vals - np.concatenate(([0.0], csum))[starts]
    pos = np.flatnonzero(before < p - _EPS)
    row_mass = np.bincount(r["rows"], weights=vals, minlength=r["shape"][0])
    return pos, vals[pos], np.flatnonzero(~r["complete"] & (row_mass < p - _EPS))


def _old_hypothesis(r: dict, k_max: int):
    k_a, k_b = r["shape"]
    k_top = min(k_max, k_b)
    counts = np.diff(r["indptr"])
    take = np.minimum(counts, k_top)
    needs_full = np.flatnonzero(~r["complete"] & (counts < k_top))
    top = np.zeros((k_a, k_top))
    rows = np.repeat(np.arange(k_a), take)
    within = np.arange(rows.size) - np.repeat(np.cumsum(take) - take, take)
    top[rows, within] = r["vals"][np.repeat(r["indptr"][:-1], take) + within]
    rest = r["P"].sum(axis=1)[:, None] - np.cumsum(top, axis=1)
    costs = np.empty((k_a, k_top + 1))
    costs[:, 0] = r["cost0"]
    for k in range(1, k_top + 1):
        costs[:, k] = np.abs(top[:, :k] - 1.0 / k).sum(axis=1) + rest[:, k - 1]
    best_k = np.argmin(np.round(costs, 12), axis=1)
    pos = np.flatnonzero(_old_pos_in_row(r) < np.repeat(best_k, counts))
    return pos, r["vals"][pos], needs_full


_OLD = {"threshold": _old_threshold, "mcfp": _old_mcfp, "density": _old_density, "hypothesis": _old_hypothesis}


def old_select_relationships(P: np.ndarray, method: str, **params: float) -> np.ndarray:
    """The engine's select_relationships before the direct path (frozen copy)."""
    (value,) = params.values() or [None]
    func = _OLD[method]
    arg = () if value is None else (value,)
    r = _old_rank(_old_prob_matrix(P), 24)
    pos, weights, needs_full = func(r, *arg)
    rows, cols = r["rows"][pos], r["cols"][pos]
    m = 24
    while needs_full.size:
        m = m * 8 if m * 8 < r["shape"][1] // 2 else r["shape"][1]
        deeper = _old_rank(r["P"][needs_full], m, sparse_row=0)
        dpos, dweights, again = func(deeper, *arg)
        ok = ~np.isin(np.arange(needs_full.size), again)
        take = ok[deeper["rows"][dpos]]
        redo = np.isin(rows, needs_full[ok])
        rows = np.concatenate([rows[~redo], needs_full[deeper["rows"][dpos[take]]]])
        cols = np.concatenate([cols[~redo], deeper["cols"][dpos[take]]])
        weights = np.concatenate([weights[~redo], dweights[take]])
        needs_full = needs_full[again]
    keep = weights > 0
    w = np.zeros(r["shape"])
    w[rows[keep], cols[keep]] = weights[keep]
    return w


def _old_edges(w: np.ndarray) -> tuple:
    w = np.asarray(w, dtype=np.float64)
    if not (w.min() >= 0 and np.isfinite(w.sum())):
        raise ValueError("bad entry")
    flat = np.flatnonzero(w.ravel() > 0)
    rows, cols = np.divmod(flat, w.shape[1])
    return rows, cols, w.ravel()[flat]


def old_relationship_scores(pred: dict, true: dict, class_counts: list[int]) -> dict:
    """core.metrics.relationship_scores before the one-pass scan of dense matrices (frozen copy)."""
    ep = {k: _old_edges(w) for k, w in pred.items()}
    et = {k: _old_edges(w) for k, w in true.items()}
    sums = np.zeros(6)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    for a, b in set(ep) | set(et):
        k_b = class_counts[b]
        (pr, pc, pw), (tr, tc, tw) = ep.get((a, b), empty), et.get((a, b), empty)
        kp, kt = pr * k_b + pc, tr * k_b + tc
        _, ip, it = np.intersect1d(kp, kt, assume_unique=True, return_indices=True)
        sums += [pw.sum(), tw.sum(), np.minimum(pw[ip], tw[it]).sum(), kp.size, kt.size, ip.size]
    lone = []
    for edges in (ep, et):
        touched = [np.zeros(k, dtype=bool) for k in class_counts]
        for (a, b), (r, c, _) in edges.items():
            touched[a][r] = True
            touched[b][c] = True
        lone.append(np.concatenate([~m for m in touched]))
    both = lone[0] & lone[1]
    sums += [lone[0].sum(), lone[1].sum(), both.sum(), lone[0].sum(), lone[1].sum(), both.sum()]
    sp, st, smin, n_p, n_t, n_shared = sums
    union = sp + st - smin
    precision = float(n_shared / n_p) if n_p else 0.0
    recall = float(n_shared / n_t) if n_t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "edr": float((sp + st - 2 * smin) / union) if union > 0 else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": float(f1),
    }


PUBLIC_PARAMS = {"threshold": {"t": 0.2}, "mcfp": {}, "density": {"p": 0.8}, "hypothesis": {"k_max": 4}}
TARGETS = {"count": 1.5, "soft": 3.0}  # seconds for the four methods + scores over the 90 pairs


def soft_matrices(counts: dict, seed: int) -> dict:
    """Mean-probability matrices like a soft run's: each image's softmax puts a confidence c_i on the
    predicted class and the rest on a log-normal tail over every class, so row i of P_ab is
    c_i * C_i / n + (1 - c_i) * tail_i: every entry > 0, few ties."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, c in counts.items():
        conf = rng.uniform(0.5, 0.95, size=(c.shape[0], 1))
        tail = np.exp(rng.normal(size=c.shape))
        tail /= tail.sum(axis=1, keepdims=True)
        out[key] = conf * normalize_rows(c) + (1.0 - conf) * tail
    return out


def _run_public(select, score, mats: dict, true: dict, k: list[int]) -> tuple[float, float, list[dict]]:
    """Wall and CPU seconds of the four methods + scores over every pair, and the scores per method.
    Each method's W is dropped once scored, as a script looping over methods would."""
    t, c = time.perf_counter(), time.process_time()
    scores = []
    for m, prm in PUBLIC_PARAMS.items():
        w = {key: select(p, m, **prm) for key, p in mats.items()}
        scores.append(score(w, true, k))
        del w
    return time.perf_counter() - t, time.process_time() - c, scores


def _same_selection(mats: dict) -> bool:
    """Whether before and now give identical W on every pair, for every method (not timed)."""
    return all(
        np.array_equal(old_select_relationships(p, m, **prm), select_relationships(p, m, **prm))
        for m, prm in PUBLIC_PARAMS.items()
        for p in mats.values()
    )


def bench_public_path(n_domains: int, concepts: int, repeat: int, *, targets: bool = True) -> None:
    world = make_synthetic_taxonomy(concepts * 3 // 2, n_domains, concepts, 100, 2, 1, seed=0)
    counts = sample_cross_counts(world, images_per_class=50, noise=0.3, seed=0)
    kinds = {"count": {key: normalize_rows(c) for key, c in counts.items()}, "soft": soft_matrices(counts, seed=1)}
    true, k = world.true_relationships(), world.class_counts
    print(
        f"public path, select_relationships + relationship_scores for {', '.join(PUBLIC_PARAMS)}: "
        f"{n_domains} domains, classes {min(k)}..{max(k)}, {len(counts)} pairs (best of {repeat}, wall / CPU)"
    )
    workers = validation.WORKERS
    print(f"  machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for kind, mats in kinds.items():
        best_old, best, same = (np.inf, np.inf), {1: (np.inf, np.inf), workers: (np.inf, np.inf)}, True
        for _ in range(repeat):  # interleaved, so all see the same machine load
            *t_old, s_old = _run_public(old_select_relationships, old_relationship_scores, mats, true, k)
            best_old = min(best_old, tuple(t_old))
            for n in best:  # the engine on one thread, and on its worker threads (core._validation.WORKERS)
                validation.WORKERS = n
                PREPARED.clear()  # a first call: nothing remembered from the previous run
                DENSE_EDGES.clear()
                *t_new, s_new = _run_public(select_relationships, relationship_scores, mats, true, k)
                best[n] = min(best[n], tuple(t_new))
                same = same and s_old == s_new
        validation.WORKERS = workers
        same = same and _same_selection(mats)
        # the sparse public path: select_edges returns the selected edges (Edges), no dense W, and the
        # truth is held as Edges too (converted once, as a script scoring many settings would)
        true_edges = {key: Edges.from_dense(np.asarray(w)) for key, w in true.items()}
        best_sparse, same_sparse = (np.inf, np.inf), True
        for _ in range(repeat):
            PREPARED.clear()
            DENSE_EDGES.clear()
            *t_sparse, s_sparse = _run_public(select_edges, relationship_scores, mats, true_edges, k)
            best_sparse = min(best_sparse, tuple(t_sparse))
            same_sparse = same_sparse and s_sparse == s_old
        for n, best_new in best.items():
            verdict = ""
            if targets:
                verdict = f"target < {TARGETS[kind]} s: {'meets' if best_new[0] < TARGETS[kind] else 'MISSES'}; "
            print(
                f"  {kind:5s}: before {best_old[0]:6.2f} s / {best_old[1]:6.2f} s CPU, now ({n} thread{'s' * (n > 1)}) "
                f"{best_new[0]:5.2f} s / {best_new[1]:5.2f} s CPU, ratio {best_old[0] / best_new[0]:4.1f}x wall, "
                f"{best_old[1] / best_new[1]:4.1f}x CPU; {verdict}identical W and scores: {same}"
            )
        verdict = ""
        if targets:
            verdict = f"target < {TARGETS[kind]} s: {'meets' if best_sparse[0] < TARGETS[kind] else 'MISSES'}; "
        print(
            f"  {kind:5s}: sparse path (select_edges, truth as Edges) {best_sparse[0]:5.2f} s / "
            f"{best_sparse[1]:5.2f} s "
            f"CPU, ratio {best_old[0] / best_sparse[0]:4.1f}x wall; {verdict}identical scores: {same_sparse}"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", choices=["selection", "taxonomy", "public"], help="run one section")
    ap.add_argument("--repeat", type=int, default=2, help="runs of the public-path section (best kept)")
    args = ap.parse_args()
    n_domains, concepts, k_tax = (4, 400, 200) if args.quick else (10, 2000, 1000)
    if args.only in (None, "selection"):
        bench_selection(n_domains, concepts, 2 if args.quick else 3)  # ~2000 concepts in classes of ~2: ~870 classes
    if args.only in (None, "taxonomy"):
        bench_taxonomy(n_domains, k_tax)
    if args.only in (None, "public"):  # ~2300 concepts: classes 975..1023
        bench_public_path(n_domains, 400 if args.quick else 2300, args.repeat, targets=not args.quick)


if __name__ == "__main__":
    main()
