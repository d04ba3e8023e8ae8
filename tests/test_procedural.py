"""Built-in procedural concepts: deterministic per (seed, concept, instance), distinct per concept."""

from __future__ import annotations

import numpy as np
import pytest

from core.procedural import (
    COLOURS,
    DEFAULT_CONCEPTS,
    MAX_CONCEPTS,
    SHAPES,
    TEXTURES,
    concept_attributes,
    concept_names,
    hash_uniform,
    render,
)


def test_catalogue_has_at_least_48_distinct_concepts():
    names = concept_names(MAX_CONCEPTS)
    assert DEFAULT_CONCEPTS >= 48 and MAX_CONCEPTS == len(SHAPES) * len(COLOURS) * len(TEXTURES)
    assert len(set(names)) == MAX_CONCEPTS
    triples = {concept_attributes(c) for c in range(MAX_CONCEPTS)}
    assert len(triples) == MAX_CONCEPTS


def test_every_prefix_of_eight_mixes_shapes_and_colours():
    for start in range(0, 48, 8):
        attrs = [concept_attributes(c) for c in range(start, start + 8)]
        assert len({a[0] for a in attrs}) == 8
        assert len({a[1] for a in attrs}) >= 3


@pytest.mark.parametrize("bad", [0, MAX_CONCEPTS + 1, -3])
def test_concept_names_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="n_concepts"):
        concept_names(bad)


def test_render_is_deterministic_and_batch_independent(seed):
    c = np.array([0, 5, 17, 47, 100])
    i = np.array([0, 1, 2, 3, 4])
    a = render(c, i, size=48, seed=seed)
    b = render(c, i, size=48, seed=seed)
    assert a.dtype == np.uint8 and a.shape == (5, 48, 48, 3)
    np.testing.assert_array_equal(a, b)
    for k in range(5):
        np.testing.assert_array_equal(a[k], render(c[k : k + 1], i[k : k + 1], size=48, seed=seed)[0])
    assert not np.array_equal(a, render(c, i, size=48, seed=seed + 1))


def test_instances_vary_and_concepts_differ(seed):
    same = render(np.zeros(6, int), np.arange(6), size=32, seed=seed)
    assert len({im.tobytes() for im in same}) == 6  # instances differ
    concepts = render(np.arange(48), np.zeros(48, int), size=32, seed=seed)
    assert len({im.tobytes() for im in concepts}) == 48


def test_colour_attribute_is_visible(seed):
    """Pixels far from the background (the object) carry the concept's colour."""
    for c in range(8):
        _, colour, _ = concept_attributes(c)
        imgs = render(np.full(20, c), np.arange(20), size=64, seed=seed).astype(float) / 255
        target = np.array(COLOURS[colour])
        dist = np.linalg.norm(imgs - target, axis=-1)
        # a solid/striped/dotted object always has pixels within 0.25 of its colour; few backgrounds do
        hits = (dist < 0.25).mean(axis=(1, 2))
        assert np.median(hits) > 0.03, (c, colour, np.median(hits))


def test_hash_uniform_range_and_independence():
    keys = np.arange(1000, dtype=np.uint64)
    u = hash_uniform(7, keys, 4)
    assert u.shape == (1000, 4) and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.03
    np.testing.assert_array_equal(u[10:20], hash_uniform(7, keys[10:20], 4))


def test_render_validation():
    with pytest.raises(ValueError, match="concept ids"):
        render(np.array([MAX_CONCEPTS]), np.array([0]))
    with pytest.raises(ValueError, match="equal length"):
        render(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="size"):
        render(np.array([0]), np.array([0]), size=4)
    with pytest.raises(TypeError, match="concept"):
        concept_attributes("red")
    assert render(np.zeros(0, int), np.zeros(0, int), size=16).shape == (0, 16, 16, 3)
