"""🏠 Home: what the tool does, the current run at a glance, and the one-click demo."""

import streamlit as st

from core.runs import STATE_ICONS, STEPS, run_info
from ui.common import REPO, current_run, ensure_navigation, run_config
from ui.jobs import launch
from ui.reportview import report_download
from ui.runview import headline_table

ensure_navigation()
st.title("🧭 Unitax")
st.markdown(
    "Train **one image classifier** on several datasets whose class lists disagree. "
    "Unitax trains a model per dataset, runs every model on every other dataset, and turns the "
    "cross-predictions into class relationships you can tune here with live scores. "
    "From them it builds a **universal taxonomy** and trains one universal model that it "
    "compares with the per-dataset baselines."
)
st.image(str(REPO / "assets" / "workflow.svg"), width="stretch")

left, right = st.columns([3, 2])
with left:
    st.subheader("Current run")
    run = current_run()
    if run is None:
        st.info("📭 No run yet: start the demo on the right, or set one up on **🗂️ Domains**.")
    else:
        status = run.status()
        done = status.get("steps_done") or []
        st.markdown(
            f"**`{run.id}`** · {STATE_ICONS.get(status['state'], '•')} {status['state']} · "
            f"{len(done)}/{len(STEPS)} steps · config “{run_config(run).get('name', '—')}”"
        )
        headline = run_info(run).headline or {}
        if headline:
            if "baseline_mean" in headline:
                st.metric("Baselines: mean test accuracy", f"{headline['baseline_mean']:.3f}")
            table = headline_table(headline)
            if len(table):
                st.dataframe(table, hide_index=True, width="stretch", placeholder="")
        st.page_link("pages/crossdomain.py", label="Follow the run", icon="🧪")
        report_download(run)
with right:
    st.subheader("Run the demo")
    demo = REPO / "assets" / "configs" / "demo.yaml"
    st.caption(
        "Three synthetic domains over built-in procedural images, CPU-friendly "
        "(a few minutes). Runs in the background; you can leave this page."
    )
    if st.button("🚀 Run the demo", type="primary", disabled=not demo.exists(), key="run_demo"):
        if launch(demo):
            st.switch_page("pages/crossdomain.py")
    if not demo.exists():
        st.caption(f"(assets/configs/demo.yaml is missing in {REPO})")
