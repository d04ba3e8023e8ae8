"""The thesis's four synthetic variants, its split and its clutter class, on tiny fake datasets.

Fake Caltech-256 / CIFAR-100 folders in the exact on-disk formats are written to a temporary
folder; nothing reads real datasets. The variants' statistics are compared with a sampler written
from the thesis's description (rounded truncated normals, as its method chapter states; drawn here
by rejection, independently of core.synthetic's inverse-CDF draw).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.config import ConfigError, config_from_dict, load_config
from core.config_io import read_config_file
from core.domains import DomainSpec, build_domains, build_synthetic_domains, domains_from_config, synthetic_world
from core.imagesets import thesis_split
from core.registry import SPLIT_RULES, SYNTHETIC_IMAGES
from core.sources import load_source
from core.synthetic import make_synthetic_taxonomy
from tests.test_sources import _write_cifar

CONFIGS = Path(__file__).resolve().parent.parent / "assets" / "configs"
# (config, base, concepts, domains, concepts per domain mean/var, concepts per class mean/var)
VARIANTS = [
    ("thesis-variant1-caltech256.yaml", "caltech256", 257, 2, 180, 10, 3, 1),
    ("thesis-variant2-caltech256.yaml", "caltech256", 257, 2, 200, 10, 2, 1),
    ("thesis-variant3-caltech256.yaml", "caltech256", 257, 3, 180, 10, 5, 1),
    ("thesis-variant4-cifar100.yaml", "cifar100", 100, 2, 50, 5, 3, 1),
]
PER_CLASS = 6  # images per fake Caltech-256 class


@pytest.fixture(scope="module")
def caltech256(tmp_path_factory) -> Path:
    """A fake Caltech-256: 257 class folders 001.c001 ... 256.c256 and 257.clutter, 6 JPEGs each."""
    root = tmp_path_factory.mktemp("caltech")
    folder = root / "256_ObjectCategories"
    for k in range(1, 258):
        d = folder / ("257.clutter" if k == 257 else f"{k:03d}.c{k:03d}")
        d.mkdir(parents=True)
        for j in range(1, PER_CLASS + 1):
            Image.new("RGB", (8, 8), (k % 256, j * 30, 7)).save(d / f"{k:03d}_{j:04d}.jpg", "JPEG")
    return root


def _config(name: str, data_root: Path, **domains) -> object:
    data = read_config_file(CONFIGS / name)
    data["data_root"] = str(data_root)
    data["features"]["mode"] = "frozen"  # nothing here fine-tunes; the domains are the same
    syn = domains.pop("synthetic", {})
    data["domains"]["synthetic"].update(syn)
    data["domains"].update(domains)
    return config_from_dict(data)


def _items_by_concept(domain) -> dict[int, set[int]]:
    """concept -> the pool items of all its images in this domain (every split)."""
    out: dict[int, set[int]] = {}
    for s, imgs in domain.splits.items():
        for item, c in zip(imgs.items.tolist(), domain.concept_labels[s].tolist()):
            out.setdefault(c, set()).add(item)
    return out


# ---------------------------------------------------------------------------- the configs


@pytest.mark.parametrize(("name", "base", "n", "d", "cm", "cv", "sm", "sv"), VARIANTS)
def test_configs_are_the_thesis_variants(name, base, n, d, cm, cv, sm, sv):
    cfg = load_config(CONFIGS / name)
    s = cfg.domains.synthetic
    assert (s.base, s.n_concepts, s.n_domains) == (base, n, d)
    assert (s.concepts_mean, s.concepts_var, s.class_size_mean, s.class_size_var) == (cm, cv, sm, sv)
    assert s.images == "shared" and cfg.domains.split_rule == "thesis"
    assert cfg.domains.include_clutter == (base == "caltech256")
    assert cfg.seed == 42 and cfg.features.mode == "finetune"
    assert not (CONFIGS / "synthetic-caltech256.yaml").exists()  # the misnamed configs are gone
    assert not (CONFIGS / "synthetic-cifar100.yaml").exists()


def test_defaults_stay_stratified_and_disjoint():
    cfg = config_from_dict({})
    assert cfg.domains.split_rule == "stratified" and cfg.domains.synthetic.images == "disjoint"
    assert not cfg.domains.include_clutter
    assert set(SPLIT_RULES) == {"stratified", "thesis"} and set(SYNTHETIC_IMAGES) == {"shared", "disjoint"}
    with pytest.raises(ConfigError, match=r"^domains\.split_rule: must be one of \['stratified', 'thesis'\]"):
        config_from_dict({"domains": {"split_rule": "random"}})
    with pytest.raises(ConfigError, match=r"^domains\.synthetic\.images: must be one of"):
        config_from_dict({"domains": {"synthetic": {"images": "both"}}})
    with pytest.raises(ConfigError, match=r"^domains\.include_clutter: .*n_concepts=257 needs include_clutter"):
        config_from_dict({"domains": {"synthetic": {"base": "caltech256", "n_concepts": 257, "concepts_mean": 180}}})


# ---------------------------------------------------------------------------- the variants' statistics


def _thesis_sampler(n, d, cm, cv, sm, sv, seed):
    """The thesis's domain generation as its method chapter states it: l ~ round(TruncNorm(cm, cv,
    1, n)) concepts, then classes of round(TruncNorm(sm, sv, 1, |pool|)) (1 for the last concept)."""
    rng = np.random.default_rng(seed)

    def draw(mean, var, low, high):  # TruncNorm(mean, var, low, high) by rejection, rounded
        while True:
            x = rng.normal(mean, np.sqrt(var))
            if low <= x <= high:
                return int(np.round(x))

    domains = []
    for _ in range(d):
        pool = set(rng.choice(n, size=draw(cm, cv, 1, n), replace=False).tolist())
        classes = []
        while pool:
            size = 1 if len(pool) == 1 else draw(sm, sv, 1, len(pool))
            cls = set(rng.choice(sorted(pool), size=size, replace=False).tolist())
            classes.append(cls)
            pool -= cls
        domains.append(classes)
    return domains


def _stats(worlds) -> dict[str, np.ndarray]:
    per_domain = [sum(len(c) for c in dom) for w in worlds for dom in w]
    classes = [len(dom) for w in worlds for dom in w]
    sizes = [len(c) for w in worlds for dom in w for c in dom]
    return {"concepts": np.array(per_domain), "classes": np.array(classes), "sizes": np.array(sizes)}


@pytest.mark.parametrize(("name", "base", "n", "d", "cm", "cv", "sm", "sv"), VARIANTS)
def test_variant_statistics_match_the_thesis_over_seeds(name, base, n, d, cm, cv, sm, sv):
    data = read_config_file(CONFIGS / name)
    ours = []
    for seed in range(30):
        world = synthetic_world(config_from_dict({**data, "seed": seed}))
        assert world.n_concepts == n and len(world.domains) == d
        for dom in world.domains:  # classes within a domain are disjoint sets of concepts
            flat = [c for cls in dom for c in cls]
            assert len(flat) == len(set(flat)) and max(flat) < n
        ours.append(world.domains)
    ref = _stats([_thesis_sampler(n, d, cm, cv, sm, sv, seed) for seed in range(30)])
    got = _stats(ours)
    # concepts per domain: the configured mean and variance (rounding adds ~1/12)
    assert abs(got["concepts"].mean() - cm) < 1.5 and 0.4 * cv < got["concepts"].var() < 1.8 * cv
    assert abs(got["concepts"].mean() - ref["concepts"].mean()) < 2.0
    # concepts per class and classes per domain: as the thesis's sampler gives them
    assert abs(got["sizes"].mean() - ref["sizes"].mean()) < 0.12
    assert abs(got["sizes"].var() - ref["sizes"].var()) < 0.25
    assert abs(got["sizes"].mean() - sm) < 0.35  # truncation at 1 lifts a mean of 2 to ~2.3
    assert abs(got["classes"].mean() - ref["classes"].mean()) < 0.06 * ref["classes"].mean()


# ---------------------------------------------------------------------------- shared images, clutter, splits


def test_shared_images_every_domain_draws_on_one_pool(caltech256):
    cfg = _config("thesis-variant1-caltech256.yaml", caltech256)
    doms = domains_from_config(cfg)
    assert len(doms) == 2
    pools = {imgs.pool.key for d in doms for imgs in d.splits.values()}
    assert len(pools) == 1  # one pool of images for every domain and split
    a, b = (_items_by_concept(d) for d in doms)
    common = set(a) & set(b)
    assert len(common) > 80  # ~180 of 257 concepts each: many shared
    for c in common:
        assert a[c] == b[c]  # the same images of a shared concept in both domains
        assert len(a[c]) == PER_CLASS  # all of them


def test_disjoint_images_is_an_option(caltech256):
    cfg = _config("thesis-variant1-caltech256.yaml", caltech256, synthetic={"images": "disjoint"})
    a, b = (_items_by_concept(d) for d in domains_from_config(cfg))
    common = set(a) & set(b)
    assert common and all(not (a[c] & b[c]) for c in common)
    assert all(len(a[c]) + len(b[c]) == PER_CLASS for c in common)  # dealt out, none lost


def test_clutter_is_the_257th_concept(caltech256):
    src = load_source("caltech256", root=caltech256, include_clutter=True)
    assert src.n_classes == 257 and src.class_names[256] == "clutter" and src.class_names[0] == "c001"
    assert load_source("caltech256", root=caltech256).n_classes == 256  # dropped by default
    cfg = _config("thesis-variant1-caltech256.yaml", caltech256)
    doms = domains_from_config(cfg)
    world = synthetic_world(cfg)
    holders = [a for a, dom in enumerate(world.domains) if any(256 in cls for cls in dom)]
    assert holders  # with seed 42 the clutter concept is drawn
    for a in holders:
        i = next(i for i, cls in enumerate(world.domains[a]) if 256 in cls)
        assert "clutter" in doms[a].class_names[i].split("+")
    spec = DomainSpec("x", source="caltech256", synthetic=world, synthetic_index=0, root=str(caltech256))
    with pytest.raises(ValueError, match="n_concepts=257 but base source 'caltech256' has only 256 classes"):
        build_domains([spec], seed=42)


def test_thesis_split_is_torchs_random_split_80_10_10_seed_42(caltech256):
    src = load_source("caltech256", root=caltech256, include_clutter=True, split_rule="thesis", seed=7)
    n = 257 * PER_CLASS
    sizes = [len(src.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == n and sizes == [1234, 154, 154]  # floor(0.8 n) + remainder, 0.1 n, 0.1 n
    ref = torch.utils.data.random_split(range(n), [0.8, 0.1, 0.1], generator=torch.Generator().manual_seed(42))
    for s, part in zip(("train", "val", "test"), ref):
        np.testing.assert_array_equal(src.splits[s].items, np.sort(part.indices))
    # the run's seed does not move it; the stratified default (70/10/20 per class) does differ
    again = load_source("caltech256", root=caltech256, include_clutter=True, split_rule="thesis", seed=8)
    np.testing.assert_array_equal(again.splits["test"].items, src.splits["test"].items)
    strat = load_source("caltech256", root=caltech256, include_clutter=True)
    assert [len(strat.splits[s]) for s in ("train", "val", "test")] == [257 * 4, 257, 257]
    with pytest.raises(ValueError, match="unknown split rule 'random'"):
        load_source("caltech256", root=caltech256, split_rule="random")


def test_thesis_split_of_cifar100_is_80_20_of_train_plus_the_test_set(tmp_path):
    names = [f"k{i}" for i in range(5)]
    _write_cifar(tmp_path, names, n_train=7, n_test=3, seed=1)  # 35 training, 15 test images
    src = load_source("cifar100", root=tmp_path, split_rule="thesis")
    assert [len(src.splits[s]) for s in ("train", "val", "test")] == [28, 7, 15]
    tr, va = torch.utils.data.random_split(range(35), [28, 7], generator=torch.Generator().manual_seed(42))
    np.testing.assert_array_equal(src.splits["train"].items, np.sort(tr.indices))
    np.testing.assert_array_equal(src.splits["val"].items, np.sort(va.indices))
    np.testing.assert_array_equal(src.splits["test"].items, np.arange(15))
    default = load_source("cifar100", root=tmp_path)  # stratified: one image per class as val
    assert len(default.splits["val"]) == 5


def test_each_synthetic_domain_splits_its_own_images_as_the_thesis(caltech256):
    cfg = _config("thesis-variant1-caltech256.yaml", caltech256)
    doms = domains_from_config(cfg)
    for d in doms:
        n = sum(len(x) for x in d.splits.values())
        assert n == PER_CLASS * sum(len(c) for c in d.concepts)  # every image of its concepts
        assert [len(d.splits[s]) for s in ("train", "val", "test")] == [len(p) for p in thesis_split(n)]
        assert np.isclose(len(d.splits["train"]) / n, 0.8, atol=0.01)
    # the thesis's consequence: a test image of one domain can train the other domain's model
    test0 = set(doms[0].splits["test"].items.tolist())
    assert test0 & set(doms[1].splits["train"].items.tolist())
    # the stratified rule splits the source once: no image is in one domain's test and another's train
    strat = domains_from_config(_config("thesis-variant1-caltech256.yaml", caltech256, split_rule="stratified"))
    assert not set(strat[0].splits["test"].items.tolist()) & set(strat[1].splits["train"].items.tolist())
    a, b = (_items_by_concept(d) for d in strat)
    assert all(a[c] == b[c] for c in set(a) & set(b))  # still shared


def test_cifar100_variant_keeps_the_test_set_and_splits_train_80_20(tmp_path):
    _write_cifar(tmp_path, [f"k{i}" for i in range(100)], n_train=5, n_test=2, seed=3)
    cfg = _config("thesis-variant4-cifar100.yaml", tmp_path)
    doms = domains_from_config(cfg)
    for d in doms:
        k = sum(len(c) for c in d.concepts)
        trainval = len(d.splits["train"]) + len(d.splits["val"])
        assert trainval == 5 * k and len(d.splits["train"]) == int(0.8 * trainval)
        assert len(d.splits["test"]) == 2 * k
        assert set(d.concept_labels["test"].tolist()) == set().union(*d.concepts)
    a, b = (_items_by_concept(d) for d in doms)
    assert all(a[c] == b[c] for c in set(a) & set(b))


def test_procedural_domains_share_rendered_images_when_asked(seed):
    world = make_synthetic_taxonomy(12, 2, 9.0, 0.5, 2.0, 0.5, seed=seed)
    shared = build_synthetic_domains(world, shifts=("none",), seed=seed, per_concept=(3, 1, 1), images="shared")
    own = build_synthetic_domains(world, shifts=("none",), seed=seed, per_concept=(3, 1, 1))
    assert shared[0].splits["train"].pool.key == shared[1].splits["train"].pool.key
    assert own[0].splits["train"].pool.key != own[1].splits["train"].pool.key
    a, b = (_items_by_concept(d) for d in shared)
    assert set(a) & set(b) and all(a[c] == b[c] for c in set(a) & set(b))
    c = min(set(a) & set(b))  # same concept, same instance: the same pixels in both domains
    i0 = int(np.flatnonzero(shared[0].concept_labels["train"] == c)[0])
    i1 = int(np.flatnonzero(shared[1].concept_labels["train"] == c)[0])
    np.testing.assert_array_equal(shared[0].splits["train"].image(i0), shared[1].splits["train"].image(i1))
    with pytest.raises(ValueError, match="unknown images 'both'"):
        build_synthetic_domains(world, shifts=("none",), seed=seed, images="both")
    with pytest.raises(ValueError, match="unknown split_rule 'random'"):
        build_synthetic_domains(world, shifts=("none",), seed=seed, split_rule="random")


def test_thesis_split_refuses_bad_arguments():
    from core.imagesets import split_sets
    from core.pools import ArrayPool

    with pytest.raises(ValueError, match="n must be a non-negative int, got -1"):
        thesis_split(-1)
    with pytest.raises(ValueError, match=r"fractions must be non-negative numbers summing to 1, got \(0.8, 0.1\)"):
        thesis_split(10, (0.8, 0.1))
    pool = ArrayPool(np.zeros((4, 2, 2, 3), np.uint8), key="t")
    with pytest.raises(ValueError, match="unknown split rule 'halves'"):
        split_sets(pool, np.arange(4), "t", fractions=(0.7, 0.1, 0.2), seed=0, rule="halves")
    assert [p.tolist() for p in thesis_split(0)] == [[], [], []]
