"""🧪 Cross-domain prediction: launch a run in the background, follow it, then read the baseline
accuracies and every P_ab as a heatmap (sortable, class names on hover) with a row view."""

import streamlit as st

from core.importer import is_imported
from ui import data
from ui.common import current_run, ensure_navigation, guard, no_images_note
from ui.jobs import job_panel
from ui.launchers import config_launcher
from ui.plots import SORTS, heatmap, row_bars

ensure_navigation()
st.title("🧪 Cross-domain prediction")

with st.expander("🚀 Launch a run", expanded=current_run() is None):
    config_launcher()

run = current_run()
if run is None:
    st.stop()
st.subheader(f"Run `{run.id}`")
job_panel(run.id)

if not run.has("baselines"):
    st.stop()
st.subheader("Per-domain baselines")
if is_imported(run):
    st.info(no_images_note(run, "its baselines' accuracies are unknown: only their predictions were imported"))
with guard("Reading the baseline metrics"):
    base = run.baseline_metrics() or {}
    cols = st.columns(max(1, len(base)))
    for col, (name, m) in zip(cols, base.items()):
        col.metric(
            f"{name} test acc.",
            f"{m.get('test_acc', float('nan')):.3f}",
            help=f"validation acc. {m.get('val_acc', float('nan')):.3f}",
        )

if not run.has("crossdomain"):
    st.stop()
st.subheader("Prediction matrices P_ab")
rd, stamp = str(run.path), data.matrices_stamp(str(run.path))
names, class_names = data.domain_info(rd)
c1, c2, c3 = st.columns([2, 1, 2])
kind = c2.radio("Matrix", ["hard", "soft"], horizontal=True, key="cd_kind")
with guard("Loading the matrices", "Re-run the crossdomain step (Resume)."):
    mats = data.load_matrices(rd, kind, stamp)
if not mats:
    st.warning("No matrices in this run yet.")
    st.stop()
pair = c1.selectbox(
    "Pair (true domain a → model b)",
    list(mats),
    format_func=lambda p: f"{names[p[0]]} images → {names[p[1]]} model",
    key="cd_pair",
)
sort = c3.selectbox("Sort", SORTS, key="cd_sort")
a, b = pair
P = mats[pair]
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(
        heatmap(
            P,
            class_names[a],
            class_names[b],
            sort=sort,
            row_label=f"{names[a]} true class",
            col_label=f"{names[b]} predicted",
        ),
        key="cd_heatmap",
    )
with right:
    i = st.selectbox(
        f"Row view: a {names[a]} class",
        range(len(class_names[a])),
        format_func=lambda i: class_names[a][i],
        key="cd_row",
    )
    st.plotly_chart(
        row_bars(P[i], class_names[b], title=f"How the {names[b]} model sees “{class_names[a][i]}”"), key="cd_rowbars"
    )
