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

Speed. A matrix passed to ``select_edges`` / ``select_relationships`` is validated once (two
reductions) and each method does only the work it needs, without ranking whole rows:
``threshold`` is one comparison, ``mcfp`` one argmax; ``hypothesis`` needs the k_max largest
values of a row and ``density`` the shortest sorted prefix reaching p, found by a partial sort
(``np.partition``) of a few top values, deeper only for the rows that need it. Sparse matrices
(count-based: a few non-zeros per row) sort their non-zeros only. Edges are then read off by
value: every entry above the last selected value, and as many of the entries equal to it as
the prefix holds, lowest columns first. ``rank_rows`` keeps the parameter-independent work of
one matrix for many calls (a sweep, a slider: the top candidates of each row in CSR layout);
``select_edges`` accepts its result as well. Nothing loops over rows in Python.
``select_edges`` returns sparse edges in row-major order; ``select_relationships`` the dense
contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core._validation import as_probability_matrix, probability_rows

EPS = 1e-9  # float tolerance for "cumulative sum reaches p" and equal hypothesis costs
N_CANDIDATES = 24  # top entries kept per dense row by rank_rows; enough for almost every row
MAX_K = 100_000  # k_max beyond any class count: larger values mean the same and only swell files
SPARSE_ROW = 128  # rows with at most this many non-zeros keep them all (no partial sort)
PREFIX_STEPS = (32, 256)  # density: prefix lengths partially sorted before a full sort of a row


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


# Direct selection on a validated matrix p (K_a, K_b) with row sums (K_a,): each method maps
# (p, sums, its parameter's value or None) -> edges (rows (E,), cols (E,), weights (E,)) in row-major order.
_Sel = tuple[np.ndarray, np.ndarray, np.ndarray]
_NonZeros = tuple[np.ndarray, np.ndarray, np.ndarray]  # flat positions, rows, values (N,), row-major


def _nonzeros(p: np.ndarray) -> _NonZeros | None:
    """Every non-zero of p as (flat position, row, value), or None when p holds on average more
    than SPARSE_ROW non-zeros per row (a dense, soft matrix: listing them would not pay)."""
    mask = p.reshape(-1) > 0
    if np.count_nonzero(mask) > SPARSE_ROW * p.shape[0]:
        return None
    flat = np.flatnonzero(mask)
    return flat, flat // p.shape[1], p.reshape(-1)[flat]


def _split_rows(nz: _NonZeros, k_a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with at most SPARSE_ROW non-zeros (S,), their non-zero values sorted descending and
    padded with at least one 0 column (S, W), and the other rows (D,)."""
    _, rows, vals = nz
    counts = np.bincount(rows, minlength=k_a)
    is_sparse = counts <= SPARSE_ROW
    within = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]  # position in its row
    if not is_sparse.all():
        keep = is_sparse[rows]
        rows, vals, within = rows[keep], vals[keep], within[keep]
    sparse = np.flatnonzero(is_sparse)
    local = (np.cumsum(is_sparse) - 1)[rows]
    pad = np.zeros((sparse.size, int(counts[sparse].max(initial=0)) + 1))
    pad[local, within] = vals
    pad.sort(axis=1)
    return sparse, pad[:, ::-1], np.flatnonzero(~is_sparse)


def _top_values(p: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """The m largest values (R, m) of the given rows of p, in descending order (a partial sort)."""
    k_b = p.shape[1]
    work = p[rows]
    if m < k_b:
        work.partition(k_b - m, axis=1)
        work = work[:, k_b - m :]
    return np.sort(work, axis=1)[:, ::-1]


def _prefix_edges(p: np.ndarray, nz: _NonZeros | None, n: np.ndarray, v: np.ndarray) -> _Sel:
    """Edges of the first n[i] entries of every row i in (value desc, column asc) order, given the
    n[i]-th value v[i] > 0 (inf where n[i] = 0): every entry above v[i], and the first entries
    equal to it (lowest columns) up to n[i] in all."""
    k_a, k_b = p.shape
    if nz is None:
        flat = np.flatnonzero((p >= v[:, None]).reshape(-1))
        rows = flat // k_b
        vals = p.reshape(-1)[flat]
    else:
        flat, rows, vals = nz
        keep = vals >= v[rows]
        flat, rows, vals = flat[keep], rows[keep], vals[keep]
    tie = vals == v[rows]
    if tie.any():  # ties at the last value: only the lowest columns that fit
        above = np.bincount(rows[~tie], minlength=k_a)
        t_pos = np.flatnonzero(tie)
        t_rows = rows[t_pos]
        rank = np.arange(t_pos.size) - np.searchsorted(t_rows, t_rows)  # rank among its row's ties
        drop = t_pos[rank >= (n - above)[t_rows]]
        if drop.size:
            keep = np.ones(flat.size, dtype=bool)
            keep[drop] = False
            flat, rows, vals = flat[keep], rows[keep], vals[keep]
    return rows, flat - rows * k_b, vals


def _threshold_direct(p: np.ndarray, sums: np.ndarray, t: float) -> _Sel:
    k_b = p.shape[1]
    flat = np.flatnonzero(((p >= t) if t > 0 else (p > 0)).reshape(-1))
    rows = flat // k_b
    return rows, flat - rows * k_b, p.reshape(-1)[flat]


def _argmax_direct(p: np.ndarray) -> _Sel:
    cols = p.argmax(axis=1)  # first maximum: ties -> lowest column
    rows = np.arange(p.shape[0])
    w = p[rows, cols]
    keep = w > 0
    return rows[keep], cols[keep], w[keep]


def _mcfp_direct(p: np.ndarray, sums: np.ndarray, _: None = None) -> _Sel:
    return _argmax_direct(p)


def _mcfp_binary_direct(p: np.ndarray, sums: np.ndarray, _: None = None) -> _Sel:
    rows, cols, w = _argmax_direct(p)
    return rows, cols, np.ones(w.size)


def _crossing(block: np.ndarray, total: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the running sum of sorted values crosses ``target``: ``block`` (R, m) holds each
    row's next values (descending), ``total`` (R,) the mass taken before them. Returns (stops (R,):
    the row stops within the block, taken (R,): how many of the block it takes, new totals (R,)).
    The sums run left to right, as the reference's loop adds them."""
    cs = np.cumsum(np.concatenate([total[:, None], block], axis=1), axis=1)
    stop = (cs[:, :-1] >= target) | (block <= 0)
    stops = stop.any(axis=1)
    return stops, np.where(stops, stop.argmax(axis=1), block.shape[1]), cs[:, -1]


def _density_dense(p: np.ndarray, rows: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, v) of the density prefix of the given rows: partial sorts of the top 32, 256 values,
    then a full sort for the rows still short of ``target``."""
    k_b = p.shape[1]
    n, v = np.zeros(rows.size, dtype=np.int64), np.full(rows.size, np.inf)
    work = p[rows]  # a copy: its first k_b - lo columns hold each active row's values not yet taken
    active, total, last, lo = np.arange(rows.size), np.zeros(rows.size), np.full(rows.size, np.inf), 0
    for hi in [*(m for m in PREFIX_STEPS if m < k_b), k_b]:
        width = k_b - lo
        if hi < k_b:
            work.partition(width - (hi - lo), axis=1)
            block = np.sort(work[:, width - (hi - lo) :], axis=1)[:, ::-1]
        else:
            block = np.sort(work, axis=1)[:, ::-1]
        stops, taken, total = _crossing(block, total, target)
        done = stops | (hi == k_b)
        lastv = np.where(taken > 0, block[np.arange(taken.size), np.maximum(taken - 1, 0)], last)
        n[active[done]], v[active[done]] = lo + taken[done], lastv[done]
        more = ~done
        if not more.any():
            break
        active, total, last = active[more], total[more], block[more, -1]
        work = work[more, : width - (hi - lo)]
        lo = hi
    return n, v


def _density_direct(p: np.ndarray, sums: np.ndarray, mass: float) -> _Sel:
    target = mass - EPS
    k_a = p.shape[0]
    n, v = np.zeros(k_a, dtype=np.int64), np.full(k_a, np.inf)
    nz = _nonzeros(p)
    if nz is None:
        dense = np.flatnonzero(sums > 0)
    else:
        sparse, pad, dense = _split_rows(nz, k_a)
        _, taken, _ = _crossing(pad, np.zeros(sparse.size), target)  # the 0 column always stops
        n[sparse] = taken
        v[sparse] = np.where(taken > 0, pad[np.arange(sparse.size), np.maximum(taken - 1, 0)], np.inf)
    if dense.size:
        n[dense], v[dense] = _density_dense(p, dense, target)
    return _prefix_edges(p, nz, n, v)


def _hypothesis_direct(p: np.ndarray, sums: np.ndarray, k_max: int) -> _Sel:
    k_a, k_b = p.shape
    k_top = min(k_max, k_b)
    c = 1.0 / k_b
    nz = _nonzeros(p)
    if nz is None:
        top = _top_values(p, np.arange(k_a), k_top)
        with np.errstate(under="ignore"):
            excess = np.maximum(p, c).sum(axis=1) - c * k_b  # sum_j max(x_j - c, 0)
    else:
        top = np.zeros((k_a, k_top))
        sparse, pad, dense = _split_rows(nz, k_a)
        w = min(k_top, pad.shape[1])
        top[sparse, :w] = pad[:, :w]
        if dense.size:
            top[dense] = _top_values(p, dense, k_top)
        excess = np.bincount(nz[1], weights=np.maximum(nz[2] - c, 0.0), minlength=k_a)
    costs = np.empty((k_a, k_top + 1))
    costs[:, 0] = 2.0 * excess + 1.0 - sums  # k = 0: sum_j |x_j - 1/K_b|
    rest = sums[:, None] - np.cumsum(top, axis=1)  # sum_{j>k} X_j, k = 1..k_top
    for k in range(1, k_top + 1):  # a loop over k (<= k_max), not over rows
        costs[:, k] = np.abs(top[:, :k] - 1.0 / k).sum(axis=1) + rest[:, k - 1]
    best_k = np.argmin(np.round(costs, 12), axis=1)  # first minimum: ties -> smallest k
    n = ((np.arange(k_top) < best_k[:, None]) & (top > 0)).sum(axis=1)  # zeros are never edges
    v = np.where(n > 0, top[np.arange(k_a), np.maximum(n - 1, 0)], np.inf)
    return _prefix_edges(p, nz, n, v)


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
    """A selection method: its function on ``rank_rows`` results (``func``) and on a validated
    matrix (``direct``), and its parameter (name, checker, default, sweep grid, and the (low, high,
    step) range a slider offers)."""

    func: Callable[..., _Picked]
    param: str | None = None
    check: Callable[[object], float | int] | None = None
    default: float | int | None = None
    grid: tuple[float, ...] = ()
    label: str = ""
    bounds: tuple[float, float, float] = ()
    direct: Callable[[np.ndarray, np.ndarray, float | int | None], _Sel] | None = None


METHODS: dict[str, Method] = {
    "threshold": Method(
        _threshold,
        "t",
        lambda v: _check_unit(v, name="t", low_open=False),
        0.3,
        tuple(np.round(np.arange(0.02, 1.0001, 0.02), 2)),
        "Naive threshold",
        (0.0, 1.0, 0.01),
        _threshold_direct,
    ),
    "mcfp": Method(_mcfp, label="Most common foreign prediction", direct=_mcfp_direct),
    "mcfp_binary": Method(_mcfp_binary, label="MCFP, binary weights", direct=_mcfp_binary_direct),
    "density": Method(
        _density,
        "p",
        lambda v: _check_unit(v, name="p", low_open=True),
        0.7,
        tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2)),
        "Density threshold",
        (0.05, 1.0, 0.01),
        _density_direct,
    ),
    "hypothesis": Method(
        _hypothesis,
        "k_max",
        _check_k_max,
        3,
        tuple(range(1, 11)),
        "Relationship hypothesis",
        (1, 10, 1),
        _hypothesis_direct,
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


def _select_ranked(r: RankedRows, method: str, clean: dict) -> _Sel:
    """Edges of a ``rank_rows`` result: the method on the candidates, deeper ranks where needed."""
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
    rows, cols, weights = rows[keep], cols[keep], weights[keep].astype(np.float64)
    key = rows * r.shape[1] + cols
    if key.size > 1 and (np.diff(key) < 0).any():  # row-major, as the direct path gives them
        order = np.argsort(key, kind="stable")
        rows, cols, weights = rows[order], cols[order], weights[order]
    return rows, cols, weights


def _select(P: object, method: str, params: dict, stacklevel: int) -> Edges:
    clean = check_params(method, params)
    if isinstance(P, RankedRows):
        return Edges(*_select_ranked(P, method, clean), P.shape)
    p, sums = probability_rows(P, stacklevel=stacklevel + 1)
    value = next(iter(clean.values()), None)
    rows, cols, weights = METHODS[method].direct(p, sums, value)
    return Edges(rows, cols, weights, p.shape)


def select_edges(P: object, method: str, **params: object) -> Edges:
    """Selected relationships of P (K_a, K_b) or of a ``rank_rows`` result, as sparse edges
    (row-major order). P is validated once; nothing is kept between calls."""
    return _select(P, method, params, stacklevel=2)


def select_relationships(P: object, method: str, **params: object) -> np.ndarray:
    """W (K_a, K_b) for P (K_a, K_b): the weight of every selected edge, 0 = no edge.

    >>> select_relationships([[0.6, 0.4], [0.5, 0.5]], "mcfp")
    array([[0.6, 0. ],
           [0.5, 0. ]])
    """
    return _select(P, method, params, stacklevel=2).dense()
