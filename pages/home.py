"""🏠 Home: what the tool does, the current run at a glance, and the one-click demo."""

import streamlit as st

from core.runs import STEPS
from ui.common import REPO, current_run, ensure_navigation, run_config
from ui.jobs import STATE_ICONS, launch

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
        st.markdown(f"**`{run.id}`** · {STATE_ICONS.get(status['state'], '•')} {status['state']} · "
                    f"{len(done)}/{len(STEPS)} steps · config “{run_config(run).get('name', '—')}”")
        headline = (run.info().headline or {})
        if headline:
            cols = st.columns(min(4, len(headline)))
            for col, (k, v) in zip(cols * 4, list(headline.items())[:8]):
                col.metric(k.replace("_", " "), f"{v:.3f}" if isinstance(v, float) else str(v))
        st.page_link("pages/crossdomain.py", label="Follow the run", icon="🧪")
with right:
    st.subheader("Run the demo")
    demo = REPO / "assets" / "configs" / "demo.yaml"
    st.caption("Three synthetic domains over built-in procedural images, CPU-friendly "
               "(a few minutes). Runs in the background; you can leave this page.")
    if st.button("🚀 Run the demo", type="primary", disabled=not demo.exists(), key="run_demo"):
        if launch(demo):
            st.switch_page("pages/crossdomain.py")
    if not demo.exists():
        st.caption(f"(assets/configs/demo.yaml is missing in {REPO})")
