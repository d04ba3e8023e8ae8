"""The clickable taxonomy graph (ui.graphpick): what the component receives, which node a search
centres on, which labels stay readable, how a click is checked against the drawn graph; the
Taxonomy page passing a selection back to Python; the size and build time at the thesis's scale."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np
import pytest

from ui.graph import (
    LABEL_MIN_PX,
    NODE_FONT,
    SMALL_GRAPH,
    GraphFilter,
    graph_elements,
    graph_options,
    label_rules,
    stabilisation_iterations,
)
from ui.graphpick import (
    CENTRE_SCALE,
    component_data,
    describe_selection,
    emphasised,
    search_target,
    selection,
    vis_js,
)

MAPPINGS = [np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([[0.5, 0.5], [0.0, 0.2]])]
UNAMES = ["dog", "car"]
CNAMES = [["dog", "auto"], ["dalmatian", "car_side"]]
DNAMES = ["cifar", "caltech"]
EVIDENCE = {"p_ab": 0.8, "p_ba": 0.3, "n_ab": 30, "n_ba": 40, "confidence": 0.9, "weight": 0.8}
RELATIONS = [{"a": 0, "i": 0, "b": 1, "j": 0, "relation": "narrower", **EVIDENCE}]


def small_graph(**flt):
    return graph_elements(MAPPINGS, UNAMES, CNAMES, DNAMES, flt=GraphFilter(**flt), relations=RELATIONS)


# ----------------------------------------------------------------------------- component data


def test_component_data_carries_vis_nodes_edges_with_ids_and_kinds():
    nodes, edges = small_graph()
    data = component_data(nodes, edges, height=500)
    assert [n["id"] for n in data["nodes"]] == [n["id"] for n in nodes]
    assert {"label", "title", "color", "shape", "size", "borderWidth"} <= data["nodes"][0].keys()
    assert [e["id"] for e in data["edges"]] == [f"e{k}" for k in range(len(edges))]
    assert [(e["from"], e["to"], e["kind"]) for e in data["edges"]] == [
        (e["source"], e["target"], e["kind"]) for e in edges
    ]
    rel = next(e for e in data["edges"] if e["kind"] == "relation")
    assert rel["dashes"] is True and "relation: narrower" in rel["title"]
    assert data["height"] == 500 and data["centre"] is None and data["selected"] is None
    assert data["label"] == {"font": NODE_FONT, "readable_px": 12, "small_graph": SMALL_GRAPH}
    json.dumps(data)  # the component receives JSON


def test_graph_id_follows_the_graph_not_the_centre_or_the_selection():
    nodes, edges = small_graph()
    base = component_data(nodes, edges)["graph_id"]
    moved = component_data(nodes, edges, centre="1:0", selected={"node": "0:1"})
    assert moved["graph_id"] == base, "a click or a search must not re-layout the graph"
    assert moved["centre"] == "1:0" and moved["centre_scale"] == CENTRE_SCALE
    assert component_data(nodes, edges, dark=True)["graph_id"] != base
    nodes2, edges2 = small_graph(min_weight=0.5)
    assert component_data(nodes2, edges2)["graph_id"] != base


def test_component_data_rejects_a_foreign_centre_and_a_tiny_height():
    nodes, edges = small_graph()
    with pytest.raises(ValueError, match="centre '9:9' is not a node"):
        component_data(nodes, edges, centre="9:9")
    with pytest.raises(ValueError, match="height must be at least 100 px, got 20"):
        component_data(nodes, edges, height=20)


# ----------------------------------------------------------------------------- search


def test_search_marks_the_matching_nodes_themselves():
    nodes, _ = small_graph(search="dalmat")
    assert [n["id"] for n in nodes if n.get("match")] == ["1:0"]  # not its universal classes
    assert {n["id"]: n["name"] for n in nodes}["u:0"] == "dog"
    plain, _ = small_graph()
    assert not any(n.get("match") for n in plain)


def test_search_target_prefers_exact_then_prefix_then_domain_classes():
    nodes = [
        {"id": "u:0", "name": "dog"},
        {"id": "0:4", "name": "hotdog"},
        {"id": "1:2", "name": "dog"},
        {"id": "2:7", "name": "doghouse"},
    ]
    assert search_target(nodes, "DOG") == "1:2"  # exact, and a domain class beats U0 "dog"
    assert search_target(nodes[:2] + nodes[3:], "dog") == "u:0"  # the only exact name
    assert search_target([nodes[1], nodes[3]], "dog") == "2:7"  # a prefix beats a substring
    assert search_target(nodes, "zebra") is None
    assert search_target(nodes, "  ") is None


def test_search_target_without_text_uses_the_flagged_match():
    nodes, _ = small_graph(search="car")
    assert search_target(nodes) == "1:1"  # car_side (a domain class) before U1 "car"
    assert search_target(small_graph()[0]) is None


# ----------------------------------------------------------------------------- labels


def test_label_rules_hide_labels_of_big_graphs_until_zoomed():
    assert label_rules(SMALL_GRAPH)["drawThreshold"] == 1  # every label
    big = label_rules(SMALL_GRAPH + 1)
    assert big["drawThreshold"] == LABEL_MIN_PX and big["enabled"] is False
    assert NODE_FONT * 0.5 < LABEL_MIN_PX - 1, "the fitted overview of a big graph draws no label"
    with pytest.raises(ValueError, match="n_nodes must be >= 0, got -1"):
        label_rules(-1)


def test_big_graphs_skip_the_improved_layout_and_hide_edges_on_drag():
    small, big = graph_options(40), graph_options(1500)
    assert small["layout"]["improvedLayout"] is True and big["layout"]["improvedLayout"] is False
    assert big["interaction"]["hideEdgesOnDrag"] is True and small["interaction"]["hideEdgesOnDrag"] is False
    assert big["nodes"]["scaling"]["label"]["drawThreshold"] == LABEL_MIN_PX
    assert big["physics"]["stabilization"]["enabled"] is True
    assert big["physics"]["stabilization"]["iterations"] == stabilisation_iterations(1500) == 50
    assert stabilisation_iterations(SMALL_GRAPH) == 300 and stabilisation_iterations(400) == 150
    assert big["physics"]["forceAtlas2Based"]["theta"] > small["physics"]["forceAtlas2Based"]["theta"]
    with pytest.raises(ValueError, match="n_nodes must be >= 0, got -3"):
        stabilisation_iterations(-3)


def test_emphasised_nodes_are_the_focus_centre_and_selection_with_neighbours():
    nodes, edges = small_graph(focus="0:0")
    assert emphasised(nodes, edges) == ["0:0", "1:0", "u:0"]  # the focus and its neighbours
    whole, wedges = small_graph()
    assert emphasised(whole, wedges) == []
    assert emphasised(whole, wedges, centre="u:1") == ["0:1", "1:0", "1:1", "u:1"]
    edge = {"edge": {"from": "0:1", "to": "u:1", "kind": "mapping"}}
    assert emphasised(whole, wedges, selected=edge) == ["0:1", "u:1"]
    assert emphasised(whole, wedges, centre="9:9") == []  # ids not drawn are left out


# ----------------------------------------------------------------------------- clicks


def test_selection_keeps_only_what_is_drawn():
    nodes, edges = small_graph()
    assert selection(None, nodes, edges) is None
    assert selection("0:1", nodes, edges) is None
    assert selection({"node": "u:1"}, nodes, edges) == {"node": "u:1"}
    assert selection({"node": "7:7"}, nodes, edges) is None
    rel = {"edge": {"from": "0:0", "to": "1:0", "kind": "relation"}}
    assert selection(rel, nodes, edges) == rel
    assert selection({"edge": {"from": "0:0", "to": "1:0", "kind": "mapping"}}, nodes, edges) is None
    assert selection({"edge": {"from": "0:0"}}, nodes, edges) is None
    focused, fedges = small_graph(focus="0:0")  # u:0 and its members 0:0, 1:0
    assert selection({"node": "0:1"}, focused, fedges) is None, "a stale click on a node no longer drawn"


def test_describe_selection_names_nodes_and_edges():
    nodes, _ = small_graph()
    assert describe_selection({"node": "1:0"}, nodes) == "caltech · class 0: dalmatian"
    edge = {"edge": {"from": "0:0", "to": "u:0", "kind": "mapping"}}
    assert describe_selection(edge, nodes) == "cifar · class 0: dog → universal class U0: dog (mapping)"
    assert describe_selection(None, nodes) == "nothing"


def test_the_module_inlines_vis_network_without_remote_loads(tmp_path):
    js = vis_js()
    assert "export default function" in js and "setStateValue" in js
    assert "sourceMappingURL" not in js and "import(" not in js
    assert js.count("function (exports, module, define)") == 1  # vis bound locally, not as a global
    node = shutil.which("node")
    if node:  # the whole module parses as an ES module (line separators inside strings kept)
        path = tmp_path / "graph.mjs"
        path.write_text(js, encoding="utf-8")
        out = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-500:]


# ----------------------------------------------------------------------------- the page


def test_taxonomy_page_mounts_the_component_and_shows_the_selection(tmp_path, monkeypatch):
    from core.synthetic import make_synthetic_taxonomy
    from tests.conftest import page_opener
    from tests.sample_run import write_synthetic_run

    write_synthetic_run(tmp_path, "g", make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3), noise=0.2, seed=1)
    at = page_opener(tmp_path, monkeypatch)("taxonomy")
    (graph,) = at.get("bidi_component")
    data = json.loads(graph.proto.json)
    assert graph.proto.component_name == "unitax_graph" and "vis.Network" in graph.proto.js_content
    n_caption = int(next(c.value for c in at.caption if "nodes," in c.value).split()[0])
    assert len(data["nodes"]) == n_caption and data["selected"] is None
    assert any(c.value.startswith("Click a class") for c in at.caption)
    node = next(n for n in data["nodes"] if n["id"].startswith("1:"))
    at.session_state["tax_graph"] = {"selection": {"node": node["id"]}}  # what a click stores
    at.run()
    assert not at.exception
    assert f"selected: {node['title'].split(chr(10))[0]}" in [c.value for c in at.caption]
    data = json.loads(at.get("bidi_component")[0].proto.json)
    assert data["selected"] == {"node": node["id"]} and node["id"] in data["emphasis"]


# ----------------------------------------------------------------------------- thesis size


def thesis_graph(t: float = 0.1):
    """Nodes/edges of the whole taxonomy of a thesis-sized synthetic run (458 domain classes in
    domains of 257, 101 and 100 classes; threshold t gives ~940 universal classes), with every
    selected relationship as a relation edge; and the build time in seconds."""
    from core.crossdomain import normalize_rows
    from core.selection import select_relationships
    from core.synthetic import SyntheticTaxonomy, sample_cross_counts
    from core.taxonomy import build_universal_taxonomy

    rng = np.random.default_rng(0)
    domains = []
    for k in (257, 101, 100):
        m = min(320, int(k * 1.3))
        concepts = rng.choice(320, size=m, replace=False)
        owner = np.concatenate([np.arange(k), rng.integers(0, k, m - k)])
        domains.append([frozenset(int(c) for c in concepts[owner == i]) for i in range(k)])
    syn = SyntheticTaxonomy(320, domains, 0)
    counts = sample_cross_counts(syn, images_per_class=30, noise=0.2, seed=1)
    W = {pair: select_relationships(normalize_rows(C), "threshold", t=t) for pair, C in counts.items()}
    names = syn.class_names()
    tax = build_universal_taxonomy(W, syn.class_counts, class_names=names)
    relations = [
        {"a": a, "i": int(i), "b": b, "j": int(j), "relation": "overlap", **EVIDENCE, "weight": float(w[i, j])}
        for (a, b), w in W.items()
        for i, j in zip(*np.nonzero(w))
    ]
    t0 = time.perf_counter()
    flt = GraphFilter(max_universal=10_000)
    nodes, edges = graph_elements(tax.mappings, tax.names, names, ["A", "B", "C"], flt=flt, relations=relations)
    return tax, nodes, edges, time.perf_counter() - t0


@pytest.mark.slow
def test_thesis_sized_graph_builds_fast_and_stays_small(capsys):
    tax, nodes, edges, t_elements = thesis_graph()
    assert sum(len(m) for m in tax.mappings) == 458 and len(tax.classes) > 900
    t0 = time.perf_counter()
    data = component_data(nodes, edges, centre=search_target(nodes, "c1"))
    payload = json.dumps(data)
    t_data = time.perf_counter() - t0
    assert len(nodes) == 458 + len(tax.classes)
    assert data["options"]["layout"]["improvedLayout"] is False
    with capsys.disabled():
        print(
            f"\n[thesis graph] {len(nodes)} nodes, {len(edges)} edges: graph_elements {t_elements:.2f} s, "
            f"component data {t_data:.2f} s, payload {len(payload) / 1e6:.2f} MB + module {len(vis_js()) / 1e6:.2f} MB"
        )
    assert t_elements + t_data < 5.0
    assert len(payload) < 3e6
