"""🌳 Taxonomy: the universal taxonomy as an interactive graph, its classes, the evidence behind
a universal class, and downloads (JSON, GraphML, CSV mappings, label_map)."""

import streamlit as st

from core.runs import F
from ui import data
from ui.common import ensure_navigation, guard, require_run, run_config
from ui.graph import GraphFilter
from ui.taxview import evidence_indices, exports, matching_classes, member_pairs, universal_table
from ui.urlstate import MAX_PARAM_CHARS, coerce, url_widget_value, write_url

ensure_navigation()
st.title("🌳 Universal taxonomy")
run = require_run("crossdomain")
rd, stamp = str(run.path), data.matrices_stamp(str(run.path))
kind = (run_config(run).get("crossdomain") or {}).get("matrix", "hard")
names, class_names = data.domain_info(rd)

saved = run.methods()
live_method = coerce(st.session_state.get("rel_method"), "threshold", choices=data.method_names())
spec = data.param_spec(live_method)
live_value = coerce(st.session_state.get(f"rel_{live_method}_{spec[0]}"), spec[4], lo=spec[1], hi=spec[2]) if spec else None
live_label = f"live: {live_method}" + (f" ({spec[0]}={live_value})" if spec else "") + " from 🔗 Relationships"
source = st.selectbox("Taxonomy", [*(f"saved: {m}" for m in saved), live_label], key="tax_source")
with guard("Building the taxonomy", "Pick another method on 🔗 Relationships, or a saved taxonomy."):
    tax_stamp = stamp
    if source.startswith("saved: "):
        tax_stamp += data.stamp_of(rd, F.taxonomy(source[7:], "taxonomy.json"))
        tax = data.saved_taxonomy(rd, source[7:], tax_stamp)
    else:
        tax = data.live_taxonomy(rd, kind, live_method, live_value, stamp)
if tax is None:
    st.warning("This taxonomy is not written yet; choose the live one.")
    st.stop()

n_dom_classes = sum(len(c) for c in class_names)
c = st.columns(4)
c[0].metric("Universal classes", len(tax.classes))
c[1].metric("Domain classes", n_dom_classes)
c[2].metric("Members per class", f"{sum(len(m) for m in tax.classes) / max(len(tax.classes), 1):.2f}")
c[3].metric("Joining ≥ 2 domains", sum(len({a for a, _ in m}) > 1 for m in tax.classes))

domain_ids = list(range(len(names)))  # the filters live in the URL (a reload keeps them)
url_widget_value("tax_domains", "domains", domain_ids, choices=domain_ids)
url_widget_value("tax_search", "q", "")
url_widget_value("tax_min_w", "w", 0.0, lo=0.0, hi=1.0)
f1, f2, f3 = st.columns([2, 2, 1])
doms = f1.multiselect("Domains", domain_ids, format_func=lambda a: names[a], key="tax_domains")
search = f2.text_input("Find a class", key="tax_search", placeholder="e.g. dog", max_chars=MAX_PARAM_CHARS)
min_w = f3.slider("Min. weight", 0.0, 1.0, step=0.05, key="tax_min_w")
write_url({"domains": ",".join(str(a) for a in doms), "q": search, "w": min_w})
flt = GraphFilter(domains=tuple(doms), search=search, min_weight=min_w)

tab_graph, tab_table, tab_evidence, tab_dl = st.tabs(["🕸️ Graph", "📋 Classes", "🔎 Evidence", "⬇️ Downloads"],
                                                     key="tax_tab", on_change="rerun")  # lazy: only the open tab runs
if tab_graph.open:
    with tab_graph, guard("Drawing the graph"):
        nodes, edges = data.graph_data(rd, source, tax_stamp, flt, tax, class_names, names)
        legend = " ".join(f"<span style='color:{n['color']}'>●</span> {n['group']}"
                          for n in {n["group"]: n for n in nodes if n["group"] != "universal"}.values())
        st.caption(f"{len(nodes)} nodes, {len(edges)} edges. ◆ universal class; {legend}", unsafe_allow_html=True)
        if not nodes:
            st.info("Nothing matches these filters.")
        else:
            dark = getattr(st.context.theme, "type", "light") == "dark"
            st.iframe(data.cached_graph_html(nodes, edges, dark), height=640, alt="universal taxonomy graph")
if tab_table.open:
    with tab_table, guard("The class table"):
        table = universal_table(tax, class_names, names)
        st.dataframe(table.iloc[matching_classes(tax, tuple(doms), search)], hide_index=True, width="stretch")
if tab_evidence.open:
    with tab_evidence, guard("The evidence view"):
        merged = [u for u in matching_classes(tax, tuple(doms), search)
                  if len({a for a, _ in tax.classes[u]}) > 1]
        if not merged:
            st.info("No universal class joins two domains with this setting and these filters.")
        else:
            u = st.selectbox("Universal class", merged, format_func=lambda u: f"U{u} {tax.names[u]}", key="tax_u")
            pairs = member_pairs(tax.classes[u], data.load_matrices(rd, "count", stamp),
                                 data.load_matrices(rd, kind, stamp), class_names, names)
            st.dataframe(pairs.drop(columns=["a", "i", "b", "j"]), hide_index=True, width="stretch")
            if len(pairs):
                k = st.selectbox("Show images for", range(len(pairs)), key="tax_pair",
                                 format_func=lambda k: f"{pairs['from'][k]} → {pairs['seen by'][k]}")
                a, i, b, j = (int(pairs[x][k]) for x in "aibj")
                idx = evidence_indices(data.load_predictions(rd, stamp), a, i, b, j)
                st.caption(f"{len(idx)} test images of {names[a]}: {class_names[a][i]} "
                           f"were predicted as {class_names[b][j]} by the {names[b]} model.")
                imgs = data.test_images(rd, a, tuple(idx[:24].tolist()))
                if imgs:
                    st.image(imgs, width=96)
if tab_dl.open:
    with tab_dl, guard("Preparing the downloads"):
        cols = st.columns(4)
        for col, (label, (payload, fname, mime)) in zip(cols, exports(tax).items()):
            col.download_button(f"⬇️ {label}", payload, file_name=fname, mime=mime, key=f"dl_{fname}")
