"""✍️ Curation: review the current setting's relationships, accept or reject them (one, many, in
bulk), add the ones no method found, undo and redo; the decisions are kept in the run
(``curation.jsonl``), become the ground truth that real data lacks (precision and recall of any
setting against them), and give the curated taxonomy: graph, downloads, and a universal model
trained on it. The setting is the one of 🔗 Relationships and lives in the URL."""

import streamlit as st

from ui import curatetabs, curateview, data
from ui import curation_data as cd
from ui.common import ensure_navigation, guard, matrix_kind, require_run, run_config
from ui.setting import setting_picker
from ui.urlstate import write_url

ensure_navigation()
st.title("✍️ Curation")
run = require_run("crossdomain")
rd, stamp, kind = str(run.path), data.matrices_stamp(str(run.path)), matrix_kind(run)

c1, c2, c3 = st.columns([1.2, 2, 1])
setting = setting_picker(run_config(run), c1, c2)
author = curateview.author_box(c3)
write_url(setting.query())
cstamp = cd.curation_stamp(rd)
with guard("Reading the decisions", "Check the run's curation.jsonl is a readable file."):
    curateview.header(run, setting, kind, stamp, cstamp, author)

tabs = dict(
    zip(
        names := [
            "🧾 Review",
            "🕸️ Graph",
            "➕ Add an edge",
            "💡 Name suggestions",
            "📜 Decisions",
            "⬇️ Export / import",
            "🎯 Train on it",
        ],
        st.tabs(names, key="cur_tab", on_change="rerun"),
    )
)
if tabs["🧾 Review"].open:
    with tabs["🧾 Review"], guard("The review table", "Check that the run's cross-domain step finished."):
        curateview.review_tab(run, setting, kind, stamp, cstamp, author)
if tabs["🕸️ Graph"].open:
    with tabs["🕸️ Graph"], guard("Drawing the curated taxonomy"):
        curatetabs.graph_tab(run, setting, kind, stamp, cstamp, author)
if tabs["➕ Add an edge"].open:
    with tabs["➕ Add an edge"], guard("Adding an edge"):
        curateview.add_tab(run, author, kind, stamp)
if tabs["💡 Name suggestions"].open:
    with tabs["💡 Name suggestions"], guard("The name suggestions"):
        curatetabs.suggestions_tab(run, setting, kind, stamp, cstamp, author)
if tabs["📜 Decisions"].open:
    with tabs["📜 Decisions"], guard("The decision history"):
        curatetabs.decisions_tab(run, cstamp)
if tabs["⬇️ Export / import"].open:
    with tabs["⬇️ Export / import"], guard("Export and import"):
        curatetabs.export_tab(run, setting, kind, stamp, cstamp, author)
if tabs["🎯 Train on it"].open:
    with tabs["🎯 Train on it"], guard("The curated model", "Check the run's curated/log.txt."):
        curatetabs.train_tab(run, setting, cstamp)
