"""📚 Runs: the history of runs with their configs and headline metrics; compare two; delete."""

import pandas as pd
import streamlit as st

from core.runs import Run, open_run
from ui.common import ensure_navigation, guard, run_folder, runs_list
from ui.delete import delete_section
from ui.reportview import report_download
from ui.runview import config_diff, runs_table

ensure_navigation()
st.title("📚 Runs")
infos = runs_list()  # only runs inside the runs root
if not infos:
    st.info("📭 No runs yet. Start one from 🏠 Home.")
    st.stop()
st.dataframe(runs_table(infos), hide_index=True, width="stretch", placeholder="")  # missing: empty
ids = [i.id for i in infos]

st.subheader("Compare two runs")
if len(ids) < 2:
    st.caption("Comparing needs two runs: launch another one to compare it with this one.")
    report_download(Run(run_folder(ids[0])))
else:
    c1, c2 = st.columns(2)
    left = c1.selectbox("Run A", ids, index=0, key="runs_a")
    right = c2.selectbox("Run B", ids, index=1, key="runs_b")
    with guard("Comparing the runs"):
        ra, rb = open_run(run_folder(left)), open_run(run_folder(right))
        diff = config_diff(ra.config, rb.config)
        st.markdown("**Config differences**" if len(diff) else "**Configs are identical**")
        if len(diff):
            st.dataframe(diff, hide_index=True, width="stretch", placeholder="")
        for col, r, name in ((c1, ra, "a"), (c2, rb, "b")):
            res = r.results()
            col.dataframe(
                res if res is not None else pd.DataFrame({"results": ["not finished"]}),
                hide_index=True,
                width="stretch",
                placeholder="",
            )
            with col:
                report_download(r, key=f"report_{name}")

st.subheader("Delete a run")
delete_section(ids)
