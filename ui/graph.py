"""The universal taxonomy as a self-contained interactive graph (pyvis / vis-network).

Everything is inline: pyvis 0.3.2 with ``cdn_resources="in_line"`` still links Bootstrap from a
CDN, so those tags are stripped; node ids are strings (pyvis draws no integer labels).
No streamlit import: the functions return plain data / HTML and are unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["DOMAIN_COLOURS", "GraphFilter", "graph_elements", "graph_html", "strip_remote"]

# Colour-blind friendly palette (Okabe-Ito); universal classes get a neutral dark grey.
DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
UNIVERSAL_COLOUR = "#3d3d5c"
_REMOTE_TAG = re.compile(r"<(link|script)\b[^>]*?(?:href|src)\s*=\s*[\"']https?://[^>]*>(?:\s*</script>)?", re.S)


@dataclass(frozen=True)
class GraphFilter:
    """What to draw. domains: domain indices kept (None = all); search: case-insensitive text
    that a universal class or one of its members must contain; min_weight: edges below dropped."""

    domains: tuple[int, ...] | None = None
    search: str = ""
    min_weight: float = 0.0
    max_universal: int = 400  # browsers struggle above a few thousand nodes; show the first N


def graph_elements(
    mappings: list[np.ndarray],
    universal_names: list[str],
    class_names: list[list[str]],
    domain_names: list[str],
    *,
    flt: GraphFilter = GraphFilter(),
) -> tuple[list[dict], list[dict]]:
    """Nodes and edges of the taxonomy graph after filtering.

    mappings: one (K_a, U) array per domain, ``M_a[i, u]`` = weight of a:i in universal class u.
    Returns (nodes, edges): node dicts {id, label, title, color, shape, group}; edge dicts
    {source, target, weight}. Domain-class ids are ``"a:i"``, universal ids ``"u:k"``.
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
    return nodes, edges


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
            edges.append({"source": f"{a}:{i}", "target": f"u:{u}", "weight": w})
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
    }


def _class_node(a: int, i: int, class_names, domain_names) -> dict:
    return {
        "id": f"{a}:{i}",
        "label": str(class_names[a][i]),
        "title": f"{domain_names[a]} · class {i}: {class_names[a][i]}",
        "color": DOMAIN_COLOURS[a % len(DOMAIN_COLOURS)],
        "shape": "dot",
        "group": domain_names[a],
    }


_DEAD_COMMENT = re.compile(r"<!--\s*<link[^>]*node_modules.*?-->", re.S)


def strip_remote(html: str) -> str:
    """Remove every <link>/<script> tag that loads from http(s) (pyvis's Bootstrap CDN tags) and
    pyvis's commented-out node_modules tags."""
    return _DEAD_COMMENT.sub("", _REMOTE_TAG.sub("", html))


def graph_html(nodes: list[dict], edges: list[dict], *, height: int = 620, dark: bool = False) -> str:
    """A self-contained HTML page (vis-network inline, no remote resource) drawing the graph."""
    from pyvis.network import Network

    bg, fg = ("#0e1117", "#fafafa") if dark else ("#ffffff", "#262730")
    net = Network(height=f"{height}px", width="100%", directed=True, cdn_resources="in_line", bgcolor=bg, font_color=fg)
    for n in nodes:
        colour = "#b8b8e0" if dark and n["color"] == UNIVERSAL_COLOUR else n["color"]
        net.add_node(
            n["id"],
            label=n["label"],
            title=n["title"],
            color=colour,
            shape=n["shape"],
            size=18 if n["shape"] == "diamond" else 12,
        )
    for e in edges:
        net.add_edge(
            e["source"],
            e["target"],
            title=f"weight {e['weight']:.2f}",
            label=f"{e['weight']:.2f}",
            width=0.5 + 3 * e["weight"],
        )
    net.set_options(_OPTIONS.replace("__FG__", fg).replace("__BG__", bg))
    html = strip_remote(net.generate_html())
    return html.replace("<center>\n<h1></h1>\n</center>", "").replace(
        "<center>\n          <h1></h1>\n        </center>", ""
    )


_OPTIONS = """{
  "edges": {"arrows": {"to": {"enabled": true, "scaleFactor": 0.4}}, "smooth": false,
            "font": {"size": 8, "align": "middle", "strokeWidth": 2,
                     "color": "__FG__", "strokeColor": "__BG__"}, "color": {"inherit": "from"}},
  "nodes": {"font": {"size": 12, "color": "__FG__"}},
  "physics": {"solver": "forceAtlas2Based", "stabilization": {"iterations": 150, "fit": true},
              "forceAtlas2Based": {"gravitationalConstant": -40, "springLength": 60}},
  "interaction": {"hover": true, "tooltipDelay": 80, "navigationButtons": false}
}"""
