import numpy as np
import pytest

from core.crossdomain import normalize_rows
from core.metrics import relationship_scores
from core.selection import select_relationships
from core.synthetic import SyntheticTaxonomy, make_synthetic_taxonomy, sample_cross_counts


@pytest.fixture
def world(seed):
    return make_synthetic_taxonomy(60, 3, 30, 16, 2, 1, seed=seed)


def test_same_seed_same_world_other_seed_other_world(world, seed):
    again = make_synthetic_taxonomy(60, 3, 30, 16, 2, 1, seed=seed)
    assert again.domains == world.domains
    other = make_synthetic_taxonomy(60, 3, 30, 16, 2, 1, seed=seed + 1)
    assert other.domains != world.domains


def test_classes_partition_distinct_concepts(world):
    for dom in world.domains:
        concepts = [k for c in dom for k in c]
        assert len(concepts) == len(set(concepts))  # classes of a domain are disjoint
        assert all(len(c) >= 1 for c in dom)
        assert all(0 <= k < 60 for k in concepts)


def test_overlap_and_true_relationships_by_hand():
    tax = SyntheticTaxonomy(
        4, [[frozenset({0, 1}), frozenset({2})], [frozenset({0}), frozenset({1, 2}), frozenset({3})]]
    )
    np.testing.assert_allclose(tax.overlap(0, 1), [[0.5, 0.5, 0], [0, 1, 0]])
    np.testing.assert_allclose(tax.overlap(1, 0), [[1, 0], [0.5, 0.5], [0, 0]])
    exp = tax.expected_matrices(uniform_remainder=True)
    np.testing.assert_allclose(exp[(1, 0)][2], [0.5, 0.5])  # concept 3 unknown to domain 0
    np.testing.assert_allclose(tax.expected_matrices(uniform_remainder=False)[(1, 0)][2], [0, 0])
    assert tax.class_names(["cat", "dog", "cow", "pig"]) == [["cat+dog", "cow"], ["cat", "dog+cow", "pig"]]
    np.testing.assert_array_equal(tax.concept_to_class(1), [0, 1, 1, 2])


def test_expected_rows_sum_to_one_with_the_uniform_remainder(world):
    for p in world.expected_matrices(uniform_remainder=True).values():
        np.testing.assert_allclose(p.sum(axis=1), 1)


@pytest.mark.parametrize("uniform_remainder,t", [(False, 0.01), (True, None)])
def test_noise_free_threshold_recovers_the_truth(world, uniform_remainder, t):
    true = world.true_relationships()
    mats = world.expected_matrices(uniform_remainder=uniform_remainder)
    if t is None:  # between the largest remainder entry and the smallest true entry
        rem = max((p[o == 0].max() if (o == 0).any() else 0) for p, o in ((mats[k], true[k]) for k in mats))
        low = min(p[o > 0].min() for p, o in ((mats[k], true[k]) for k in mats) if (o > 0).any())
        assert rem < low
        t = (rem + low) / 2
    pred = {k: select_relationships(p, "threshold", t=t) for k, p in mats.items()}
    s = relationship_scores(pred, true, world.class_counts)
    assert s["f1"] == 1.0
    if not uniform_remainder:
        assert s["edr"] == 0.0


def test_sampled_counts_follow_the_world(world):
    counts = sample_cross_counts(world, images_per_class=40, noise=0.0, seed=1)
    for (a, b), c in counts.items():
        assert c.shape == (world.class_counts[a], world.class_counts[b])
        np.testing.assert_array_equal(c.sum(axis=1), 40)
    # noise-free, concepts known to b land in the class that holds them
    o = world.overlap(0, 1)
    p = normalize_rows(counts[(0, 1)])
    full = np.flatnonzero(np.isclose(o.sum(axis=1), 1))  # classes whose concepts b knows
    assert np.all((p[full] > 0) <= (o[full] > 0))


def test_more_noise_scores_worse(world):
    def f1(noise):
        c = sample_cross_counts(world, noise=noise, seed=3)
        pred = {k: select_relationships(normalize_rows(v), "threshold", t=0.2) for k, v in c.items()}
        return relationship_scores(pred, world.true_relationships(), world.class_counts)["f1"]

    assert f1(0.0) > f1(0.6)


def test_dict_round_trip(world):
    again = SyntheticTaxonomy.from_dict(world.to_dict())
    assert again.domains == world.domains and again.n_concepts == world.n_concepts


@pytest.mark.parametrize(
    "args,err,match",
    [
        ((0, 2, 5, 1, 2, 1), ValueError, "n_concepts must be >= 1, got 0"),
        ((10, 0, 5, 1, 2, 1), ValueError, "n_domains must be >= 1"),
        ((10, 2, -5, 1, 2, 1), ValueError, "concepts_mean must be > 0"),
        ((10, 2, 5, -1, 2, 1), ValueError, "concepts_var must be >= 0"),
        ((10, 2, 5, 1, 0, 1), ValueError, "class_size_mean must be > 0"),
        ((10.5, 2, 5, 1, 2, 1), TypeError, "n_concepts must be an int"),
        ((10, 2, "5", 1, 2, 1), TypeError, "concepts_mean must be a number"),
    ],
)
def test_bad_parameters(args, err, match):
    with pytest.raises(err, match=match):
        make_synthetic_taxonomy(*args)


def test_bad_noise(world):
    with pytest.raises(ValueError, match=r"noise must be in \[0, 1\], got 1.5"):
        sample_cross_counts(world, noise=1.5)
    with pytest.raises(ValueError, match="images_per_class must be >= 1"):
        sample_cross_counts(world, images_per_class=0)
    with pytest.raises(ValueError, match="not a synthetic taxonomy dict"):
        SyntheticTaxonomy.from_dict({"domains": []})
