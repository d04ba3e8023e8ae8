"""One loader per image source format, each returning a :class:`core.imagesets.Source`.

    LOADERS[name](root, *, seed, download, **options) -> Source    name: a key of core.registry.SOURCES
    check_root(name, root)                                          the layout only, nothing is read

Every loader but "procedural" takes ``split_rule`` (a key of core.registry.SPLIT_RULES):
"stratified" (default; ``fractions`` and ``seed``) or "thesis" (random 80/10/10 with seed 42 as
torch's random_split makes it; CIFAR-100 and split image folders: a random 80/20 train/val split
of the training images, their own test set). "caltech256" takes ``include_clutter`` (keep
257.clutter as the last class, as the thesis does; default False).

"procedural" (built-in concepts) and "digits" (sklearn's 8x8 handwriting) need no root;
"cifar100" reads torchvision's python pickles (through :func:`core.safeload.safe_unpickle`),
"caltech101"/"caltech256" and "imagefolder" scan class folders; the layout each expects is its
value in :data:`core.registry.SOURCES`. On-disk pools are keyed by a fingerprint of names, sizes
and mtimes, so a changed dataset gets new cached features. Nothing is downloaded unless
``download=True``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core import procedural
from core.imagesets import (
    DEFAULT_FRACTIONS,
    THESIS_VAL_FRACTION,
    ImageSet,
    Source,
    split_sets,
    stratified_split,
    thesis_split,
)
from core.pools import ArrayPool, FilePool, ProceduralPool
from core.registry import SOURCES, SPLIT_RULES, SPLITS
from core.safeload import safe_unpickle

__all__ = ["IMAGE_EXTENSIONS", "LOADERS", "check_root"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


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


def _check_rule(split_rule: str) -> str:
    if split_rule not in tuple(SPLIT_RULES):
        raise ValueError(f"unknown split rule {split_rule!r}; expected one of {list(SPLIT_RULES)}")
    return split_rule


def _train_val(y: np.ndarray, *, seed: int, val_fraction: float, split_rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and val within a training set with labels y (N,): stratified (val_fraction,
    seed) or the thesis's random 80/20 (seed 42, ``[int(0.8 N), rest]`` as its code passes them)."""
    if _check_rule(split_rule) == "thesis":
        tr, va = thesis_split(y.size, (1 - THESIS_VAL_FRACTION, THESIS_VAL_FRACTION), rest_to_last=True)
        return tr, va
    tv = stratified_split(y, fractions=(1 - val_fraction, val_fraction, 0.0), seed=seed)
    return tv["train"], tv["val"]


def _digits(root, *, seed: int, download: bool, fractions=DEFAULT_FRACTIONS, split_rule: str = "stratified") -> Source:
    from sklearn.datasets import load_digits

    d = load_digits()
    grey = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    pool = ArrayPool(np.repeat(grey[..., None], 3, axis=3), key="digits:sklearn")
    labels = d.target.astype(np.int64)
    sets = split_sets(pool, labels, "digits", fractions=fractions, seed=seed, rule=_check_rule(split_rule))
    return Source("digits", [str(k) for k in range(10)], sets)


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


def _cifar100(root, *, seed: int, download: bool, val_fraction: float = 0.1, split_rule: str = "stratified") -> Source:
    """CIFAR-100 in torchvision's python format; val is a stratified part of train (the thesis's
    rule: a random 20 %)."""
    _check_rule(split_rule)
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
    tr, va = _train_val(y, seed=seed, val_fraction=val_fraction, split_rule=split_rule)
    splits = {
        "train": ImageSet(train_pool, tr, y[tr], name="cifar100/train"),
        "val": ImageSet(train_pool, va, y[va], name="cifar100/val"),
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
    root,
    *,
    seed: int,
    download: bool,
    which: str,
    fractions=DEFAULT_FRACTIONS,
    include_clutter: bool = False,
    split_rule: str = "stratified",
) -> Source:
    """Caltech-101 (BACKGROUND_Google dropped) or Caltech-256 (257.clutter kept only with
    ``include_clutter``: then the last class, 256, as in torchvision's and the thesis's order)."""
    _check_rule(split_rule)
    if not isinstance(include_clutter, bool):
        raise TypeError(f"include_clutter must be a bool, got {include_clutter!r}")
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
    return Source(which, names, split_sets(pool, y, which, fractions=fractions, seed=seed, rule=split_rule), notes)


def _imagefolder(
    root, *, seed: int, download: bool, fractions=DEFAULT_FRACTIONS, split_rule: str = "stratified"
) -> Source:
    _check_rule(split_rule)
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
            tr, va = _train_val(y, seed=seed, val_fraction=0.1, split_rule=split_rule)
            splits["train"], splits["val"] = (items[tr], y[tr]), (items[va], y[va])
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
        split_sets(pool, np.asarray(labels, np.int64), "imagefolder", fractions=fractions, seed=seed, rule=split_rule),
        notes,
    )


# one loader per source of core.registry.SOURCES (tests/test_sources.py checks)
LOADERS: dict[str, Callable[..., Source]] = {
    "procedural": _procedural,
    "digits": _digits,
    "cifar100": _cifar100,
    "caltech101": lambda root, **kw: _caltech(root, which="caltech101", **kw),
    "caltech256": lambda root, **kw: _caltech(root, which="caltech256", **kw),
    "imagefolder": _imagefolder,
}
