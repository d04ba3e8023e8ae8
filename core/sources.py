"""Labelled image sources behind one interface: class names + train/val/test ImageSets.

    SOURCES: dict[str, str]                         name -> expected on-disk layout (core.registry)
    load_source(name, *, root=None, seed=42, download=False, **options) -> Source
    stratified_split(labels (N,), *, fractions=(0.7, 0.1, 0.2), seed=42) -> {"train","val","test": idx}
    ImageSet                                        one split: len(), labels (N,), image(i), images(idx, size), key

Sources: "procedural" (built in, offline default: core.procedural), "digits" (sklearn's 8x8
handwriting), "cifar100" (torchvision's python pickle format under root), "caltech101"
(``101_ObjectCategories/<class>/image_0001.jpg``), "caltech256"
(``256_ObjectCategories/001.ak47/001_0001.jpg``), "imagefolder" (``<root>/<class>/*.jpg`` or
``<root>/{train,val,test}/<class>/*.jpg``). Sources without a split of their own (Caltech, digits,
folders, CIFAR's validation part) get a deterministic stratified split from ``seed``. Nothing is
downloaded unless ``download=True`` (via torchvision). Unreadable files are not dropped here:
ImageSet.images() reports them in its ``ok`` mask so feature extraction can skip, count and report
them. Numpy + PIL only at import time.
"""

from __future__ import annotations

import hashlib
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core import procedural
from core.registry import SHIFTS, SOURCES, SPLITS
from core.safeload import safe_unpickle

__all__ = [
    "SOURCES",
    "SPLITS",
    "IMAGE_EXTENSIONS",
    "ImageSet",
    "Source",
    "ProceduralPool",
    "ArrayPool",
    "FilePool",
    "check_root",
    "decode_image",
    "load_source",
    "stratified_split",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)  # train/val/test for sources without their own split
SHIFT_VERSION = 2  # part of every shifted ImageSet's cache key: bump when core.shifts changes pixels


# ---------------------------------------------------------------------------- pools of images


class _Pool:
    """Where pixels come from: ``load(items (B,), size)`` -> (uint8 (B,size,size,3), ok (B,) bool)."""

    key: str = ""

    def native(self, item: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def describe(self, item: int) -> str:
        """Where an item comes from, for messages: a file path, else pool key and item id."""
        return f"{self.key} item {int(item)}"


_CONCEPT_SHIFT = 40  # procedural item id = concept << 40 | instance


class ProceduralPool(_Pool):
    """Rendered concepts; item id = concept << 40 | instance, rendered at the requested size."""

    def __init__(self, *, seed: int, size: int = 64) -> None:
        self.seed, self.size = int(seed), int(size)
        self.key = f"procedural:v{procedural.RENDER_VERSION}:seed={self.seed}"

    @staticmethod
    def items(concepts: np.ndarray, instances: np.ndarray) -> np.ndarray:
        return (np.asarray(concepts, dtype=np.int64) << _CONCEPT_SHIFT) | np.asarray(instances, dtype=np.int64)

    def _split(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64)
        return items >> _CONCEPT_SHIFT, items & ((1 << _CONCEPT_SHIFT) - 1)

    def native(self, item: int) -> np.ndarray:
        c, i = self._split(np.array([item]))
        return procedural.render(c, i, size=self.size, seed=self.seed)[0]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        c, i = self._split(items)
        return procedural.render(c, i, size=size, seed=self.seed), np.ones(len(c), dtype=bool)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR, reducing_gap=None))


class ArrayPool(_Pool):
    """Images held in memory: uint8 (N,H,W,3); resized with PIL bilinear (antialiased)."""

    def __init__(self, array: np.ndarray, *, key: str) -> None:
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"array must be uint8 (N,H,W,3), got {array.dtype} {array.shape}")
        self.array, self.key = array, key

    def native(self, item: int) -> np.ndarray:
        return self.array[int(item)]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64)
        if self.array.shape[1] == size and self.array.shape[2] == size:
            return self.array[items], np.ones(len(items), dtype=bool)
        out = (
            np.stack([_resize(self.array[i], size) for i in items])
            if len(items)
            else np.zeros((0, size, size, 3), np.uint8)
        )
        return out, np.ones(len(items), dtype=bool)


# What PIL's parsers raise on hostile or corrupt files besides OSError/ValueError; decode_image
# turns them into ValueError so that callers catch one pair of types.
_PARSER_ERRORS = (
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
_DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default, used when Image.MAX_IMAGE_PIXELS is None


def _pixel_limit() -> int:
    """PIL's decompression-bomb limit (pixels), read at call time; never unlimited."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else _DEFAULT_MAX_PIXELS


def _check_pixels(im: Image.Image, path: str | os.PathLike) -> None:
    """Refuse, before decoding, an image whose header claims more pixels than the limit."""
    w, h = im.size
    if w * h > _pixel_limit():
        raise ValueError(
            f"{os.fspath(path)!r}: image of {w} x {h} pixels exceeds the limit of "
            f"{_pixel_limit()} pixels (a decompression bomb?)"
        )


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode any PIL-readable file to uint8 (H,W,3) RGB.

    Greyscale, palette, CMYK -> RGB; RGBA/LA composited over white; 16-bit and 32-bit integer or
    float greyscale rescaled by their own range. Raises OSError for missing, corrupt or truncated
    files (PIL's own errors) and ValueError for files PIL's parsers choke on otherwise, and for
    images larger than PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``), which are
    refused from their header, before any pixel is decoded.
    """
    try:
        return _decode(path)
    except _PARSER_ERRORS as err:
        raise ValueError(f"{os.fspath(path)!r} is not a readable image: {type(err).__name__}: {err}") from err


def _decode(path: str | os.PathLike) -> np.ndarray:
    with Image.open(path) as im:
        _check_pixels(im, path)
        im.load()
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            a = np.asarray(im, dtype=np.float64)
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
            g = a.round().astype(np.uint8)
            return np.repeat(g[..., None], 3, axis=2)
        if mode in ("RGBA", "LA") or (mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
        return np.asarray(im.convert("RGB"))


class FilePool(_Pool):
    """Image files on disk; item = index into ``paths``. Unreadable files give ok=False."""

    def __init__(self, paths: list[str], *, key: str) -> None:
        self.paths, self.key = list(paths), key

    def native(self, item: int) -> np.ndarray:
        return decode_image(self.paths[int(item)])

    def describe(self, item: int) -> str:
        return self.paths[int(item)]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((len(items), size, size, 3), dtype=np.uint8)
        ok = np.ones(len(items), dtype=bool)
        for n, i in enumerate(np.asarray(items, dtype=np.int64)):
            try:
                out[n] = _resize(decode_image(self.paths[i]), size)
            except (OSError, ValueError):  # decode_image's errors for unreadable files
                ok[n] = False
        return out, ok


# ---------------------------------------------------------------------------- one split


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
        pool: _Pool,
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


def _split_sets(
    pool: _Pool, labels: np.ndarray, name: str, *, fractions, seed: int, items: np.ndarray | None = None
) -> dict[str, ImageSet]:
    items = np.arange(labels.size) if items is None else items
    parts = stratified_split(labels, fractions=fractions, seed=seed)
    return {s: ImageSet(pool, items[parts[s]], labels[parts[s]], name=f"{name}/{s}") for s in SPLITS}


# ---------------------------------------------------------------------------- loaders


def _procedural(
    root,
    *,
    seed: int,
    download: bool,
    n_concepts: int = procedural.DEFAULT_CONCEPTS,
    per_class: tuple[int, int, int] = (100, 20, 40),
    size: int = 64,
) -> Source:
    """Built-in concepts; split s holds per_class[s] fresh instances of every concept."""
    if len(per_class) != 3 or any(int(n) < 0 for n in per_class):
        raise ValueError(f"per_class must be 3 non-negative counts (train, val, test), got {per_class!r}")
    names = procedural.concept_names(n_concepts)
    pool = ProceduralPool(seed=seed, size=size)
    splits = {}
    for k, (s, n) in enumerate(zip(SPLITS, per_class)):
        concepts = np.repeat(np.arange(n_concepts), int(n))
        instances = np.tile(np.arange(int(n)), n_concepts) + (k << 32)  # splits never share instances
        splits[s] = ImageSet(pool, ProceduralPool.items(concepts, instances), concepts, name=f"procedural/{s}")
    return Source("procedural", names, splits)


def _digits(root, *, seed: int, download: bool, fractions=DEFAULT_FRACTIONS) -> Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    grey = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    pool = ArrayPool(np.repeat(grey[..., None], 3, axis=3), key="digits:sklearn")
    labels = d.target.astype(np.int64)
    return Source(
        "digits", [str(k) for k in range(10)], _split_sets(pool, labels, "digits", fractions=fractions, seed=seed)
    )


def _require_root(root, name: str) -> Path:
    if root is None or str(root) == "":
        raise ValueError(f"source {name!r} needs a dataset root; expected layout: {SOURCES[name]}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"dataset root {str(path)!r} for source {name!r} does not exist or is not a folder; "
            f"expected layout: {SOURCES[name]}"
        )
    return path


def check_root(name: str, root: str | os.PathLike | None) -> None:
    """Check that source ``name`` can be found under ``root`` (the layout only: folders and
    files are looked up, nothing is read); raise ValueError naming the layout expected."""
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; valid: {', '.join(SOURCES)}")
    if name in ("procedural", "digits"):
        return
    path = _require_root(root, name)
    if name == "cifar100":
        folder = path / "cifar-100-python" if (path / "cifar-100-python").is_dir() else path
        missing = [f for f in ("train", "test", "meta") if not (folder / f).is_file()]
        if missing:
            raise ValueError(f"CIFAR-100 root {str(path)!r} lacks {missing}; expected layout: {SOURCES[name]}")
    elif name in ("caltech101", "caltech256"):
        sub = "101_ObjectCategories" if name == "caltech101" else "256_ObjectCategories"
        if not any(c.is_dir() for c in (path / sub, path / name / sub)) and path.name != sub:
            raise ValueError(f"no {sub!r} folder under {str(path)!r}; expected layout: {SOURCES[name]}")


def _file_fingerprint(paths: list[str]) -> str:
    """Names, sizes and mtimes of the files: a changed dataset gets a new cache key."""
    h = hashlib.sha1()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _unpickle(path: Path) -> dict:
    """One of torchvision's CIFAR pickles: a dict, loaded without running any code it names."""
    data = safe_unpickle(path, encoding="bytes")
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} holds a pickled {type(data).__name__}, expected a dict")
    return data


def _cifar_part(d: dict, path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR train/test dict -> (uint8 (N,32,32,3) HWC, labels (N,) int64 in 0..n_classes-1)."""
    data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(d[b"fine_labels"], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{str(path)!r}: {data.shape[0]} images but fine_labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{str(path)!r}: fine_labels outside 0..{n_classes - 1} (found {labels.min()}..{labels.max()})"
        )
    return np.ascontiguousarray(data), labels


def _cifar100(root, *, seed: int, download: bool, val_fraction: float = 0.1) -> Source:
    """CIFAR-100 in torchvision's python format; val is a stratified part of train."""
    base = Path(root).expanduser() if root else None
    if download and base is not None:
        import torchvision

        base.mkdir(parents=True, exist_ok=True)
        torchvision.datasets.CIFAR100(str(base), train=True, download=True)
    path = _require_root(root, "cifar100")
    folder = path / "cifar-100-python" if (path / "cifar-100-python").is_dir() else path
    missing = [f for f in ("train", "test", "meta") if not (folder / f).is_file()]
    if missing:
        raise ValueError(
            f"CIFAR-100 root {str(path)!r} lacks {missing}; expected layout: {SOURCES['cifar100']} "
            f"(pass download=True when online)"
        )
    try:
        meta = _unpickle(folder / "meta")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"fine_label_names"]]
        parts = {}
        for s in ("train", "test"):
            parts[s] = _cifar_part(_unpickle(folder / s), folder / s, len(names))
    except (OSError, KeyError, TypeError, AttributeError, ValueError, OverflowError) as err:
        raise ValueError(
            f"CIFAR-100 files under {str(folder)!r} are unreadable or not in torchvision's "
            f"python format: {type(err).__name__}: {err}"
        ) from err
    fp = _file_fingerprint([str(folder / f) for f in ("train", "test", "meta")])
    train_pool = ArrayPool(parts["train"][0], key=f"cifar100:train:{fp}")
    test_pool = ArrayPool(parts["test"][0], key=f"cifar100:test:{fp}")
    y = parts["train"][1]
    tv = stratified_split(y, fractions=(1 - val_fraction, val_fraction, 0.0), seed=seed)
    splits = {
        "train": ImageSet(train_pool, tv["train"], y[tv["train"]], name="cifar100/train"),
        "val": ImageSet(train_pool, tv["val"], y[tv["val"]], name="cifar100/val"),
        "test": ImageSet(test_pool, np.arange(parts["test"][1].size), parts["test"][1], name="cifar100/test"),
    }
    return Source("cifar100", names, splits)


def _scan_class_folders(
    folder: Path, *, skip: tuple[str, ...] = ()
) -> tuple[list[str], list[str], list[int], list[str]]:
    """<folder>/<class>/<image> -> (class folder names, paths, labels, notes); empty classes skipped."""
    names, paths, labels, notes = [], [], [], []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        if d.name in skip:
            continue
        files = sorted(str(f) for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            notes.append(f"class folder {d.name!r} has no images: skipped")
            continue
        labels += [len(names)] * len(files)
        names.append(d.name)
        paths += files
    return names, paths, labels, notes


def _caltech(
    root, *, seed: int, download: bool, which: str, fractions=DEFAULT_FRACTIONS, include_clutter: bool = False
) -> Source:
    sub = "101_ObjectCategories" if which == "caltech101" else "256_ObjectCategories"
    if download and root:
        import torchvision

        cls = torchvision.datasets.Caltech101 if which == "caltech101" else torchvision.datasets.Caltech256
        Path(root).expanduser().mkdir(parents=True, exist_ok=True)
        cls(str(Path(root).expanduser()), download=True)
    path = _require_root(root, which)
    candidates = [path / sub, path / which / sub, path]
    folder = next((c for c in candidates if c.name == sub and c.is_dir()), None)
    if folder is None:
        raise ValueError(f"no {sub!r} folder under {str(path)!r}; expected layout: {SOURCES[which]}")
    skip = ("BACKGROUND_Google",) if which == "caltech101" else (() if include_clutter else ("257.clutter",))
    dirs, paths, labels, notes = _scan_class_folders(folder, skip=skip)
    if not paths:
        raise ValueError(f"{str(folder)!r} holds no images in class folders; expected layout: {SOURCES[which]}")
    # Caltech-256 folders are "001.ak47": the readable name drops the numeric prefix
    names = [d.split(".", 1)[1] if which == "caltech256" and "." in d else d for d in dirs]
    pool = FilePool(paths, key=f"{which}:{_file_fingerprint(paths)}")
    y = np.asarray(labels, dtype=np.int64)
    return Source(which, names, _split_sets(pool, y, which, fractions=fractions, seed=seed), notes)


def _imagefolder(root, *, seed: int, download: bool, fractions=DEFAULT_FRACTIONS) -> Source:
    path = _require_root(root, "imagefolder")
    if all((path / s).is_dir() for s in ("train", "test")):
        scans = {s: _scan_class_folders(path / s) for s in SPLITS if (path / s).is_dir()}
        names = sorted(set().union(*(set(v[0]) for v in scans.values())))
        index = {n: k for k, n in enumerate(names)}
        all_paths, splits, notes = [], {}, []
        for s, (dirs, paths, labels, nts) in scans.items():
            y = np.asarray([index[dirs[lab]] for lab in labels], dtype=np.int64)
            splits[s] = (np.arange(len(all_paths), len(all_paths) + len(paths)), y)
            all_paths += paths
            notes += [f"{s}: {n}" for n in nts]
        pool = FilePool(all_paths, key=f"imagefolder:{_file_fingerprint(all_paths)}")
        if "val" not in splits:  # carve a validation part out of train
            items, y = splits["train"]
            tv = stratified_split(y, fractions=(0.9, 0.1, 0.0), seed=seed)
            splits["train"], splits["val"] = (items[tv["train"]], y[tv["train"]]), (items[tv["val"]], y[tv["val"]])
        sets = {s: ImageSet(pool, splits[s][0], splits[s][1], name=f"imagefolder/{s}") for s in SPLITS}
        return Source("imagefolder", names, sets, notes)
    names, paths, labels, notes = _scan_class_folders(path)
    if not paths:
        raise ValueError(
            f"{str(path)!r} holds no images in class subfolders; expected layout: {SOURCES['imagefolder']}"
        )
    pool = FilePool(paths, key=f"imagefolder:{_file_fingerprint(paths)}")
    return Source(
        "imagefolder",
        names,
        _split_sets(pool, np.asarray(labels, np.int64), "imagefolder", fractions=fractions, seed=seed),
        notes,
    )


# one loader per source of core.registry.SOURCES (tests/test_sources.py checks)
_LOADERS: dict[str, Callable[..., Source]] = {
    "procedural": _procedural,
    "digits": _digits,
    "cifar100": _cifar100,
    "caltech101": lambda root, **kw: _caltech(root, which="caltech101", **kw),
    "caltech256": lambda root, **kw: _caltech(root, which="caltech256", **kw),
    "imagefolder": _imagefolder,
}


def load_source(
    name: str, *, root: str | os.PathLike | None = None, seed: int = 42, download: bool = False, **options
) -> Source:
    """Load a source by name (see SOURCES). ``root`` is the dataset folder for on-disk sources.

    options per source: procedural(n_concepts=48, per_class=(100, 20, 40), size=64);
    digits/caltech*/imagefolder(fractions=(0.7, 0.1, 0.2)); caltech256(include_clutter=False);
    cifar100(val_fraction=0.1). Empty class folders are skipped and listed in ``Source.notes``.
    """
    if not isinstance(name, str) or name not in _LOADERS:
        raise ValueError(f"unknown source {name!r}; expected one of {sorted(_LOADERS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    try:
        src = _LOADERS[name](root, seed=int(seed), download=bool(download), **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise TypeError(f"source {name!r}: {err}") from err
        raise
    for note in src.notes:
        warnings.warn(f"{name}: {note}", stacklevel=2)
    return src
