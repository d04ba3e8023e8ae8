"""Cross-domain prediction matrices (thesis step 1; docs/architecture.md).

``C_ab`` (K_a, K_b): row i = images whose TRUE class is a:i, column j = the domain-b model's
PREDICTED class j. Hard mode counts argmax predictions (the thesis); soft mode sums softmax
probabilities. ``P_ab`` is ``C_ab`` with rows normalised to 1; a class without images keeps an
all-zero row and is reported (``empty_classes`` and a warning), never divided by zero.

Large domains stream: :class:`PairAccumulator` adds one batch of predictions at a time into
the (K_a, K_b) matrices, never holding an (N, K_b) probability matrix for a whole domain; it
gives bit-identical matrices to the one-shot :func:`count_matrix` for any batching (the soft
sums are added sample by sample in order, both ways).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from core._validation import scale_rows


def ordered_pairs(n_domains: int) -> list[tuple[int, int]]:
    """Every ordered pair (a, b) with a != b, sorted: 2 domains -> [(0, 1), (1, 0)]."""
    if isinstance(n_domains, bool) or not isinstance(n_domains, int | np.integer):
        raise TypeError(f"n_domains must be an int, got {n_domains!r}")
    if n_domains < 2:
        raise ValueError(f"cross-domain prediction needs at least 2 domains, got {n_domains}")
    return [(a, b) for a in range(n_domains) for b in range(n_domains) if a != b]


def _labels(x: object, *, name: str, n_classes: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(arr == np.round(arr)):
            raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        bad = arr[(arr < 0) | (arr >= n_classes)][0]
        raise ValueError(f"{name} has class index {bad} outside 0..{n_classes - 1}")
    return arr.astype(np.int64, copy=False)


def count_matrix(true: object, predicted: object, n_classes_a: int, n_classes_b: int) -> np.ndarray:
    """Count matrix C (K_a, K_b) from true labels (N,) and predictions.

    ``predicted`` is either hard class indices (N,) of domain b (counts of argmax predictions)
    or soft probabilities (N, K_b) (summed per true class).
    """
    for name, k in (("n_classes_a", n_classes_a), ("n_classes_b", n_classes_b)):
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"{name} must be an int >= 1, got {k!r}")
    t = _labels(true, name="true", n_classes=n_classes_a)
    pred = np.asarray(predicted)
    if pred.ndim == 1:
        p = _labels(pred, name="predicted", n_classes=n_classes_b)
        if p.shape != t.shape:
            raise ValueError(f"true has {t.shape[0]} labels but predicted has {p.shape[0]}")
        flat = np.bincount(t * n_classes_b + p, minlength=n_classes_a * n_classes_b)
        return flat.reshape(n_classes_a, n_classes_b).astype(np.float64)
    if pred.ndim != 2 or pred.shape != (t.shape[0], n_classes_b):
        raise ValueError(f"soft predictions must have shape (N, K_b) = ({t.shape[0]}, {n_classes_b}), got {pred.shape}")
    out = np.zeros((n_classes_a, n_classes_b))
    _add_soft(out, t, _check_probs(pred))
    return out


def _check_probs(pred: np.ndarray) -> np.ndarray:
    """Soft predictions (n, K_b) as float64, checked to be probability rows."""
    probs = pred.astype(np.float64, copy=False)
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("soft predictions must be finite and non-negative (pass softmax probabilities, not logits)")
    sums = probs.sum(axis=1)
    if probs.shape[0] and np.abs(sums - 1).max() > 1e-3:
        raise ValueError(
            f"soft prediction rows must sum to 1 (softmax probabilities); a row "
            f"sums to {sums[np.argmax(np.abs(sums - 1))]:.4g}"
        )
    return probs


def _add_soft(out: np.ndarray, t: np.ndarray, probs: np.ndarray) -> None:
    """out[t[n]] += probs[n] for n in order (out (K_a, K_b) C-contiguous float64, in place).

    The sums are the same as ``np.add.at(out, t, probs)`` bit for bit (each row accumulates its
    samples in order); scipy's CSR kernel does it about 7x faster than np.add.at."""
    n, k_a = len(t), out.shape[0]
    if not n:
        return
    try:
        from scipy.sparse import _sparsetools

        order = np.argsort(t, kind="stable").astype(np.int64)
        indptr = np.concatenate(([0], np.cumsum(np.bincount(t, minlength=k_a)))).astype(np.int64)
        flat = out.reshape(-1)  # a view: out is C-contiguous
        _sparsetools.csr_matvecs(
            k_a, n, out.shape[1], indptr, order, np.ones(n), np.ascontiguousarray(probs).reshape(-1), flat
        )
    except (ImportError, AttributeError, TypeError):  # scipy's private kernel moved: the slow exact path
        np.add.at(out, t, probs)


class PairAccumulator:
    """Streams domain b's predictions on domain a's images into C_ab, one batch at a time.

    ``add(true (n,), probs (n, K_b))`` per batch; ``count`` (K_a, K_b) counts the argmax
    predictions and ``soft_sum`` (K_a, K_b) sums the probabilities (both float64, the same as
    :func:`count_matrix` on the whole domain at once, bit for bit). Memory: two K_a x K_b
    matrices, whatever N is.
    """

    def __init__(self, n_classes_a: int, n_classes_b: int):
        for name, k in (("n_classes_a", n_classes_a), ("n_classes_b", n_classes_b)):
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise ValueError(f"{name} must be an int >= 1, got {k!r}")
        self.shape = (int(n_classes_a), int(n_classes_b))
        self._count = np.zeros(self.shape[0] * self.shape[1], dtype=np.int64)
        self.soft_sum = np.zeros(self.shape)
        self.n = 0

    def add(self, true: object, probs: object) -> np.ndarray:
        """Add one batch; returns its hard predictions (n,) int64 (argmax of ``probs``)."""
        k_a, k_b = self.shape
        t = _labels(true, name="true", n_classes=k_a)
        p = np.asarray(probs)
        if p.ndim != 2 or p.shape != (t.shape[0], k_b):
            raise ValueError(f"soft predictions must have shape (N, K_b) = ({t.shape[0]}, {k_b}), got {p.shape}")
        p = _check_probs(p)
        hard = p.argmax(axis=1).astype(np.int64) if len(p) else np.zeros(0, np.int64)
        self._count += np.bincount(t * k_b + hard, minlength=k_a * k_b)
        _add_soft(self.soft_sum, t, p)
        self.n += len(t)
        return hard

    @property
    def count(self) -> np.ndarray:
        """Counts (K_a, K_b) of the argmax predictions so far, float64."""
        return self._count.reshape(self.shape).astype(np.float64)


def normalize_rows(counts: np.ndarray) -> np.ndarray:
    """Row-normalise a count matrix (K_a, K_b); all-zero rows stay all-zero.

    A row whose sum overflows to inf (entries near 1e308) keeps its proportions
    (core._validation.scale_rows) instead of turning into zeros.
    """
    c = np.asarray(counts, dtype=np.float64)
    with np.errstate(over="ignore"):  # rows overflowing to inf are scaled below
        sums = c.sum(axis=1, keepdims=True)
    out = np.divide(c, sums, out=np.zeros_like(c), where=sums > 0)
    huge = np.flatnonzero((sums[:, 0] == np.inf) & np.isfinite(c).all(axis=1))
    if huge.size:
        out[huge] = scale_rows(c[huge], sums[huge, 0])
    return out


def empty_classes(counts: np.ndarray) -> np.ndarray:
    """Indices (n,) of the rows of a count matrix that hold no images."""
    return np.flatnonzero(np.asarray(counts).sum(axis=1) == 0)


def prediction_matrix(true: object, predicted: object, n_classes_a: int, n_classes_b: int) -> np.ndarray:
    """P (K_a, K_b) from true labels (N,) and hard (N,) or soft (N, K_b) predictions.

    Classes of domain a with no images give all-zero rows, reported with a ``UserWarning``.
    """
    counts = count_matrix(true, predicted, n_classes_a, n_classes_b)
    empty = empty_classes(counts)
    if empty.size:
        warnings.warn(
            f"{empty.size} class(es) of domain a have no images and give all-zero "
            f"rows: {empty[:10].tolist()}{' ...' if empty.size > 10 else ''}",
            UserWarning,
            stacklevel=2,
        )
    return normalize_rows(counts)


def cross_domain_matrices(
    true_labels: Sequence[object], predictions: Mapping[tuple[int, int], object], class_counts: Sequence[int]
) -> dict[tuple[int, int], np.ndarray]:
    """P_ab for every pair in ``predictions``.

    true_labels[a]: (N_a,) true labels of domain a's images; predictions[(a, b)]: the domain-b
    model's hard (N_a,) or soft (N_a, K_b) predictions on those images.
    """
    out = {}
    for (a, b), pred in sorted(predictions.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out[(a, b)] = prediction_matrix(true_labels[a], pred, class_counts[a], class_counts[b])
    return out


def stream_domain(
    true: object,
    X: object,
    n_classes_a: int,
    n_classes_b: Mapping[int, int],
    predict_probs: Callable[[int, np.ndarray], np.ndarray],
    *,
    chunk: int = 16384,
) -> dict[int, tuple[PairAccumulator, np.ndarray, np.ndarray]]:
    """Every model b's predictions on domain a's images, streamed ``chunk`` rows at a time.

    true (N,) labels of domain a; X (N, ...) its inputs (an array or a memory map: only
    ``X[start:stop]`` is read); n_classes_b ``{b: K_b}``; ``predict_probs(b, x)`` gives model b's
    softmax probabilities (n, K_b) on a chunk x. Returns ``{b: (accumulator, pred (N,) int64
    argmax, conf (N,) float16 top probability)}``. Holds one chunk's probabilities at a time.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be an int >= 1, got {chunk!r}")
    y = np.asarray(true)
    acc = {b: PairAccumulator(n_classes_a, k) for b, k in n_classes_b.items()}
    hard: dict[int, list] = {b: [] for b in acc}
    top: dict[int, list] = {b: [] for b in acc}
    for start in range(0, len(y), chunk):
        x = X[start : start + chunk]
        for b in acc:
            probs = predict_probs(b, x)
            hard[b].append(acc[b].add(y[start : start + chunk], probs))
            top[b].append(probs.max(axis=1).astype(np.float16))
    return {
        b: (
            acc[b],
            np.concatenate(hard[b]) if hard[b] else np.zeros(0, np.int64),
            np.concatenate(top[b]) if top[b] else np.zeros(0, np.float16),
        )
        for b in acc
    }


def pair_matrices(acc: PairAccumulator) -> dict[str, np.ndarray]:
    """``{"count", "hard", "soft"}`` (K_a, K_b) of one streamed pair: the counts, the row-normalised
    counts and the row-normalised probability sums (the counts when no image was added)."""
    counts = acc.count
    soft = normalize_rows(acc.soft_sum) if acc.n else counts
    return {"count": counts, "hard": normalize_rows(counts), "soft": soft}


def compact(m: np.ndarray) -> object:
    """A matrix (K_a, K_b) in the form that takes less room: scipy.sparse CSR when under a third
    of its entries are non-zero (count and hard matrices of many classes), else ``m`` itself."""
    import scipy.sparse as sp

    if sp.issparse(m):
        return sp.csr_array(m)
    m = np.asarray(m)
    if m.ndim != 2 or m.size == 0 or np.count_nonzero(m) * 3 >= m.size:
        return m
    return sp.csr_array(m)
