import json

import networkx as nx
import numpy as np
import pytest

from core._reference import build_taxonomy_restart
from core.selection import select_relationships
from core.synthetic import make_synthetic_taxonomy
from core.taxonomy import UniversalTaxonomy, build_universal_taxonomy


def links(tax: UniversalTaxonomy) -> dict:
    """{(a, i): {frozenset of members: weight}}."""
    out: dict = {}
    for a, i, u, w in tax.links:
        out.setdefault((int(a), int(i)), {})[tax.classes[int(u)]] = float(w)
    return out


def W(shape, entries):
    m = np.zeros(shape)
    for (i, j), w in entries.items():
        m[i, j] = w
    return m


def test_isolated_class_gets_a_singleton():
    tax = build_universal_taxonomy({}, [1, 1], class_names=[["cat"], ["dog"]], domain_names=["A", "B"])
    assert set(tax.classes) == {frozenset({(0, 0)}), frozenset({(1, 0)})}
    assert links(tax)[(0, 0)] == {frozenset({(0, 0)}): 1.0}
    assert "A:cat" in tax.names


def test_bidirectional_pair_shares_one_class_with_the_mean_weight():
    rel = {(0, 1): W((1, 1), {(0, 0): 0.8}), (1, 0): W((1, 1), {(0, 0): 0.6})}
    tax = build_universal_taxonomy(rel, [1, 1])
    shared = frozenset({(0, 0), (1, 0)})
    assert tax.classes == [shared]
    assert links(tax) == {(0, 0): {shared: pytest.approx(0.7)}, (1, 0): {shared: pytest.approx(0.7)}}


def test_unilateral_edge_gives_a_shared_class_plus_the_targets_remainder():
    rel = {(0, 1): W((1, 1), {(0, 0): 0.9})}  # A:0 -> B:0 only: A is part of B
    tax = build_universal_taxonomy(rel, [1, 1])
    shared, rest = frozenset({(0, 0), (1, 0)}), frozenset({(1, 0)})
    assert links(tax) == {(0, 0): {shared: 0.9}, (1, 0): {shared: 0.9, rest: 1.0}}
    m_a, m_b = tax.mappings
    assert m_a.shape == (1, 2) and m_b.shape == (1, 2)


def test_chain_back_into_the_same_domain_drops_the_lighter_edge():
    # A:0 -> B:0 (0.4) and B:0 -> A:1 (0.9): A:0 and A:1 would share a class, which a domain
    # forbids. The lighter edge A:0 -> B:0 goes, A:0 becomes isolated.
    rel = {(0, 1): W((2, 1), {(0, 0): 0.4}), (1, 0): W((1, 2), {(0, 1): 0.9})}
    tax = build_universal_taxonomy(rel, [2, 1])
    got = links(tax)
    assert got[(0, 0)] == {frozenset({(0, 0)}): 1.0}
    assert frozenset({(1, 0), (0, 1)}) in got[(0, 1)]
    # heavier first edge: the second goes instead
    rel = {(0, 1): W((2, 1), {(0, 0): 0.9}), (1, 0): W((1, 2), {(0, 1): 0.4})}
    got = links(build_universal_taxonomy(rel, [2, 1]))
    assert frozenset({(0, 0), (1, 0)}) in got[(0, 0)]
    assert got[(0, 1)] == {frozenset({(0, 1)}): 1.0}


def random_relationships(rng, counts, density=0.4, decimals=1):
    rel = {}
    for a in range(len(counts)):
        for b in range(len(counts)):
            if a != b:
                m = np.round(rng.random((counts[a], counts[b])), decimals)  # ties on purpose
                m[rng.random(m.shape) > density] = 0
                rel[(a, b)] = m
    return rel


def test_agrees_with_the_literal_restart_engine(rng):
    for _ in range(150):
        counts = [int(k) for k in rng.integers(1, 6, size=int(rng.integers(2, 4)))]
        rel = random_relationships(rng, counts)
        ref = {k: v for k, v in build_taxonomy_restart(rel, counts).items() if v}
        got = links(build_universal_taxonomy(rel, counts))
        assert got.keys() == ref.keys()
        for node in ref:
            assert got[node] == pytest.approx(ref[node])


def test_edge_order_does_not_matter(rng):
    counts = [6, 5, 7]
    rel = random_relationships(rng, counts)
    a = build_universal_taxonomy(rel, counts)
    b = build_universal_taxonomy(dict(reversed(list(rel.items()))), counts)
    assert a.classes == b.classes and np.array_equal(a.links, b.links)


def test_every_domain_class_maps_somewhere_and_targets_sum_to_one(rng):
    counts = [8, 6, 9]
    tax = build_universal_taxonomy(random_relationships(rng, counts, density=0.2), counts)
    for m in tax.mappings:
        assert np.all((m > 0).sum(axis=1) >= 1)
        t = m / m.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(t.sum(axis=1), 1)


def test_synthetic_truth_builds_shared_classes(seed):
    world = make_synthetic_taxonomy(40, 2, 20, 4, 2, 1, seed=seed)
    rel = {k: select_relationships(p, "mcfp") for k, p in world.expected_matrices(uniform_remainder=False).items()}
    tax = build_universal_taxonomy(rel, world.class_counts)
    assert any(len(c) == 2 for c in tax.classes)
    assert len(tax.classes) <= sum(world.class_counts) * 2


def test_exports(tmp_path, rng):
    counts = [3, 4]
    names = [["cat", "dog", "cow"], ["pug", "cat", "calf", "boat"]]
    tax = build_universal_taxonomy(
        random_relationships(rng, counts), counts, class_names=names, domain_names=["cifar", "caltech"]
    )
    again = UniversalTaxonomy.from_json(tax.to_json())
    assert again.classes == tax.classes and again.names == tax.names
    np.testing.assert_array_equal(again.links, tax.links)
    for m1, m2 in zip(again.mappings, tax.mappings):
        np.testing.assert_array_equal(m1, m2)
    tax.to_graphml(tmp_path / "t.graphml")
    g = nx.read_graphml(tmp_path / "t.graphml")
    assert g.number_of_edges() == len(tax.links)
    assert g.nodes["0:1"]["label"] == "dog"
    table = tax.mapping_table()
    assert len(table) == len(tax.links) and set(table["domain"]) == {"cifar", "caltech"}
    lm = tax.label_map()
    assert len(lm["label_map"]["caltech"]) == 4
    assert all(0 <= u < tax.n_universal for u in lm["label_map"]["cifar"])
    json.dumps(lm)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"relationships": {(0, 1): np.zeros((2, 2))}, "class_counts": [2, 3]}, ValueError, "has shape"),
        ({"relationships": {}, "class_counts": [2, 0]}, ValueError, r"class_counts\[1\] must be >= 1"),
        (
            {"relationships": {}, "class_counts": [2], "domain_names": ["a", "b"]},
            ValueError,
            "2 domain names for 1 domains",
        ),
        ({"relationships": {}, "class_counts": [2], "class_names": [["x"]]}, ValueError, "class_names sizes"),
        ({"relationships": {(0, 1): -np.ones((1, 1))}, "class_counts": [1, 1]}, ValueError, "negative"),
    ],
)
def test_bad_input(kwargs, err, match):
    with pytest.raises(err, match=match):
        build_universal_taxonomy(**kwargs)


def test_bad_json():
    with pytest.raises(ValueError, match="not a taxonomy JSON"):
        UniversalTaxonomy.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="not a taxonomy JSON"):
        UniversalTaxonomy.from_json("{not json")


def test_json_with_a_repeated_link_is_refused():
    import json

    tax = build_universal_taxonomy({(0, 1): np.array([[0.0, 0.4], [0.0, 0.0]])}, [2, 2])
    d = json.loads(tax.to_json())
    assert UniversalTaxonomy.from_json(json.dumps(d)).links.shape == tax.links.shape
    d["links"].append(d["links"][0])  # would double a weight in the sparse mappings
    with pytest.raises(ValueError, match="not a taxonomy JSON: a link .* is listed twice"):
        UniversalTaxonomy.from_json(json.dumps(d))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["links"][0].__setitem__(2, 999), "names a class the taxonomy does not have"),
        (lambda d: d["links"][0].__setitem__(1, 50), "names a class the taxonomy does not have"),
        (lambda d: d["links"][0].__setitem__(0, 7), "names a class the taxonomy does not have"),
        (lambda d: d["links"][0].__setitem__(3, -3), "weight that is not finite and > 0"),
        (lambda d: d["links"][0].__setitem__(1, 0.5), "non-integer id"),
        (lambda d: d.__setitem__("class_counts", [10**9, 2]), "out of range"),
    ],
)
def test_json_with_a_damaged_link_is_refused(edit, match):
    import json

    d = json.loads(build_universal_taxonomy({(0, 1): np.array([[0.0, 0.4], [0.0, 0.0]])}, [2, 2]).to_json())
    edit(d)
    with pytest.raises(ValueError, match=f"not a taxonomy JSON: .*{match}"):
        UniversalTaxonomy.from_json(json.dumps(d))
