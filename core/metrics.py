"""Scores of a relationship graph against a ground truth (thesis definitions; docs/architecture.md).

The graph is the weighted adjacency over ALL domain classes, both directions of every pair:
block (a, b) is W_ab. A class with no edge in or out gets a self-loop of weight 1.0, in each
graph separately. Then

- EDR = sum |A_pred - A_true| / sum max(A_pred, A_true)  (0 = identical; 0 if both empty);
- precision / recall / F1 on the binarised adjacencies (A > 0).

The adjacency is never built densely: every sum runs over the edges (sparse), so scoring 90
pairs of 1000 x 1000 takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core._validation import as_class_counts, as_matrix, check_pair_dict
from core.selection import METHODS, Edges, check_params, rank_rows, select_edges

Pair = tuple[int, int]


def _as_edges(mats: Mapping[Pair, object], class_counts: list[int], *, name: str) -> dict[Pair, Edges]:
    check_pair_dict(mats, class_counts, name=name)
    out = {}
    for key, w in mats.items():
        out[(int(key[0]), int(key[1]))] = (
            w if isinstance(w, Edges) else Edges.from_dense(as_matrix(w, name=f"{name}[{key!r}]"))
        )
    return out


def _pair_sums(p: Edges | None, t: Edges | None, k_b: int) -> np.ndarray:
    """[sum p, sum t, sum min over shared edges, |p|, |t|, |shared|] for one pair."""
    ep = p if p is not None else Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), (0, k_b))
    et = t if t is not None else Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), (0, k_b))
    kp, kt = ep.rows * k_b + ep.cols, et.rows * k_b + et.cols
    _, ip, it = np.intersect1d(kp, kt, assume_unique=True, return_indices=True)
    shared_min = np.minimum(ep.weights[ip], et.weights[it]).sum()
    return np.array([ep.weights.sum(), et.weights.sum(), shared_min, kp.size, kt.size, ip.size])


def _touched(edges: Mapping[Pair, Edges], class_counts: list[int]) -> list[np.ndarray]:
    """Per domain, a bool mask (K_a,) of the classes with any edge in or out."""
    touched = [np.zeros(k, dtype=bool) for k in class_counts]
    for (a, b), e in edges.items():
        touched[a][e.rows] = True
        touched[b][e.cols] = True
    return touched


def _scores(sums: np.ndarray) -> dict[str, float]:
    sp, st, smin, n_p, n_t, n_shared = sums
    union = sp + st - smin
    edr = float((sp + st - 2 * smin) / union) if union > 0 else 0.0
    precision = float(n_shared / n_p) if n_p else 0.0
    recall = float(n_shared / n_t) if n_t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"edr": edr, "precision": precision, "recall": recall, "f1": float(f1)}


def _edge_scores(pred: Mapping[Pair, Edges], true: Mapping[Pair, Edges], class_counts: list[int]) -> dict[str, float]:
    sums = np.zeros(6)
    for a, b in set(pred) | set(true):
        sums += _pair_sums(pred.get((a, b)), true.get((a, b)), class_counts[b])
    lone_p = np.concatenate([~m for m in _touched(pred, class_counts)])  # self-loops, weight 1
    lone_t = np.concatenate([~m for m in _touched(true, class_counts)])
    both = lone_p & lone_t
    sums += [lone_p.sum(), lone_t.sum(), both.sum(), lone_p.sum(), lone_t.sum(), both.sum()]
    return _scores(sums)


def relationship_scores(
    pred: Mapping[Pair, object], true: Mapping[Pair, object], class_counts: Sequence[int]
) -> dict[str, float]:
    """{"edr", "precision", "recall", "f1"} of the predicted graph against the true one.

    pred, true: {(a, b): W_ab (K_a, K_b)} (dense arrays or ``Edges``); a pair missing from one
    side has no edges there. class_counts: K_a per domain.
    """
    counts = as_class_counts(class_counts)
    return _edge_scores(_as_edges(pred, counts, name="pred"), _as_edges(true, counts, name="true"), counts)


def per_pair_scores(
    pred: Mapping[Pair, object],
    true: Mapping[Pair, object],
    class_counts: Sequence[int],
    *,
    domain_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per ordered pair: edges predicted / true / shared, EDR, precision, recall, F1.

    The per-pair scores count the pair's edges only (no self-loops: those belong to the graph).
    """
    counts = as_class_counts(class_counts)
    ep, et = _as_edges(pred, counts, name="pred"), _as_edges(true, counts, name="true")
    names = list(domain_names) if domain_names is not None else [str(a) for a in range(len(counts))]
    rows = []
    for a, b in sorted(set(ep) | set(et)):
        sums = _pair_sums(ep.get((a, b)), et.get((a, b)), counts[b])
        rows.append(
            {
                "a": names[a],
                "b": names[b],
                "edges_pred": int(sums[3]),
                "edges_true": int(sums[4]),
                "edges_shared": int(sums[5]),
                **_scores(sums),
            }
        )
    return pd.DataFrame(
        rows, columns=["a", "b", "edges_pred", "edges_true", "edges_shared", "edr", "precision", "recall", "f1"]
    )


def rank_all(matrices: Mapping[Pair, object]) -> dict[Pair, object]:
    """``rank_rows`` of every P_ab: the parameter-independent work of a sweep, done once."""
    return {key: rank_rows(p) for key, p in matrices.items()}


def score_selection(
    ranked: Mapping[Pair, object],
    true: Mapping[Pair, object],
    class_counts: Sequence[int],
    method: str,
    **params: object,
) -> dict[str, float]:
    """Select with one method/parameter on every pair and score against the truth.

    ``ranked``: {(a, b): P_ab or its ``rank_rows``}; ``true``: {(a, b): W_ab or ``Edges``}.
    This is the fast path behind a slider move.
    """
    counts = as_class_counts(class_counts)
    pred = {key: select_edges(r, method, **params) for key, r in ranked.items()}
    return _edge_scores(pred, _as_edges(true, counts, name="true"), counts)


def sweep(
    matrices: Mapping[Pair, object],
    true: Mapping[Pair, object],
    class_counts: Sequence[int],
    *,
    methods: Iterable[str] | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Scores over a grid of each method's parameter (the thesis's proposed grid search).

    Returns a tidy DataFrame with columns method, param, value, edr, precision, recall, f1
    (param/value are "" / NaN for parameter-free methods). ``grid`` overrides the default grid
    of a method (``METHODS[name].grid``).
    """
    counts = as_class_counts(class_counts)
    names = list(METHODS) if methods is None else list(methods)
    for name in names:
        check_params(name, {})
    ranked = rank_all(matrices)
    true_edges = _as_edges(true, counts, name="true")
    rows = []
    for name in names:
        spec = METHODS[name]
        values = [None] if spec.param is None else list((grid or {}).get(name, spec.grid))
        for v in values:
            params = {} if v is None else {spec.param: v}
            pred = {key: select_edges(r, name, **params) for key, r in ranked.items()}
            rows.append(
                {
                    "method": name,
                    "param": spec.param or "",
                    "value": np.nan if v is None else float(v),
                    **_edge_scores(pred, true_edges, counts),
                }
            )
    return pd.DataFrame(rows, columns=["method", "param", "value", "edr", "precision", "recall", "f1"])


def best_parameters(table: pd.DataFrame, *, by: str = "f1") -> pd.DataFrame:
    """The best row per method of a ``sweep`` table: highest F1 (default) or lowest EDR."""
    if by not in {"f1", "edr", "precision", "recall"}:
        raise ValueError(f"by must be one of f1, edr, precision, recall; got {by!r}")
    if table.empty:
        raise ValueError("the sweep table is empty")
    ascending = by == "edr"
    best = (
        table.sort_values([by, "value"], ascending=[ascending, True], kind="stable")
        .groupby("method", sort=False)
        .head(1)
    )
    order = {m: k for k, m in enumerate(METHODS)}
    return best.sort_values("method", key=lambda s: s.map(order)).reset_index(drop=True)
