"""Domains: plain sources, synthetic domains over procedural and real bases, previews, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from core.domains import DomainSpec, build_domain, build_domains, build_synthetic_domains, preview_grid
from core.procedural import concept_names
from core.synthetic import SyntheticTaxonomy, make_synthetic_taxonomy


@pytest.fixture
def world(seed):
    return make_synthetic_taxonomy(10, 3, 6.0, 1.0, 1.6, 0.5, seed=seed)


def test_synthetic_procedural_domains_follow_the_ground_truth(world, seed):
    doms = build_synthetic_domains(world, shifts=("none",), seed=seed, per_concept=(3, 1, 2))
    names = concept_names(10)
    for a, d in enumerate(doms):
        assert d.concepts == list(world.domains[a])
        assert d.class_names == ["+".join(names[c] for c in sorted(cls)) for cls in world.domains[a]]
        for s, n in (("train", 3), ("val", 1), ("test", 2)):
            labels, concepts = d.splits[s].labels, d.concept_labels[s]
            assert len(d.splits[s]) == n * sum(len(c) for c in world.domains[a])
            for lab, con in zip(labels, concepts):
                assert con in world.domains[a][lab]


def test_domains_draw_their_own_instances(world, seed):
    doms = build_synthetic_domains(world, shifts=("none",), seed=seed, per_concept=(2, 1, 1))
    shared = set(doms[0].concept_labels["train"]) & set(doms[1].concept_labels["train"])
    assert shared, "fixture world should share a concept between domains 0 and 1"
    c = min(shared)
    i0 = int(np.flatnonzero(doms[0].concept_labels["train"] == c)[0])
    i1 = int(np.flatnonzero(doms[1].concept_labels["train"] == c)[0])
    assert not np.array_equal(doms[0].splits["train"].image(i0), doms[1].splits["train"].image(i1))
    again = build_synthetic_domains(world, shifts=("none",), seed=seed, per_concept=(2, 1, 1))
    assert [d.key for d in again] == [d.key for d in doms]
    np.testing.assert_array_equal(again[0].splits["train"].image(i0), doms[0].splits["train"].image(i0))


def test_synthetic_over_digits_deals_images_disjointly(seed):
    world = make_synthetic_taxonomy(10, 2, 8.0, 0.5, 2.0, 0.5, seed=seed)
    doms = build_synthetic_domains(world, base="digits", shifts=("none",), seed=seed, per_concept=(None, None, None))
    a, b = (set(d.splits["train"].items.tolist()) for d in doms)
    assert not a & b
    for d in doms:
        assert len(d.class_names) == len(d.concepts) >= 2
        pool_labels = d.concept_labels["train"]
        assert set(pool_labels.tolist()) == set().union(*d.concepts)


def test_shift_is_applied_and_seeded_per_domain(world, seed):
    a = build_synthetic_domains(world, shifts=("A",), seed=seed, per_concept=(2, 1, 1))[0]
    img = a.splits["train"].image(0).astype(float)
    # greyscale, then independent noise per channel (sigma 0.1): channels agree up to the noise
    assert abs((img[..., 0] - img[..., 1]).mean()) < 4 and 15 < (img[..., 0] - img[..., 1]).std() < 45
    grid, rows = preview_grid(a, per_class=3, max_classes=2, size=32)
    assert grid.shape == (64, 96, 3) and rows == a.class_names[:2]
    assert abs((grid[..., 0].astype(float) - grid[..., 2]).mean()) < 4


def test_plain_sources_with_caps(seed):
    digits, proc = build_domains(
        [
            DomainSpec("dig", source="digits", n_train=5, n_val=2, n_test=3),
            DomainSpec("proc", n_train=4, n_val=1, n_test=2),
        ],
        seed=seed,
    )
    assert np.bincount(digits.splits["train"].labels).tolist() == [5] * 10
    assert len(proc.class_names) == 48 and len(proc.splits["train"]) == 4 * 48
    assert digits.concepts is None and digits.concept_labels is None


def test_bad_specs(world, tmp_path):
    with pytest.raises(ValueError, match="unknown shift 'Z'"):
        build_domain(DomainSpec("x", shift="Z"))
    with pytest.raises(ValueError, match="unknown source 'mnist'"):
        build_domain(DomainSpec("x", source="mnist"))
    with pytest.raises(ValueError, match="unique"):
        build_domains([DomainSpec("x"), DomainSpec("x")])
    with pytest.raises(ValueError, match="synthetic_index 5"):
        build_domain(DomainSpec("x", synthetic=world, synthetic_index=5))
    one_class = SyntheticTaxonomy(n_concepts=3, domains=[[frozenset({0, 1})], [frozenset({1}), frozenset({2})]])
    with pytest.raises(ValueError, match="1 class"):
        build_domain(DomainSpec("solo", synthetic=one_class, synthetic_index=0))
    big = make_synthetic_taxonomy(20, 2, 10.0, 1.0, 2.0, 0.5, seed=1)
    with pytest.raises(ValueError, match="only 10 classes"):
        build_domain(DomainSpec("d", source="digits", synthetic=big))
    (tmp_path / "only" / "a").mkdir(parents=True)
    from PIL import Image

    for k in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "only" / "a" / f"{k}.png")
    with pytest.raises(ValueError, match="at least 2"):
        build_domain(DomainSpec("one", source="imagefolder", root=str(tmp_path / "only")))
    with pytest.raises(ValueError, match="n_train"):
        build_domain(DomainSpec("x", n_train=-1))


def test_a_domain_with_one_class_is_refused():
    world = SyntheticTaxonomy(3, [[frozenset({0, 1, 2})], [frozenset({0}), frozenset({1, 2})]])
    with pytest.raises(ValueError, match=r"domain 'solo' has 1 class\(es\); at least 2 are needed"):
        build_domain(DomainSpec(name="solo", synthetic=world, synthetic_index=0), seed=0)
    pair = build_domain(DomainSpec(name="pair", synthetic=world, synthetic_index=1), seed=0)
    assert len(pair.class_names) == 2


def test_default_split_sizes_are_the_configs():
    import dataclasses

    from core.config import DomainsConfig
    from core.domains import DEFAULT_PER_CONCEPT
    from core.registry import DEFAULT_SPLIT_SIZES, SPLITS

    defaults = {f.name: f.default for f in dataclasses.fields(DomainsConfig)}
    assert tuple(defaults[f"n_{s}"] for s in SPLITS) == DEFAULT_PER_CONCEPT
    assert DEFAULT_PER_CONCEPT == tuple(DEFAULT_SPLIT_SIZES[s] for s in SPLITS)
