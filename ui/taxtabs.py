"""Drawing helpers of the 🌳 Taxonomy page: which taxonomy to show, its headline numbers, the
filters (kept in the URL) and the graph and evidence tabs. Tables come from ui.taxview."""

from __future__ import annotations

import streamlit as st

from core.runs import F, Run
from ui import data
from ui.common import guard
from ui.graph import GraphFilter
from ui.setting import Setting
from ui.taxview import evidence_indices, exports, matching_classes, member_pairs
from ui.urlstate import MAX_PARAM_CHARS, url_widget_value, write_url

__all__ = ["choose_taxonomy", "summary", "filters", "graph_tab", "evidence_tab", "downloads"]


def choose_taxonomy(run: Run, kind: str, stamp: float, setting: Setting) -> tuple[str, object, float]:
    """The "Taxonomy" selectbox over the saved taxonomies and the live one of ``setting``:
    (source label, UniversalTaxonomy, its cache stamp). Stops the page when none is written."""
    rd = str(run.path)
    live = f"live: {setting.describe()} from 🔗 Relationships"
    source = st.selectbox("Taxonomy", [*(f"saved: {m}" for m in run.methods()), live], key="tax_source")
    with guard("Building the taxonomy", "Pick another method on 🔗 Relationships, or a saved taxonomy."):
        tax_stamp = stamp
        if source.startswith("saved: "):
            tax_stamp += data.stamp_of(rd, F.taxonomy(source[7:], "taxonomy.json"))
            tax = data.saved_taxonomy(rd, source[7:], tax_stamp)
        else:
            tax = data.live_taxonomy(rd, kind, setting.method, setting.value, stamp)
    if tax is None:
        st.warning("This taxonomy is not written yet; choose the live one.")
        st.stop()
    return source, tax, tax_stamp


def summary(tax, class_names: list[list[str]]) -> None:
    """Four metrics: universal classes, domain classes, members per class, classes joining domains."""
    c = st.columns(4)
    c[0].metric("Universal classes", len(tax.classes))
    c[1].metric("Domain classes", sum(len(names) for names in class_names))
    c[2].metric("Members per class", f"{sum(len(m) for m in tax.classes) / max(len(tax.classes), 1):.2f}")
    c[3].metric("Joining ≥ 2 domains", sum(len({a for a, _ in m}) > 1 for m in tax.classes))


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


def graph_tab(nodes: list[dict], edges: list[dict]) -> None:
    """The interactive graph with a legend of the domains' colours."""
    legend = " ".join(
        f"<span style='color:{n['color']}'>●</span> {n['group']}"
        for n in {n["group"]: n for n in nodes if n["group"] != "universal"}.values()
    )
    st.caption(f"{len(nodes)} nodes, {len(edges)} edges. ◆ universal class; {legend}", unsafe_allow_html=True)
    if not nodes:
        st.info("Nothing matches these filters.")
        return
    dark = getattr(st.context.theme, "type", "light") == "dark"
    st.iframe(data.cached_graph_html(nodes, edges, dark), height=640, alt="universal taxonomy graph")


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


def downloads(tax) -> None:
    """One download button per export (JSON, GraphML, mappings CSV, label map)."""
    for col, (label, (payload, fname, mime)) in zip(st.columns(4), exports(tax).items()):
        col.download_button(f"⬇️ {label}", payload, file_name=fname, mime=mime, key=f"dl_{fname}")
