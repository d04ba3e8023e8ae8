"""Scores of a relationship graph against a ground truth (thesis definitions; docs/architecture.md).

The graph is the weighted adjacency over ALL domain classes, both directions of every pair:
block (a, b) is W_ab. A class with no edge in or out gets a self-loop of weight 1.0, in each
graph separately. Then

- EDR = sum |A_pred - A_true| / sum max(A_pred, A_true)  (0 = identical; 0 if both empty);
- precision / recall / F1 on the binarised adjacencies (A > 0).

The adjacency is never built densely: every sum runs over the edges (sparse), so scoring 90
pairs of 1000 x 1000 takes milliseconds. A dense W or truth costs one comparison pass to read its
edges (and check it); one scored before, or made by ``select_relationships``, and unchanged since
costs one pass to confirm that (core.selection.DENSE_EDGES). The passes over the matrices of
one call run on the engine's worker threads (core._validation.WORKERS), several at a time.

Choosing parameters (the thesis's selection tables): ``sweep`` scores every setting of a grid
(``parameter_grid``: the thesis's or the fine one), ``best_parameters`` / ``best_per_run`` pick
each method's best setting on a run, ``best_on_average`` the one setting best on average over
several runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core._validation import as_class_counts, check_pair_dict, map_large, nonzero_entries
from core.selection import DENSE_EDGES, METHODS, Edges, check_params, rank_rows, select_edges

Pair = tuple[int, int]


def _dense_edges(w: object, name: str) -> Edges:
    """Edges of a dense W (K_a, K_b), validated (finite, non-negative) in one pass over it; a W
    scored before (a truth) or made by ``select_relationships`` and unchanged since is only
    checked (core.selection.DENSE_EDGES)."""
    hit = DENSE_EDGES.get(w)
    if hit is None:
        shape, flat, values = nonzero_entries(w, name=name)
        DENSE_EDGES.put(w, flat, values)
    else:
        shape, (flat, values, _) = w.shape, hit
    rows = flat // shape[1]
    return Edges(rows, flat - rows * shape[1], values, shape)


def _as_edges(mats: Mapping[Pair, object], class_counts: list[int], *, name: str) -> dict[Pair, Edges]:
    check_pair_dict(mats, class_counts, name=name)
    items = list(mats.items())

    def edges(item: tuple) -> Edges:
        key, w = item
        return w if isinstance(w, Edges) else _dense_edges(w, f"{name}[{key!r}]")

    size = sum(int(getattr(w, "nbytes", 0)) for _, w in items if not isinstance(w, Edges))
    found = map_large(edges, items, size)  # one pass over each dense matrix: several at a time
    return {(int(key[0]), int(key[1])): e for (key, _), e in zip(items, found)}


def _is_sorted(keys: np.ndarray) -> bool:
    return bool((keys[1:] > keys[:-1]).all())


def _shared(kp: np.ndarray, kt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (S,) in kp and in kt of the keys both hold (each side's keys unique), in key order."""
    if kp.size == 0 or kt.size == 0 or not (_is_sorted(kp) and _is_sorted(kt)):
        _, ip, it = np.intersect1d(kp, kt, assume_unique=True, return_indices=True)
        return ip, it
    # both row-major (edges read off a dense matrix or selected here): look the fewer keys up
    small, big = (kt, kp) if kt.size <= kp.size else (kp, kt)
    at = np.minimum(np.searchsorted(big, small), big.size - 1)
    hit = np.flatnonzero(big[at] == small)
    return (at[hit], hit) if small is kt else (hit, at[hit])


def _pair_sums(p: Edges | None, t: Edges | None, k_b: int) -> np.ndarray:
    """[sum p, sum t, sum min over shared edges, |p|, |t|, |shared|] for one pair."""
    ep = p if p is not None else Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), (0, k_b))
    et = t if t is not None else Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), (0, k_b))
    kp, kt = ep.rows * k_b + ep.cols, et.rows * k_b + et.cols
    ip, it = _shared(kp, kt)
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
    """Scores over a grid of each method's parameter (as the thesis's evaluation notebooks sweep them).

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


SCORES = ("edr", "precision", "recall", "f1")
SELECT_BY = ("edr", "f1")  # the scores a best setting is chosen by: EDR lowest, F1 highest
TIE_DECIMALS = 12  # scores equal to this many decimals are a tie (float noise is not a difference)

# The thesis's grids (its evaluation notebooks): threshold and density from 0 to 1 in steps of
# 0.05, the hypothesis method's upper bound 1..10. What each value means here:
# - threshold t = 0 selects every positive entry of a row (the thesis's code, comparing
#   ``p < t``, also adds the zero entries as edges of weight 0; here a 0 is never an edge);
# - density p = 0 is refused by core.selection (p in (0, 1]); the thesis's loop takes the
#   first entry before testing the sum, so its p = 0 is MCFP, already a row of the table;
# - the thesis's upper bound u tests k = 0..u-1, i.e. our k_max = u - 1; its u = 1 tests only
#   k = 0 (no relationship at all, an empty graph) and core.selection refuses k_max = 0, so
#   the grid is k_max 1..9 (the thesis's upper bounds 2..10).
_THESIS_GRID: dict[str, tuple[float, ...]] = {
    "threshold": tuple(np.round(np.arange(0.0, 1.0001, 0.05), 2)),
    "density": tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2)),
    "hypothesis": tuple(range(1, 10)),
}
GRIDS = ("thesis", "fine")


def parameter_grid(name: str) -> dict[str, tuple[float, ...]]:
    """``{method: values}`` of a named grid for every method with a parameter.

    ``"thesis"``: the thesis's grid (see ``_THESIS_GRID`` above for what each value means here);
    ``"fine"``: each method's own sweep grid (``METHODS[m].grid``: threshold 0.02..1 in steps of
    0.02, density 0.05..1 in steps of 0.05, k_max 1..10).
    """
    if name == "thesis":
        grid = dict(_THESIS_GRID)
    elif name == "fine":
        grid = {m: tuple(spec.grid) for m, spec in METHODS.items() if spec.param is not None}
    else:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}; got {name!r}")
    for method, values in grid.items():  # every value is one core.selection accepts
        for v in values:
            check_params(method, {METHODS[method].param: v})
    return grid


def _check_by(by: str) -> None:
    if by not in SCORES:
        raise ValueError(f"by must be one of {', '.join(SCORES)}; got {by!r}")


def _pick_best(table: pd.DataFrame, by: str, group: str | list[str]) -> pd.DataFrame:
    """First row per ``group`` after sorting by ``by`` (EDR ascending, others descending; equal
    to TIE_DECIMALS decimals: the smallest parameter value wins)."""
    key = table[by].round(TIE_DECIMALS)
    ordered = table.assign(_key=key if by == "edr" else -key).sort_values(["_key", "value"], kind="stable")
    return ordered.groupby(group, sort=False).head(1).drop(columns="_key")


def _method_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in ``METHODS`` order (stable)."""
    order = {m: k for k, m in enumerate(METHODS)}
    return df.sort_values("method", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def best_parameters(table: pd.DataFrame, *, by: str = "f1") -> pd.DataFrame:
    """The best row per method of a ``sweep`` table: lowest EDR (``by="edr"``) or highest F1,
    precision or recall. Ties (equal to 12 decimals) go to the smallest parameter value, as the
    thesis's per-variant search (strict ``<`` over its ascending grid) does. Rows in ``METHODS`` order."""
    _check_by(by)
    if table.empty:
        raise ValueError("the sweep table is empty")
    return _method_order(_pick_best(table, by, "method"))


def best_per_run(tables: Mapping[str, pd.DataFrame], *, by: str = "edr") -> pd.DataFrame:
    """Each run's best setting of each method: ``tables`` = {run label: its ``sweep`` table}.

    Columns run, method, param, value, edr, precision, recall, f1; runs in the given order.
    """
    _check_by(by)
    if not tables:
        raise ValueError("no runs to compare")
    parts = [best_parameters(t, by=by).assign(run=label) for label, t in tables.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[["run", "method", "param", "value", *SCORES]]


def best_on_average(tables: Mapping[str, pd.DataFrame], *, by: str = "edr") -> pd.DataFrame:
    """Each method's single setting that is best on average over the runs (the thesis's
    "globally optimal parameters" table).

    ``tables`` = {run label: its ``sweep`` table}, every run swept on the same grid. Per setting
    the scores are averaged over the runs (each run counts once); the setting with the lowest
    mean EDR (``by="edr"``) or the highest mean F1 (``by="f1"``: the mean of the runs' F1) wins,
    ties to the smallest value. Columns: method, param, value, n_runs, edr, precision, recall
    (means), f1_mean (the mean of the runs' F1) and f1_of_mean (the F1 of the mean precision and
    mean recall, 2PR / (P + R)); the two F1 differ whenever the runs' precision and recall differ.
    """
    if by not in SELECT_BY:
        raise ValueError(f"by must be one of {', '.join(SELECT_BY)}; got {by!r}")
    if not tables:
        raise ValueError("no runs to compare")
    settings = None
    for label, t in tables.items():
        s = set(zip(t["method"], t["value"].fillna(-1.0)))
        if settings is not None and s != settings:
            raise ValueError(f"run {label!r} was swept on another grid than the first run: no common settings")
        settings = s
    stacked = pd.concat(list(tables.values()), ignore_index=True)
    stacked["value"] = stacked["value"].fillna(-1.0)  # groupby drops NaN keys; -1 marks "no parameter"
    mean = stacked.groupby(["method", "param", "value"], sort=False)[list(SCORES)].mean().reset_index()
    mean["n_runs"] = len(tables)
    mean = mean.rename(columns={"f1": "f1_mean"})
    p, r = mean["precision"], mean["recall"]
    mean["f1_of_mean"] = np.where(p + r > 0, 2 * p * r / (p + r).where(p + r > 0, 1.0), 0.0)
    mean["value"] = mean["value"].where(mean["value"] >= 0)
    best = _pick_best(mean.rename(columns={"f1_mean": "f1"}), by, "method").rename(columns={"f1": "f1_mean"})
    cols = ["method", "param", "value", "n_runs", "edr", "precision", "recall", "f1_mean", "f1_of_mean"]
    return _method_order(best[cols])
