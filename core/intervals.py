"""Is a difference real? Bootstrap intervals of accuracies and of paired differences (numpy only).

Every function takes per-image correctness (a bool array, True = the prediction was right) and
returns a point estimate with a percentile-bootstrap interval at ``level``. The bootstrap
resamples images with replacement, seeded by ``seed``; it never materialises the resampled
index arrays:

- the number of correct images in a resample of N images is Binomial(N, acc), so
  ``bootstrap_accuracy`` draws ``n_boot`` binomials (the same distribution as resampling, in
  O(n_boot) memory);
- a paired resample only needs the counts of the four (a, b) outcomes per image, a
  Multinomial(N, shares), so ``paired_difference`` draws ``n_boot`` multinomials;
- ``mean_over_domains`` resamples within each domain (stratified): a binomial per domain.

``paired_difference`` also gives the exact McNemar p-value (two-sided binomial test on the
discordant images), and ``within_noise`` = the interval contains 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "bootstrap_accuracy",
    "paired_difference",
    "mean_over_domains",
    "paired_mean_difference",
    "seed_spread",
    "mcnemar_exact",
]

MIN_BOOT = 100  # fewer resamples give percentile bounds that move with the seed


# ----------------------------------------------------------------------------- public


def bootstrap_accuracy(
    correct: object, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lo, hi): accuracy of ``correct`` (N,) bool and its percentile-bootstrap interval."""
    c = _as_correct(correct, name="correct")
    _check_boot(n_boot, seed, level)
    n, k = c.size, int(c.sum())
    rng = np.random.default_rng(seed)
    boot = rng.binomial(n, k / n, size=n_boot) / n
    lo, hi = _percentiles(boot, level)
    return k / n, lo, hi


def paired_difference(
    correct_a: object, correct_b: object, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float | bool]:
    """Accuracy of a minus accuracy of b on the same N images, with a paired bootstrap.

    correct_a, correct_b: (N,) bool, image e judged by both models. Returns ``diff``, ``lo``,
    ``hi`` (percentile interval of the difference, resampling images), ``p_value`` (exact
    two-sided McNemar test; 1.0 when no image is discordant) and ``within_noise``: the data do
    not tell the two apart at ``level`` when the interval contains 0 OR the exact test does not
    reject (with few discordant images a percentile interval can exclude 0 while four images
    decide nothing; both must agree before a difference is called real).
    """
    ca = _as_correct(correct_a, name="correct_a")
    cb = _as_correct(correct_b, name="correct_b")
    if ca.size != cb.size:
        raise ValueError(
            f"correct_a has {ca.size} images but correct_b has {cb.size}: a paired difference needs the same images"
        )
    _check_boot(n_boot, seed, level)
    n = ca.size
    only_a = int((ca & ~cb).sum())
    only_b = int((~ca & cb).sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [only_a / n, only_b / n, (n - only_a - only_b) / n], size=n_boot)
    boot = (draws[:, 0] - draws[:, 1]) / n
    lo, hi = _percentiles(boot, level)
    return {
        "diff": (only_a - only_b) / n,
        "lo": lo,
        "hi": hi,
        "p_value": (p := mcnemar_exact(only_a, only_b)),
        "within_noise": bool(lo <= 0.0 <= hi or p >= 1.0 - level),
    }


def mean_over_domains(
    correct_by_domain: Sequence[object], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of per-domain accuracies, each domain weighted equally.

    correct_by_domain: one (N_d,) bool array per domain. The bootstrap resamples images within
    each domain (stratified), so every resample keeps every domain and its size.
    """
    if isinstance(correct_by_domain, (str, bytes, np.ndarray)) or not isinstance(correct_by_domain, Sequence):
        raise TypeError(
            f"correct_by_domain must be a list of bool arrays (one per domain), got {type(correct_by_domain).__name__}"
        )
    if not correct_by_domain:
        raise ValueError("correct_by_domain is empty: at least one domain is needed")
    arrays = [_as_correct(c, name=f"correct_by_domain[{d}]") for d, c in enumerate(correct_by_domain)]
    _check_boot(n_boot, seed, level)
    n = np.array([c.size for c in arrays])
    acc = np.array([c.sum() for c in arrays]) / n
    rng = np.random.default_rng(seed)
    boot = (rng.binomial(n, acc, size=(n_boot, n.size)) / n).mean(axis=1)
    lo, hi = _percentiles(boot, level)
    return float(acc.mean()), lo, hi


def paired_mean_difference(
    a_by_domain: Sequence[object],
    b_by_domain: Sequence[object],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float | bool]:
    """Mean over domains of (accuracy of a minus accuracy of b), each domain weighted equally,
    with a paired bootstrap that resamples images within each domain.

    a_by_domain, b_by_domain: one (N_d,) bool array per domain, image e of domain d judged by
    both models. Returns ``diff``, ``lo``, ``hi`` and ``within_noise`` as
    :func:`paired_difference` (no p-value: McNemar pools images, not domains).
    """
    if len(a_by_domain) != len(b_by_domain) or not len(a_by_domain):
        raise ValueError(f"need the same non-zero number of domains, got {len(a_by_domain)} and {len(b_by_domain)}")
    _check_boot(n_boot, seed, level)
    rng = np.random.default_rng(seed)
    diffs, boot = [], np.zeros(n_boot)
    for d, (a, b) in enumerate(zip(a_by_domain, b_by_domain)):
        ca, cb = _as_correct(a, name=f"a_by_domain[{d}]"), _as_correct(b, name=f"b_by_domain[{d}]")
        if ca.size != cb.size:
            raise ValueError(f"domain {d}: {ca.size} images for a but {cb.size} for b: a paired difference needs both")
        n, only_a, only_b = ca.size, int((ca & ~cb).sum()), int((~ca & cb).sum())
        draws = rng.multinomial(n, [only_a / n, only_b / n, (n - only_a - only_b) / n], size=n_boot)
        boot += (draws[:, 0] - draws[:, 1]) / n
        diffs.append((only_a - only_b) / n)
    boot /= len(diffs)
    lo, hi = _percentiles(boot, level)
    return {"diff": float(np.mean(diffs)), "lo": lo, "hi": hi, "within_noise": bool(lo <= 0.0 <= hi)}


def seed_spread(values: object) -> tuple[float, float, int]:
    """(mean, std, n) of one score over n seeds; std is the sample std (ddof=1), NaN for n=1."""
    v = np.asarray(values) if not isinstance(values, (str, bytes)) else None
    if v is None or v.dtype == bool or not np.issubdtype(v.dtype, np.number):
        raise TypeError(f"values must be a 1-D array of numbers, got {values!r:.80}")
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D (n_seeds,), got shape {v.shape}")
    if v.size == 0:
        raise ValueError("values is empty: at least one seed's score is needed")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"values must be finite, got {v[~np.isfinite(v)][0]}")
    std = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return float(v.mean()), std, int(v.size)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (images only a / only b got right).

    Under "no difference" each discordant image is a fair coin: p = min(1, 2 P(X <= min)) with
    X ~ Binomial(only_a + only_b, 1/2); 1.0 when there is no discordant image.
    """
    for name, v in (("only_a", only_a), ("only_b", only_b)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} must be an int >= 0, got {v!r}")
    m, low = int(only_a) + int(only_b), min(int(only_a), int(only_b))
    if m == 0:
        return 1.0
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, m + 1, dtype=np.float64)))])
    x = np.arange(low + 1)
    log_pmf = log_fact[m] - log_fact[x] - log_fact[m - x] - m * np.log(2.0)
    top = log_pmf.max()
    tail = float(np.exp(top) * np.exp(log_pmf - top).sum())
    return min(1.0, 2.0 * tail)


# ----------------------------------------------------------------------------- helpers


def _as_correct(x: object, *, name: str) -> np.ndarray:
    """Validate a per-image correctness array: 1-D, bool, non-empty."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a 1-D bool array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype != bool:
        raise TypeError(
            f"{name} must be a bool array (True = correct), got dtype {arr.dtype}; pass e.g. predicted == true"
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one image is needed")
    return arr


def _check_boot(n_boot: object, seed: object, level: object) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer):
        raise TypeError(f"n_boot must be an int, got {n_boot!r}")
    if n_boot < MIN_BOOT:
        raise ValueError(f"n_boot must be >= {MIN_BOOT}, got {n_boot}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if isinstance(level, bool) or not isinstance(level, int | float | np.integer | np.floating):
        raise TypeError(f"level must be a number in (0, 1), got {level!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    """(lo, hi): the central ``level`` percentile interval of the bootstrap values (n_boot,)."""
    tail = (1.0 - float(level)) / 2.0
    lo, hi = np.quantile(boot, [tail, 1.0 - tail])
    return float(lo), float(hi)
