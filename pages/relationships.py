"""🔗 Relationships: pick a selection method and its parameter; live scores against the synthetic
ground truth, per-pair breakdown, sweep curves and the best-parameter table. The setting lives in
the URL (``?method=threshold&t=0.25``) so a view can be shared."""

import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, require_run, run_config
from ui.urlstate import coerce, url_widget_value, write_url

ensure_navigation()
st.title("🔗 Relationships")
run = require_run("crossdomain")
rd, stamp = str(run.path), data.matrices_stamp(str(run.path))
kind = (run_config(run).get("crossdomain") or {}).get("matrix", "hard")
methods = data.method_names()

url_widget_value("rel_method", "method", "threshold", choices=methods)  # first visit: the URL decides
c1, c2, c3 = st.columns([1.2, 2, 1])
method = c1.selectbox("Method", methods, key="rel_method", format_func=data.method_label)
spec = data.param_spec(method)
value = None
if spec:
    name, lo, hi, step, default = spec
    for m in (run_config(run).get("selection") or {}).get("methods") or []:  # the run's own setting
        if isinstance(m, dict) and m.get("name") == method and name in (m.get("params") or {}):
            default = coerce(m["params"][name], default, lo=lo, hi=hi)
            break
    url_widget_value(f"rel_{method}_{name}", name, default, lo=lo, hi=hi)
    helps = {"t": "Keep edges with P ≥ t.", "p": "Shortest prefix of a sorted row reaching mass p.",
             "k_max": "Largest k tested, inclusive (k = 0..k_max; the thesis code's upper_bound=5 is k_max=4)."}
    value = c2.slider(name, lo, hi, step=step, key=f"rel_{method}_{name}", help=helps.get(name))
else:
    c2.caption("This method has no parameter.")
c3.caption(f"Matrix: **{kind}** · pairs: {len(data.load_matrices(rd, kind, stamp))}")
write_url({"method": method, **({spec[0]: value} if spec else {})})

with guard("Scoring the relationships", "Check that the run's cross-domain step finished."):
    sc = data.scores(rd, kind, method, value, stamp)
    n_edges = data.edge_count(rd, kind, method, value, stamp)

setting = (method, value)
last = st.session_state.get("rel_last")
if last is None or last[0] != setting:
    st.session_state.rel_prev = last[1] if last else None
    st.session_state.rel_last = (setting, sc)
prev = st.session_state.get("rel_prev")

cols = st.columns(5)
cols[0].metric("Edges selected", f"{n_edges:,}")
if sc is None:
    st.info("ℹ️ This run has real (non-synthetic) domains: no ground truth, so no EDR/F1. "
            "The edge count and the taxonomy still follow the slider.")
else:
    for col, (key, label) in zip(cols[1:], [("edr", "EDR ↓"), ("precision", "Precision"),
                                            ("recall", "Recall"), ("f1", "F1")]):
        delta = None if not prev else round(sc[key] - prev[key], 4)
        col.metric(label, f"{sc[key]:.3f}", delta=delta, delta_color="inverse" if key == "edr" else "normal")

    # Lazy tabs: only the open one runs, so a slider move redraws only what is visible.
    tab_pairs, tab_sweep, tab_best = st.tabs(["📋 Per pair", "📈 Sweep", "🏆 Best parameters"],
                                             key="rel_tab", on_change="rerun")
    if tab_pairs.open:
        with tab_pairs, guard("The per-pair breakdown"):
            pairs = data.pair_scores(rd, kind, method, value, stamp)
            st.dataframe(pairs.rename(columns={"a": "images of", "b": "model of"}), hide_index=True, width="stretch")
    if tab_sweep.open:
        with tab_sweep, guard("The parameter sweep"):
            metric = st.segmented_control("Metric", ["f1", "edr", "precision", "recall"], default="f1",
                                          key="rel_metric") or "f1"
            with st.spinner("Sweeping every method over its parameter…"):
                fig = data.sweep_figure(rd, kind, stamp, metric)
            st.plotly_chart(fig, key="rel_sweep_chart")
            if sc is not None:
                st.caption(f"Now: {data.method_label(method)}" + (f", {spec[0]} = {value}" if spec else "")
                           + f" → {metric} = {sc[metric]:.3f}")
    if tab_best.open:
        with tab_best, guard("The best-parameter table"):
            st.caption("Each method at its best F1 on this run (the thesis's table, per run).")
            st.dataframe(data.best_table(rd, kind, stamp), hide_index=True, width="stretch")
