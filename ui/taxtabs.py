"""Drawing helpers of the 🌳 Taxonomy page: which taxonomy to show, its headline numbers, the
filters (kept in the URL) and the graph and evidence tabs. Tables come from ui.taxview."""

from __future__ import annotations

import dataclasses
import html

import pandas as pd
import streamlit as st

from core.importer import is_imported
from core.runs import F, Run
from ui import data
from ui.common import guard
from ui.curation_data import curated_taxonomy, curation_stamp, curation_state
from ui.graph import FOCUS_ABOVE, RELATION_COLOURS, GraphFilter, neighbourhood_sizes
from ui.graphpick import clickable_graph, describe_selection
from ui.runview import best_method
from ui.setting import Setting
from ui.taxview import evidence_indices, exports, matching_classes, member_pairs
from ui.urlstate import MAX_PARAM_CHARS, url_widget_value, write_url

__all__ = [
    "SOURCE_KEY",
    "FOCUS_KEY",
    "WHOLE",
    "choose_taxonomy",
    "summary",
    "filters",
    "focus_picker",
    "graph_tab",
    "evidence_tab",
    "downloads",
]

SOURCE_KEY = "tax_source"
FOCUS_KEY = "tax_focus"
GRAPH_KEY = "tax_graph"  # the clickable graph's state (its selection)
WHOLE = ""  # the focus option that draws the whole taxonomy


def choose_taxonomy(run: Run, kind: str, stamp: float, setting: Setting) -> tuple[str, object, float]:
    """The "Taxonomy" selectbox over the saved taxonomies and the live one of ``setting``:
    (source label, UniversalTaxonomy, its cache stamp). It opens on the saved taxonomy of the
    run's best method (best mean universal test accuracy in the run's results; else the first)
    and stays on the live one once chosen, whatever the setting becomes. Stops the page when
    none is written."""
    rd = str(run.path)
    live = f"live: {setting.describe()} from 🔗 Relationships"
    curated = f"curated: {setting.describe()} + your decisions from ✍️ Curation"
    keys = run.methods()
    cstamp = curation_stamp(rd)
    options = [*(f"saved: {m}" for m in keys), live, *([curated] if curation_state(rd, cstamp).applied else [])]
    prev = st.session_state.get(SOURCE_KEY)
    if not isinstance(prev, str) or prev not in options:
        if isinstance(prev, str) and prev.startswith("live: "):
            st.session_state[SOURCE_KEY] = live  # the setting changed on 🔗 Relationships: follow it
        elif isinstance(prev, str) and prev.startswith("curated: ") and curated in options:
            st.session_state[SOURCE_KEY] = curated
        else:
            best = best_method((run.results_json() or {}).get("headline"), keys)
            st.session_state[SOURCE_KEY] = f"saved: {best}" if best else options[0]
    source = st.selectbox(
        "Taxonomy",
        options,
        key=SOURCE_KEY,
        help="saved: a taxonomy the run built (and trained a universal model on); live: the one the "
        "current setting of 🔗 Relationships gives, built now; curated: that setting's edges plus the ones "
        "you accepted minus the ones you rejected on ✍️ Curation. The run's best method comes first "
        "(best mean universal test accuracy).",
    )
    with guard("Building the taxonomy", "Pick another method on 🔗 Relationships, or a saved taxonomy."):
        tax_stamp = stamp
        if source.startswith("saved: "):
            tax_stamp += data.stamp_of(rd, F.taxonomy(source[7:], "taxonomy.json"))
            tax = data.saved_taxonomy(rd, source[7:], tax_stamp)
        elif source.startswith("curated: "):
            tax_stamp += cstamp
            tax = curated_taxonomy(rd, kind, setting.method, setting.value, stamp, cstamp)
        else:
            tax = data.live_taxonomy(rd, kind, setting.method, setting.value, stamp)
    if tax is None:
        st.warning("This taxonomy is not written yet; choose the live one.")
        st.stop()
    return source, tax, tax_stamp


def summary(tax, class_names: list[list[str]], relations: pd.DataFrame | None = None) -> None:
    """Four metrics: universal classes, domain classes, members per class, classes joining
    domains; then why there can be more universal classes than domain classes."""
    n_universal, n_domain = len(tax.classes), sum(len(names) for names in class_names)
    c = st.columns(4)
    c[0].metric("Universal classes", n_universal)
    c[1].metric("Domain classes", n_domain)
    c[2].metric("Members per class", f"{sum(len(m) for m in tax.classes) / max(n_universal, 1):.2f}")
    c[3].metric("Joining ≥ 2 domains", sum(len({a for a, _ in m}) > 1 for m in tax.classes))
    one_way = ""
    if relations is not None and len(relations):
        edges = set(zip(*(relations[k].tolist() for k in ("a", "i", "b", "j"))))
        n_one_way = sum((b, j, a, i) not in edges for a, i, b, j in edges)
        one_way = f" This taxonomy rests on {len(edges)} relationships, {n_one_way} of them one-way."
    st.caption(
        f"{'More' if n_universal > n_domain else 'How many'} universal classes than domain classes? "
        "The rule engine merges a bidirectional pair A ↔ B into one universal class (rule 2), but "
        "a one-way relationship A → B (B's model takes A's images for B, not the reverse) maps A "
        "to U{A, B} and B to both U{A, B} and its own U{B} (rule 4): B keeps a class of its own "
        "for the part of it A does not cover, so every one-way edge can add a universal class. And the rules "
        "merge pairs, not groups: three classes related to one another (A ↔ B ↔ C across three domains) give "
        "three pairwise universal classes, not one." + one_way
    )


def filters(names: list[str], keep: dict) -> GraphFilter:
    """Domain, search and weight filters, read from the URL on the first visit and written back
    to it with ``keep`` (the page's other URL parameters)."""
    domain_ids = list(range(len(names)))
    url_widget_value("tax_domains", "domains", domain_ids, choices=domain_ids)
    url_widget_value("tax_search", "q", "")
    url_widget_value("tax_min_w", "w", 0.0, lo=0.0, hi=1.0)
    f1, f2, f3 = st.columns([2, 2, 1])
    doms = f1.multiselect("Domains", domain_ids, format_func=lambda a: names[a], key="tax_domains")
    search = f2.text_input("Find a class", key="tax_search", placeholder="e.g. dog", max_chars=MAX_PARAM_CHARS)
    min_w = f3.slider("Min. weight", 0.0, 1.0, step=0.05, key="tax_min_w")
    write_url({**keep, "domains": ",".join(str(a) for a in doms), "q": search, "w": min_w})
    return GraphFilter(domains=tuple(doms), search=search, min_weight=min_w)


def focus_picker(tax, class_names: list[list[str]], names: list[str], flt: GraphFilter) -> GraphFilter:
    """The "Focus on" selectbox: one domain class and its neighbourhood (the universal classes it
    maps to and their members), or the whole taxonomy. A taxonomy of more than
    :data:`ui.graph.FOCUS_ABOVE` nodes opens on the class with the largest neighbourhood that
    stays readable. A search shows every match, so it draws the whole taxonomy."""
    sizes = neighbourhood_sizes(tax.mappings)
    options = [WHOLE, *sizes]
    total = len(tax.classes) + sum(len(c) for c in class_names)
    if st.session_state.get(FOCUS_KEY) not in options:
        readable = [k for k in sizes if sizes[k] <= FOCUS_ABOVE] or list(sizes)
        st.session_state[FOCUS_KEY] = (
            max(readable, key=lambda k: (sizes[k], -options.index(k))) if total > FOCUS_ABOVE and sizes else WHOLE
        )

    def label(key: str) -> str:
        if key == WHOLE:
            return f"🌐 the whole taxonomy ({total} nodes)"
        a, i = map(int, key.split(":"))
        return f"{names[a]}: {class_names[a][i]} ({sizes[key]} nodes)"

    searching = bool(flt.search.strip())
    focus = st.selectbox(
        "Focus on",
        options,
        key=FOCUS_KEY,
        format_func=label,
        disabled=searching,
        help="One domain class, the universal classes it maps to and their other members: a "
        f"readable piece of a large taxonomy (opened this way above {FOCUS_ABOVE} nodes). "
        "Disabled while a search is typed: the search shows every match.",
    )
    return dataclasses.replace(flt, focus=None if searching or focus == WHOLE else focus)


def graph_tab(nodes: list[dict], edges: list[dict], *, key: str = GRAPH_KEY) -> dict | None:
    """The interactive graph with a legend of the domains' colours and the relation types;
    returns what was last clicked (ui.graphpick.clickable_graph)."""
    legend = " ".join(
        f"<span style='color:{n['color']}'>●</span> {html.escape(str(n['group']))}"
        for n in {n["group"]: n for n in nodes if n["group"] != "universal"}.values()
    )
    n_rel = sum(e.get("kind") == "relation" for e in edges)
    relations = " ".join(f"<span style='color:{c}'>╌→</span> {r}" for r, c in RELATION_COLOURS.items())
    st.caption(
        f"{len(nodes)} nodes, {len(edges) - n_rel} mapping edges (solid: class → universal class ◆, "
        f"width = weight), {n_rel} relationships between domain classes (dashed, by type; hover "
        f"for the evidence). {legend} · {relations}",
        unsafe_allow_html=True,
    )
    if not nodes:
        st.info("Nothing matches these filters.")
        return None
    dark = getattr(st.context.theme, "type", "light") == "dark"
    picked = clickable_graph(nodes, edges, key=key, height=640, dark=dark)
    st.caption(
        f"selected: {describe_selection(picked, nodes)}"
        if picked
        else "Click a class, a universal class ◆ or an edge to select it; zoom in for every label."
    )
    return picked


def evidence_tab(
    rd: str, kind: str, stamp: float, tax, flt: GraphFilter, names: list[str], class_names: list[list[str]]
) -> None:
    """Pick a universal class joining two domains: the cross-domain counts behind it, then the
    test images behind one of its pairs."""
    merged = [u for u in matching_classes(tax, flt.domains, flt.search) if len({a for a, _ in tax.classes[u]}) > 1]
    if not merged:
        st.info("No universal class joins two domains with this setting and these filters.")
        return
    u = st.selectbox("Universal class", merged, format_func=lambda u: f"U{u} {tax.names[u]}", key="tax_u")
    pairs = member_pairs(
        tax.classes[u], data.load_matrices(rd, "count", stamp), data.load_matrices(rd, kind, stamp), class_names, names
    )
    st.dataframe(pairs.drop(columns=["a", "i", "b", "j"]), hide_index=True, width="stretch")
    if len(pairs):
        _pair_images(rd, stamp, pairs, names, class_names)


def _pair_images(rd: str, stamp: float, pairs, names: list[str], class_names: list[list[str]]) -> None:
    """The test images of one chosen pair a:i → b:j (those the b model predicted as j)."""
    k = st.selectbox(
        "Show images for",
        range(len(pairs)),
        key="tax_pair",
        format_func=lambda k: f"{pairs['from'][k]} → {pairs['seen by'][k]}",
    )
    a, i, b, j = (int(pairs[x][k]) for x in "aibj")
    idx = evidence_indices(data.load_predictions(rd, stamp), a, i, b, j)
    st.caption(
        f"{len(idx)} test images of {names[a]}: {class_names[a][i]} "
        f"were predicted as {class_names[b][j]} by the {names[b]} model."
    )
    imgs = data.test_images(rd, a, tuple(idx[:24].tolist()))
    if imgs:
        st.image(imgs, width=96)
    elif is_imported(Run(rd)):
        st.caption("No images to show: this run was imported from prediction files and has none.")


def downloads(tax, relations: pd.DataFrame | None = None) -> None:
    """One download button per export (JSON, GraphML, mappings CSV, label map and, given the
    relationships with their evidence, the edges CSV)."""
    files = exports(tax, relations)
    for col, (label, (payload, fname, mime)) in zip(st.columns(len(files)), files.items()):
        col.download_button(f"⬇️ {label}", payload, file_name=fname, mime=mime, key=f"dl_{fname}")
    if relations is not None:
        st.caption(
            "Edges CSV: one row per selected relationship a:i → b:j with its weight, its relation "
            "type (equivalent / narrower / broader / overlap) and the evidence behind it: p_ab, the "
            "share of a:i's n_ab test images that b's model calls b:j, p_ba the reverse, and the "
            "confidence that the type holds."
        )
