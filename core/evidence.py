"""Edge evidence without a ground truth: both directions of a relationship, its type, its certainty.

A candidate edge ``(a, i) -> (b, j)`` is read in both directions of the cross-domain matrices:

- ``p_ab = P_ab[i, j]``: the share of a:i's ``n_ab = counts[a][i]`` test images that domain b's
  model predicts as b:j;
- ``p_ba = P_ba[j, i]``: the share of b:j's ``n_ba = counts[b][j]`` test images that domain a's
  model predicts as a:i.

**Relation type** (the score asymmetry of Uijlings, Mensink, Ferrari, "The Missing Link: Finding
label relations across datasets", ECCV 2022). A direction is *high* when ``p >= HIGH``:

=============  ============  ============  ==============================================
relation       p_ab          p_ba          reading
=============  ============  ============  ==============================================
equivalent     high          high          a:i and b:j are the same class
narrower       high          low           a:i is a part of b:j (most of a:i reads as b:j,
                                           only some of b:j reads as a:i)
broader        low           high          b:j is a part of a:i
overlap        low           low           the two classes share only part of each other
=============  ============  ============  ==============================================

``HIGH = 0.5`` (a majority of the class's images): with hard predictions a row's shares sum to
1, so a class is *high* towards at most one class of the other domain, and ``equivalent``
pairs are one-to-one.

**Confidence** (in ``[0, 1]``) that the chosen type holds, i.e. that each of the two true
proportions lies on the side of ``HIGH`` that was observed. Per direction, with ``k = p * n``:

    z = (|k - n * HIGH| - 1/2) / sqrt(n * HIGH * (1 - HIGH)),   c = max(0, 2 * Phi(z) - 1)

``1 - c`` is the two-sided p-value of the continuity-corrected score test of "the proportion
equals HIGH", so ``c`` is the largest level at which the continuity-corrected Wilson score
interval of the proportion lies wholly on the observed side of ``HIGH`` (``c = 0`` when
``n = 0``). The two directions are independent samples (different images, different models),
so the edge's confidence is the product ``c_ab * c_ba``. Properties (tested):

- one image is never evidence: ``n = 1`` gives ``c = 0`` even for ``p = 1`` (the continuity
  correction of 1/2 image cancels the single image's distance to ``HIGH = 0.5``);
- for fixed proportions ``c`` grows with ``n`` (``z = d sqrt(n) - 1/(2 sqrt(n)) / s`` with
  ``d = |p - HIGH|``; both terms increase); a proportion exactly at ``HIGH`` gives 0;
- swapping ``(a, i)`` and ``(b, j)`` swaps ``narrower``/``broader`` and keeps ``equivalent``,
  ``overlap`` and the confidence.

The confidence is about the *type* of a candidate edge, not about whether the edge exists;
candidates are the entries with ``p_ab >= min_p`` or ``p_ba >= min_p``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import erf

from core._validation import (
    ROW_SUM_TOL,
    as_class_counts,
    as_matrix,
    check_pair_dict,
    scale_rows,
)

Pair = tuple[int, int]

HIGH = 0.5  # a direction is "high" when at least this share of the class goes to the other class
MIN_P = 0.05  # default candidate floor: an entry below this in both directions is no candidate
CONTINUITY = 0.5  # continuity correction (images) of the score test behind the confidence
RELATIONS = ("equivalent", "narrower", "broader", "overlap")
COLUMNS = ["a", "i", "b", "j", "p_ab", "p_ba", "n_ab", "n_ba", "relation", "confidence"]


# ----------------------------------------------------------------------------- proportions


def wilson_interval(k: object, n: object, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (lo, hi) of the proportion ``k / n``, element-wise.

    k, n: broadcastable arrays (or scalars) with ``0 <= k <= n``; k may be fractional (soft
    counts). z: the normal quantile (1.96 for 95 %). Where ``n == 0`` the interval is (0, 1).
    Returns two float64 arrays of the broadcast shape (0-d for scalar input).
    """
    z = _positive_float(z, name="z")
    kk, nn = _counts_pair(k, n)
    safe = np.where(nn > 0, nn, 1.0)
    p = kk / safe
    denom = 1.0 + z * z / safe
    center = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / safe + z * z / (4 * safe * safe)) / denom
    lo = np.where(nn > 0, np.clip(center - half, 0.0, 1.0), 0.0)
    hi = np.where(nn > 0, np.clip(center + half, 0.0, 1.0), 1.0)
    return lo, hi


def direction_confidence(p: object, n: object, threshold: float = HIGH) -> np.ndarray:
    """Confidence (same shape as the broadcast of p, n) that proportions lie on their observed
    side of ``threshold`` (``p >= threshold``: above, else below).

    p: observed proportions in [0, 1]; n: number of images behind each (>= 0). See the module
    docstring: ``max(0, 2 Phi(z) - 1)`` with the continuity-corrected score statistic ``z``;
    0 where ``n == 0``.
    """
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    pp = np.asarray(p, dtype=np.float64)
    if pp.size and (not np.isfinite(pp).all() or pp.min() < 0 or pp.max() > 1 + ROW_SUM_TOL):
        raise ValueError(f"p must hold proportions in [0, 1], got values in [{np.nanmin(pp):.6g}, {np.nanmax(pp):.6g}]")
    kk, nn = _counts_pair(np.clip(pp, 0.0, 1.0) * np.asarray(n, dtype=np.float64), n)
    sd = np.sqrt(np.where(nn > 0, nn, 1.0) * t * (1 - t))
    z = (np.abs(kk - nn * t) - CONTINUITY) / sd
    conf = np.clip(erf(z / np.sqrt(2.0)), 0.0, 1.0)
    return np.where(nn > 0, conf, 0.0)


def relation_type(p_ab: object, p_ba: object, high: float = HIGH) -> np.ndarray:
    """Relation (object array of str, broadcast shape) from the two directions' proportions."""
    hi_ab = np.asarray(p_ab, dtype=np.float64) >= high
    hi_ba = np.asarray(p_ba, dtype=np.float64) >= high
    names = np.array(RELATIONS, dtype=object)
    # index: equivalent 0, narrower 1, broader 2, overlap 3
    return names[np.where(hi_ab, np.where(hi_ba, 0, 1), np.where(hi_ba, 2, 3))]


def relation_confidence(p_ab: object, n_ab: object, p_ba: object, n_ba: object) -> np.ndarray:
    """Confidence that the type of :func:`relation_type` holds: ``c_ab * c_ba`` (module docstring)."""
    return direction_confidence(p_ab, n_ab) * direction_confidence(p_ba, n_ba)


# ----------------------------------------------------------------------------- the edge table


def edge_table(
    P: Mapping[Pair, object],
    counts: Sequence[object],
    *,
    selected: Mapping[Pair, object] | None = None,
    class_names: Sequence[Sequence[str]] | None = None,
    domain_names: Sequence[str] | None = None,
    min_p: float = MIN_P,
) -> pd.DataFrame:
    """One row per candidate directed edge ``(a, i) -> (b, j)`` with both directions' evidence.

    P: ``{(a, b): (K_a, K_b)}`` count or row-normalised matrices; rows summing to more than 1
    are counts and are normalised; every ``(a, b)`` needs its reverse ``(b, a)``.
    counts: per domain a 1-D int array ``(K_a,)`` of test images per class.
    selected: optional ``{(a, b): W_ab (K_a, K_b)}`` (dense or ``core.selection.Edges``); adds
    a bool column ``selected`` (``W_ab[i, j] > 0``; a missing pair selects nothing), and every
    selected edge is a row whatever ``min_p`` (its evidence may be 0 both ways).
    class_names[a][i], domain_names[a]: optional names, adding ``class_a, class_b`` and
    ``domain_a, domain_b``.
    min_p: candidate floor in (0, 1]: rows with ``p_ab >= min_p`` or ``p_ba >= min_p``.

    Both orientations of a pair are listed (row ``(a,i,b,j)`` and its mirror ``(b,j,a,i)``,
    narrower <-> broader). Columns: ``a, i, b, j`` (int), ``p_ab, p_ba`` (float), ``n_ab,
    n_ba`` (int), ``relation`` (str, see ``RELATIONS``), ``confidence`` (float in [0, 1]), then
    the optional columns; sorted by (a, b, i, j). Candidates come from ``np.nonzero`` of the
    thresholded matrices, so a 1000 x 1000 pair costs only its candidates.
    """
    n_per_class = _as_counts(counts)
    k = [c.size for c in n_per_class]
    mats = _as_pair_matrices(P, k)
    floor = _min_p(min_p)
    chosen = _selected_by_pair(selected, k) if selected is not None else {}
    parts = [_pair_candidates(a, b, mats[(a, b)], mats[(b, a)], floor, chosen.get((a, b))) for a, b in sorted(mats)]
    cols = {
        name: np.concatenate([p[idx] for p in parts]) if parts else np.zeros(0)
        for idx, name in enumerate(("a", "i", "b", "j", "p_ab", "p_ba"))
    }
    a, i, b, j = (cols[c].astype(np.int64) for c in ("a", "i", "b", "j"))
    n_ab = _gather(n_per_class, a, i)
    n_ba = _gather(n_per_class, b, j)
    df = pd.DataFrame(
        {
            "a": a,
            "i": i,
            "b": b,
            "j": j,
            "p_ab": cols["p_ab"].astype(np.float64),
            "p_ba": cols["p_ba"].astype(np.float64),
            "n_ab": n_ab,
            "n_ba": n_ba,
        }
    )
    df["relation"] = pd.Series(relation_type(df["p_ab"].to_numpy(), df["p_ba"].to_numpy()), dtype=object)
    df["confidence"] = relation_confidence(df["p_ab"].to_numpy(), n_ab, df["p_ba"].to_numpy(), n_ba)
    if class_names is not None:
        names = _as_class_names(class_names, k)
        df["class_a"] = _gather_names(names, a, i)
        df["class_b"] = _gather_names(names, b, j)
    if domain_names is not None:
        dnames = _as_domain_names(domain_names, len(k))
        df["domain_a"] = pd.Series(dnames[a] if a.size else [], dtype=object)
        df["domain_b"] = pd.Series(dnames[b] if b.size else [], dtype=object)
    if selected is not None:
        df["selected"] = _selected_mask(selected, k, a, i, b, j)
    return df


def _pair_candidates(
    a: int, b: int, p_ab: np.ndarray, p_ba: np.ndarray, floor: float, chosen: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    """(a, i, b, j, p_ab, p_ba) arrays (E,) of the candidates of pair (a, b), sorted by (i, j):
    entries at or above ``floor`` either way, and the ``chosen`` (selected) ones (bool (K_a, K_b))."""
    mask = (p_ab >= floor) | (p_ba.T >= floor)
    if chosen is not None:
        mask |= chosen
    i, j = np.nonzero(mask)
    return (np.full(i.size, a), i, np.full(i.size, b), j, p_ab[i, j], p_ba[j, i])


# ----------------------------------------------------------------------------- label-free indicators


def label_free_indicators(
    selected: Mapping[Pair, object], class_counts: Sequence[int], mappings: Sequence[object] | None = None
) -> dict[str, float | int]:
    """Indicators of a selected relationship graph that need no ground truth.

    selected: ``{(a, b): W_ab (K_a, K_b)}`` (dense or ``core.selection.Edges``), edge where
    ``W > 0``; class_counts: ``[K_a]``; mappings: optional ``[M_a (K_a, U)]``.

    Returns ``n_edges`` (int); ``bidirectional_agreement``: the share of edges ``(a,i)->(b,j)``
    whose reverse ``(b,j)->(a,i)`` is selected too (NaN without edges); with mappings also
    ``split_share``: the share of all domain classes mapped to more than one universal class
    (rows of ``M_a`` with more than one non-zero) and ``n_universal`` (U).
    """
    k = as_class_counts(class_counts)
    src, dst = _edge_keys(selected, k, name="selected")
    total = sum(k)
    n_edges = int(src.size)
    agree = int(np.isin(dst * total + src, src * total + dst).sum())
    out: dict[str, float | int] = {
        "n_edges": int(n_edges),
        "bidirectional_agreement": agree / n_edges if n_edges else float("nan"),
    }
    if mappings is not None:
        out.update(_mapping_indicators(mappings, k))
    return out


def _mapping_indicators(mappings: Sequence[object], k: list[int]) -> dict[str, float | int]:
    if isinstance(mappings, (str, bytes, Mapping)) or not isinstance(mappings, Sequence):
        raise TypeError(f"mappings must be a list of M_a matrices, got {type(mappings).__name__}")
    if len(mappings) != len(k):
        raise ValueError(f"mappings has {len(mappings)} matrices but class_counts has {len(k)} domains")
    mats = [as_matrix(m, name=f"mappings[{a}]") for a, m in enumerate(mappings)]
    n_u = mats[0].shape[1]
    for a, m in enumerate(mats):
        if m.shape != (k[a], n_u):
            raise ValueError(
                f"mappings[{a}] has shape {m.shape}, expected ({k[a]}, {n_u}) "
                f"(K_a from class_counts, U from mappings[0])"
            )
    split = sum(int(((m > 0).sum(axis=1) > 1).sum()) for m in mats)
    return {"split_share": split / sum(k), "n_universal": int(n_u)}


# ----------------------------------------------------------------------------- validation helpers


def _positive_float(x: object, *, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {x!r}")
    v = float(x)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return v


def _counts_pair(k: object, n: object) -> tuple[np.ndarray, np.ndarray]:
    try:
        kk = np.asarray(k, dtype=np.float64)
        nn = np.asarray(n, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"k and n must be numeric, got {type(k).__name__} and {type(n).__name__}") from exc
    kk, nn = np.broadcast_arrays(kk, nn)
    if not (np.isfinite(kk).all() and np.isfinite(nn).all()):
        raise ValueError("k and n must be finite")
    if (nn < 0).any():
        raise ValueError(f"n must be >= 0, got {nn[nn < 0].ravel()[0]:.6g}")
    if (kk < 0).any() or (kk > nn * (1 + 1e-9) + 1e-9).any():
        bad = np.flatnonzero(((kk < 0) | (kk > nn * (1 + 1e-9) + 1e-9)).ravel())[0]
        raise ValueError(f"k must lie in [0, n], got k={kk.ravel()[bad]:.6g} with n={nn.ravel()[bad]:.6g}")
    return np.minimum(kk, nn), nn


def _min_p(min_p: object) -> float:
    if isinstance(min_p, bool) or not isinstance(min_p, int | float | np.integer | np.floating):
        raise TypeError(f"min_p must be a number, got {min_p!r}")
    v = float(min_p)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"min_p must be in (0, 1], got {min_p!r}")
    return v


def _as_counts(counts: object) -> list[np.ndarray]:
    """Validate ``counts[a][i]`` (per domain a 1-D array of non-negative ints) -> int64 arrays."""
    if isinstance(counts, (str, bytes, Mapping)) or not isinstance(counts, Sequence):
        raise TypeError(f"counts must be a list of 1-D int arrays (one per domain), got {type(counts).__name__}")
    if len(counts) < 2:
        raise ValueError(f"counts must cover at least 2 domains, got {len(counts)}")
    out = []
    for a, c in enumerate(counts):
        arr = np.asarray(c)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"counts[{a}] must be a non-empty 1-D array (K_a,), got shape {arr.shape}")
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"counts[{a}] must hold integers, got dtype {arr.dtype}")
        if not np.issubdtype(arr.dtype, np.integer) and (
            not np.isfinite(arr).all() or not np.all(arr == np.round(arr))
        ):
            raise TypeError(f"counts[{a}] must hold whole numbers of images, got {arr[:5]}")
        if (arr < 0).any():
            raise ValueError(f"counts[{a}] has a negative count: {arr[arr < 0][0]}")
        out.append(arr.astype(np.int64))
    return out


def _as_pair_matrices(P: object, k: list[int]) -> dict[Pair, np.ndarray]:
    """Validated row-share matrices {(a, b): (K_a, K_b)}; each pair must have its reverse."""
    check_pair_dict(P, k, name="P")
    keys = {(int(a), int(b)) for a, b in P}
    if not keys:
        raise ValueError("P is empty: edge evidence needs at least one pair (a, b) and its reverse")
    missing = sorted((b, a) for a, b in keys if (b, a) not in keys)
    if missing:
        raise ValueError(f"P lacks the reverse pair(s) {missing[:5]}: both directions are needed")
    return {(int(a), int(b)): _shares(as_matrix(m, name=f"P[{(a, b)!r}]")) for (a, b), m in P.items()}


def _shares(arr: np.ndarray) -> np.ndarray:
    """Rows summing to more than 1 (counts) normalised to 1; other rows kept as they are."""
    with np.errstate(over="ignore"):
        sums = arr.sum(axis=1)
    off = sums > 1.0 + ROW_SUM_TOL
    if off.any():
        arr = arr.copy()
        arr[off] = scale_rows(arr[off], sums[off])
    return arr


def _gather(per_domain: list[np.ndarray], a: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``per_domain[a[e]][i[e]]`` for every e, as int64 (E,)."""
    offsets = np.concatenate([[0], np.cumsum([c.size for c in per_domain])])
    flat = np.concatenate(per_domain)
    return flat[offsets[a] + i] if a.size else np.zeros(0, np.int64)


def _as_class_names(names: object, k: list[int]) -> list[np.ndarray]:
    if isinstance(names, (str, bytes, Mapping)) or not isinstance(names, Sequence):
        raise TypeError(f"class_names must be a list of name lists, got {type(names).__name__}")
    if len(names) != len(k):
        raise ValueError(f"class_names has {len(names)} domains but counts has {len(k)}")
    out = []
    for a, n in enumerate(names):
        if isinstance(n, (str, bytes)) or len(n) != k[a]:
            raise ValueError(f"class_names[{a}] must list {k[a]} names, got {n!r:.80}")
        out.append(np.array([str(x) for x in n], dtype=object))
    return out


def _gather_names(names: list[np.ndarray], a: np.ndarray, i: np.ndarray) -> pd.Series:
    if not a.size:
        return pd.Series([], dtype=object)
    offsets = np.concatenate([[0], np.cumsum([n.size for n in names])])
    return pd.Series(np.concatenate(names)[offsets[a] + i], dtype=object)


def _as_domain_names(names: object, n: int) -> np.ndarray:
    if isinstance(names, (str, bytes, Mapping)) or not isinstance(names, Sequence):
        raise TypeError(f"domain_names must be a list of str, got {type(names).__name__}")
    if len(names) != n:
        raise ValueError(f"domain_names has {len(names)} names but counts has {n} domains")
    return np.array([str(x) for x in names], dtype=object)


def _edge_keys(selected: object, k: list[int], *, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Global (src, dst) node ids (E,) of the edges ``W_ab > 0`` of every pair.

    The node id of class a:i is ``sum(K[:a]) + i``; edges are unique per pair.
    """
    check_pair_dict(selected, k, name=name)
    off = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    src, dst = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for key, w in selected.items():
        a, b = int(key[0]), int(key[1])
        if all(hasattr(w, attr) for attr in ("rows", "cols", "weights")):  # core.selection.Edges
            keep = np.asarray(w.weights) > 0
            flat = np.unique(np.asarray(w.rows, np.int64)[keep] * k[b] + np.asarray(w.cols, np.int64)[keep])
        else:
            flat = np.flatnonzero(as_matrix(w, name=f"{name}[{key!r}]").ravel() > 0)
        rows, cols = np.divmod(flat, k[b])
        src.append(off[a] + rows)
        dst.append(off[b] + cols)
    return np.concatenate(src), np.concatenate(dst)


def _selected_by_pair(selected: object, k: list[int]) -> dict[Pair, np.ndarray]:
    """``{(a, b): bool (K_a, K_b)}`` of the selected edges, for the pairs that have any."""
    src, dst = _edge_keys(selected, k, name="selected")
    off = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    a, b = np.searchsorted(off, src, side="right") - 1, np.searchsorted(off, dst, side="right") - 1
    out: dict[Pair, np.ndarray] = {}
    for pa, pb in set(zip(a.tolist(), b.tolist())):
        m = (a == pa) & (b == pb)
        mask = np.zeros((k[pa], k[pb]), dtype=bool)
        mask[src[m] - off[pa], dst[m] - off[pb]] = True
        out[(pa, pb)] = mask
    return out


def _selected_mask(
    selected: object, k: list[int], a: np.ndarray, i: np.ndarray, b: np.ndarray, j: np.ndarray
) -> np.ndarray:
    """Bool (E,): is edge (a[e], i[e]) -> (b[e], j[e]) in ``selected``."""
    src, dst = _edge_keys(selected, k, name="selected")
    off = np.concatenate([[0], np.cumsum(k)]).astype(np.int64)
    total = int(off[-1])
    return np.isin((off[a] + i) * total + off[b] + j, src * total + dst)
