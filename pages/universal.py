"""🎯 Universal model: train it for one or several selection methods (a background job), watch
the training curves, compare with the baselines (table + bars) and look at the embedding."""

import copy

import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, require_run, run_config
from ui.jobs import job_panel, launch
from ui.plots import class_labels, embedding_scatter, history_curves, results_bars

ensure_navigation()
st.title("🎯 Universal model")
run = require_run("crossdomain")
cfg = run_config(run)
status = run.status()

with st.expander("🏋️ Train for other selection methods", expanded=not run.has("universal")):
    methods = st.multiselect("Methods", data.method_names(), default=["mcfp"],
                             format_func=data.method_label, key="uni_methods")
    specs = []
    for m in methods:
        spec = data.param_spec(m)
        params = {}
        if spec:
            name, lo, hi, step, default = spec
            params[name] = st.slider(f"{m}: {name}", lo, hi, default, step, key=f"uni_{m}_{name}")
        specs.append({"name": m, "params": params})
    busy = status["state"] in ("running", "pending")
    if st.button("Train in the background", type="primary", disabled=busy or not specs, key="uni_train"):
        new = copy.deepcopy(cfg)
        new.setdefault("selection", {})["methods"] = specs
        if launch(new, run_id=run.id, from_step="selection"):
            st.rerun()

if status["state"] in ("running", "pending"):
    job_panel(run.id, live_curves=True)

trained = [m for m in run.methods() if run.history(m) is not None]
if trained:
    st.subheader("Training curves")
    cols = st.columns(min(3, len(trained)))
    for col, m in zip(cols * 4, trained):
        with col, guard(f"The history of {m}"):
            st.plotly_chart(history_curves(run.history(m), title=m), key=f"uni_hist_{m}")

results = run.results()
if results is None:
    st.info("⏳ The results table appears when the run's **results** step has finished.")
    st.stop()
st.subheader("Baseline vs universal (test accuracy)")
with guard("Reading the results table"):
    first = results.columns[0]
    acc = [c for c in results.select_dtypes("number").columns if c == "baseline" or c.startswith("universal")]
    st.dataframe(results.style.highlight_max(axis=1, subset=acc, color="#2e7d3240").format(precision=3, subset=acc),
                 hide_index=True, width="stretch")
    st.caption("Best model per domain highlighted. Baselines and universal heads share one training recipe.")
    st.plotly_chart(results_bars(results[[first, *acc]], domain_col=first), key="uni_bars")

emb = run.embedding()
if emb is not None:
    st.subheader(f"Embedding of universal features ({emb.get('method', '')})")
    names, class_names = data.domain_info(str(run.path))
    by = st.segmented_control("Colour by", ["domain", "class"], default="domain", key="uni_colour")
    with guard("Drawing the embedding"):
        if by == "class":  # a class is (domain, class index): name both, so domains don't mix
            labels = class_labels(emb["domain"], emb["label"], names, class_names)
            st.plotly_chart(embedding_scatter(emb["xy"], labels, legend="class"), key="uni_emb")
        else:
            st.plotly_chart(embedding_scatter(emb["xy"], emb["domain"], names=names), key="uni_emb")
