"""Boundary checks shared by the engine's public functions (numpy only)."""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

ROW_SUM_TOL = 1e-6  # rows of P must sum to 1 within this (float32 round-off is ~1e-7 per entry)
BLOCK_BYTES = 1 << 21  # matrices are checked and processed in blocks of rows this large: they stay in cache
WORKERS = min(2, os.cpu_count() or 1)  # threads for passes over several large matrices (1: no threads)
PARALLEL_BYTES = 1 << 22  # ... used only when those matrices hold this many bytes together

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0  # the process that made _pool: a forked child has none of its threads and makes its own
_pool_lock = threading.Lock()


def worker_pool(nbytes: int) -> ThreadPoolExecutor | None:
    """The engine's pool of WORKERS threads for work on ``nbytes`` of matrices, or None where
    threads do not pay (WORKERS < 2, or less than PARALLEL_BYTES). numpy lets go of the
    interpreter lock in a pass over a large array, so passes over independent matrices or blocks
    of rows overlap. Work run on it must not wait for other work on it."""
    global _pool, _pool_pid
    if WORKERS < 2 or nbytes < PARALLEL_BYTES:
        return None
    with _pool_lock:
        if _pool is None or _pool._max_workers != WORKERS or _pool_pid != os.getpid():
            _pool, _pool_pid = ThreadPoolExecutor(WORKERS, thread_name_prefix="unitax-engine"), os.getpid()
        return _pool


def map_large(fn: Callable, items: Sequence, nbytes: int) -> list:
    """``[fn(x) for x in items]``, on the ``worker_pool`` where there is one for ``nbytes`` (the
    items' size together) and several items. Results in the order of ``items``; an error raised
    for an item is the one the loop would raise first."""
    pool = worker_pool(nbytes) if len(items) > 1 else None
    return [fn(x) for x in items] if pool is None else list(pool.map(fn, items))


def _float_2d(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 2-D array with at least one row and column (entries not yet checked)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 2-D numeric array, got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 2-D numeric array, got {type(x).__name__}") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (K_a, K_b), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    return arr


def _raise_bad_entry(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first NaN/inf entry, else the first negative one (if any)."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} has a NaN or inf entry at {tuple(int(v) for v in bad)}: {arr[tuple(bad)]}")
    if (arr < 0).any():
        bad = np.argwhere(arr < 0)[0]
        raise ValueError(f"{name} has a negative entry at {tuple(int(v) for v in bad)}: {arr[tuple(bad)]}")


def as_matrix(x: object, *, name: str = "P") -> np.ndarray:
    """Return ``x`` as a finite, non-negative float64 2-D array or raise.

    Raises TypeError for non-numeric input and ValueError for a wrong shape, NaN/inf or
    negative entries; the message names the value and the expected form.
    """
    arr = _float_2d(x, name)
    with np.errstate(over="ignore"):  # a sum overflowing to inf is handled below, not warned about
        total = arr.sum()
    if arr.min() >= 0 and np.isfinite(total):  # fast path: two passes, no temporaries
        return arr
    _raise_bad_entry(arr, name)
    return arr


def row_blocks(n_rows: int, n_cols: int, block_bytes: int | None = None) -> range:
    """Start rows of the blocks of at most ``block_bytes`` of float64 rows (at least one row each)."""
    return range(0, n_rows, max(1, (block_bytes or BLOCK_BYTES) // (8 * max(n_cols, 1))))


def nonzero_entries(x: object, *, name: str = "W") -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """The non-zero entries of a finite, non-negative 2-D matrix (K_a, K_b), validated on the way.

    Returns ``(shape, flat, values)``: the row-major positions (E,) of the entries != 0 in
    ascending order and their values (E,), all > 0. One comparison per entry, a block of rows at
    a time: only the non-zero entries can be NaN, inf or negative, so only they are checked
    (errors as :func:`as_matrix`).
    """
    arr = np.ascontiguousarray(_float_2d(x, name))
    k_a, k_b = arr.shape
    step = row_blocks(k_a, k_b).step
    flats, vals = [], []
    for lo in range(0, k_a, step):
        block = arr[lo : lo + step].reshape(-1)
        flat = np.flatnonzero(block != 0)  # NaN != 0, so NaN entries are among them
        vals.append(block[flat])
        flats.append(flat + lo * k_b)
    flat, values = (flats[0], vals[0]) if len(flats) == 1 else (np.concatenate(flats), np.concatenate(vals))
    if not (values > 0).all() or not np.isfinite(values).all():
        _raise_bad_entry(arr, name)
    return arr.shape, flat, values


def scale_rows(rows: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``rows / sums[:, None]`` for finite, non-negative rows (R, K) with row sums (R,) > 0.

    A row whose sum overflows to inf (entries near 1e308) is divided by its maximum first and
    then by its (now finite) sum, so it keeps its proportions instead of turning into zeros.
    Rows with a finite sum take the plain division, bit for bit.
    """
    out = rows / sums[:, None]
    huge = ~np.isfinite(sums)
    if huge.any():
        big = rows[huge] / rows[huge].max(axis=1, keepdims=True)
        out[huge] = big / big.sum(axis=1, keepdims=True)
    return out


def probability_rows(x: object, *, name: str = "P", stacklevel: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``x`` as row probabilities (see :func:`as_probability_matrix`); also return its row sums.

    Returns ``(P, sums)``: P (K_a, K_b) C-contiguous float64 (``x`` itself when it already is
    one and needs no normalising) and ``sums`` (K_a,) = ``P.sum(axis=1)``. A clean matrix costs
    two reductions (the row sums and the minimum); the entry-by-entry checks run only when one
    of them says something is wrong. ``stacklevel``: of the normalising warning, counted from
    the caller of this function.
    """
    arr = np.ascontiguousarray(_float_2d(x, name))
    with np.errstate(over="ignore", invalid="ignore"):  # rows overflowing to inf are scaled below
        sums = arr.sum(axis=1)
    if not (arr.min() >= 0 and np.isfinite(sums).all()):  # NaN, inf, negative, or a row sum overflowing
        _raise_bad_entry(arr, name)
    off = sums > 1.0 + ROW_SUM_TOL
    if off.any():
        first = int(np.flatnonzero(off)[0])
        warnings.warn(
            f"{name}: {int(off.sum())} row(s) sum to more than 1 (row {first} sums to "
            f"{sums[first]:.6g}); normalising them",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        arr = arr.copy()
        arr[off] = scale_rows(arr[off], sums[off])
        sums = arr.sum(axis=1)
    return arr, sums


def as_probability_matrix(x: object, *, name: str = "P") -> np.ndarray:
    """Validate ``x`` as a matrix of row probabilities (K_a, K_b).

    Rows sum to 1, or to less: an all-zero row is a class without images, and a row summing
    to less than 1 keeps mass the model put nowhere (the thesis's noise-free matrices without
    the uniform remainder); such rows are used as they are. Rows summing to MORE than 1 (counts,
    say) are normalised, with a ``UserWarning`` naming how many rows were rescaled; a row whose
    sum overflows to inf keeps its proportions (see :func:`scale_rows`).
    """
    return probability_rows(x, name=name, stacklevel=3)[0]


def probability_blocks(
    x: object, *, name: str = "P", block_bytes: int | None = None, stacklevel: int = 2
) -> tuple[tuple[int, int], Iterator[tuple[int, np.ndarray, np.ndarray]]]:
    """Validate ``x`` as :func:`as_probability_matrix` does, a block of rows at a time.

    Returns ``(shape, blocks)``; ``blocks`` yields ``(lo, P_block (R, K_b), sums (R,))`` for rows
    lo..lo+R of the validated P: a view of ``x`` where it needs no normalising (a normalised copy
    of the block where it does), with its row sums. The type and shape are checked at once; the
    entries block by block while they are still in cache, so a caller that works on each block as
    it comes reads the matrix from memory once. Errors are raised when the iteration reaches a bad
    block and name the same entry as :func:`as_matrix` would (work on earlier blocks is then
    void); the normalising warning comes after the last block. ``stacklevel``: of the warning,
    counted from the code iterating over ``blocks``.
    """
    arr = np.ascontiguousarray(_float_2d(x, name))

    def blocks() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        n_off, first_off, first_sum = 0, -1, 0.0
        starts = row_blocks(*arr.shape, block_bytes)
        for lo in starts:
            block = arr[lo : lo + starts.step]
            with np.errstate(over="ignore", invalid="ignore"):  # rows overflowing to inf are scaled below
                sums = block.sum(axis=1)
            if not (block.min() >= 0 and np.isfinite(sums).all()):  # NaN, inf, negative, or an overflowing row
                if not np.isfinite(block).all() or (block < 0).any():
                    _raise_bad_entry(arr, name)  # the whole matrix: the same entry as as_matrix names
            off = sums > 1.0 + ROW_SUM_TOL
            if off.any():
                if first_off < 0:
                    first_off = lo + int(np.flatnonzero(off)[0])
                    first_sum = float(sums[first_off - lo])
                n_off += int(off.sum())
                block = block.copy()
                block[off] = scale_rows(block[off], sums[off])
                sums = block.sum(axis=1)
            yield lo, block, sums
        if n_off:
            warnings.warn(
                f"{name}: {n_off} row(s) sum to more than 1 (row {first_off} sums to {first_sum:.6g}); "
                "normalising them",
                UserWarning,
                stacklevel=stacklevel + 1,
            )

    return arr.shape, blocks()


def as_class_counts(class_counts: object) -> list[int]:
    """Validate a sequence of per-domain class counts (each an int >= 1)."""
    if isinstance(class_counts, (str, bytes)) or not isinstance(class_counts, Sequence | np.ndarray):
        raise TypeError(f"class_counts must be a sequence of ints, got {type(class_counts).__name__}")
    counts = list(class_counts)
    if not counts:
        raise ValueError("class_counts is empty: at least one domain is needed")
    out = []
    for a, k in enumerate(counts):
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"class_counts[{a}] must be an int, got {k!r}")
        if k < 1:
            raise ValueError(f"class_counts[{a}] must be >= 1 (domain {a} has no classes), got {k}")
        out.append(int(k))
    return out


def check_pair_dict(mats: Mapping, class_counts: Sequence[int], *, name: str) -> None:
    """Check that every key is a pair (a, b) of distinct known domains with a (K_a, K_b) value."""
    if not isinstance(mats, Mapping):
        raise TypeError(f"{name} must be a dict {{(a, b): matrix}}, got {type(mats).__name__}")
    n = len(class_counts)
    for key, mat in mats.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(v, int | np.integer) for v in key)):
            raise TypeError(f"{name} keys must be pairs of domain indices (a, b), got {key!r}")
        a, b = int(key[0]), int(key[1])
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise ValueError(f"{name} key {key!r} must be two different domains in 0..{n - 1}")
        shape = tuple(mat.shape) if hasattr(mat, "shape") else np.shape(mat)
        if shape != (class_counts[a], class_counts[b]):
            raise ValueError(
                f"{name}[{key!r}] has shape {shape}, but class_counts gives ({class_counts[a]}, {class_counts[b]})"
            )


@dataclass(frozen=True)
class _MemoItem:
    ref: weakref.ref
    shape: tuple[int, ...]
    flat: np.ndarray
    vals: np.ndarray
    value: object
    nbytes: int


class NonzeroMemo:
    """Work derived from a 2-D float64 array, remembered per array object for when it is passed again.

    ``put(x, flat, vals, value)`` records the work ``value`` together with what it was derived
    from: the non-zero entries of ``x`` (row-major positions ``flat`` (N,), values ``vals`` (N,)).
    ``get(x)`` hands ``(flat, vals, value)`` back only while ``x`` is the same object, with the
    same shape, C-contiguous float64, and still holds exactly those non-zeros, checked with one
    comparison pass over it: any write since (in place, through a view, anywhere) shows. An entry
    goes with its array (a weak reference); past ``max_bytes`` the oldest entries go. Thread-safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: dict[int, _MemoItem] = {}  # insertion order: oldest first
        self._bytes = 0
        self._lock = threading.RLock()  # reentrant: a weak-reference callback may run inside put

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Forget everything (benchmarks: time a first call)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @staticmethod
    def _fits(x: object) -> bool:
        return type(x) is np.ndarray and x.ndim == 2 and x.dtype == np.float64 and x.flags.c_contiguous

    def get(self, x: object) -> tuple[np.ndarray, np.ndarray, object] | None:
        item = self._items.get(id(x))
        if item is None or item.ref() is not x:
            return None
        flat_x = x.reshape(-1) if self._fits(x) and x.shape == item.shape else None
        if (
            flat_x is None
            or np.count_nonzero(flat_x != 0) != item.flat.size  # NaN != 0: counted, and then unequal
            or not np.array_equal(flat_x[item.flat], item.vals)
        ):
            self._forget(id(x), item.ref)
            return None
        return item.flat, item.vals, item.value

    def put(self, x: object, flat: np.ndarray, vals: np.ndarray, value: object = None, extra_bytes: int = 0) -> None:
        """Remember ``value`` for ``x`` (nothing happens for an array ``get`` could not check)."""
        if not self._fits(x):
            return
        nbytes = flat.nbytes + vals.nbytes + extra_bytes
        if nbytes > self.max_bytes:
            return
        key = id(x)
        ref = weakref.ref(x, lambda r, key=key: self._forget(key, r))
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes += nbytes - (old.nbytes if old is not None else 0)
            self._items[key] = _MemoItem(ref, x.shape, flat, vals, value, nbytes)
            while self._bytes > self.max_bytes:
                oldest = self._items.pop(next(iter(self._items)))
                self._bytes -= oldest.nbytes

    def _forget(self, key: int, ref: weakref.ref) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item.ref is ref:
                del self._items[key]
                self._bytes -= item.nbytes
