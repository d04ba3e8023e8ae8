"""🎯 Universal model: train it for one or several selection methods (a background job), watch
the training curves, compare with the baselines (table + bars) and look at the embedding.
Figures are built once per file version (ui.evidence_data) and drawn under spinners."""

import streamlit as st

from core.importer import is_imported
from core.results import inference_lines
from core.runs import F
from ui import data, evidence_data
from ui.common import ensure_navigation, guard, no_images_note, require_run, run_config
from ui.intervalview import show_intervals
from ui.jobs import ACTIVE, job_panel
from ui.launchers import method_trainer

ensure_navigation()
st.title("🎯 Universal model")
run = require_run("crossdomain")
if is_imported(run):
    st.info(no_images_note(run, "no universal model can be trained on it (it trains on image features)"))
    st.stop()
rd = str(run.path)
cfg = run_config(run)
status = run.status()
if (cfg.get("features") or {}).get("mode") == "finetune":
    st.caption("Protocol: **fine-tuning** (backbone + head trained end to end on images, the thesis's protocol).")
else:
    st.caption("Protocol: **frozen features** (cached backbone features; only the heads train).")

busy = status["state"] in ACTIVE
with st.expander("🏋️ Train for other selection methods", expanded=not run.has("universal")):
    method_trainer(run, cfg, busy)
if busy:
    job_panel(run.id, live_curves=True)

trained = [(m, evidence_data.universal_stamp(rd, m)) for m in run.methods()]
trained = [(m, s) for m, s in trained if s]  # a history file written
if trained:
    st.subheader("Training curves")
    with guard("Drawing the training curves"), st.spinner(f"Drawing the training curves of {len(trained)} model(s)…"):
        keys, stamps = zip(*trained)
        fig = evidence_data.training_figure(rd, keys, stamps)  # one chart for all methods: quick to draw
        if fig is not None:
            st.plotly_chart(fig, key="uni_hist")

results = run.results()
if results is None:
    st.info("⏳ The results table appears when the run's **results** step has finished.")
    st.stop()
st.subheader("Baseline vs universal (test accuracy)")
with guard("Reading the results table"), st.spinner("Reading the results…"):
    first = results.columns[0]
    acc = [c for c in results.select_dtypes("number").columns if c == "baseline" or c.startswith("universal")]
    st.dataframe(
        results.style.highlight_max(axis=1, subset=acc, color="#2e7d3240").format(precision=3, subset=acc),
        hide_index=True,
        width="stretch",
    )
    st.caption("Best model per domain highlighted. Training recipes: the run's config (baselines, universal).")
    fig = evidence_data.results_figure(rd, data.stamp_of(rd, F.RESULTS_CSV), (first, *acc))
    st.plotly_chart(fig, key="uni_bars")
with guard(
    "Reading the intervals",
    "The run's results.json may be damaged: rerun its results step (python -m core run ... --from results).",
):
    show_intervals(run.results_json(), run.domain_names())
    if lines := inference_lines((run.results_json() or {}).get("inference")):
        st.caption("Inference rule (d = Mᵀp on probabilities, or Mᵀz on logits): " + " · ".join(lines))

emb_stamp = data.stamp_of(rd, F.EMBEDDING)
if emb_stamp:
    st.subheader(f"Embedding of universal features ({(run.embedding() or {}).get('key', '')})")
    by = st.segmented_control("Colour by", ["domain", "class"], default="domain", key="uni_colour") or "domain"
    with guard("Drawing the embedding"), st.spinner("Drawing the embedding…"):
        fig = evidence_data.embedding_figure(rd, emb_stamp, by)
        if fig is not None:
            st.plotly_chart(fig, key="uni_emb")
