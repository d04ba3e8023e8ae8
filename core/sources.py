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

This module is the entry point; the parts live in :mod:`core.pools` (where pixels come from, image
decoding), :mod:`core.imagesets` (ImageSet, Source, the stratified split) and :mod:`core.loaders`
(one loader per format, registered in ``LOADERS``); their public names import from here.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from core.imagesets import DEFAULT_FRACTIONS as DEFAULT_FRACTIONS  # still importable from here
from core.imagesets import SHIFT_VERSION as SHIFT_VERSION
from core.imagesets import ImageSet, Source, stratified_split
from core.loaders import IMAGE_EXTENSIONS, LOADERS, check_root
from core.pools import ArrayPool, FilePool, ProceduralPool, decode_image
from core.registry import SOURCES, SPLITS

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


def load_source(
    name: str, *, root: str | os.PathLike | None = None, seed: int = 42, download: bool = False, **options
) -> Source:
    """Load a source by name (see SOURCES). ``root`` is the dataset folder for on-disk sources.

    options per source: procedural(n_concepts=48, per_class=(100, 20, 40), size=64);
    digits/caltech*/imagefolder(fractions=(0.7, 0.1, 0.2)); caltech256(include_clutter=False);
    cifar100(val_fraction=0.1). Empty class folders are skipped and listed in ``Source.notes``.
    """
    if not isinstance(name, str) or name not in LOADERS:
        raise ValueError(f"unknown source {name!r}; expected one of {sorted(LOADERS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    try:
        src = LOADERS[name](root, seed=int(seed), download=bool(download), **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise TypeError(f"source {name!r}: {err}") from err
        raise
    for note in src.notes:
        warnings.warn(f"{name}: {note}", stacklevel=2)
    return src
