"""The taxonomy graph as a clickable Streamlit component (custom components v2, vis-network inline).

:func:`clickable_graph` draws the nodes and edges of :func:`ui.graph.graph_elements` like the
pyvis page of :func:`ui.graph.graph_html`, and returns the node or edge last clicked to Python.
vis-network 9.1.2 is read from the installed pyvis package and inlined into the component's
JavaScript module (no CDN, no network). Readable at the thesis's size: labels are drawn only
once zoomed in, except those of the emphasised nodes (focus, search match, selection, hover),
which keep a readable on-screen size; the physics stabilises once, then stops.

The pure parts (:func:`component_data`, :func:`search_target`, :func:`emphasised`,
:func:`selection`, :func:`describe_selection`) import no streamlit and are unit-tested.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from ui.graph import EDGE_LABELS_UP_TO, NODE_FONT, SMALL_GRAPH, graph_options, vis_edge, vis_node

__all__ = [
    "COMPONENT_NAME",
    "READABLE_PX",
    "CENTRE_SCALE",
    "clickable_graph",
    "component_data",
    "search_target",
    "emphasised",
    "selection",
    "describe_selection",
    "vis_js",
]

COMPONENT_NAME = "unitax_graph"
READABLE_PX = 12  # on-screen font of an emphasised node's label at any zoom
CENTRE_SCALE = 1.0  # zoom (at least) when centring on a node: its neighbourhood's labels are drawn
STATE = "selection"  # the component's one state value


# ----------------------------------------------------------------------------- pure parts


def search_target(nodes: list[dict], text: str | None = None) -> str | None:
    """The node a search centres on, or None. With ``text``: nodes whose name (``name``, else
    ``label``) contains it, case-insensitive; without: the nodes graph_elements flagged
    ``match``. Among them: an exact name first, then a name starting with the text, then domain
    classes before universal classes, then graph order."""
    needle = (text or "").strip().lower()
    if text is not None and not needle:
        return None

    def name(n: dict) -> str:
        return str(n.get("name", n.get("label", ""))).lower()

    hits = [n for n in nodes if needle in name(n)] if needle else [n for n in nodes if n.get("match")]
    if not hits:
        return None
    order = {id(n): k for k, n in enumerate(hits)}
    best = min(
        hits,
        key=lambda n: (
            name(n) != needle if needle else False,
            not name(n).startswith(needle) if needle else False,
            str(n["id"]).startswith("u:"),
            order[id(n)],
        ),
    )
    return str(best["id"])


def _neighbours(node_id: str, edges: list[dict]) -> list[str]:
    out = []
    for e in edges:
        if e["source"] == node_id:
            out.append(e["target"])
        elif e["target"] == node_id:
            out.append(e["source"])
    return out


def emphasised(
    nodes: list[dict], edges: list[dict], *, centre: str | None = None, selected: dict | None = None
) -> list[str]:
    """Ids of the nodes whose labels stay readable at any zoom (sorted): the focused class, the
    centred node and the selected node, each with its direct neighbours; the two ends of a
    selected edge. Ids not in ``nodes`` are left out."""
    ids = {str(n["id"]) for n in nodes}
    seeds = [str(n["id"]) for n in nodes if n.get("focus")]
    if centre is not None:
        seeds.append(centre)
    out: set[str] = set()
    if selected and "node" in selected:
        seeds.append(str(selected["node"]))
    elif selected and "edge" in selected:
        out.update((str(selected["edge"]["from"]), str(selected["edge"]["to"])))
    for s in seeds:
        out.add(s)
        out.update(_neighbours(s, edges))
    return sorted(out & ids)


def _edge_key(e: dict) -> tuple[str, str, str]:
    return str(e["source"]), str(e["target"]), str(e.get("kind", "mapping"))


def selection(value: object, nodes: list[dict], edges: list[dict]) -> dict | None:
    """The component's raw state value checked against the drawn graph: ``{"node": id}`` or
    ``{"edge": {"from", "to", "kind"}}`` when that node or edge is drawn, else None (nothing
    clicked yet, the background clicked, or the graph changed under a stale selection)."""
    if not isinstance(value, dict):
        return None
    if "node" in value:
        node = str(value["node"])
        return {"node": node} if any(str(n["id"]) == node for n in nodes) else None
    edge = value.get("edge")
    if isinstance(edge, dict) and {"from", "to", "kind"} <= edge.keys():
        key = (str(edge["from"]), str(edge["to"]), str(edge["kind"]))
        if any(_edge_key(e) == key for e in edges):
            return {"edge": {"from": key[0], "to": key[1], "kind": key[2]}}
    return None


def describe_selection(picked: dict | None, nodes: list[dict]) -> str:
    """One line naming a selection: the node's tooltip headline, or ``X → Y (kind)``."""
    if not picked:
        return "nothing"
    heads = {str(n["id"]): str(n["title"]).split("\n")[0] for n in nodes}
    if "node" in picked:
        return heads.get(picked["node"], picked["node"])
    e = picked["edge"]
    return f"{heads.get(e['from'], e['from'])} → {heads.get(e['to'], e['to'])} ({e['kind']})"


def component_data(
    nodes: list[dict],
    edges: list[dict],
    *,
    height: int = 640,
    dark: bool = False,
    centre: str | None = None,
    selected: dict | None = None,
) -> dict:
    """Everything the component's JavaScript receives (JSON):

    - ``graph_id``: a hash of nodes, edges and options; the page rebuilds (and lays out) the
      network only when it changes, so a click or a new centre keeps the layout;
    - ``nodes``: :func:`ui.graph.vis_node` dicts; ``edges``: :func:`ui.graph.vis_edge` dicts
      plus ``id`` (``"e<k>"``) and ``kind`` (``"mapping"`` / ``"relation"``);
    - ``options``: :func:`ui.graph.graph_options`;
    - ``centre``: the node to centre on and select (None: fit the whole graph), ``centre_scale``;
    - ``emphasis``: :func:`emphasised` ids; ``selected``: the current :func:`selection`;
    - ``label``: ``{font, readable_px}``; ``height`` (px), ``dark``.
    """
    if int(height) < 100:
        raise ValueError(f"height must be at least 100 px, got {height}")
    ids = {str(n["id"]) for n in nodes}
    if centre is not None and centre not in ids:
        raise ValueError(f"centre {centre!r} is not a node of the graph")
    labelled = len(edges) <= EDGE_LABELS_UP_TO
    names = {n["id"]: n["title"].split("\n")[0] for n in nodes}
    vnodes = [vis_node(n, dark=dark) for n in nodes]
    vedges = [
        {"id": f"e{k}", "kind": e.get("kind", "mapping"), **vis_edge(e, names=names, labelled=labelled)}
        for k, e in enumerate(edges)
    ]
    options = graph_options(len(nodes), dark=dark)
    blob = json.dumps([vnodes, vedges, options], sort_keys=True, separators=(",", ":"))
    return {
        "graph_id": hashlib.sha1(blob.encode()).hexdigest()[:16],
        "nodes": vnodes,
        "edges": vedges,
        "options": options,
        "centre": centre,
        "centre_scale": CENTRE_SCALE,
        "emphasis": emphasised(nodes, edges, centre=centre, selected=selected),
        "selected": selected,
        "label": {"font": NODE_FONT, "readable_px": READABLE_PX, "small_graph": SMALL_GRAPH},
        "height": int(height),
        "dark": bool(dark),
    }


# ----------------------------------------------------------------------------- the component

_CSS = """
.ux-graph { position: relative; width: 100%; box-sizing: border-box;
  border: 1px solid var(--st-border-color, #d6d6d9); border-radius: var(--st-base-radius, 6px); }
.ux-graph .vis-network:focus { outline: none; }
.ux-graph div.vis-tooltip { position: absolute; visibility: hidden; pointer-events: none; z-index: 5;
  padding: 5px 8px; white-space: nowrap; font-family: var(--st-font, sans-serif); font-size: 13px;
  color: #262730; background: #f8f8f4; border: 1px solid #9a9a8e; border-radius: 4px;
  box-shadow: 2px 2px 8px rgba(0, 0, 0, 0.2); }
.ux-graph.dark div.vis-tooltip { color: #fafafa; background: #262730; border-color: #555; }
"""

# The component's module. ``vis`` is bound by the inlined vis-network bundle (prepended).
# Test hook: the graph's <div class="ux-graph"> carries the network as ``uxNetwork``,
# ``data-ready="1"`` once the layout has settled and ``data-layout-ms`` (build + layout time).
_JS = r"""
const HOLDER = "__unitaxGraph";

function box(root, data) {
  let el = root.querySelector("div.ux-graph");
  if (!el) {
    el = document.createElement("div");
    el.className = "ux-graph";
    root.appendChild(el);
  }
  el.style.height = data.height + "px";
  el.classList.toggle("dark", !!data.dark);
  return el;
}

function refreshLabels(g) {
  // Emphasised (and hovered) nodes keep a readable on-screen label; others follow drawThreshold.
  const scale = g.network.getScale() || 1;
  const want = new Set(g.emphasis);
  if (g.hover !== null) want.add(g.hover);
  const size = Math.min(Math.max(g.font, g.readable / scale), g.font * 12);
  const updates = [];
  for (const id of g.enlarged) if (!want.has(id) && g.nodes.get(id)) updates.push({ id, font: { size: g.font } });
  for (const id of want) if (g.nodes.get(id)) updates.push({ id, font: { size } });
  g.enlarged = want;
  if (updates.length) g.nodes.update(updates);
}

function centreOn(g, id) {
  if (id === null || !g.nodes.get(id)) {
    g.network.fit({ animation: false });
    return;
  }
  const scale = Math.max(g.network.getScale(), g.centreScale);
  g.network.focus(id, { scale, animation: { duration: 400, easingFunction: "easeInOutQuad" } });
}

function showSelection(g) {
  const sel = g.selected;
  if (sel && sel.node !== undefined && g.nodes.get(sel.node)) {
    g.network.setSelection({ nodes: [sel.node], edges: [] }, { unselectAll: true, highlightEdges: false });
  } else if (sel && sel.edge) {
    const id = g.edgeIndex.get(sel.edge.from + "\u0000" + sel.edge.to + "\u0000" + sel.edge.kind);
    if (id !== undefined) g.network.setSelection({ nodes: [], edges: [id] }, { unselectAll: true });
  } else if (g.centre !== null && g.nodes.get(g.centre)) {
    g.network.setSelection({ nodes: [g.centre], edges: [] }, { unselectAll: true, highlightEdges: false });
  }
}

function build(root, data) {
  const el = box(root, data);
  const started = performance.now();
  const nodes = new vis.DataSet(data.nodes);
  const edges = new vis.DataSet(data.edges);
  const network = new vis.Network(el, { nodes, edges }, data.options);
  const g = {
    network, nodes, edges, el, graphId: data.graph_id, font: data.label.font, readable: data.label.readable_px,
    emphasis: [], enlarged: new Set(), hover: null, centre: null, centreScale: 1, selected: null,
    ready: false, dead: false, pending: null, send: null, edgeIndex: new Map(),
  };
  for (const e of data.edges) g.edgeIndex.set(e.from + "\u0000" + e.to + "\u0000" + e.kind, e.id);
  el.uxNetwork = network;
  el.dataset.ready = "0";
  const settle = () => {
    if (g.ready || g.dead) return;
    g.ready = true;
    network.setOptions({ physics: { enabled: false } });
    centreOn(g, g.centre);
    showSelection(g);
    refreshLabels(g);
    el.dataset.layoutMs = String(Math.round(performance.now() - started));
    el.dataset.ready = "1";
  };
  network.once("stabilizationIterationsDone", settle);
  network.once("stabilized", settle);
  setTimeout(settle, 60000);  // never left half-ready, whatever the physics does
  network.on("click", (p) => {
    const at = p.pointer && p.pointer.DOM;
    let value = null;
    const node = at ? network.getNodeAt(at) : undefined;
    if (node !== undefined) {
      value = { node: String(node) };
    } else {
      const id = at ? network.getEdgeAt(at) : undefined;
      const e = id !== undefined ? edges.get(id) : null;
      if (e) value = { edge: { from: String(e.from), to: String(e.to), kind: String(e.kind) } };
    }
    g.selected = value;
    if (g.send) g.send(value);
  });
  network.on("zoom", () => refreshLabels(g));
  network.on("hoverNode", (p) => { g.hover = String(p.node); refreshLabels(g); });
  network.on("blurNode", () => { g.hover = null; refreshLabels(g); });
  return g;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let g = parentElement[HOLDER];
  if (g && g.pending !== null) {
    clearTimeout(g.pending);
    g.pending = null;
  }
  if (!g || g.graphId !== data.graph_id) {
    if (g) {
      g.dead = true;
      g.network.destroy();
      g.el.remove();
    }
    g = build(parentElement, data);
    parentElement[HOLDER] = g;
  } else {
    box(parentElement, data);
  }
  g.send = (value) => setStateValue("selection", value);
  g.emphasis = data.emphasis || [];
  g.centreScale = data.centre_scale || 1;
  g.selected = data.selected || null;
  const centre = data.centre === undefined ? null : data.centre;
  const moved = centre !== g.centre;
  g.centre = centre;
  if (g.ready) {
    if (moved && centre !== null) centreOn(g, centre);
    showSelection(g);
    refreshLabels(g);
  }
  return () => {
    // Streamlit calls this before every new render too: destroy only if no render follows.
    g.pending = setTimeout(() => {
      if (parentElement[HOLDER] === g) {
        g.dead = true;
        g.network.destroy();
        g.el.remove();
        delete parentElement[HOLDER];
      }
    }, 1500);
  };
}
"""


def _vis_path() -> Path:
    import pyvis

    return Path(pyvis.__file__).parent / "templates" / "lib" / "vis-9.1.2" / "vis-network.min.js"


@functools.cache
def vis_js() -> str:
    """The component's JavaScript module: pyvis's vis-network 9.1.2 bundle run as CommonJS into
    a local ``vis`` (no global, no source-map request), then the component's code."""
    bundle = _vis_path().read_text(encoding="utf-8")
    # split on "\n" only: the bundle's string literals hold other line separators (U+2028, ...)
    bundle = "\n".join(line for line in bundle.split("\n") if not line.startswith("//# sourceMappingURL"))
    if "Network" not in bundle:
        raise ValueError(f"{_vis_path()} does not look like the vis-network bundle")
    return (
        "const vis = {};\n"
        "(function (exports, module, define) {\n" + bundle + "\n}).call(undefined, vis, { exports: vis }, undefined);\n"
        "if (typeof vis.Network !== 'function') { throw new Error('vis-network did not load'); }\n" + _JS
    )


@functools.cache
def _component():
    import streamlit as st

    return st.components.v2.component(COMPONENT_NAME, css=_CSS, js=vis_js())


def clickable_graph(
    nodes: list[dict],
    edges: list[dict],
    *,
    key: str,
    height: int = 640,
    dark: bool = False,
    centre: str | None = None,
) -> dict | None:
    """Draw the graph (``graph_elements`` nodes and edges) and return what was last clicked:
    ``{"node": "0:3"}`` / ``{"node": "u:5"}``, or ``{"edge": {"from": "0:3", "to": "1:5",
    "kind": "relation"}}`` (``"mapping"`` edges go from a class to ``"u:k"``); None before any
    click, after a click on the background, or when the clicked node or edge is no longer
    drawn. The selection persists across reruns (component state under ``key``); a click
    reruns the script. ``centre``: a node id to centre on (zoom >= :data:`CENTRE_SCALE`; it is
    also selected while nothing is clicked), default the search match (:func:`search_target` of
    the nodes flagged ``match``); None: the whole graph is fitted. The view moves only when the
    centre changes; a click never re-lays out the graph (only a change of nodes or edges does).
    """
    if centre is None:
        centre = search_target(nodes)
    raw = _current_state(key)
    picked = selection(raw, nodes, edges)
    result = _component()(
        key=key,
        data=component_data(nodes, edges, height=height, dark=dark, centre=centre, selected=picked),
        default={STATE: None},
        height=int(height),
        on_selection_change=lambda: None,
    )
    return selection(result.get(STATE), nodes, edges) if result is not None else None


def _current_state(key: str) -> object:
    """The selection stored for ``key`` before this run draws the component (None if none)."""
    import streamlit as st

    try:
        value = st.session_state[key]
    except (KeyError, AttributeError):
        return None
    return value.get(STATE) if isinstance(value, dict) else None
