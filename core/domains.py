"""Domains: a labelled source as is, or a synthetic domain over a base source, with a domain shift.

Public API (what the pipeline calls)::

    spec = DomainSpec(name="syn0", source="procedural", shift="A",
                      synthetic=taxonomy, synthetic_index=0, n_train=60, n_val=15, n_test=30)
    domains = build_domains([spec, ...], root=None, seed=42)   # -> list[Domain]
    d = domains[0]
    d.name, d.class_names                      # str, list[str] (K_a names)
    d.splits["train"|"val"|"test"]             # core.sources.ImageSet:
        len(s); s.labels (N,) int64; s.image(i) -> uint8 (H,W,3); s.images(idx, size) -> (imgs, ok); s.key
    d.concepts                                 # synthetic: frozenset of base concepts per class, else None
    d.concept_labels["train"]                  # synthetic: base concept (N,) of every image, else None
    d.key                                      # stable string naming the domain's exact pixels
    preview_grid(d, split="train", per_class=6) -> (uint8 (rows*size, per_class*size, 3), row names)

A synthetic domain takes class i = the set of base classes ("concepts")
``taxonomy.domains[a][i]``: its images are the base images of those concepts, relabelled i, and
its class name joins the concept names with "+". ``images`` says whether the domains share the
base images of a concept ("shared", the thesis's condition) or each draw their own ("disjoint":
procedural domains render fresh instances, over a real base a concept's images are dealt out to
the domains that hold it). ``split_rule`` says how sources are split ("stratified" or "thesis",
core.registry.SPLIT_RULES) and ``include_clutter`` keeps Caltech-256's clutter class (257 concepts,
as in the thesis). ``n_train/n_val/n_test`` are images per concept (synthetic) or a cap per
class (plain sources); None = the defaults below / all images. Shifts are seeded per image by
(seed, domain name, split, index). Numpy only at import time (shifts import torch on first use).
Which images each split gets, and the seeds: :mod:`core.domain_splits`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.config import default_domain_names
from core.domain_splits import plain_splits, procedural_splits, real_synthetic_splits, shifted, stable_int
from core.registry import (
    DEFAULT_SHIFTS,
    DEFAULT_SPLIT_RULE,
    DEFAULT_SPLIT_SIZES,
    SHIFTS,
    SOURCES,
    SPLIT_RULES,
    SPLITS,
    SYNTHETIC_IMAGES,
)
from core.sources import ImageSet, Source, load_source
from core.synthetic import SyntheticTaxonomy

__all__ = [
    "DomainSpec",
    "Domain",
    "DEFAULT_PER_CONCEPT",
    "build_domain",
    "build_domains",
    "build_synthetic_domains",
    "preview_grid",
    "synthetic_world",
    "domain_specs",
    "domains_from_config",
    "check_data",
]

# images per concept and split (train, val, test) for synthetic domains, also per class for plain
# procedural domains: core.registry.DEFAULT_SPLIT_SIZES
DEFAULT_PER_CONCEPT = tuple(DEFAULT_SPLIT_SIZES[s] for s in SPLITS)


@dataclass(frozen=True)
class DomainSpec:
    """One domain to build: a plain source, or class sets over a base source (synthetic)."""

    name: str
    source: str = "procedural"  # key of core.registry.SOURCES; the base for a synthetic domain
    shift: str = "none"  # a key of core.registry.SHIFTS
    root: str | None = None  # dataset folder for on-disk sources (overrides build_domains' root)
    synthetic: SyntheticTaxonomy | None = None  # ground-truth world; None = the source as is
    synthetic_index: int = 0  # which domain of the synthetic world this is
    n_train: int | None = None  # per concept (synthetic) or cap per class (plain); None = default
    n_val: int | None = None
    n_test: int | None = None
    images: str = "disjoint"  # synthetic: a key of core.registry.SYNTHETIC_IMAGES ("shared" = the thesis)
    split_rule: str = DEFAULT_SPLIT_RULE  # a key of core.registry.SPLIT_RULES
    include_clutter: bool = False  # caltech256: keep 257.clutter as its last class (the thesis does)

    def source_options(self) -> dict:
        """The options :func:`core.sources.load_source` gets for this domain's source."""
        if self.source == "procedural":
            return {}
        options: dict = {"split_rule": self.split_rule}
        if self.source == "caltech256":
            options["include_clutter"] = self.include_clutter
        return options


@dataclass(frozen=True, eq=False)
class Domain:
    """A built domain: class names, splits, and (synthetic) the concept ground truth."""

    name: str
    class_names: list[str]
    splits: dict[str, ImageSet]
    source: str
    shift: str
    concepts: list[frozenset[int]] | None = None
    concept_labels: dict[str, np.ndarray] | None = None

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """split -> labels (N,) int64."""
        return {s: self.splits[s].labels for s in SPLITS}

    @property
    def key(self) -> str:
        """Stable digest of the domain's pixels and labels (cache keys, run folders)."""
        h = hashlib.sha1(self.name.encode())
        for s in SPLITS:
            h.update(self.splits[s].key.encode())
            h.update(np.ascontiguousarray(self.splits[s].labels).tobytes())
        return h.hexdigest()[:16]


def _check_spec(spec: DomainSpec) -> None:
    if not isinstance(spec, DomainSpec):
        raise TypeError(f"expected a DomainSpec, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not spec.name.strip():
        raise ValueError(f"domain name must be a non-empty str, got {spec.name!r}")
    if spec.source not in SOURCES:
        raise ValueError(f"domain {spec.name!r}: unknown source {spec.source!r}; expected one of {sorted(SOURCES)}")
    if spec.shift not in tuple(SHIFTS):
        raise ValueError(f"domain {spec.name!r}: unknown shift {spec.shift!r}; expected one of {list(SHIFTS)}")
    if spec.images not in tuple(SYNTHETIC_IMAGES):
        raise ValueError(
            f"domain {spec.name!r}: unknown images {spec.images!r}; expected one of {list(SYNTHETIC_IMAGES)}"
        )
    if spec.split_rule not in tuple(SPLIT_RULES):
        raise ValueError(
            f"domain {spec.name!r}: unknown split_rule {spec.split_rule!r}; expected one of {list(SPLIT_RULES)}"
        )
    if not isinstance(spec.include_clutter, bool):
        raise TypeError(f"domain {spec.name!r}: include_clutter must be a bool, got {spec.include_clutter!r}")
    for field_name in ("n_train", "n_val", "n_test"):
        n = getattr(spec, field_name)
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
            raise ValueError(f"domain {spec.name!r}: {field_name} must be a non-negative int or None, got {n!r}")
    if spec.synthetic is not None:
        if not isinstance(spec.synthetic, SyntheticTaxonomy):
            raise TypeError(
                f"domain {spec.name!r}: synthetic must be a SyntheticTaxonomy, got {type(spec.synthetic).__name__}"
            )
        n_dom = len(spec.synthetic.domains)
        if not 0 <= spec.synthetic_index < n_dom:
            raise ValueError(
                f"domain {spec.name!r}: synthetic_index {spec.synthetic_index} out of range 0..{n_dom - 1}"
            )


def _counts(spec: DomainSpec, defaults: tuple[int | None, int | None, int | None]) -> dict[str, int | None]:
    given = (spec.n_train, spec.n_val, spec.n_test)
    return {s: (d if g is None else int(g)) for s, g, d in zip(SPLITS, given, defaults)}


def build_domain(spec: DomainSpec, *, root: str | None = None, seed: int = 42, base: Source | None = None) -> Domain:
    """Build one domain. ``base``: an already loaded source to reuse (build_domains shares them)."""
    _check_spec(spec)
    if spec.synthetic is None:
        domain = _source_domain(spec, root, seed, base)
    else:
        domain = _synthetic_domain(spec, root, seed, base)
    if len(domain.class_names) < 2:
        raise ValueError(f"domain {spec.name!r} has {len(domain.class_names)} class(es); at least 2 are needed")
    return domain


def _source_domain(spec: DomainSpec, root: str | None, seed: int, base: Source | None) -> Domain:
    """A source as is: its own classes; procedural ones rendered for this domain (own seed and
    counts), others capped per class."""
    if base is None:
        kwargs = {}
        if spec.source == "procedural":
            c = _counts(spec, DEFAULT_PER_CONCEPT)
            kwargs["per_class"] = (c["train"], c["val"], c["test"])
        base = load_source(
            spec.source,
            root=spec.root or root,
            seed=stable_int("src", seed, spec.name) if spec.source == "procedural" else seed,
            **kwargs,
            **spec.source_options(),
        )
    if spec.source != "procedural":
        splits = plain_splits(spec, base, seed, _counts(spec, (None, None, None)))
    else:
        splits = {s: shifted(base.splits[s], spec, s, seed) for s in SPLITS}
    return Domain(spec.name, list(base.class_names), splits, spec.source, spec.shift)


def _synthetic_domain(spec: DomainSpec, root: str | None, seed: int, base: Source | None) -> Domain:
    """Class i of the synthetic world's domain: the images of its base concepts, relabelled i."""
    tax = spec.synthetic
    classes = tax.domains[spec.synthetic_index]
    if spec.source == "procedural":
        from core import procedural

        if tax.n_concepts > procedural.MAX_CONCEPTS:
            raise ValueError(
                f"domain {spec.name!r}: n_concepts={tax.n_concepts} exceeds the "
                f"{procedural.MAX_CONCEPTS} procedural concepts"
            )
        concept_names = procedural.concept_names(tax.n_concepts)
        counts = _counts(spec, DEFAULT_PER_CONCEPT)
        splits, concept_labels = procedural_splits(spec, seed, classes, counts)
    else:
        if base is None:
            base = load_source(spec.source, root=spec.root or root, seed=seed, **spec.source_options())
        if tax.n_concepts > base.n_classes:
            raise ValueError(
                f"domain {spec.name!r}: the synthetic world has n_concepts={tax.n_concepts} but "
                f"base source {spec.source!r} has only {base.n_classes} classes"
            )
        concept_names = list(base.class_names)
        splits, concept_labels = real_synthetic_splits(spec, base, seed, _counts(spec, (None, None, None)))
    names = tax.class_names(concept_names)[spec.synthetic_index]
    return Domain(spec.name, names, splits, spec.source, spec.shift, list(classes), concept_labels)


def build_domains(specs: Sequence[DomainSpec], *, root: str | None = None, seed: int = 42) -> list[Domain]:
    """Build every spec; on-disk sources are loaded once and shared. Names must be unique."""
    specs = list(specs)
    names = [getattr(s, "name", None) for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
    if dupes:
        raise ValueError(f"domain names must be unique, repeated: {dupes}")
    loaded: dict[tuple, Source] = {}
    out = []
    for spec in specs:
        _check_spec(spec)
        base = None
        if spec.source != "procedural":
            where, options = spec.root or root, spec.source_options()
            key = (spec.source, where, tuple(sorted(options.items())))
            if key not in loaded:
                loaded[key] = load_source(spec.source, root=where, seed=seed, **options)
            base = loaded[key]
        out.append(build_domain(spec, root=root, seed=seed, base=base))
    return out


def build_synthetic_domains(
    taxonomy: SyntheticTaxonomy,
    *,
    base: str = "procedural",
    shifts: Sequence[str] = DEFAULT_SHIFTS,
    names: Sequence[str] | None = None,
    root: str | None = None,
    seed: int = 42,
    per_concept: tuple[int | None, int | None, int | None] = DEFAULT_PER_CONCEPT,
    images: str = "disjoint",
    split_rule: str = DEFAULT_SPLIT_RULE,
    include_clutter: bool = False,
) -> list[Domain]:
    """All domains of a synthetic world over one base source; shifts cycle over the domains.
    ``images``, ``split_rule``, ``include_clutter``: as the fields of :class:`DomainSpec`."""
    n = len(taxonomy.domains)
    names = list(names) if names is not None else default_domain_names(n)
    if len(names) != n:
        raise ValueError(f"need {n} domain names, got {len(names)}")
    if not shifts:
        raise ValueError("shifts must name at least one shift (use ('none',) for no shift)")
    specs = [
        DomainSpec(
            name=names[a],
            source=base,
            shift=shifts[a % len(shifts)],
            root=root,
            synthetic=taxonomy,
            synthetic_index=a,
            n_train=per_concept[0],
            n_val=per_concept[1],
            n_test=per_concept[2],
            images=images,
            split_rule=split_rule,
            include_clutter=include_clutter,
        )
        for a in range(n)
    ]
    return build_domains(specs, root=root, seed=seed)


def preview_grid(
    domain: Domain, *, split: str = "train", per_class: int = 6, max_classes: int = 12, size: int = 64, seed: int = 0
) -> tuple[np.ndarray, list[str]]:
    """Example images: one row per class (first ``max_classes``), ``per_class`` seeded picks each.

    Returns (uint8 (rows*size, per_class*size, 3), row names). Missing or unreadable images are
    mid-grey tiles. Shifts are applied, so the grid shows what the model sees.
    """
    if split not in domain.splits:
        raise ValueError(f"unknown split {split!r}; expected one of {list(domain.splits)}")
    if per_class < 1 or max_classes < 1:
        raise ValueError(f"per_class and max_classes must be >= 1, got {per_class} and {max_classes}")
    s = domain.splits[split]
    rows = min(max_classes, len(domain.class_names))
    grid = np.full((rows * size, per_class * size, 3), 128, dtype=np.uint8)
    for i in range(rows):
        idx = np.flatnonzero(s.labels == i)
        idx = idx[np.random.default_rng([seed, i]).permutation(idx.size)[:per_class]]
        if idx.size == 0:
            continue
        imgs, ok = s.images(idx, size)
        for j, (img, good) in enumerate(zip(imgs, ok)):
            if good:
                grid[i * size : (i + 1) * size, j * size : (j + 1) * size] = img
    return grid, list(domain.class_names[:rows])


# ---------------------------------------------------------------------------- from a run config


def synthetic_world(cfg) -> SyntheticTaxonomy | None:
    """The synthetic taxonomy a config's ``domains.synthetic`` section describes, or None."""
    s = cfg.domains.synthetic
    if s is None:
        return None
    from core.synthetic import make_synthetic_taxonomy

    return make_synthetic_taxonomy(
        s.n_concepts, s.n_domains, s.concepts_mean, s.concepts_var, s.class_size_mean, s.class_size_var, seed=cfg.seed
    )


def domain_specs(cfg) -> list[DomainSpec]:
    """One :class:`DomainSpec` per domain of a run config (``core.config.RunConfig``): the
    synthetic domains first, then the listed ones."""
    d = cfg.domains
    sizes = {"n_train": d.n_train, "n_val": d.n_val, "n_test": d.n_test}
    sizes |= {"split_rule": d.split_rule, "include_clutter": d.include_clutter}  # how sources load
    specs = []
    s = cfg.domains.synthetic
    if s is not None:
        world = synthetic_world(cfg)
        names = list(s.names) if s.names else default_domain_names(s.n_domains)
        specs += [
            DomainSpec(
                name=names[a],
                source=s.base,
                shift=s.shifts[a % len(s.shifts)],
                synthetic=world,
                synthetic_index=a,
                root=cfg.data_root,
                images=s.images,
                **sizes,
            )
            for a in range(s.n_domains)
        ]
    specs += [
        DomainSpec(name=d.name, source=d.source, shift=d.shift, root=d.root or cfg.data_root, **sizes)
        for d in cfg.domains.list
    ]
    return specs


def domains_from_config(cfg) -> list[Domain]:
    """The domains a run config describes, built deterministically (same images, same labels
    every time: a run's domains are rebuilt from its config to show its images)."""
    return build_domains(domain_specs(cfg), root=cfg.data_root, seed=cfg.seed)


def check_data(cfg) -> None:
    """Check, cheaply and before any work, that every dataset a run config names is on disk
    (folders and files are looked up, nothing is read); ValueError naming the domain and the
    layout expected."""
    from core.sources import check_root

    wanted = []
    if cfg.domains.synthetic is not None:
        wanted.append(("synthetic domains", cfg.domains.synthetic.base, cfg.data_root))
    wanted += [(d.name, d.source, d.root or cfg.data_root) for d in cfg.domains.list]
    for name, source, root in wanted:
        try:
            check_root(source, root)
        except ValueError as exc:
            raise ValueError(f"domains: {name}: {exc}") from None
