"""🎯 Universal model: train it for one or several selection methods (a background job), watch
the training curves, compare with the baselines (table + bars) and look at the embedding."""

import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, require_run, run_config
from ui.jobs import ACTIVE, job_panel
from ui.launchers import method_trainer
from ui.plots import class_labels, embedding_scatter, history_curves, results_bars

ensure_navigation()
st.title("🎯 Universal model")
run = require_run("crossdomain")
cfg = run_config(run)
status = run.status()

busy = status["state"] in ACTIVE
with st.expander("🏋️ Train for other selection methods", expanded=not run.has("universal")):
    method_trainer(run, cfg, busy)
if busy:
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
    st.dataframe(
        results.style.highlight_max(axis=1, subset=acc, color="#2e7d3240").format(precision=3, subset=acc),
        hide_index=True,
        width="stretch",
    )
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
