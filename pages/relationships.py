"""🔗 Relationships: pick a selection method and its parameter; live scores against the synthetic
ground truth, per-pair breakdown, sweep curves and the best-parameter table. The setting lives in
the URL (``?method=threshold&t=0.25``) so a view can be shared."""

import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, matrix_kind, require_run, run_config
from ui.relview import score_row
from ui.setting import setting_picker
from ui.urlstate import write_url

ensure_navigation()
st.title("🔗 Relationships")
run = require_run("crossdomain")
rd, stamp, kind = str(run.path), data.matrices_stamp(str(run.path)), matrix_kind(run)

c1, c2, c3 = st.columns([1.2, 2, 1])
setting = setting_picker(run_config(run), c1, c2)  # first visit: the session, else the URL decides
method, value = setting.method, setting.value
c3.caption(f"Matrix: **{kind}** · pairs: {len(data.load_matrices(rd, kind, stamp))}")
write_url(setting.query())

with guard("Scoring the relationships", "Check that the run's cross-domain step finished."):
    sc = data.scores(rd, kind, method, value, stamp)
    n_edges = data.edge_count(rd, kind, method, value, stamp)
score_row(setting, sc, n_edges)
if sc is None:
    st.stop()

# Lazy tabs: only the open one runs, so a slider move redraws only what is visible.
tab_pairs, tab_sweep, tab_best = st.tabs(
    ["📋 Per pair", "📈 Sweep", "🏆 Best parameters"], key="rel_tab", on_change="rerun"
)
if tab_pairs.open:
    with tab_pairs, guard("The per-pair breakdown"):
        pairs = data.pair_scores(rd, kind, method, value, stamp)
        st.dataframe(pairs.rename(columns={"a": "images of", "b": "model of"}), hide_index=True, width="stretch")
if tab_sweep.open:
    with tab_sweep, guard("The parameter sweep"):
        metric = (
            st.segmented_control("Metric", ["f1", "edr", "precision", "recall"], default="f1", key="rel_metric") or "f1"
        )
        with st.spinner("Sweeping every method over its parameter…"):
            fig = data.sweep_figure(rd, kind, stamp, metric)
        st.plotly_chart(fig, key="rel_sweep_chart")
        st.caption(
            f"Now: {data.method_label(method)}"
            + (f", {setting.param} = {value}" if setting.param else "")
            + f" → {metric} = {sc[metric]:.3f}"
        )
if tab_best.open:
    with tab_best, guard("The best-parameter table"):
        st.caption("Each method at its best F1 on this run (the thesis's table, per run).")
        st.dataframe(data.best_table(rd, kind, stamp), hide_index=True, width="stretch")
