"""The ✍️ Curation page's other tabs: the curated taxonomy (graph and class table, following the
decisions at once), the decision history, class-name suggestions, exports and imports, and the
job that trains the universal model on the curated taxonomy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import jobs
from core.curation import class_label
from core.runs import CURATED, STATE_ICONS, F, Run
from ui import curation_data as cd
from ui import data
from ui.common import show_error
from ui.jobs import cancel_button, format_eta, rerun_when_done
from ui.setting import Setting
from ui.urlstate import shown

__all__ = ["decisions_tab", "decision_rows", "train_tab", "export_tab", "suggestions_tab", "graph_tab"]


def decision_rows(state, names: list[str], classes: list[list[str]]) -> pd.DataFrame:
    """The decisions in force, newest first: time, author, action, edges (class labels; a bulk
    decision shows its first three and a count), relation, note."""
    rows = []
    for d in reversed(state.applied):
        labels = [
            f"{class_label(e.a, e.i, names, classes)} → {class_label(e.b, e.j, names, classes)}" for e in d.edges[:3]
        ]
        more = f" (+{len(d.edges) - 3} more)" if len(d.edges) > 3 else ""
        rows.append(
            {
                "time": d.time.replace("T", " ").replace("+00:00", " UTC"),
                "author": d.author,
                "action": d.action,
                "edges": len(d.edges),
                "which": "; ".join(labels) + more,
                "relation": d.relation or "",
                "note": d.note,
            }
        )
    return pd.DataFrame(rows, columns=["time", "author", "action", "edges", "which", "relation", "note"])


def decisions_tab(run: Run, cstamp: float) -> None:
    """The history: decisions in force, then the undone ones (redo brings back the latest)."""
    rd = str(run.path)
    names, classes = data.domain_info(rd)
    state = cd.curation_state(rd, cstamp)
    if not state.applied and not state.undone:
        st.info("No decisions yet. Accept or reject edges on 🧾 Review, or add one on ➕ Add an edge.")
        return
    st.caption(
        f"{len(state.applied)} decisions in force, newest first. The log (`curation.jsonl` in the run folder) "
        "only ever grows: undo appends a line that takes the latest decision back."
    )
    st.dataframe(decision_rows(state, names, classes), hide_index=True, width="stretch")
    if state.undone:
        st.caption(f"Undone ({len(state.undone)}; ↪️ Redo brings back the newest):")

        class _Undone:
            applied = state.undone

        st.dataframe(decision_rows(_Undone, names, classes), hide_index=True, width="stretch")


# ----------------------------------------------------------------------------- train

TRAIN_TODO = (
    "Training needs the run's cached features (a run made from images) and a free run folder: if another "
    "job works in the run, wait until it ends."
)


def train_tab(run: Run, setting: Setting, cstamp: float, *, every: float = 1.0) -> None:
    """Train the universal model on the curated taxonomy of ``setting`` (a background job,
    ``python -m core curate RUN train``), follow it, cancel it; once trained, the run's results
    table has a ``curated`` column (🎯 Universal model compares it with the others)."""
    from ui.sweepview import blocker

    status = run.curated_status() or {}
    state = status.get("state")
    n = len(cd.curation_state(str(run.path), cstamp).applied)
    if state in ("running", "pending"):
        _train_live(run, every)
        return
    st.markdown(
        f"Trains one universal head on the **curated taxonomy**: the edges of **{setting.describe()}**, plus the "
        f"ones you accepted or added, minus the ones you rejected ({n} decisions in force), with the run's recipe "
        "and cached features. It is saved as the method `curated` (taxonomy, model) and the results table gains "
        "a `curated` column; 🎯 Universal model compares it with the baselines and the other methods."
    )
    if state == "failed":
        why = shown(status.get("error") or "unknown error", 400)
        st.error(f"The last training stopped: {why}\n\n👉 {TRAIN_TODO}", icon="🚨")
    elif state == "cancelled":
        st.warning("The last training was cancelled; the previous curated model (if any) is kept.", icon="⏹️")
    if run.has_curated_model():
        _trained(run)
    blocked = blocker(run.domains(), run.config)
    if blocked:
        st.info(blocked)
    if st.button(
        f"🎯 Train on the curated taxonomy of {setting.describe()}",
        key="cur_train",
        type="primary",
        disabled=bool(blocked),
    ):
        try:
            jobs.start_curated(run.id, method=setting.method, value=setting.value, root=str(run.path.parent))
        except Exception as exc:  # noqa: BLE001 - shown with what to do
            show_error(exc, "Starting the training", TRAIN_TODO)
            return
        st.rerun()


def _trained(run: Run) -> None:
    info = run.selection(CURATED) or {}
    base = info.get("base") or {}
    setting = shown(base.get("method", "?")) + (
        f" ({base.get('param')}={base.get('value')})" if base.get("param") else ""
    )
    metrics = run.universal_metrics(CURATED) or {}  # the model's own file: never out of step with it
    values = [float(v) for v in metrics.values() if isinstance(v, (int, float))]
    acc = f" Mean test accuracy {np.nanmean(values):.3f} (per domain, on 🎯 Universal model)." if values else ""
    st.success(
        f"A universal model is trained on the curated taxonomy of {setting} with {info.get('n_decisions', '?')} "
        f"decisions ({info.get('n_edges', '?')} edges).{acc} Retraining replaces it.",
        icon="✅",
    )


def _train_live(run: Run, every: float) -> None:
    @st.fragment(run_every=every)
    def _panel() -> None:
        status = run.curated_status() or {}
        state = status.get("state") or "pending"
        st.progress(
            min(1.0, float(status.get("progress") or 0.0)),
            text=f"{STATE_ICONS.get(state, '•')} **training {state}** · ETA {format_eta(status.get('eta_s'))} · "
            f"{status.get('message') or ''}",
        )
        rerun_when_done(f"_curated_state_{run.id}", state)

    _panel()
    cancel_button(
        "⏹️ Cancel the training",
        key="cur_cancel",
        help="Stop it; the previous curated model stays",
        cancel=lambda: jobs.cancel_curated(run.id, root=str(run.path.parent)),
        doing="Cancelling the training",
    )


# ----------------------------------------------------------------------------- export / import

MAX_UPLOAD_MB = 50


@st.cache_data(show_spinner=False, max_entries=16)
def _exports(run_dir: str, kind: str, method: str, value, stamp: float, cstamp: float) -> tuple[str, str]:
    """(SSSOM TSV, CSV) of the curated edge set of one setting."""
    from core.mapping_io import csv_text, mapping_csv, sssom_table, sssom_text

    run = Run(run_dir)
    return sssom_text(sssom_table(run, method, value, kind)), csv_text(mapping_csv(run, method, value, kind))


def export_tab(run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str) -> None:
    """Downloads of the curated edge set (SSSOM TSV, CSV, the raw decision log) and the import of
    a mapping CSV as decisions or as the run's ground truth."""
    rd = str(run.path)
    sssom, csv = _exports(rd, kind, setting.method, setting.value, stamp, cstamp)
    slug = setting.describe().replace(" ", "").replace("(", "_").replace(")", "").replace("=", "")
    st.markdown(f"**Export** the curated edge set of {setting.describe()} (the setting's edges + accepted − rejected)")
    c1, c2, c3 = st.columns(3)
    c1.download_button("⬇️ SSSOM TSV", sssom, file_name=f"{run.id}-{slug}.sssom.tsv", mime="text/tab-separated-values",
                       key="cur_dl_sssom")  # fmt: skip
    c2.download_button("⬇️ CSV", csv, file_name=f"{run.id}-{slug}.csv", mime="text/csv", key="cur_dl_csv")
    log = run.path / F.CURATION
    c3.download_button(
        "⬇️ Decision log (JSONL)",
        log.read_bytes() if cstamp and log.is_file() else b"",
        file_name=f"{run.id}-curation.jsonl",
        mime="application/jsonl",
        key="cur_dl_log",
        disabled=not cstamp,
    )
    st.caption(
        "SSSOM: one row per directed edge; predicate from the relation type (skos:exactMatch for equivalent, "
        "a:i skos:broadMatch b:j when a:i is a part of b:j, skos:narrowMatch the reverse, skos:relatedMatch for an "
        "overlap); justification semapv:ManualMappingCuration for your decisions, semapv:InstanceBasedMatching for "
        "edges chosen from the models' predictions. The CSV imports back (below) as the same edge set."
    )
    st.markdown(
        "**Import** a mapping CSV: `domain_a,class_a,domain_b,class_b[,relation][,direction]` "
        "(class: name or `#index`; direction `a->b` or `both`)"
    )
    up = st.file_uploader("Mapping CSV", type=["csv"], key="cur_upload", max_upload_size=MAX_UPLOAD_MB)
    how = st.radio(
        "Import as",
        ["decisions", "truth"],
        format_func={"decisions": "decisions (one bulk ‘add’, undoable)",
                     "truth": "the run's ground truth (scores every setting)"}.get,
        horizontal=True,
        key="cur_import_as",
    )  # fmt: skip
    if up is not None and st.button("⬆️ Import", key="cur_import_go"):
        _import(run, up, how, author)


def _import(run: Run, upload, how: str, author: str) -> None:
    import tempfile
    from pathlib import Path

    from core.mapping_io import import_decisions, import_truth

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(upload.name).name or "mapping.csv")
        path.write_bytes(upload.getvalue())
        try:
            if how == "truth":
                n = import_truth(run, path)
                message = f"Imported {n} related class pairs as the run's ground truth."
            else:
                d = import_decisions(run, path, author=author or None)
                message = f"Imported {len(d.edges)} edges as one decision (↩️ Undo takes it back)."
        except (ValueError, TypeError) as exc:
            st.error(f"The import failed: {shown(str(exc).replace(str(path), upload.name), 400)}", icon="🚨")
            return
    st.session_state["cur_flash"] = "⬆️ " + message
    st.rerun()


# ----------------------------------------------------------------------------- names


def suggestions_tab(run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str) -> None:
    """Class-name evidence: "missing link" suggestions, i.e. pairs of classes whose names are very
    alike (all-MiniLM-L6-v2, shipped in a PyPI package, run offline) but that neither the setting
    nor a decision links; pick rows and add them."""
    from core.names import missing_links, names_enabled, names_unavailable
    from ui.curateview import NAMES_KEY, act, name_embeddings

    rd = str(run.path)
    if not names_enabled(run):
        st.info("Class-name evidence is off in this run's config (`evidence: {names: false}`).")
        return
    why = names_unavailable()
    if why:
        st.info(f"Class-name evidence is not available here: {why} Everything else works without it.")
        return
    if not st.session_state.get(NAMES_KEY) and not (run.path / F.NAME_EMBEDDINGS).is_file():
        st.markdown(
            "Class names carry information the images do not: two classes called *airplane* and *aeroplane* are "
            "the same whatever the models confused. The small sentence model (all-MiniLM-L6-v2) rates such "
            "near-synonyms high (0.79) but a kind and its parent lower (*dalmatian* / *dog*: 0.38), so these "
            "suggestions find renamed and reworded classes, not hierarchies. Loading the model takes about "
            "10-20 s the first time in a session; the names' embeddings are then kept in the run "
            "(`evidence/names.npz`)."
        )
        if st.button("🔤 Load the class-name evidence", key="cur_names_load"):
            st.session_state[NAMES_KEY] = True
            st.rerun()
        return
    with st.spinner("Embedding the class names…"):
        emb = name_embeddings(rd)
    if emb is None:
        st.warning("The class names could not be embedded; see the server log.")
        return
    min_sim = st.slider("Names at least this alike (cosine)", 0.3, 1.0, 0.7, 0.01, key="cur_names_min")
    linked = cd.curated_edges(rd, kind, setting.method, setting.value, stamp, cstamp)
    state = cd.curation_state(rd, cstamp)
    df = missing_links(emb, linked, min_similarity=min_sim, limit=None)
    decided = {(e.a, e.i, e.b, e.j) for e in state.verdicts}
    keep = np.array(
        [
            (a, i, b, j) not in decided and (b, j, a, i) not in decided
            for a, i, b, j in df[["a", "i", "b", "j"]].itertuples(index=False)
        ],
        dtype=bool,
    )
    df = df[keep].head(500).reset_index(drop=True) if len(df) else df
    if not len(df):
        st.info(
            f"No pair of classes with names at least {min_sim:.2f} alike is left unlinked; lower the slider "
            "to see more."
        )
        return
    names, classes = data.domain_info(rd)
    P = data.load_matrices(rd, kind, stamp)
    view = pd.DataFrame(
        {
            "domain a": [names[a] for a in df["a"]],
            "class a": [classes[a][i] for a, i in zip(df["a"], df["i"])],
            "domain b": [names[b] for b in df["b"]],
            "class b": [classes[b][j] for b, j in zip(df["b"], df["j"])],
            "names alike": df["similarity"].round(3),
            "P(a→b)": [float(P[a, b][i, j]) for a, i, b, j in zip(df["a"], df["i"], df["b"], df["j"])],
            "P(b→a)": [float(P[b, a][j, i]) for a, i, b, j in zip(df["a"], df["i"], df["b"], df["j"])],
        }
    )
    st.caption(
        f"{len(view)} pairs whose names are at least {min_sim:.2f} alike and that the curated edge set of "
        f"{setting.describe()} does not link (pairs you already decided are left out). Tick rows to add them."
    )
    event = st.dataframe(
        view,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key=f"cur_sugg_{st.session_state.get('cur_table_gen', 0)}",
        column_config={"P(a→b)": st.column_config.NumberColumn(format="%.3f"),
                       "P(b→a)": st.column_config.NumberColumn(format="%.3f")},
    )  # fmt: skip
    rows = [int(r) for r in (event.selection.rows if event is not None else []) if int(r) < len(df)]
    from core.curation import EdgeRef

    edges = [
        e
        for r in rows
        for e in (
            EdgeRef(*(int(df.iloc[r][c]) for c in ("a", "i", "b", "j"))),
            EdgeRef(*(int(df.iloc[r][c]) for c in ("b", "j", "a", "i"))),
        )
    ]
    if st.button(f"➕ Add the {len(rows)} picked pairs (both directions)", key="cur_sugg_add", disabled=not rows):
        act(run, "add", edges, author=author, note=f"names alike (>= {min_sim:.2f})")


# ----------------------------------------------------------------------------- graph


def graph_tab(run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str) -> None:
    """The curated taxonomy as the clickable graph (focus on a class, search centres on the
    match): a click on a class lists its edges for review, a click on a dashed relationship opens
    it with accept / reject; the class table below follows the decisions at once."""
    from ui import evidence_data
    from ui.curateview import actions, edge_panel, review_table_for
    from ui.graph import GraphFilter
    from ui.taxtabs import focus_picker
    from ui.taxtabs import graph_tab as draw
    from ui.taxview import matching_classes, universal_table

    rd = str(run.path)
    names, classes = data.domain_info(rd)
    tax = cd.curated_taxonomy(rd, kind, setting.method, setting.value, stamp, cstamp)
    source, tax_stamp = f"curated: {setting.describe()}", stamp + cstamp
    relations = evidence_data.relation_table(rd, source, kind, setting.method, setting.value, tax_stamp)
    search = st.text_input("Find a class (the graph centres on it)", key="cur_graph_q", max_chars=200)
    flt = focus_picker(tax, classes, names, GraphFilter(search=search))
    nodes, edges = evidence_data.graph_data(rd, source, tax_stamp, flt, tax, classes, names, relations)
    st.caption(
        f"The curated taxonomy: {len(tax.classes)} universal classes from the edges of {setting.describe()} and "
        f"your {len(cd.curation_state(rd, cstamp).applied)} decisions."
    )
    picked = draw(nodes, edges, key="cur_graph")
    if picked and "edge" in picked and picked["edge"].get("kind") == "relation":
        a, i = map(int, picked["edge"]["from"].split(":"))
        b, j = map(int, picked["edge"]["to"].split(":"))
        from core.curation import EdgeRef

        edge = EdgeRef(a, i, b, j)
        verdict = cd.curation_state(rd, cstamp).verdict(edge)
        st.markdown(f"**Selected relationship** · your decision: {verdict or 'none yet'}")
        actions(run, [edge], author, key="cur_graph_edge")
        edge_panel(run, edge, stamp)
    elif picked and "node" in picked and not picked["node"].startswith("u:"):
        a, i = map(int, picked["node"].split(":"))
        st.markdown(f"**{shown(names[a])}: {shown(classes[a][i])}**: its relationships (selected and candidates)")
        review_table_for(run, setting, kind, stamp, cstamp, author, cls=(a, i))
    with st.expander("📋 The curated taxonomy's classes"):
        table = universal_table(tax, classes, names)
        every = tuple(range(len(names)))
        st.dataframe(table.iloc[matching_classes(tax, every, search)], hide_index=True, width="stretch")
