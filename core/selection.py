"""Relationship selection: P_ab (K_a, K_b) -> weight matrix W_ab (K_a, K_b), 0 = no edge.

Methods (docs/architecture.md), all on rows ``x = P[i, :]``, ties broken by the lowest class index:

- ``threshold(t)``: edges j with x_j >= t (and x_j > 0), weight x_j.
- ``mcfp``: the single edge argmax x, weight x_j; all-zero rows give none.
- ``mcfp_binary``: as mcfp with weight 1.
- ``density(p)``: sort descending, take the shortest prefix whose cumulative sum reaches p
  (the crossing element included), weights x_j.
- ``hypothesis(k_max)``: for k = 1..k_max (INCLUSIVE here; the thesis code's bound is
  exclusive, its ``upper_bound=5`` tests k = 0..4, i.e. our k_max=4) the cost is
  sum_{j<=k} |X_j - 1/k| + sum_{j>k} X_j over the sorted row X, and k = 0 ("no relationship")
  costs sum_j |X_j - 1/K_b|; the least cost wins (ties: smallest k); edges are the top k.

Speed: a slider move must recompute every pair. ``rank_rows`` does the parameter-independent
work once per matrix (a partial sort keeping the top candidates of each row, ordered by
(value desc, column asc)); every method then works on those few candidates, falling back to a
full sort only for the rare rows whose answer lies beyond them. Nothing loops over rows in
Python. ``select_edges`` returns sparse edges; ``select_relationships`` the dense contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core._validation import as_probability_matrix

EPS = 1e-9  # float tolerance for "cumulative sum reaches p" and equal hypothesis costs
N_CANDIDATES = 24  # top entries kept per dense row by rank_rows; enough for almost every row
MAX_K = 100_000  # k_max beyond any class count: larger values mean the same and only swell files
SPARSE_ROW = 128  # rows with at most this many non-zeros keep them all (no partial sort)


@dataclass(frozen=True)
class RankedRows:
    """The top candidates of every row of a validated P, in CSR layout.

    Row i's candidates are ``cols[indptr[i]:indptr[i+1]]`` with values ``vals[...]``, sorted
    by (value desc, column asc). They hold every entry > 0 that is >= ``floor[i]``; all other
    entries of the row are < floor[i] (or 0). ``complete[i]``: the candidates are all
    non-zero entries of the row. ``cost0[i]`` = sum_j |P[i,j] - 1/K_b| (hypothesis k = 0).
    """

    P: np.ndarray  # (K_a, K_b) float64, rows sum to 1 or 0
    indptr: np.ndarray  # (K_a + 1,) int64
    cols: np.ndarray  # (nnz,) int64
    vals: np.ndarray  # (nnz,) float64
    floor: np.ndarray  # (K_a,) float64
    complete: np.ndarray  # (K_a,) bool
    cost0: np.ndarray  # (K_a,) float64

    @property
    def shape(self) -> tuple[int, int]:
        return self.P.shape

    @property
    def rows(self) -> np.ndarray:
        """Row index (nnz,) of every candidate."""
        return np.repeat(np.arange(self.P.shape[0]), np.diff(self.indptr))


@dataclass(frozen=True)
class Edges:
    """Selected relationships of one pair: edge e is (rows[e], cols[e]) with weight weights[e] > 0."""

    rows: np.ndarray  # (E,) int64
    cols: np.ndarray  # (E,) int64
    weights: np.ndarray  # (E,) float64
    shape: tuple[int, int]  # (K_a, K_b)

    def dense(self) -> np.ndarray:
        """The weight matrix W (K_a, K_b)."""
        w = np.zeros(self.shape)
        w[self.rows, self.cols] = self.weights
        return w

    @classmethod
    def from_dense(cls, w: np.ndarray) -> Edges:
        """Edges of a weight matrix W (K_a, K_b) (entries > 0)."""
        w = np.asarray(w, dtype=np.float64)
        flat = np.flatnonzero(w.ravel() > 0)
        rows, cols = np.divmod(flat, w.shape[1])
        return cls(rows, cols, w.ravel()[flat], w.shape)


def _rank(p: np.ndarray, m: int, sparse_row: int = SPARSE_ROW) -> RankedRows:
    k_a, k_b = p.shape
    flat = np.flatnonzero(p)
    rows = flat // k_b
    nnz = np.bincount(rows, minlength=k_a)
    floor = np.zeros(k_a)
    dense_rows = np.flatnonzero(nnz > max(m, sparse_row))
    if m >= k_b and k_a:  # full ranking: one 2-D stable sort
        order = np.argsort(-p, axis=1, kind="stable")
        srt = np.take_along_axis(p, order, axis=1)
        flat = np.flatnonzero(srt)
        rows = flat // k_b
        cols, vals = order.ravel()[flat], srt.ravel()[flat]
    else:
        if dense_rows.size:  # partial sort only where a row has many non-zeros
            sub = p if dense_rows.size == k_a else p[dense_rows]
            floor[dense_rows] = np.partition(sub, k_b - m, axis=1)[:, k_b - m]  # m-th largest
            keep = p.ravel()[flat] >= floor[rows]
            flat, rows = flat[keep], rows[keep]
        cols = flat - rows * k_b
        vals = p.ravel()[flat]
        order = np.lexsort((-vals, rows))  # rows asc, then value desc; stable keeps column asc
        rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=k_a)
    indptr = np.zeros(k_a + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    complete = counts == nnz
    # hypothesis k = 0: sum_j |x_j - c| = 2 * sum_{x_j > c} (x_j - c) + c * K_b - sum_j x_j
    c = 1.0 / k_b
    excess = np.bincount(rows, weights=np.maximum(vals - c, 0.0), minlength=k_a)
    if not complete.all():
        part = np.flatnonzero(~complete)
        sub = p if part.size == k_a else p[part]
        excess[part] = np.maximum(sub, c).sum(axis=1) - c * k_b
    cost0 = 2.0 * excess + 1.0 - p.sum(axis=1)
    return RankedRows(p, indptr, cols.astype(np.int64), vals, floor, complete, cost0)


def rank_rows(P: object, *, n_candidates: int = N_CANDIDATES, sparse_row: int = SPARSE_ROW) -> RankedRows:
    """Validate P (K_a, K_b) and rank each row's candidates (done once per P).

    Rows with at most ``sparse_row`` non-zeros keep them all; denser rows keep their top
    ``n_candidates`` entries (plus ties).
    """
    if isinstance(P, RankedRows):
        return P
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
        raise ValueError(f"n_candidates must be an int >= 1, got {n_candidates!r}")
    return _rank(as_probability_matrix(P), n_candidates, sparse_row)


# Each method maps RankedRows -> (candidate positions to keep (E,), weights (E,), rows that
# need a full ranking (R,)). Positions index r.cols / r.vals.
_Picked = tuple[np.ndarray, np.ndarray, np.ndarray]


def _position_in_row(r: RankedRows) -> np.ndarray:
    """Rank (nnz,) of each candidate within its row: 0 for the largest."""
    return np.arange(r.cols.size) - np.repeat(r.indptr[:-1], np.diff(r.indptr))


def _threshold(r: RankedRows, *, t: float) -> _Picked:
    pos = np.flatnonzero(r.vals >= t)
    needs_full = np.flatnonzero(~r.complete & (r.floor >= t))
    return pos, r.vals[pos], needs_full


def _first_of_row(r: RankedRows) -> np.ndarray:
    has = np.diff(r.indptr) > 0
    return r.indptr[:-1][has]


def _mcfp(r: RankedRows) -> _Picked:
    pos = _first_of_row(r)
    return pos, r.vals[pos], np.zeros(0, dtype=np.int64)


def _mcfp_binary(r: RankedRows) -> _Picked:
    pos = _first_of_row(r)
    return pos, np.ones(pos.size), np.zeros(0, dtype=np.int64)


def _density(r: RankedRows, *, p: float) -> _Picked:
    csum = np.cumsum(r.vals)
    starts = np.repeat(r.indptr[:-1], np.diff(r.indptr))
    before = csum - r.vals - np.concatenate(([0.0], csum))[starts]  # mass before each candidate
    pos = np.flatnonzero(before < p - EPS)
    row_mass = np.bincount(r.rows, weights=r.vals, minlength=r.shape[0])
    needs_full = np.flatnonzero(~r.complete & (row_mass < p - EPS))
    return pos, r.vals[pos], needs_full


def _hypothesis(r: RankedRows, *, k_max: int) -> _Picked:
    k_a, k_b = r.shape
    k_top = min(k_max, k_b)
    counts = np.diff(r.indptr)
    take = np.minimum(counts, k_top)
    needs_full = np.flatnonzero(~r.complete & (counts < k_top))
    top = np.zeros((k_a, k_top))  # X_1..X_k_top per row, zero-padded past the non-zeros
    rows = np.repeat(np.arange(k_a), take)
    within = np.arange(rows.size) - np.repeat(np.cumsum(take) - take, take)
    top[rows, within] = r.vals[np.repeat(r.indptr[:-1], take) + within]
    rest = r.P.sum(axis=1)[:, None] - np.cumsum(top, axis=1)  # sum_{j>k} X_j, k = 1..k_top
    costs = np.empty((k_a, k_top + 1))
    costs[:, 0] = r.cost0
    for k in range(1, k_top + 1):  # a loop over k (<= k_max), not over rows
        costs[:, k] = np.abs(top[:, :k] - 1.0 / k).sum(axis=1) + rest[:, k - 1]
    best_k = np.argmin(np.round(costs, 12), axis=1)  # first minimum: ties -> smallest k
    keep = _position_in_row(r) < np.repeat(best_k, counts)
    pos = np.flatnonzero(keep)
    return pos, r.vals[pos], needs_full


def _check_unit(value: object, *, name: str, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    ok = (0.0 < v <= 1.0) if low_open else (0.0 <= v <= 1.0)
    if not ok:
        raise ValueError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}")
    return v


def _check_k_max(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"k_max must be an int, got {value!r}")
    if not 1 <= value <= MAX_K:
        raise ValueError(f"k_max must be in [1, {MAX_K}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Method:
    """A selection method: its function and its parameter (name, checker, default, sweep grid,
    and the (low, high, step) range a slider offers)."""

    func: Callable[..., _Picked]
    param: str | None = None
    check: Callable[[object], float | int] | None = None
    default: float | int | None = None
    grid: tuple[float, ...] = ()
    label: str = ""
    bounds: tuple[float, float, float] = ()


METHODS: dict[str, Method] = {
    "threshold": Method(
        _threshold,
        "t",
        lambda v: _check_unit(v, name="t", low_open=False),
        0.3,
        tuple(np.round(np.arange(0.02, 1.0001, 0.02), 2)),
        "Naive threshold",
        (0.0, 1.0, 0.01),
    ),
    "mcfp": Method(_mcfp, label="Most common foreign prediction"),
    "mcfp_binary": Method(_mcfp_binary, label="MCFP, binary weights"),
    "density": Method(
        _density,
        "p",
        lambda v: _check_unit(v, name="p", low_open=True),
        0.7,
        tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2)),
        "Density threshold",
        (0.05, 1.0, 0.01),
    ),
    "hypothesis": Method(
        _hypothesis, "k_max", _check_k_max, 3, tuple(range(1, 11)), "Relationship hypothesis", (1, 10, 1)
    ),
}


def check_params(method: str, params: dict) -> dict:
    """Validate a method name and its keyword parameters; return them with defaults filled in."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; valid: {', '.join(METHODS)}")
    spec = METHODS[method]
    allowed = {spec.param} if spec.param else set()
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"method {method!r} takes {sorted(allowed) or 'no parameters'}, got {sorted(unknown)}")
    if spec.param is None:
        return {}
    return {spec.param: spec.check(params.get(spec.param, spec.default))}


def select_edges(P: object, method: str, **params: object) -> Edges:
    """Selected relationships of P (K_a, K_b) or of a ``rank_rows`` result, as sparse edges."""
    clean = check_params(method, params)
    r = rank_rows(P)
    pos, weights, needs_full = METHODS[method].func(r, **clean)
    rows, cols = r.rows[pos], r.cols[pos]
    m = N_CANDIDATES
    while needs_full.size:  # rows whose answer lies beyond the candidates: rank them deeper
        m = m * 8 if m * 8 < r.shape[1] // 2 else r.shape[1]
        deeper = _rank(r.P[needs_full], m, sparse_row=0)
        dpos, dweights, again = METHODS[method].func(deeper, **clean)
        ok = ~np.isin(np.arange(needs_full.size), again)
        take = ok[deeper.rows[dpos]]
        redo = np.isin(rows, needs_full[ok])
        rows = np.concatenate([rows[~redo], needs_full[deeper.rows[dpos[take]]]])
        cols = np.concatenate([cols[~redo], deeper.cols[dpos[take]]])
        weights = np.concatenate([weights[~redo], dweights[take]])
        needs_full = needs_full[again]
    keep = weights > 0
    return Edges(rows[keep], cols[keep], weights[keep].astype(np.float64), r.shape)


def select_relationships(P: object, method: str, **params: object) -> np.ndarray:
    """W (K_a, K_b) for P (K_a, K_b): the weight of every selected edge, 0 = no edge.

    >>> select_relationships([[0.6, 0.4], [0.5, 0.5]], "mcfp")
    array([[0.6, 0. ],
           [0.5, 0. ]])
    """
    return select_edges(P, method, **params).dense()
