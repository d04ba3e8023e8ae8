"""🌳 Taxonomy: the universal taxonomy as an interactive graph (its relationships coloured by
type, with their evidence), its classes, the evidence behind a universal class, and downloads
(JSON, GraphML, CSV mappings, label_map, edges). It opens on the run's best method; the live
taxonomy follows the current setting of 🔗 Relationships; setting and filters live in the URL."""

import streamlit as st

from ui import data, evidence_data
from ui.common import ensure_navigation, guard, matrix_kind, require_run, run_config
from ui.setting import current_setting
from ui.taxtabs import choose_taxonomy, downloads, evidence_tab, filters, focus_picker, graph_tab, summary
from ui.taxview import matching_classes, universal_table

ensure_navigation()
st.title("🌳 Universal taxonomy")
run = require_run("crossdomain")
rd, stamp, kind = str(run.path), data.matrices_stamp(str(run.path)), matrix_kind(run)
names, class_names = data.domain_info(rd)
setting = current_setting(run_config(run))
source, tax, tax_stamp = choose_taxonomy(run, kind, stamp, setting)
try:
    relations = evidence_data.relation_table(rd, source, kind, setting.method, setting.value, tax_stamp)
except Exception as exc:  # noqa: BLE001 - the evidence is extra: the taxonomy is still worth showing
    relations = None
    st.caption(
        f"⚠️ The relationships' evidence cannot be read ({type(exc).__name__}: {exc}); the graph shows the mappings."
    )
summary(tax, class_names, relations)
flt = filters(names, keep=setting.query())  # a reload keeps the filters and the live setting

tab_graph, tab_table, tab_evidence, tab_dl = st.tabs(
    ["🕸️ Graph", "📋 Classes", "🔎 Evidence", "⬇️ Downloads"], key="tax_tab", on_change="rerun"
)  # lazy: only the open tab runs
if tab_graph.open:
    with tab_graph, guard("Drawing the graph"):
        focused = focus_picker(tax, class_names, names, flt)
        with st.spinner("Laying out the graph…"):
            nodes, edges = evidence_data.graph_data(rd, source, tax_stamp, focused, tax, class_names, names, relations)
            graph_tab(nodes, edges)
if tab_table.open:
    with tab_table, guard("The class table"):
        table = universal_table(tax, class_names, names)
        st.dataframe(table.iloc[matching_classes(tax, flt.domains, flt.search)], hide_index=True, width="stretch")
if tab_evidence.open:
    with tab_evidence, guard("The evidence view"):
        evidence_tab(rd, kind, stamp, tax, flt, names, class_names)
if tab_dl.open:
    with tab_dl, guard("Preparing the downloads"):
        downloads(tax, relations)
