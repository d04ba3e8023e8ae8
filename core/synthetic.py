"""Synthetic ground truth (docs/architecture.md, scores): domains whose classes are sets of atomic concepts.

Each domain draws ``m ~ round(TruncNormal(concepts_mean, concepts_var, 1, n))`` distinct
concepts, then partitions them into classes of size ``s ~ round(TruncNormal(class_size_mean,
class_size_var, 1, remaining))`` until none remain (``*_var`` are variances, as in the thesis).
The overlap ``o_ij = |c_i^a & c_j^b| / |c_i^a|`` defines the true relationships (a,i)->(b,j)
(o_ij > 0, weight o_ij) and the expected cross-domain matrices. ``sample_cross_counts`` draws
imperfect count matrices from the same world, so selection methods can be compared without
images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from core.crossdomain import ordered_pairs


def _check_int(value: object, *, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_float(value: object, *, name: str, low: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or (v <= low if strict else v < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return v


def _truncated_normal(rng: np.random.Generator, mean: float, var: float, low: float, high: float) -> int:
    """round(TruncNormal(mean, var) on [low, high]) as an int in [low, high]."""
    if var == 0 or high <= low:
        return int(np.clip(round(mean), low, high))
    dist = NormalDist(mean, float(np.sqrt(var)))  # inverse-CDF sampling of the truncated normal
    lo_p, hi_p = dist.cdf(low), dist.cdf(high)
    if hi_p - lo_p < 1e-12:  # the interval lies far in a tail: take its nearer end
        return int(low if mean < low else high)
    x = dist.inv_cdf(min(max(lo_p + rng.random() * (hi_p - lo_p), 1e-15), 1 - 1e-15))
    return int(np.clip(round(x), low, high))


@dataclass(frozen=True)
class SyntheticTaxonomy:
    """A synthetic world: ``domains[a][i]`` is the frozenset of concept ids of class a:i."""

    n_concepts: int
    domains: list[list[frozenset[int]]]
    seed: int = 42
    params: dict = field(default_factory=dict)

    @property
    def class_counts(self) -> list[int]:
        """K_a for every domain."""
        return [len(d) for d in self.domains]

    def concept_to_class(self, a: int) -> np.ndarray:
        """Class index (n_concepts,) of each concept in domain a, -1 where a lacks it."""
        out = np.full(self.n_concepts, -1, dtype=np.int64)
        for i, concepts in enumerate(self.domains[a]):
            out[list(concepts)] = i
        return out

    def class_names(self, concept_names: Sequence[str] | None = None) -> list[list[str]]:
        """Readable class names: the class's concept names joined by '+' (sorted by concept id)."""
        names = list(concept_names) if concept_names is not None else [f"c{k}" for k in range(self.n_concepts)]
        if len(names) < self.n_concepts:
            raise ValueError(f"need {self.n_concepts} concept names, got {len(names)}")
        return [["+".join(names[k] for k in sorted(c)) for c in dom] for dom in self.domains]

    def overlap(self, a: int, b: int) -> np.ndarray:
        """o (K_a, K_b): share of class a:i's concepts that lie in class b:j."""
        sizes = np.array([len(c) for c in self.domains[a]], dtype=np.float64)
        to_b = self.concept_to_class(b)
        o = np.zeros((len(self.domains[a]), len(self.domains[b])))
        for i, concepts in enumerate(self.domains[a]):
            js = to_b[list(concepts)]
            np.add.at(o[i], js[js >= 0], 1.0)
        return o / sizes[:, None]

    def true_relationships(self) -> dict[tuple[int, int], np.ndarray]:
        """W_ab = o_ab for every ordered pair: (a,i)->(b,j) iff o_ij > 0."""
        return {(a, b): self.overlap(a, b) for a, b in ordered_pairs(len(self.domains))}

    def expected_matrices(self, *, uniform_remainder: bool = True) -> dict[tuple[int, int], np.ndarray]:
        """Expected P_ab: o_ij + (1 - sum_k o_ik) / K_b with the uniform remainder, else o_ij."""
        out = {}
        for (a, b), o in self.true_relationships().items():
            out[(a, b)] = o + (1.0 - o.sum(axis=1, keepdims=True)) / o.shape[1] if uniform_remainder else o
        return out

    def to_dict(self) -> dict:
        """Plain JSON-able form; ``from_dict`` inverts it."""
        return {
            "n_concepts": self.n_concepts,
            "seed": self.seed,
            "params": dict(self.params),
            "domains": [[sorted(int(k) for k in c) for c in dom] for dom in self.domains],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SyntheticTaxonomy:
        try:
            domains = [[frozenset(int(k) for k in c) for c in dom] for dom in data["domains"]]
            return cls(int(data["n_concepts"]), domains, int(data.get("seed", 42)), dict(data.get("params", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a synthetic taxonomy dict: {exc!r}") from exc


def make_synthetic_taxonomy(
    n_concepts: int,
    n_domains: int,
    concepts_mean: float,
    concepts_var: float,
    class_size_mean: float,
    class_size_var: float,
    *,
    seed: int = 42,
) -> SyntheticTaxonomy:
    """Sample a synthetic world of ``n_domains`` domains over ``n_concepts`` concepts (seeded)."""
    n = _check_int(n_concepts, name="n_concepts", low=1)
    n_dom = _check_int(n_domains, name="n_domains", low=1)
    mean = _check_float(concepts_mean, name="concepts_mean", low=0, strict=True)
    var = _check_float(concepts_var, name="concepts_var", low=0, strict=False)
    s_mean = _check_float(class_size_mean, name="class_size_mean", low=0, strict=True)
    s_var = _check_float(class_size_var, name="class_size_var", low=0, strict=False)
    _check_int(seed, name="seed", low=0)
    rng = np.random.default_rng(seed)
    domains = []
    for _ in range(n_dom):
        m = _truncated_normal(rng, mean, var, 1, n)
        remaining = rng.choice(n, size=m, replace=False)
        classes = []
        while remaining.size:
            s = _truncated_normal(rng, s_mean, s_var, 1, remaining.size)
            picked = rng.choice(remaining.size, size=s, replace=False)
            classes.append(frozenset(int(c) for c in remaining[picked]))
            remaining = np.delete(remaining, picked)
        domains.append(classes)
    params = {"concepts_mean": mean, "concepts_var": var, "class_size_mean": s_mean, "class_size_var": s_var}
    return SyntheticTaxonomy(n, domains, int(seed), params)


def sample_cross_counts(
    taxonomy: SyntheticTaxonomy,
    *,
    images_per_class: int = 50,
    noise: float = 0.2,
    confusion_alpha: float = 0.05,
    seed: int = 42,
) -> dict[tuple[int, int], np.ndarray]:
    """Imperfect count matrices C_ab (K_a, K_b) drawn from the synthetic world.

    Each of ``images_per_class`` images of class a:i shows one of its concepts (uniformly). The
    domain-b model predicts the b class holding that concept; when b lacks the concept it
    predicts a uniformly random class (the uniform remainder); and with probability ``noise`` it
    errs like a real model, towards a few look-alike classes: errors of class a:i follow a
    distribution over b's classes drawn from Dirichlet(``confusion_alpha``) (small alpha =
    errors concentrated on few classes, large alpha = uniform errors).
    """
    n_img = _check_int(images_per_class, name="images_per_class", low=1)
    q = _check_float(noise, name="noise", low=0, strict=False)
    if q > 1:
        raise ValueError(f"noise must be in [0, 1], got {noise!r}")
    alpha = _check_float(confusion_alpha, name="confusion_alpha", low=0, strict=True)
    _check_int(seed, name="seed", low=0)
    rng = np.random.default_rng(seed)
    counts = taxonomy.class_counts
    out = {}
    for a, b in ordered_pairs(len(counts)):
        concepts = [np.array(sorted(c)) for c in taxonomy.domains[a]]
        sizes = np.array([c.size for c in concepts])
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        flat = np.concatenate(concepts)
        true = np.repeat(np.arange(counts[a]), n_img)
        shown = flat[offsets[true] + (rng.random(true.size) * sizes[true]).astype(np.int64)]
        pred = taxonomy.concept_to_class(b)[shown]
        unknown = pred < 0
        pred[unknown] = rng.integers(0, counts[b], size=int(unknown.sum()))
        wrong = rng.random(true.size) < q
        confusion = rng.dirichlet(np.full(counts[b], alpha), size=counts[a])  # (K_a, K_b)
        cdf = np.cumsum(confusion, axis=1)
        u = rng.random(int(wrong.sum())) * cdf[true[wrong], -1]
        pred[wrong] = np.minimum((cdf[true[wrong]] < u[:, None]).sum(axis=1), counts[b] - 1)
        out[(a, b)] = (
            np.bincount(true * counts[b] + pred, minlength=counts[a] * counts[b])
            .reshape(counts[a], counts[b])
            .astype(np.float64)
        )
    return out
