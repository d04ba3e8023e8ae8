"""The images of each split of a domain, and the seeds that make them the same on every run.

    plain_splits(spec, base, seed, caps)                   a source's own splits, capped per class
    procedural_splits(spec, seed, classes, counts)         fresh rendered instances of each class's concepts
    real_synthetic_splits(spec, base, seed, counts)        base images of each concept, dealt out disjointly
        -> splits {"train","val","test": ImageSet} (the synthetic ones also the concept of every image)
    shifted(imageset, spec, split, seed)                   the domain's shift, seeded per (domain, split)
    stable_int(*parts) -> int                              a seed from values, identical across machines

``spec`` is a :class:`core.domains.DomainSpec`; :func:`core.domains.build_domain` picks the helper
and checks the spec first. Numpy only at import time.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from core.registry import SPLITS
from core.sources import ImageSet, ProceduralPool, Source

if TYPE_CHECKING:
    from core.domains import DomainSpec

__all__ = ["stable_int", "shifted", "cap_per_class", "plain_splits", "procedural_splits", "real_synthetic_splits"]


def stable_int(*parts: object) -> int:
    """A 63-bit integer from a tuple of values, identical across runs and machines."""
    digest = hashlib.sha1("|".join(repr(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def shifted(imageset: ImageSet, spec: DomainSpec, split: str, seed: int) -> ImageSet:
    """``imageset`` with the domain's shift, seeded per image by (seed, domain name, split, index)."""
    return imageset.with_shift(spec.shift, seed=stable_int("shift", seed, spec.name, split))


def cap_per_class(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most ``cap`` images per class (a seeded choice), sorted."""
    if cap is None:
        return np.arange(labels.size)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(np.sort(idx[np.random.default_rng([seed, int(c)]).permutation(idx.size)[:cap]]))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def plain_splits(spec: DomainSpec, base: Source, seed: int, caps: dict[str, int | None]) -> dict[str, ImageSet]:
    """The source's own splits, capped per class (``caps`` per split, None = all); the shift applied."""
    splits = {}
    for s in SPLITS:
        src = base.splits[s]
        keep = cap_per_class(src.labels, caps[s], stable_int("cap", seed, spec.name, s))
        splits[s] = shifted(src.subset(keep, name=f"{spec.name}/{s}"), spec, s, seed)
    return splits


def procedural_splits(
    spec: DomainSpec, seed: int, classes: list[frozenset[int]], counts: dict[str, int]
) -> tuple[dict[str, ImageSet], dict[str, np.ndarray]]:
    """Fresh rendered instances for this domain: pool seed from (seed, domain name)."""
    pool = ProceduralPool(seed=stable_int("procedural", seed, spec.name))
    splits, concept_labels = {}, {}
    for k, s in enumerate(SPLITS):
        concepts = np.array([c for cls in classes for c in sorted(cls) for _ in range(counts[s])], dtype=np.int64)
        labels = np.array([i for i, cls in enumerate(classes) for _ in range(len(cls) * counts[s])], dtype=np.int64)
        instances = np.array([j for cls in classes for _ in cls for j in range(counts[s])], dtype=np.int64) + (k << 32)
        items = ProceduralPool.items(concepts, instances) if concepts.size else np.zeros(0, np.int64)
        splits[s] = shifted(ImageSet(pool, items, labels, name=f"{spec.name}/{s}"), spec, s, seed)
        concept_labels[s] = concepts
    return splits, concept_labels


def real_synthetic_splits(
    spec: DomainSpec, base: Source, seed: int, counts: dict[str, int | None]
) -> tuple[dict[str, ImageSet], dict[str, np.ndarray]]:
    """Base images of each concept, dealt out disjointly among the domains that share the concept."""
    tax, a = spec.synthetic, spec.synthetic_index
    owners = {}  # concept -> sorted domain indices holding it
    for d, classes in enumerate(tax.domains):
        for cls in classes:
            for c in cls:
                owners.setdefault(c, []).append(d)
    splits, concept_labels = {}, {}
    for s in SPLITS:
        src = base.splits[s]
        picked, labels, concepts = [], [], []
        for i, cls in enumerate(tax.domains[a]):
            for c in sorted(cls):
                idx = np.flatnonzero(src.labels == c)
                idx = idx[np.random.default_rng([seed, c, SPLITS.index(s)]).permutation(idx.size)]
                share = owners[c]
                shard = idx[share.index(a) :: len(share)]
                chosen = (shard if shard.size else idx)[: counts[s]]
                picked.append(chosen)
                labels += [i] * chosen.size
                concepts += [c] * chosen.size
        idx = np.concatenate(picked) if picked else np.zeros(0, np.int64)
        sub = src.subset(idx, np.asarray(labels, dtype=np.int64), name=f"{spec.name}/{s}")
        splits[s] = shifted(sub, spec, s, seed)
        concept_labels[s] = np.asarray(concepts, dtype=np.int64)
    return splits, concept_labels
