"""The universal taxonomy as a self-contained interactive graph (pyvis / vis-network).

Everything is inline: pyvis 0.3.2 with ``cdn_resources="in_line"`` still links Bootstrap from a
CDN, so those tags are stripped; node ids are strings (pyvis draws no integer labels).
No streamlit import: the functions return plain data / HTML and are unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# the palette is core.palette's (shared with the HTML report); DOMAIN_COLOURS and RELATION_COLOURS
# stay importable from here
from core.palette import DOMAIN_COLOURS, RELATION_COLOURS, UNIVERSAL_COLOUR

__all__ = [
    "DOMAIN_COLOURS",
    "RELATION_COLOURS",
    "FOCUS_ABOVE",
    "GraphFilter",
    "graph_elements",
    "neighbourhood_sizes",
    "graph_html",
    "strip_remote",
    "NODE_FONT",
    "SMALL_GRAPH",
    "LABEL_MIN_PX",
    "vis_node",
    "vis_edge",
    "label_rules",
    "stabilisation_iterations",
    "graph_options",
]

# how an edge of each relation type reads, with its two classes for x and y
RELATION_READING = {
    "equivalent": "{x} and {y} are the same class",
    "narrower": "{x} is a part of {y}",
    "broader": "{y} is a part of {x}",
    "overlap": "{x} and {y} share only part of each other",
}
FOCUS_ABOVE = 60  # graphs with more nodes open on one class and its neighbourhood
LABEL_CHARS = 22  # node labels longer than this are cut (the full name is in the tooltip)
EDGE_LABELS_UP_TO = 30  # weights are written on the edges only in graphs this small
NODE_FONT = 12  # node label font (canvas px at zoom 1)
SMALL_GRAPH = 150  # graphs up to this many nodes draw every label at any zoom
LABEL_MIN_PX = 9  # larger graphs draw a label once its on-screen font reaches this size
LAYOUT_BUDGET = 60_000  # node x physics iterations a big graph gets before its first draw
_REMOTE_TAG = re.compile(r"<(link|script)\b[^>]*?(?:href|src)\s*=\s*[\"']https?://[^>]*>(?:\s*</script>)?", re.S)


@dataclass(frozen=True)
class GraphFilter:
    """What to draw. domains: domain indices kept (None = all); search: case-insensitive text
    that a universal class or one of its members must contain; min_weight: edges below dropped;
    focus: a domain class ``"a:i"`` whose neighbourhood alone is drawn (the universal classes it
    maps to and their members), None for the whole taxonomy."""

    domains: tuple[int, ...] | None = None
    search: str = ""
    min_weight: float = 0.0
    max_universal: int = 400  # browsers struggle above a few thousand nodes; show the first N
    focus: str | None = None


def graph_elements(
    mappings: list[np.ndarray],
    universal_names: list[str],
    class_names: list[list[str]],
    domain_names: list[str],
    *,
    flt: GraphFilter = GraphFilter(),
    relations: list[dict] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Nodes and edges of the taxonomy graph after filtering.

    mappings: one (K_a, U) array per domain, ``M_a[i, u]`` = weight of a:i in universal class u.
    relations: optional domain-to-domain relationships, dicts with ``a, i, b, j`` (ints),
    ``weight`` (W_ab[i, j]) and the evidence of core.evidence.edge_table (``relation, p_ab,
    p_ba, n_ab, n_ba, confidence``); those between two drawn classes are added (with a focus:
    only those of the focused class).
    Returns (nodes, edges): node dicts {id, label, title, color, shape, group, name} (name: the
    full class name; ``focus: True`` on the focused class, ``match: True`` on every node whose own
    name contains the search text); edge dicts
    {source, target, weight, kind} with kind ``"mapping"`` (a:i -> u:k) or ``"relation"``
    (a:i -> b:j, plus ``relation``, ``confidence`` and a ``title`` with the evidence).
    Domain-class ids are ``"a:i"``, universal ids ``"u:k"``.
    """
    if len(mappings) != len(class_names) or len(mappings) != len(domain_names):
        raise ValueError(
            f"got {len(mappings)} mappings, {len(class_names)} class-name lists and "
            f"{len(domain_names)} domain names; they must be equal"
        )
    edges, members = _kept_edges(mappings, flt)
    needle = flt.search.strip().lower()
    if needle:
        members = {
            u: mem
            for u, mem in members.items()
            if needle in universal_names[u].lower() or any(needle in class_names[a][i].lower() for a, i in mem)
        }
    if flt.focus is not None:
        centre = _class_key(flt.focus)
        members = {u: mem for u, mem in members.items() if centre in mem}
    shown = sorted(members)[: flt.max_universal]
    shown_set = set(shown)
    edges = [e for e in edges if int(e["target"][2:]) in shown_set]
    nodes = [_universal_node(u, universal_names[u], members[u], class_names, domain_names) for u in shown]
    seen = set()
    for e in edges:
        if e["source"] not in seen:
            seen.add(e["source"])
            a, i = map(int, e["source"].split(":"))
            nodes.append(_class_node(a, i, class_names, domain_names))
    for n in nodes:
        if n["id"] == flt.focus:
            n["focus"] = True  # drawn larger: the class the neighbourhood is about
        if needle and needle in n["name"].lower():
            n["match"] = True  # the node itself matches the search (a graph can centre on it)
    relations = relations or []
    if flt.focus is not None:  # the focused class's own relationships: a neighbourhood stays readable
        relations = [
            r for r in relations if flt.focus in (f"{int(r['a'])}:{int(r['i'])}", f"{int(r['b'])}:{int(r['j'])}")
        ]
    edges += _relation_edges(relations, seen, class_names, domain_names)
    return nodes, edges


def _class_key(node_id: str) -> tuple[int, int]:
    """``"a:i"`` -> (a, i); ValueError for anything else."""
    try:
        a, i = (int(x) for x in str(node_id).split(":"))
    except ValueError:
        raise ValueError(f"focus must be a domain class id 'a:i', got {node_id!r}") from None
    return a, i


def _relation_edges(relations: list[dict], shown: set[str], class_names, domain_names) -> list[dict]:
    """Relationship edges a:i -> b:j whose two ends are drawn, with their evidence as tooltip."""
    out = []
    for r in relations:
        src, dst = f"{int(r['a'])}:{int(r['i'])}", f"{int(r['b'])}:{int(r['j'])}"
        if src not in shown or dst not in shown:
            continue
        out.append(
            {
                "source": src,
                "target": dst,
                "weight": float(r.get("weight", r.get("p_ab", 0.0))),
                "kind": "relation",
                "relation": str(r.get("relation", "")),
                "confidence": float(r.get("confidence", float("nan"))),
                "title": relation_title(r, class_names, domain_names),
            }
        )
    return out


def relation_title(r: dict, class_names, domain_names) -> str:
    """The tooltip of one relationship edge: its ends, its type in words and its evidence."""
    a, i, b, j = (int(r[k]) for k in ("a", "i", "b", "j"))
    x, y = f"{domain_names[a]}: {class_names[a][i]}", f"{domain_names[b]}: {class_names[b][j]}"
    rel = str(r.get("relation", ""))
    reading = RELATION_READING.get(rel, "").format(x=class_names[a][i], y=class_names[b][j])
    lines = [f"{x} → {y}", f"relation: {rel}" + (f" ({reading})" if reading else "")]
    if "p_ab" in r:
        lines.append(
            f"p_ab = {float(r['p_ab']):.3f} of n_ab = {int(r['n_ab'])} {domain_names[a]} images → {class_names[b][j]}"
        )
        lines.append(
            f"p_ba = {float(r['p_ba']):.3f} of n_ba = {int(r['n_ba'])} {domain_names[b]} images → {class_names[a][i]}"
        )
        lines.append(f"confidence {float(r['confidence']):.2f}")
    if "weight" in r:
        lines.append(f"selected weight W = {float(r['weight']):.3f}")
    return "\n".join(lines)


def neighbourhood_sizes(mappings: list[np.ndarray]) -> dict[str, int]:
    """``{"a:i": number of nodes drawn when focusing on a:i}`` (the universal classes a:i maps
    to and all their members, a:i included), for every domain class."""
    members: dict[int, set] = {}
    rows: dict[str, list[int]] = {}
    for a, M in enumerate(mappings):
        hit = np.asarray(M) > 0
        for i, u in zip(*np.nonzero(hit)):
            members.setdefault(int(u), set()).add((a, int(i)))
        for i in range(hit.shape[0]):
            rows[f"{a}:{i}"] = np.flatnonzero(hit[i]).tolist()
    return {key: len(us) + len(set().union(*(members[u] for u in us))) for key, us in rows.items()}


def _kept_edges(mappings: list[np.ndarray], flt: GraphFilter) -> tuple[list[dict], dict[int, list]]:
    """Edges a:i -> u of the kept domains with weight >= ``flt.min_weight`` (and > 0), and the
    members ``{u: [(a, i), ...]}`` they give each universal class."""
    keep = set(range(len(mappings)) if flt.domains is None else flt.domains)
    edges, members = [], {}
    for a, M in enumerate(mappings):
        if a not in keep:
            continue
        rows, cols = np.nonzero(np.asarray(M) > max(flt.min_weight, 0.0) - 1e-12)
        for i, u in zip(rows.tolist(), cols.tolist()):
            w = float(M[i, u])
            if w <= 0 or w < flt.min_weight:
                continue
            edges.append({"source": f"{a}:{i}", "target": f"u:{u}", "weight": w, "kind": "mapping"})
            members.setdefault(u, []).append((a, i))
    return edges, members


def _universal_node(u: int, name: str, mem: list, class_names, domain_names) -> dict:
    listing = "\n".join(f"{domain_names[a]}: {class_names[a][i]}" for a, i in mem)
    return {
        "id": f"u:{u}",
        "label": f"U{u}",
        "title": f"universal class U{u}: {name}\n{listing}",
        "color": UNIVERSAL_COLOUR,
        "shape": "diamond",
        "group": "universal",
        "name": str(name),
    }


def _class_node(a: int, i: int, class_names, domain_names) -> dict:
    name = str(class_names[a][i])
    return {
        "id": f"{a}:{i}",
        "label": name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…",
        "title": f"{domain_names[a]} · class {i}: {class_names[a][i]}",
        "color": DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)],
        "shape": "dot",
        "group": domain_names[a],
        "name": name,
    }


_DEAD_COMMENT = re.compile(r"<!--\s*<link[^>]*node_modules.*?-->", re.S)


def strip_remote(html: str) -> str:
    """Remove every <link>/<script> tag that loads from http(s) (pyvis's Bootstrap CDN tags) and
    pyvis's commented-out node_modules tags."""
    return _DEAD_COMMENT.sub("", _REMOTE_TAG.sub("", html))


def vis_node(n: dict, *, dark: bool = False) -> dict:
    """One node of :func:`graph_elements` as vis-network draws it: ``{id, label, title, color,
    shape, size, borderWidth}`` (the focused class larger, with a thick border; universal
    classes lighter on a dark background)."""
    colour = "#b8b8e0" if dark and n["color"] == UNIVERSAL_COLOUR else n["color"]
    return {
        "id": n["id"],
        "label": n["label"],
        "title": n["title"],
        "color": colour,
        "shape": n["shape"],
        "size": 22 if n.get("focus") else 18 if n["shape"] == "diamond" else 12,
        "borderWidth": 3 if n.get("focus") else 1,
    }


def vis_edge(e: dict, *, names: dict[str, str], labelled: bool) -> dict:
    """One edge of :func:`graph_elements` as vis-network draws it: ``{from, to, title, width,
    ...}``. Relationships are dashed, coloured by type, curved and out of the physics; mappings
    solid, as wide as their weight, with the weight written on them when ``labelled``.
    ``names``: node id -> the first line of its tooltip (for the mapping's tooltip)."""
    if e.get("kind") == "relation":
        return {
            "from": e["source"],
            "to": e["target"],
            "title": e.get("title") or f"weight {e['weight']:.2f}",
            "color": RELATION_COLOURS.get(e.get("relation"), "#8c8c8c"),
            "dashes": True,
            "width": 1.0 + 2.0 * (e.get("confidence") or 0.0),
            "smooth": {"enabled": True, "type": "curvedCW", "roundness": 0.2},
            "physics": False,
        }
    out = {
        "from": e["source"],
        "to": e["target"],
        "title": f"{names.get(e['source'], e['source'])} → {names.get(e['target'], e['target'])}\n"
        f"mapping weight {e['weight']:.2f}",
        "width": 0.5 + 3 * e["weight"],
    }
    if labelled:
        out["label"] = f"{e['weight']:.2f}"
    return out


def label_rules(n_nodes: int) -> dict:
    """vis-network's ``nodes.scaling.label`` for a graph of ``n_nodes`` nodes. A label is drawn
    only while its on-screen font is at least ``drawThreshold - 1`` px: every label in a graph
    of up to :data:`SMALL_GRAPH` nodes (threshold 1), in a larger one only once zoomed in to
    :data:`LABEL_MIN_PX` px (labels do not pile up in the overview)."""
    if n_nodes < 0:
        raise ValueError(f"n_nodes must be >= 0, got {n_nodes}")
    return {"enabled": False, "drawThreshold": 1 if n_nodes <= SMALL_GRAPH else LABEL_MIN_PX, "maxVisible": 30}


def stabilisation_iterations(n_nodes: int) -> int:
    """Physics iterations before the first draw: 300 up to :data:`SMALL_GRAPH` nodes, then about
    :data:`LAYOUT_BUDGET` node-iterations in all (at least 50): the browser's layout time stays
    near constant (vis-network costs ~15-35 ms per iteration at 1,400 nodes)."""
    if n_nodes < 0:
        raise ValueError(f"n_nodes must be >= 0, got {n_nodes}")
    return 300 if n_nodes <= SMALL_GRAPH else max(50, min(300, LAYOUT_BUDGET // n_nodes))


def graph_options(n_nodes: int, *, dark: bool = False) -> dict:
    """vis-network options for a graph of ``n_nodes`` nodes: forceAtlas2 physics that
    stabilises before the first draw (:func:`stabilisation_iterations`; a coarser Barnes-Hut
    for big graphs), the seeded layout
    without vis-network's slow ``improvedLayout`` above :data:`SMALL_GRAPH` nodes, labels by
    :func:`label_rules`, hover tooltips; edges hidden while dragging a big graph."""
    bg, fg = ("#0e1117", "#fafafa") if dark else ("#ffffff", "#262730")
    big = n_nodes > SMALL_GRAPH
    return {
        "edges": {
            "arrows": {"to": {"enabled": True, "scaleFactor": 0.4}},
            "smooth": False,
            "font": {"size": 8, "align": "middle", "strokeWidth": 2, "color": fg, "strokeColor": bg},
            "color": {"inherit": "from"},
        },
        "nodes": {
            "font": {"size": NODE_FONT, "color": fg, "strokeWidth": 3, "strokeColor": bg},
            "scaling": {"label": label_rules(n_nodes)},
        },
        "layout": {"improvedLayout": not big, "randomSeed": 7},
        "physics": {
            "solver": "forceAtlas2Based",
            "stabilization": {"enabled": True, "iterations": stabilisation_iterations(n_nodes), "fit": True},
            "forceAtlas2Based": {
                "theta": 0.9 if big else 0.5,  # coarser Barnes-Hut: about half the time per iteration
                "gravitationalConstant": -90,
                "springLength": 110,
                "springConstant": 0.05,
                "avoidOverlap": 0.8,
            },
        },
        "interaction": {"hover": True, "tooltipDelay": 80, "navigationButtons": False, "hideEdgesOnDrag": big},
    }


def graph_html(nodes: list[dict], edges: list[dict], *, height: int = 620, dark: bool = False) -> str:
    """A self-contained HTML page (vis-network inline, no remote resource) drawing the graph."""
    import json

    from pyvis.network import Network

    bg, fg = ("#0e1117", "#fafafa") if dark else ("#ffffff", "#262730")
    net = Network(height=f"{height}px", width="100%", directed=True, cdn_resources="in_line", bgcolor=bg, font_color=fg)
    for n in nodes:
        vn = vis_node(n, dark=dark)
        net.add_node(vn.pop("id"), **vn)
    labelled = len(edges) <= EDGE_LABELS_UP_TO
    names = {n["id"]: n["title"].split("\n")[0] for n in nodes}
    for e in edges:
        ve = vis_edge(e, names=names, labelled=labelled)
        net.add_edge(ve.pop("from"), ve.pop("to"), **ve)
    net.set_options(json.dumps(graph_options(len(nodes), dark=dark)))
    html = strip_remote(net.generate_html())
    return html.replace("<center>\n<h1></h1>\n</center>", "").replace(
        "<center>\n          <h1></h1>\n        </center>", ""
    )
