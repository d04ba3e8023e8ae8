"""Labelled images: one split (:class:`ImageSet`), a whole source (:class:`Source`), and the
deterministic stratified split of sources that have none of their own.

    ImageSet(pool, items (N,), labels (N,), shift="none", shift_seed=0, name="")
        len(s); s.labels (N,); s.image(i); s.images(idx, size) -> (imgs, ok); s.key; s.describe(i)
    Source(name, class_names, splits={"train","val","test": ImageSet}, notes=[])
    stratified_split(labels (N,), *, fractions=(0.7, 0.1, 0.2), seed=42) -> {"train","val","test": idx}
    thesis_split(n, fractions=(0.8, 0.1, 0.1), *, seed=42) -> [idx, ...]   torch's random_split partition
    split_sets(pool, labels, name, *, fractions, seed, items=None, rule="stratified") -> {split: ImageSet}

An ImageSet's pixels come from a :mod:`core.pools` pool; its optional domain shift is applied as
images are read (:mod:`core.shifts`, which imports torch, loads then). Numpy + PIL at import time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from core.pools import Pool
from core.registry import SHIFTS, SPLITS

__all__ = [
    "ImageSet",
    "Source",
    "stratified_split",
    "thesis_split",
    "split_sets",
    "DEFAULT_FRACTIONS",
    "THESIS_FRACTIONS",
    "THESIS_VAL_FRACTION",
    "THESIS_SPLIT_SEED",
    "SHIFT_VERSION",
]

DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)  # train/val/test for sources without their own split
# the thesis's split (core.registry.SPLIT_RULES["thesis"]): random, by torch's permutation, seed 42
THESIS_FRACTIONS = (0.8, 0.1, 0.1)  # train/val/test of a source without its own split (Caltech)
THESIS_VAL_FRACTION = 0.2  # val share of the training set of a source with its own test set (CIFAR-100)
THESIS_SPLIT_SEED = 42
SHIFT_VERSION = 3  # part of every shifted ImageSet's cache key: bump when core.shifts changes pixels


def _digest(*parts: object) -> str:
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:16]


class ImageSet:
    """One labelled split: items of a pool, labels (N,), an optional per-image domain shift.

    len(s); s.labels (N,) int64; s.image(i) -> uint8 (H,W,3) as the model sees it (shift
    included, native size); s.images(indices, size) -> (uint8 (B,size,size,3), ok (B,) bool);
    s.key: a stable string naming the exact pixels (pool, items, shift), used by the feature
    cache; s.describe(i): where image i comes from (its path for files). Labels are not part of
    the key: relabelling the same images reuses cached features.
    """

    def __init__(
        self,
        pool: Pool,
        items: np.ndarray,
        labels: np.ndarray,
        *,
        shift: str = "none",
        shift_seed: int = 0,
        name: str = "",
    ) -> None:
        items = np.asarray(items, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        if items.ndim != 1 or labels.shape != items.shape:
            raise ValueError(f"items and labels must be 1-D of equal length, got {items.shape} and {labels.shape}")
        if shift not in tuple(SHIFTS):  # a tuple: an unhashable value is refused, not a TypeError
            raise ValueError(f"unknown shift {shift!r}; expected one of {list(SHIFTS)}")
        self.pool, self.items, self.labels = pool, items, labels
        self.shift, self.shift_seed, self.name = shift, int(shift_seed), name
        shift_key = "none" if shift == "none" else f"{shift}:{self.shift_seed}:v{SHIFT_VERSION}"
        self.key = f"{pool.key}|items={_digest(items)}|n={len(items)}|shift={shift_key}"

    def __len__(self) -> int:
        return int(self.items.size)

    def __repr__(self) -> str:
        return f"ImageSet({self.name or self.pool.key!r}, n={len(self)}, shift={self.shift!r})"

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for ImageSet of length {len(self)}: {idx.min()}..{idx.max()}")
        return idx

    def _shifted(self, images: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.shift == "none":
            return images
        from core.shifts import apply_shift  # torch: imported only when a shift is used

        return apply_shift(images, idx, shift=self.shift, seed=self.shift_seed)

    def image(self, i: int) -> np.ndarray:
        """Image i at its native size as uint8 (H,W,3), shift applied; raises if unreadable."""
        idx = self._check_indices(np.array([i]))
        img = self.pool.native(int(self.items[idx[0]]))
        return self._shifted(img[None], idx)[0]

    def describe(self, i: int) -> str:
        """Where image i comes from (its file path for on-disk sources), for messages."""
        idx = self._check_indices(np.array([i]))
        return self.pool.describe(int(self.items[idx[0]]))

    def images(self, indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Images at ``indices`` resized to size x size, shift applied -> (uint8 (B,s,s,3), ok (B,))."""
        idx = self._check_indices(indices)
        imgs, ok = self.pool.load(self.items[idx], int(size))
        return self._shifted(imgs, idx), ok

    def subset(self, indices: np.ndarray, labels: np.ndarray | None = None, *, name: str = "") -> ImageSet:
        """The images at ``indices`` (optionally relabelled), keeping pool and shift settings."""
        idx = self._check_indices(indices)
        new_labels = self.labels[idx] if labels is None else np.asarray(labels, dtype=np.int64)
        return ImageSet(
            self.pool, self.items[idx], new_labels, shift=self.shift, shift_seed=self.shift_seed, name=name or self.name
        )

    def with_shift(self, shift: str, *, seed: int) -> ImageSet:
        """The same images with a (different) domain shift, seeded per image by (seed, index)."""
        return ImageSet(self.pool, self.items, self.labels, shift=shift, shift_seed=seed, name=self.name)


@dataclass(frozen=True, eq=False)
class Source:
    """A labelled source: class names and its train/val/test ImageSets."""

    name: str
    class_names: list[str]
    splits: dict[str, ImageSet]
    notes: list[str] = field(default_factory=list)  # what was skipped while loading, for the UI

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


# ---------------------------------------------------------------------------- splitting


def stratified_split(
    labels: np.ndarray, *, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 42
) -> dict[str, np.ndarray]:
    """Deterministic stratified split of labels (N,) -> {"train","val","test": sorted indices}.

    Per class, images are permuted by (seed, class) and cut by ``fractions``; a class with n >= 3
    images gets at least one of each split, n == 2 one train + one test, n == 1 train only.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0) or f[0] <= 0:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1 with train > 0, got {fractions!r}")
    out = {s: [] for s in SPLITS}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.random.default_rng([int(seed), int(c)]).permutation(idx.size)]
        n = idx.size
        n_val, n_test = int(round(n * f[1])), int(round(n * f[2]))
        if n >= 3:
            n_val, n_test = max(n_val, 1 if f[1] > 0 else 0), max(n_test, 1 if f[2] > 0 else 0)
        elif n == 2:
            n_val, n_test = 0, 1 if f[2] > 0 else 0
        else:
            n_val, n_test = 0, 0
        n_train = max(n - n_val - n_test, 1)
        n_test = n - n_train - n_val
        out["train"].append(idx[:n_train])
        out["val"].append(idx[n_train : n_train + n_val])
        out["test"].append(idx[n_train + n_val :])
    return {s: np.sort(np.concatenate(v)) if v else np.zeros(0, np.int64) for s, v in out.items()}


def thesis_split(
    n: int,
    fractions: tuple[float, ...] = THESIS_FRACTIONS,
    *,
    seed: int = THESIS_SPLIT_SEED,
    rest_to_last: bool = False,
) -> list[np.ndarray]:
    """The partition of range(n) that ``torch.utils.data.random_split(range(n), fractions,
    generator=torch.Generator().manual_seed(seed))`` makes: one sorted index array per fraction.

    As torch does: lengths floor(n * f), the remainder added one by one from the first part on,
    then consecutive pieces of ``torch.randperm(n)``. ``rest_to_last``: lengths floor(n * f) but
    the last part takes the rest, as the thesis's CIFAR-100 code passes them
    (``[int(0.8 * n), n - int(0.8 * n)]``). Imports torch (the permutation is torch's).
    """
    import torch

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size < 1 or (f < 0).any() or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative numbers summing to 1, got {fractions!r}")
    lengths = [int(np.floor(n * x)) for x in f]
    if rest_to_last:
        lengths[-1] = n - sum(lengths[:-1])
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    perm = torch.randperm(int(n), generator=torch.Generator().manual_seed(int(seed))).numpy()
    return [np.sort(part) for part in np.split(perm, np.cumsum(lengths)[:-1])]


def split_sets(
    pool: Pool,
    labels: np.ndarray,
    name: str,
    *,
    fractions,
    seed: int,
    items: np.ndarray | None = None,
    rule: str = "stratified",
) -> dict[str, ImageSet]:
    """The train/val/test ImageSets of ``items`` (default: 0..N-1): by :func:`stratified_split`
    (``fractions``, ``seed``), or with ``rule="thesis"`` by :func:`thesis_split` (80/10/10, seed 42)."""
    items = np.arange(labels.size) if items is None else items
    if rule == "thesis":
        parts = dict(zip(SPLITS, thesis_split(labels.size)))
    elif rule == "stratified":
        parts = stratified_split(labels, fractions=fractions, seed=seed)
    else:
        raise ValueError(f"unknown split rule {rule!r}; expected 'stratified' or 'thesis'")
    return {s: ImageSet(pool, items[parts[s]], labels[parts[s]], name=f"{name}/{s}") for s in SPLITS}
