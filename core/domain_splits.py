"""The images of each split of a domain, and the seeds that make them the same on every run.

    plain_splits(spec, base, seed, caps)                   a source's own splits, capped per class
    procedural_splits(spec, seed, classes, counts)         rendered instances of each class's concepts
    real_synthetic_splits(spec, base, seed, counts)        base images of each concept
        -> splits {"train","val","test": ImageSet} (the synthetic ones also the concept of every image)
    shifted(imageset, spec, split, seed)                   the domain's shift, seeded per (domain, split)
    stable_int(*parts) -> int                              a seed from values, identical across machines

Which images the domains of a synthetic world get (``spec.images``, core.registry.SYNTHETIC_IMAGES):
"shared" (the thesis's condition): every domain takes the same images of a concept (procedural:
the same rendered instances); "disjoint": a concept's images are dealt out among the domains
that hold it (all of them get the full set only when a shard would be empty; procedural: each
domain renders its own instances).

How they are split (``spec.split_rule``, core.registry.SPLIT_RULES): "stratified" takes each
split from the base's split of the same name. "thesis" does what the thesis's code does: each
domain pools the base images of its concepts in source order (CIFAR-100: its training images;
its test images stay the test split) and splits them itself, at random with seed 42 by torch's
random_split (80/10/10; CIFAR-100 80/20 train/val). So with shared images one domain's test
image can be another domain's training image, as in the thesis.

``spec`` is a :class:`core.domains.DomainSpec`; :func:`core.domains.build_domain` picks the helper
and checks the spec first. Numpy only at import time (the thesis's rule imports torch).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

from core.imagesets import THESIS_FRACTIONS, THESIS_VAL_FRACTION, thesis_split
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
    """Rendered instances: the pool seed from (seed, domain name) ("disjoint": fresh instances per
    domain) or from the seed alone ("shared": every domain renders the same instances)."""
    parts = ("procedural", seed) if spec.images == "shared" else ("procedural", seed, spec.name)
    pool = ProceduralPool(seed=stable_int(*parts))
    splits, concept_labels = {}, {}
    for k, s in enumerate(SPLITS):
        concepts = np.array([c for cls in classes for c in sorted(cls) for _ in range(counts[s])], dtype=np.int64)
        labels = np.array([i for i, cls in enumerate(classes) for _ in range(len(cls) * counts[s])], dtype=np.int64)
        instances = np.array([j for cls in classes for _ in cls for j in range(counts[s])], dtype=np.int64) + (k << 32)
        items = ProceduralPool.items(concepts, instances) if concepts.size else np.zeros(0, np.int64)
        splits[s] = shifted(ImageSet(pool, items, labels, name=f"{spec.name}/{s}"), spec, s, seed)
        concept_labels[s] = concepts
    return splits, concept_labels


# synthetic bases with a test set of their own: the thesis's rule keeps it and splits train/val only
_OWN_TEST_SET = ("cifar100",)


def _owners(spec: DomainSpec) -> dict[int, list[int]]:
    """concept -> the sorted indices of the world's domains holding it."""
    owners: dict[int, list[int]] = {}
    for d, classes in enumerate(spec.synthetic.domains):
        for cls in classes:
            for c in cls:
                owners.setdefault(c, []).append(d)
    return owners


def real_synthetic_splits(
    spec: DomainSpec, base: Source, seed: int, counts: dict[str, int | None]
) -> tuple[dict[str, ImageSet], dict[str, np.ndarray]]:
    """Base images of each concept of this domain, relabelled with the class holding the concept;
    shared or dealt out (``spec.images``), split by ``spec.split_rule``; at most ``counts[s]``
    images per concept and split (None = all)."""
    if spec.split_rule == "thesis":
        return _thesis_synthetic_splits(spec, base, seed, counts)
    tax, a = spec.synthetic, spec.synthetic_index
    owners = _owners(spec)
    splits, concept_labels = {}, {}
    for s in SPLITS:
        src = base.splits[s]
        picked, labels, concepts = [], [], []
        for i, cls in enumerate(tax.domains[a]):
            for c in sorted(cls):
                idx = np.flatnonzero(src.labels == c)
                idx = idx[np.random.default_rng([seed, c, SPLITS.index(s)]).permutation(idx.size)]
                if spec.images == "shared":
                    chosen = idx[: counts[s]]
                else:
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


def _pooled(base: Source, names: tuple[str, ...]) -> tuple[ImageSet, np.ndarray, np.ndarray]:
    """The images of ``names`` (splits of one pool) in source order -> (a split, items (N,), concepts (N,))."""
    sets = [base.splits[s] for s in names]
    items = np.concatenate([x.items for x in sets])
    concepts = np.concatenate([x.labels for x in sets])
    order = np.argsort(items, kind="stable")
    return sets[0], items[order], concepts[order]


def _domain_images(spec: DomainSpec, items: np.ndarray, concepts: np.ndarray, seed: int, owners) -> np.ndarray:
    """Positions (sorted, so in source order) of the images this domain takes: all images of its
    concepts ("shared") or its dealt share of each ("disjoint")."""
    a = spec.synthetic_index
    mine = spec.synthetic.concept_to_class(a)
    keep = []
    for c in np.unique(concepts):
        if mine[c] < 0:
            continue
        idx = np.flatnonzero(concepts == c)
        if spec.images == "disjoint":
            idx = idx[np.random.default_rng([seed, int(c)]).permutation(idx.size)]
            shard = idx[owners[int(c)].index(a) :: len(owners[int(c)])]
            idx = shard if shard.size else idx
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _thesis_synthetic_splits(
    spec: DomainSpec, base: Source, seed: int, counts: dict[str, int | None]
) -> tuple[dict[str, ImageSet], dict[str, np.ndarray]]:
    """The thesis's rule: this domain's images in source order, split at random (seed 42)."""
    owners = _owners(spec)
    mine = spec.synthetic.concept_to_class(spec.synthetic_index)
    own_test = base.name in _OWN_TEST_SET
    resplit = ("train", "val") if own_test else SPLITS
    fractions = (1 - THESIS_VAL_FRACTION, THESIS_VAL_FRACTION) if own_test else THESIS_FRACTIONS
    first, items, concepts = _pooled(base, resplit)
    keep = _domain_images(spec, items, concepts, seed, owners)
    parts = dict(zip(resplit, thesis_split(keep.size, fractions, rest_to_last=own_test)))
    chosen = {s: (first.pool, items[keep[parts[s]]], concepts[keep[parts[s]]]) for s in resplit}
    if own_test:
        test = base.splits["test"]
        keep_test = _domain_images(spec, test.items, test.labels, seed, owners)
        chosen["test"] = (test.pool, test.items[keep_test], test.labels[keep_test])
    splits, concept_labels = {}, {}
    for s in SPLITS:
        pool, its, cons = chosen[s]
        cap = cap_per_class(cons, counts[s], stable_int("cap", seed, spec.name, s))
        its, cons = its[cap], cons[cap]
        splits[s] = shifted(ImageSet(pool, its, mine[cons], name=f"{spec.name}/{s}"), spec, s, seed)
        concept_labels[s] = cons.astype(np.int64)
    return splits, concept_labels
