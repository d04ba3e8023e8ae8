"""🔗 Relationships: pick a selection method and its parameter; live scores against the synthetic
ground truth (when the run has one), label-free indicators on every run, precision and recall
against the researcher's decisions (when any were made on ✍️ Curation), per-pair breakdown, sweep
curves, the best-parameter table, the accuracy sweep (validation accuracy of the universal model
per setting) and the evidence behind every edge. The setting lives in the URL
(``?method=threshold&t=0.25``) so a view can be shared."""

import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, matrix_kind, require_run, run_config
from ui.curateview import decisions_row
from ui.edgeview import edge_tab
from ui.relview import indicator_row, score_row
from ui.setting import setting_picker
from ui.sweepview import accuracy_at, sweep_tab
from ui.urlstate import shown, write_url

ensure_navigation()
st.title("🔗 Relationships")
run = require_run("crossdomain")
rd, stamp, kind = str(run.path), data.matrices_stamp(str(run.path)), matrix_kind(run)

c1, c2, c3 = st.columns([1.2, 2, 1])
setting = setting_picker(run_config(run), c1, c2)  # first visit: the session, else the URL decides
method, value = setting.method, setting.value
with guard("Loading the cross-domain matrices", "Re-run the crossdomain step (🧪 Cross-domain shows the run)."):
    n_pairs = len(data.load_matrices(rd, kind, stamp))
c3.caption(f"Matrix: **{kind}** · pairs: {n_pairs}")
write_url(setting.query())

if problem := data.truth_problem(rd):
    st.warning(shown(problem, 500), icon="⚠️")
with guard("Scoring the relationships", "Check that the run's cross-domain step finished."):
    sc = data.scores(rd, kind, method, value, stamp)
    n_edges = data.edge_count(rd, kind, method, value, stamp)
    ind = data.indicators(rd, kind, method, value, stamp)
score_row(setting, sc, n_edges)
if sc is not None:
    st.caption(
        "Scored as in the thesis: a class without relationships gets a self-loop, in each graph separately, so "
        "even with 0 edges selected precision and recall are not 0: they count the classes correctly left alone."
    )
try:  # a damaged sweep table must not hide the indicators; its tab names the problem
    ind = {**ind, "val_acc": accuracy_at(data.accuracy_sweep(rd, data.sweep_stamp(rd)), setting)}
except Exception:  # noqa: BLE001
    pass
indicator_row(setting, ind)
with guard("Scoring against your decisions", "Check the run's curation.jsonl is a readable file."):
    decisions_row(rd, setting, kind, stamp)

# Lazy tabs: only the open one runs, so a slider move redraws only what is visible. The tabs that
# score against a ground truth exist only on runs that have one.
truth_tabs = ["📋 Per pair", "📈 Sweep", "🏆 Best parameters"] if sc is not None else []
tabs = dict(
    zip(
        truth_tabs + ["🎯 Accuracy sweep", "🧾 Edge evidence"],
        st.tabs(
            truth_tabs + ["🎯 Accuracy sweep", "🧾 Edge evidence"],
            key="rel_tab" if sc is not None else "rel_tab_real",
            on_change="rerun",
        ),
    )
)
if sc is not None and tabs["📋 Per pair"].open:
    with tabs["📋 Per pair"], guard("The per-pair breakdown"):
        pairs = data.pair_scores(rd, kind, method, value, stamp)
        st.dataframe(pairs.rename(columns={"a": "images of", "b": "model of"}), hide_index=True, width="stretch")
if sc is not None and tabs["📈 Sweep"].open:
    with tabs["📈 Sweep"], guard("The parameter sweep"):
        metric = (
            st.segmented_control("Metric", ["f1", "edr", "precision", "recall"], default="f1", key="rel_metric") or "f1"
        )
        with st.spinner("Sweeping every method over its parameter…"):
            fig = data.sweep_figure(rd, kind, stamp, metric)
        st.plotly_chart(fig, key="rel_sweep_chart")
        st.caption(f"Now: {setting.describe()} → {metric} = {sc[metric]:.3f}")
if sc is not None and tabs["🏆 Best parameters"].open:
    with tabs["🏆 Best parameters"], guard("The best-parameter table"):
        by_col, grid_col = st.columns(2)
        by = by_col.segmented_control("Select by", ["edr", "f1"], default="edr", key="rel_best_by") or "edr"
        grid = grid_col.segmented_control("Grid", ["thesis", "fine"], default="thesis", key="rel_best_grid") or "thesis"
        st.caption(
            f"Each method at its {'lowest EDR' if by == 'edr' else 'highest F1'} on this run (the thesis's table, "
            "per run; ties: the smallest value). Thesis grid: threshold 0–1 and density 0.05–1 in steps of 0.05, "
            "k_max 1–9 (the thesis's upper bound is k_max + 1); fine: each slider's sweep grid. Over several "
            "runs: `python -m core evaluate --runs …`."
        )
        st.dataframe(data.best_table(rd, kind, stamp, by, grid), hide_index=True, width="stretch")
if tabs["🎯 Accuracy sweep"].open:
    with tabs["🎯 Accuracy sweep"], guard("The accuracy sweep", "Read the sweep log; a resume keeps finished rows."):
        sweep_tab(run, setting)
if tabs["🧾 Edge evidence"].open:
    with tabs["🧾 Edge evidence"], guard("The edge evidence", "Check that the run's cross-domain step finished."):
        edge_tab(rd, kind, setting, stamp)
