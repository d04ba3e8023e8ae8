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
    SHIFT_DRAWS: dict[str, str]          how a shift is drawn: per features.mode (fixed per image | per pass)
    describe_shift(shift, mode) -> str   "A: <description>; fixed per image" (or "; redrawn on every pass")
    SPLITS: tuple[str, ...]              ("train", "val", "test")
    SPLIT_RULES: dict[str, str]          how sources are split (stratified | thesis); DEFAULT_SPLIT_RULE
    SYNTHETIC_IMAGES: dict[str, str]     synthetic domains' images: disjoint | shared (the thesis)
    DEFAULT_SPLIT_SIZES: dict[str, int]  images per concept and split of synthetic domains
    DEVICES: tuple[str, ...]             what ``device`` may name ("auto" = cuda > mps > cpu)
    FEATURE_MODES: dict[str, str]        features.mode: frozen (cached features) | finetune (end to end)
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
    "SHIFT_DRAWS",
    "describe_shift",
    "SPLITS",
    "SPLIT_RULES",
    "DEFAULT_SPLIT_RULE",
    "SYNTHETIC_IMAGES",
    "DEFAULT_SPLIT_SIZES",
    "DEVICES",
    "FEATURE_MODES",
]

# ---------------------------------------------------------------------------- domain shifts

# The thesis's three shifts (torchvision.transforms.v2; core.shifts). Fine-tuning redraws them on
# every pass, as the thesis did; with cached features each image gets one draw, fixed per image.
SHIFTS: dict[str, str] = {
    "none": "no shift",
    "A": "the thesis's A: greyscale + Gaussian noise (sigma 0.1)",
    "B": "the thesis's B: rotation up to 30 degrees + photometric distortion + Gaussian blur (kernel 3, sigma 0.1-2)",
    "C": (
        "the thesis's C: colour jitter (0.4, 0.4, 0.4, 0.1) + random erasing (p 0.5, 2-33 %, black) "
        "+ perspective (0.3, p 0.5)"
    ),
}
# how a shift is drawn: the suffix the dashboard and the results show after a shift's name
SHIFT_DRAWS: dict[str, str] = {
    "frozen": "fixed per image (one seeded draw, so cached features stay valid)",
    "finetune": "redrawn on every pass",
}


def describe_shift(shift: str, mode: str = "frozen") -> str:
    """A shift's name and description with how it is drawn under ``features.mode`` ``mode``."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {list(SHIFTS)}")
    if mode not in SHIFT_DRAWS:
        raise ValueError(f"unknown mode {mode!r}; expected one of {list(SHIFT_DRAWS)}")
    return "none" if shift == "none" else f"{shift}: {SHIFTS[shift]}; {SHIFT_DRAWS[mode]}"


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
            "resnet152", 2048, _IMAGENET_MEAN, _IMAGENET_STD, False, "needs cached weights (the thesis's CIFAR-100)"
        ),
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


# How images reach the heads (features.mode): the run's protocol.
FEATURE_MODES: dict[str, str] = {
    "frozen": "frozen features: the backbone's features are cached once, the heads train on them (fast)",
    "finetune": "fine-tuning: backbone + head trained end to end on augmented images (the thesis's protocol)",
}

# ---------------------------------------------------------------------------- splits and devices

SPLITS: tuple[str, ...] = ("train", "val", "test")
# How a source's images are split (domains.split_rule; core.imagesets). Procedural images are
# rendered per split and ignore it.
SPLIT_RULES: dict[str, str] = {
    "stratified": (
        "per class, seeded by the run: 70/10/20 train/val/test; CIFAR-100: its test set, 10 % of its "
        "training set as val"
    ),
    "thesis": (
        "the thesis's: a random 80/10/10 split with seed 42 (torch's random_split permutation); "
        "CIFAR-100: a random 80/20 train/val split of its training set, its test set; each synthetic "
        "domain splits its own images so, as in the thesis's code, with shared images one domain's "
        "test image can be another domain's training image"
    ),
}
DEFAULT_SPLIT_RULE = "stratified"
# Which images the domains of a synthetic world draw on (domains.synthetic.images; core.domain_splits)
SYNTHETIC_IMAGES: dict[str, str] = {
    "disjoint": "each domain gets its own images of a shared concept (dealt out; rendered anew for procedural)",
    "shared": "every domain draws on the same images of a concept (the thesis's condition)",
}
# images per concept and split for synthetic domains (also per class for plain procedural
# domains): enough for a 2-layer head on frozen features, small enough for the 3-minute CPU demo
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 60, "val": 15, "test": 30}
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
