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

Speed. A matrix passed to ``select_edges`` / ``select_relationships`` is validated and worked on
a block of rows at a time (each block read from memory once, two reductions to validate it), and
each method does only the work it needs, without ranking whole rows: ``threshold`` is one
comparison, ``mcfp`` one argmax; ``hypothesis`` needs the k_max largest values of a row (repeated
argmax for a few) and the rest's sum, ``density`` the shortest sorted prefix reaching p, found by
a partial sort (``np.partition``) of the top values, deeper only for the rows that need it.
Sparse matrices (count-based: a few non-zeros per row) sort their non-zeros only. Edges are read
off by value: every entry above the last selected value, and as many of the entries equal to it
as the prefix holds, lowest columns first. Nothing loops over rows in Python.

Work is reused where a matrix is passed again: a sparse P's non-zeros and sorted rows
(``PREPARED``; from its second call on, also each non-zero's rank in its row and the running
sums, so that a prefix method only compares ranks), and the edges of a W made here, for scoring
it (``DENSE_EDGES``, read by core.metrics). Both are handed back only while the array is
unchanged, checked by one comparison pass over it (core._validation.NonzeroMemo), so a matrix
changed in place is simply selected afresh. ``rank_rows`` keeps the parameter-independent work
of one matrix explicitly (a sweep, a slider: the top candidates of each row in CSR layout);
``select_edges`` accepts its result as well. ``select_edges`` returns sparse edges in
row-major order; ``select_relationships`` the dense contract. On a large P
(core._validation.PARALLEL_BYTES) the dense blocks are worked on by the engine's worker threads
(core._validation.WORKERS; 1 turns them off) while the next block is validated; the results do
not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core._validation import NonzeroMemo, as_probability_matrix, probability_blocks, worker_pool

EPS = 1e-9  # float tolerance for "cumulative sum reaches p" and equal hypothesis costs
N_CANDIDATES = 24  # top entries kept per dense row by rank_rows; enough for almost every row
MAX_K = 100_000  # k_max beyond any class count: larger values mean the same and only swell files
SPARSE_ROW = 128  # rows (and blocks, on average) with at most this many non-zeros: sort those only
PREFIX_STEPS = (96, 320)  # density: prefix lengths partially sorted before a full sort of a row
SMALL_TOP = 8  # hypothesis with k_max up to this: repeated argmax instead of a partial sort
SAMPLE_ROWS = 8  # rows looked at to guess whether a block is sparse (a guess costs speed, never results)
MEMO_BYTES = 256 << 20  # at most this much remembered work (each of the two memos below)


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
        w.reshape(-1)[self.rows * self.shape[1] + self.cols] = self.weights
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


# Direct selection (no RankedRows). A matrix is validated and worked on a block of rows at a time
# (core._validation.probability_blocks), so each block is read from memory once. A sparse block
# (count-based: at most SPARSE_ROW non-zeros per row on average) becomes a _Sparse, its non-zeros
# and each row's non-zero values sorted; a dense block (soft) is worked on as it is. Every method
# has a function for each: (block, sums, value) -> edges and (block, _Sparse, value) -> edges,
# edges = (rows, cols, weights) in row-major order. All the work is per row and both kinds find
# the same sorted values and the same sums, so neither the grouping of rows nor the kind of block
# changes a result.
_Sel = tuple[np.ndarray, np.ndarray, np.ndarray]


def _split_rows(rows: np.ndarray, vals: np.ndarray, k_a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the non-zeros (rows, values) (N,) in row-major order: the rows with at most SPARSE_ROW
    non-zeros (S,), their values sorted descending and padded with at least one 0 (S, W), and the
    other rows (D,)."""
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


@dataclass
class _Sparse:
    """The non-zeros of a sparse validated P (R, K_b), row-major: positions ``flat`` (N,), ``rows``
    (N,), values ``vals`` (N,) > 0; the row sums (R,); and, made on first use, ``split()``."""

    k_b: int
    sums: np.ndarray
    flat: np.ndarray
    rows: np.ndarray
    vals: np.ndarray
    _split: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    rank: np.ndarray | None = None  # (N,) each non-zero's rank in its row, (value desc, column asc)
    before: np.ndarray | None = None  # (S, W) split()'s pad: the mass of the values before each one
    excess: np.ndarray | None = None  # (R,) sum_j max(x_j - 1/K_b, 0)

    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_split_rows`` of the non-zeros (kept: a matrix passed again reuses it)."""
        if self._split is None:
            self._split = _split_rows(self.rows, self.vals, self.sums.size)
        return self._split

    def prepare(self) -> _Sparse:
        """Make every parameter-independent piece (``split()``, ``rank``, ``before``, ``excess``)
        at once, for a matrix whose work is remembered: a later call only reads them off."""
        _, pad, _ = self.split()
        order = np.lexsort((-self.vals, self.rows))  # rows asc, then value desc; stable: column asc
        counts = np.bincount(self.rows, minlength=self.sums.size)
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size) - np.repeat(np.cumsum(counts) - counts, counts)
        self.rank = rank
        # the running sums as the reference adds them, left to right from 0 (as _crossing does)
        self.before = np.cumsum(np.concatenate([np.zeros((pad.shape[0], 1)), pad[:, :-1]], axis=1), axis=1)
        self.excess = np.bincount(self.rows, weights=np.maximum(self.vals - 1.0 / self.k_b, 0.0), minlength=counts.size)
        return self

    @property
    def nbytes(self) -> int:
        extra = (a for a in (self.rank, self.before, self.excess) if a is not None)
        return sum(a.nbytes for a in (self.sums, self.flat, self.rows, self.vals, *(self._split or ()), *extra))


def _sparse_of(p: np.ndarray, sums: np.ndarray) -> _Sparse | None:
    """The _Sparse of a validated block p (R, K_b), or None when it holds on average more than
    SPARSE_ROW non-zeros per row (a dense, soft block; its first rows are looked at first, so such
    a block costs no full scan here)."""
    head = p[:SAMPLE_ROWS]
    if np.count_nonzero(head) > SPARSE_ROW * head.shape[0]:
        return None
    mask = p.reshape(-1) > 0
    if np.count_nonzero(mask) > SPARSE_ROW * p.shape[0]:
        return None
    flat = np.flatnonzero(mask)
    return _Sparse(p.shape[1], sums, flat, flat // p.shape[1], p.reshape(-1)[flat])


def _merged(parts: list[tuple[int, _Sparse]], k_b: int) -> _Sparse:
    """One _Sparse of consecutive blocks' (start row, _Sparse)."""
    if len(parts) == 1:
        return parts[0][1]
    return _Sparse(
        k_b,
        np.concatenate([s.sums for _, s in parts]),
        np.concatenate([s.flat + lo * k_b for lo, s in parts]),
        np.concatenate([s.rows + lo for lo, s in parts]),
        np.concatenate([s.vals for _, s in parts]),
    )


def _rows_copy(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return p.copy() if rows.size == p.shape[0] else p[rows]


def _top_values(p: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """The m largest values (R, m) of the given rows of p, in descending order (a partial sort)."""
    k_b = p.shape[1]
    work = _rows_copy(p, rows)
    if m < k_b:
        work.partition(k_b - m, axis=1)
        work = work[:, k_b - m :]
    return np.sort(work, axis=1)[:, ::-1]


def _top_by_argmax(p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k <= K_b largest entries of every row of p (R, K_b) in (value desc, column asc) order:
    values (R, k) and columns (R, k). Repeated argmax (first maximum: lowest column), each pick
    masked out: for a few entries this is cheaper than a partial sort."""
    rows = np.arange(p.shape[0])
    work = p.copy()
    vals, cols = np.empty((rows.size, k)), np.empty((rows.size, k), dtype=np.int64)
    for s in range(k):  # a loop over the k picks, not over rows
        j = work.argmax(axis=1)
        cols[:, s], vals[:, s] = j, work[rows, j]
        work[rows, j] = -1.0
    return vals, cols


def _prefix_edges(p: np.ndarray, sp: _Sparse | None, n: np.ndarray, v: np.ndarray) -> _Sel:
    """Edges of the first n[i] entries of every row i of p (R, K_b) in (value desc, column asc)
    order, given the n[i]-th value v[i] > 0 (inf where n[i] = 0): every entry above v[i], and the
    entries equal to it, lowest columns first, up to n[i] in all. Candidates come from the
    non-zeros ``sp`` when given, else from one comparison over p."""
    k_a, k_b = p.shape
    if sp is not None and sp.rank is not None:  # each non-zero's rank is known: the first n of a row
        keep = np.flatnonzero(sp.rank < n[sp.rows])
        rows = sp.rows[keep]
        return rows, sp.flat[keep] - rows * k_b, sp.vals[keep]
    if sp is None:
        flat = np.flatnonzero((p >= v[:, None]).reshape(-1))
        rows = flat // k_b
        vals = p.reshape(-1)[flat]
        last = v[rows]
    else:
        last = v[sp.rows]
        keep = np.flatnonzero(sp.vals >= last)
        flat, rows, vals, last = sp.flat[keep], sp.rows[keep], sp.vals[keep], last[keep]
    tie = vals == last
    if tie.any():  # ties at the last value: only the lowest columns that fit
        t_rows = rows[tie]
        n_ties = np.bincount(t_rows, minlength=k_a)
        room = n - (np.bincount(rows, minlength=k_a) - n_ties)  # n minus the entries above v
        rank = np.arange(t_rows.size) - (np.cumsum(n_ties) - n_ties)[t_rows]  # rank among its row's ties
        if (rank >= room[t_rows]).any():
            keep = np.ones(flat.size, dtype=bool)
            keep[tie] = rank < room[t_rows]
            flat, rows, vals = flat[keep], rows[keep], vals[keep]
    return rows, flat - rows * k_b, vals


def _first_n(n: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, v) with v = inf where n = 0 (no edge: nothing is >= inf)."""
    return n, np.where(n > 0, v, np.inf)


# threshold and MCFP: a comparison, an argmax; no ranking
def _threshold_dense(p: np.ndarray, sums: np.ndarray, t: float) -> _Sel:
    k_b = p.shape[1]
    flat = np.flatnonzero(((p >= t) if t > 0 else (p > 0)).reshape(-1))
    rows = flat // k_b
    return rows, flat - rows * k_b, p.reshape(-1)[flat]


def _threshold_sparse(p: np.ndarray, sp: _Sparse, t: float) -> _Sel:
    keep = np.flatnonzero(sp.vals >= t)  # t = 0: every non-zero
    rows = sp.rows[keep]
    return rows, sp.flat[keep] - rows * sp.k_b, sp.vals[keep]


def _mcfp_dense(p: np.ndarray, sums: np.ndarray, _: None = None) -> _Sel:
    cols = p.argmax(axis=1)  # first maximum: ties -> lowest column
    rows = np.arange(p.shape[0])
    w = p[rows, cols]
    keep = w > 0
    return rows[keep], cols[keep], w[keep]


def _mcfp_sparse(p: np.ndarray, sp: _Sparse, _: None = None) -> _Sel:
    if sp.rank is not None:  # the first of every row with a non-zero
        keep = np.flatnonzero(sp.rank == 0)
        rows = sp.rows[keep]
        return rows, sp.flat[keep] - rows * sp.k_b, sp.vals[keep]
    sparse, pad, dense = sp.split()
    top = np.zeros(sp.sums.size)
    top[sparse] = pad[:, 0]
    if dense.size:
        top[dense] = p[dense].max(axis=1)
    return _prefix_edges(p, sp, *_first_n((top > 0).astype(np.int64), top))


def _binary(select: Callable[..., _Sel]) -> Callable[..., _Sel]:
    def binary(p: np.ndarray, x: object, _: None = None) -> _Sel:
        rows, cols, w = select(p, x)
        return rows, cols, np.ones(w.size)

    return binary


# density: the shortest sorted prefix reaching p
def _crossing(block: np.ndarray, total: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the running sum of sorted values crosses ``target``: ``block`` (R, m) holds each
    row's next values (descending), ``total`` (R,) the mass taken before them. Returns (stops (R,):
    the row stops within the block, taken (R,): how many of the block it takes, new totals (R,)).
    The sums run left to right, as the reference's loop adds them."""
    cs = np.cumsum(np.concatenate([total[:, None], block], axis=1), axis=1)
    stop = (cs[:, :-1] >= target) | (block <= 0)
    stops = stop.any(axis=1)
    return stops, np.where(stops, stop.argmax(axis=1), block.shape[1]), cs[:, -1]


def _density_rows(p: np.ndarray, rows: np.ndarray, target: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, v) of the density prefix of the given rows of a dense p: partial sorts of the top
    PREFIX_STEPS values, then a full sort for the rows still short of ``target``."""
    k_b = p.shape[1]
    n, v = np.zeros(rows.size, dtype=np.int64), np.full(rows.size, np.inf)
    work = _rows_copy(p, rows)  # its first k_b - lo columns: each active row's values not yet taken
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


def _density_dense(p: np.ndarray, sums: np.ndarray, mass: float) -> _Sel:
    n, v = np.zeros(p.shape[0], dtype=np.int64), np.full(p.shape[0], np.inf)
    rows = np.flatnonzero(sums > 0)  # all-zero rows take nothing
    if rows.size:
        n[rows], v[rows] = _density_rows(p, rows, mass - EPS)
    return _prefix_edges(p, None, n, v)


def _density_sparse(p: np.ndarray, sp: _Sparse, mass: float) -> _Sel:
    target = mass - EPS
    sparse, pad, dense = sp.split()
    n, v = np.zeros(sp.sums.size, dtype=np.int64), np.full(sp.sums.size, np.inf)
    if sp.before is None:
        _, taken, _ = _crossing(pad, np.zeros(sparse.size), target)  # the 0 column always stops
    else:  # the same comparisons on the running sums made once: the first value that stops a row
        taken = ((sp.before >= target) | (pad <= 0)).argmax(axis=1)
    n[sparse], v[sparse] = _first_n(taken, pad[np.arange(sparse.size), np.maximum(taken - 1, 0)])
    if dense.size:
        n[dense], v[dense] = _density_rows(p, dense, target)
    return _prefix_edges(p, sp, n, v)


# hypothesis: the top k_max values of a row and the rest's sum
def _hypothesis_n(p: np.ndarray, sums: np.ndarray, top: np.ndarray, excess: np.ndarray | None = None) -> np.ndarray:
    """How many of its top values (R, k_top) every row of p keeps (the least cost k, zeros dropped).

    ``excess`` (R,): sum_j max(x_j - 1/K_b, 0) per row when known (from the non-zeros), else it is
    found by a pass over the rows that need it."""
    k_a, k_top = top.shape
    k_b = p.shape[1]
    c = 1.0 / k_b
    costs = np.empty((k_a, k_top + 1))
    rest = sums[:, None] - np.cumsum(top, axis=1)  # sum_{j>k} X_j, k = 1..k_top
    for k in range(1, k_top + 1):  # a loop over k (<= k_max), not over rows
        costs[:, k] = np.abs(top[:, :k] - 1.0 / k).sum(axis=1) + rest[:, k - 1]
    # k = 0 costs sum_j |x_j - c| = 2 * sum_j max(x_j - c, 0) + 1 - sum_j x_j
    if excess is None:  # a pass over the row, needed only where k = 0 can win: it costs at least
        # sum_{j<=k_top} |X_j - c| + |rest - (K_b - k_top) c| (the triangle inequality on the rest);
        # rows whose bound exceeds their best k >= 1 by far more than float error skip the pass
        costs[:, 0] = np.abs(top - c).sum(axis=1) + np.abs(rest[:, -1] - (k_b - k_top) * c)
        maybe = np.flatnonzero(costs[:, 0] <= costs[:, 1:].min(axis=1) + 1e-9)
        if maybe.size:
            sub = p if 2 * maybe.size > k_a else p[maybe]
            with np.errstate(under="ignore"):
                excess = np.maximum(sub, c).sum(axis=1) - c * k_b
            if sub is p:
                excess = excess[maybe]
            costs[maybe, 0] = 2.0 * excess + 1.0 - sums[maybe]
    else:
        costs[:, 0] = 2.0 * excess + 1.0 - sums
    best_k = np.argmin(np.round(costs, 12), axis=1)  # first minimum: ties -> smallest k
    return ((np.arange(k_top) < best_k[:, None]) & (top > 0)).sum(axis=1)  # zeros are never edges


def _hypothesis_dense(p: np.ndarray, sums: np.ndarray, k_max: int) -> _Sel:
    k_a, k_b = p.shape
    k_top = min(k_max, k_b)
    if k_top > SMALL_TOP:
        top = _top_values(p, np.arange(k_a), k_top)
        n = _hypothesis_n(p, sums, top)
        return _prefix_edges(p, None, *_first_n(n, top[np.arange(k_a), np.maximum(n - 1, 0)]))
    top, cols = _top_by_argmax(p, k_top)
    n = _hypothesis_n(p, sums, top)
    picked = np.sort(np.where(np.arange(k_top) < n[:, None], cols, k_b), axis=1)  # row-major order
    rows, pos = np.nonzero(picked < k_b)
    cols = picked[rows, pos]
    return rows, cols, p[rows, cols]


def _hypothesis_sparse(p: np.ndarray, sp: _Sparse, k_max: int) -> _Sel:
    k_a, k_top = sp.sums.size, min(k_max, sp.k_b)
    sparse, pad, dense = sp.split()
    top = np.zeros((k_a, k_top))
    top[sparse, : min(k_top, pad.shape[1])] = pad[:, :k_top]
    if dense.size:
        top[dense] = _top_values(p, dense, k_top)
    excess = sp.excess
    if excess is None:
        excess = np.bincount(sp.rows, weights=np.maximum(sp.vals - 1.0 / sp.k_b, 0.0), minlength=k_a)
    n = _hypothesis_n(p, sp.sums, top, excess)
    return _prefix_edges(p, sp, *_first_n(n, top[np.arange(k_a), np.maximum(n - 1, 0)]))


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
    block of rows, dense or sparse (``dense``, ``sparse``), and its parameter (name, checker,
    default, sweep grid, and the (low, high, step) range a slider offers)."""

    func: Callable[..., _Picked]
    param: str | None = None
    check: Callable[[object], float | int] | None = None
    default: float | int | None = None
    grid: tuple[float, ...] = ()
    label: str = ""
    bounds: tuple[float, float, float] = ()
    dense: Callable[[np.ndarray, np.ndarray, float | int | None], _Sel] | None = None
    sparse: Callable[[np.ndarray, _Sparse, float | int | None], _Sel] | None = None


METHODS: dict[str, Method] = {
    "threshold": Method(
        _threshold,
        "t",
        lambda v: _check_unit(v, name="t", low_open=False),
        0.3,
        tuple(np.round(np.arange(0.02, 1.0001, 0.02), 2)),
        "Naive threshold",
        (0.0, 1.0, 0.01),
        _threshold_dense,
        _threshold_sparse,
    ),
    "mcfp": Method(_mcfp, label="Most common foreign prediction", dense=_mcfp_dense, sparse=_mcfp_sparse),
    "mcfp_binary": Method(
        _mcfp_binary, label="MCFP, binary weights", dense=_binary(_mcfp_dense), sparse=_binary(_mcfp_sparse)
    ),
    "density": Method(
        _density,
        "p",
        lambda v: _check_unit(v, name="p", low_open=True),
        0.7,
        tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2)),
        "Density threshold",
        (0.05, 1.0, 0.01),
        _density_dense,
        _density_sparse,
    ),
    "hypothesis": Method(
        _hypothesis,
        "k_max",
        _check_k_max,
        3,
        tuple(range(1, 11)),
        "Relationship hypothesis",
        (1, 10, 1),
        _hypothesis_dense,
        _hypothesis_sparse,
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


# Work remembered for matrices passed again (see NonzeroMemo: handed back only while unchanged).
PREPARED = NonzeroMemo(MEMO_BYTES)  # P (sparse) -> its _Sparse, for the next method or parameter
DENSE_EDGES = NonzeroMemo(MEMO_BYTES)  # W from select_relationships -> its edges, for scoring it


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
    spec, value = METHODS[method], next(iter(clean.values()), None)
    hit = PREPARED.get(P)  # P passed before and unchanged since: its non-zeros are known
    if hit is not None:
        known = hit[2]
        if known.rank is None:  # passed a second time: worth ranking its non-zeros once, for every later call
            PREPARED.put(
                P, known.flat, known.vals, known.prepare(), known.nbytes - known.flat.nbytes - known.vals.nbytes
            )
        return Edges(*spec.sparse(P, known, value), P.shape)
    shape, blocks = probability_blocks(P, stacklevel=stacklevel + 1)
    pool = worker_pool(8 * shape[0] * shape[1])  # dense blocks: the next is validated while one is worked on
    parts, sparse, as_is, pending = [], [], isinstance(P, np.ndarray), []
    for lo, block, sums in blocks:  # each block of rows is validated and worked on while in cache
        sp = _sparse_of(block, sums)
        as_is = as_is and np.may_share_memory(block, P)  # not normalised: P's own rows
        if sp is None and pool is not None:
            pending.append((lo, pool.submit(spec.dense, block, sums, value)))
        elif sp is None:
            rows, cols, weights = spec.dense(block, sums, value)
            parts.append((lo, rows + lo, cols, weights))
        else:
            sparse.append((lo, block, sp))
    for lo, future in pending:
        rows, cols, weights = future.result()
        parts.append((lo, rows + lo, cols, weights))
    if sparse and not parts and as_is:  # all sparse, P itself: remember the work
        known = _merged([(lo, sp) for lo, _, sp in sparse], shape[1])
        known.split()  # made now, so the memo counts its bytes
        PREPARED.put(P, known.flat, known.vals, known, known.nbytes - known.flat.nbytes - known.vals.nbytes)
        return Edges(*spec.sparse(P, known, value), shape)
    for lo, block, sp in sparse:
        rows, cols, weights = spec.sparse(block, sp, value)
        parts.append((lo, rows + lo, cols, weights))
    parts.sort(key=lambda part: part[0])
    if len(parts) == 1:
        return Edges(*parts[0][1:], shape)
    return Edges(*(np.concatenate(x) for x in list(zip(*parts))[1:]), shape)


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
    edges = _select(P, method, params, stacklevel=2)
    w = edges.dense()
    DENSE_EDGES.put(w, edges.rows * edges.shape[1] + edges.cols, edges.weights)  # for scoring w
    return w
