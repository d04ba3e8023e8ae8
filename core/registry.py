"""The engine's vocabularies, each defined once: the names a config may use, with a note each.

Standard library only (no numpy, torch or PIL), so that the config validation, the CLI help and
the pages read them without loading the engine. The modules that implement a vocabulary key
their implementations by it (core.shifts, core.sources, core.backbones) and tests check that
the two agree; selection methods live with their code in ``core.selection.METHODS``.

    SHIFTS: dict[str, str]               domain shift -> what it does to an image
    DEFAULT_SHIFTS: tuple[str, ...]      shifts of the synthetic domains, cycled (the thesis's A, B, C)
    SOURCES: dict[str, str]              image source -> the layout it expects on disk
    SYNTHETIC_BASES: tuple[str, ...]     the sources a synthetic world can draw its concepts from
    BACKBONES: dict[str, BackboneInfo]   known backbones (width, normalisation, offline?, note)
    DEFAULT_BACKBONE: str                the one that works offline
    is_model_name(name) -> bool          whether a name is spelled like a timm / torchvision model
    SPLITS: tuple[str, ...]              ("train", "val", "test")
    DEFAULT_SPLIT_SIZES: dict[str, int]  images per concept and split of synthetic domains
    DEVICES: tuple[str, ...]             what ``device`` may name ("auto" = cuda > mps > cpu)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SHIFTS",
    "DEFAULT_SHIFTS",
    "SOURCES",
    "SYNTHETIC_BASES",
    "BackboneInfo",
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "is_model_name",
    "SPLITS",
    "DEFAULT_SPLIT_SIZES",
    "DEVICES",
]

# ---------------------------------------------------------------------------- domain shifts

SHIFTS: dict[str, str] = {
    "none": "no shift",
    "A": "noisy greyscale",
    "B": "rotation + blur",
    "C": "random erasing + colour jitter + perspective",
}
DEFAULT_SHIFTS: tuple[str, ...] = ("A", "B", "C")

# ---------------------------------------------------------------------------- image sources

SOURCES: dict[str, str] = {
    "procedural": "built in (no files): shape x colour x texture concepts",
    "digits": "built in (ships with scikit-learn): 8x8 handwritten digits",
    "cifar100": "<root>/cifar-100-python/{train,test,meta} (torchvision's python pickle format)",
    "caltech101": "<root>/101_ObjectCategories/<class>/image_0001.jpg (or <root>/caltech101/101_ObjectCategories)",
    "caltech256": "<root>/256_ObjectCategories/001.ak47/001_0001.jpg (or <root>/caltech256/256_ObjectCategories)",
    "imagefolder": "<root>/<class>/*.jpg, or <root>/{train,val,test}/<class>/*.jpg",
}
SYNTHETIC_BASES: tuple[str, ...] = ("procedural", "digits", "cifar100", "caltech256")

# ---------------------------------------------------------------------------- backbones

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneInfo:
    """What is known of a backbone before loading it: feature width and input normalisation."""

    name: str
    dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    offline: bool  # weights available without network
    note: str = ""


DEFAULT_BACKBONE = "efficientnet_lite0"
BACKBONES: dict[str, BackboneInfo] = {
    info.name: info
    for info in (
        BackboneInfo(
            "efficientnet_lite0",
            1280,
            (0.5, 0.5, 0.5),
            (0.5, 0.5, 0.5),
            True,
            "works offline: ImageNet weights ship with pip",
        ),
        BackboneInfo("resnet18", 512, _IMAGENET_MEAN, _IMAGENET_STD, False, "needs cached weights or a download"),
        BackboneInfo("resnet50", 2048, _IMAGENET_MEAN, _IMAGENET_STD, False, "needs cached weights or a download"),
        BackboneInfo(
            "efficientnet_b0", 1280, _IMAGENET_MEAN, _IMAGENET_STD, False, "needs cached weights or a download"
        ),
        BackboneInfo("convnext_tiny", 768, _IMAGENET_MEAN, _IMAGENET_STD, False, "needs cached weights or a download"),
    )
}

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def is_model_name(name: object) -> bool:
    """Whether ``name`` is a known backbone or spelled like a timm / torchvision model name
    (letters, digits, ``_ . -``): core.backbones.load_backbone tries any such name."""
    return isinstance(name, str) and (name in BACKBONES or _MODEL_NAME.fullmatch(name) is not None)


# ---------------------------------------------------------------------------- splits and devices

SPLITS: tuple[str, ...] = ("train", "val", "test")
# images per concept and split for synthetic domains (also per class for plain procedural
# domains): enough for a 2-layer head on frozen features, small enough for the 3-minute CPU demo
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 60, "val": 15, "test": 30}
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
