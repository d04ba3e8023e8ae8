"""The ✍️ Curation page's header and review: the decisions' headline numbers with undo / redo, the
table of the setting's edges with accept / reject (one edge, the rows picked, or in bulk), the
images of both classes of the edge under review, and "add an edge" between any two classes.

Every action appends one decision to the run's log (core.curation.decide) and reruns the page, so
the scores, the graph and the class table follow at once."""

from __future__ import annotations

import getpass
import os

import numpy as np
import pandas as pd
import streamlit as st

from core.curation import EdgeRef, StaleError, class_label, decide, redo, undo
from core.evidence import RELATIONS
from core.importer import is_imported
from core.runs import F, Run
from ui import curation_data as cd
from ui import data
from ui.graph import RELATION_READING
from ui.setting import Setting
from ui.taxview import evidence_indices
from ui.urlstate import MAX_PARAM_CHARS, shown

__all__ = [
    "AUTHOR_KEY",
    "NAMES_KEY",
    "name_embeddings",
    "author_box",
    "header",
    "review_tab",
    "add_tab",
    "act",
    "edge_panel",
    "SHOW",
]

AUTHOR_KEY = "cur_author"
NAMES_KEY = "cur_names_on"  # set once the researcher asked for the class-name evidence
TABLE_KEY = "cur_table_gen"  # bumped after each action: the table's row selection starts afresh
SHOW = {
    "selected": "edges the setting selects",
    "candidates": "every candidate (P ≥ 0.05 either way)",
    "decided": "edges you decided",
    "undecided": "selected, not yet decided",
}
SORTS = {
    "evidence": ("P(a→b)", False),
    "confidence": ("confidence", False),
    "uncertainty": ("confidence", True),
    "names": ("names alike", False),
}
ICONS = {"accept": "✅", "reject": "❌"}


def _default_author() -> str:
    try:
        return os.environ.get("UNITAX_AUTHOR") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name here
        return ""


def author_box(col) -> str:
    """The "Your name" field (recorded with every decision); kept in the session."""
    if AUTHOR_KEY not in st.session_state:
        st.session_state[AUTHOR_KEY] = _default_author()
    return col.text_input("Your name", key=AUTHOR_KEY, max_chars=100, help="Recorded with each decision.").strip()


def act(
    run: Run,
    action: str,
    edges: list[EdgeRef],
    *,
    author: str,
    note: str = "",
    relation: str | None = None,
):
    """Append one decision, say so, and rerun: the generation counter moves on, so the table's
    selection, the note and the pickers (keyed with it) start afresh and the next decision never
    silently reuses them."""
    if not edges:
        st.toast("Nothing to decide: no edge picked.")
        return
    d = decide(run, action, edges, note=note, author=author or None, relation=relation)
    st.session_state[TABLE_KEY] = st.session_state.get(TABLE_KEY, 0) + 1
    st.session_state["cur_flash"] = f"{ICONS.get(action, '➕')} {action} · {len(d.edges)} edge(s) recorded"
    st.rerun()


def header(run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str) -> None:
    """Headline numbers (decisions, precision and recall against them, the synthetic F1 before and
    after curation when a ground truth exists) and the undo / redo buttons."""
    rd = str(run.path)
    state = cd.curation_state(rd, cstamp)
    sc = cd.curation_scores(rd, kind, setting.method, setting.value, stamp, cstamp)
    c = st.columns(5)
    c[0].metric("Decisions in force", len(state.applied), help="Undone decisions are not counted. One decision "
                "may cover many edges (a bulk action, or both directions of a pair).")  # fmt: skip
    c[1].metric(
        "Edges ✅ / ❌", f"{sc['n_accepted']} / {sc['n_rejected']}", help="Edges accepted (or added) / rejected."
    )
    judged = sc["n_judged"]
    c[2].metric(
        "Precision vs. decisions",
        "—" if not judged else f"{sc['precision']:.3f}",
        help=f"Of the {sc['n_selected']} edges {setting.describe()} selects, {judged} are judged (accepted or "
        "rejected): the share of them you accepted.",
    )
    c[3].metric(
        "Recall vs. decisions",
        "—" if not sc["n_accepted"] else f"{sc['recall']:.3f}",
        help="The share of the edges you accepted (or added) that the setting selects.",
    )
    truth = data.scores(rd, kind, setting.method, setting.value, stamp)
    if truth is not None:
        cur = cd.curated_truth_scores(rd, kind, setting.method, setting.value, stamp, cstamp)
        c[4].metric(
            "F1 vs. ground truth",
            f"{cur['f1']:.3f}",
            delta=f"{round(cur['f1'], 3) - round(truth['f1'], 3):+.3f} from curation" if len(state.applied) else None,
            help="The curated edge set scored against the run's ground truth; the delta is what your "
            f"decisions changed from {setting.describe()} alone ({truth['f1']:.3f}).",
        )
    else:
        c[4].metric("Judged edges", f"{judged} of {sc['n_selected']}", help="Selected edges you accepted or rejected.")
    b1, b2, b3 = st.columns([1, 1, 4])
    last = state.applied[-1] if state.applied else None
    nxt = state.undone[-1] if state.undone else None
    # on_click binds the decision this page shows: the click undoes that one or nothing, even if
    # another tab or a terminal decided in between (the rerun after a click reads the new log)
    for col, label, action, d in ((b1, "↩️ Undo", "undo", last), (b2, "↪️ Redo", "redo", nxt)):
        col.button(
            label,
            key=f"cur_{action}",
            disabled=d is None,
            help=_describe(d, run) if d else f"Nothing to {action}.",
            on_click=_step_back,
            args=(action, str(run.path), author, d.id if d else None),
        )
    flash = st.session_state.pop("cur_flash", None)
    if flash:
        b3.success(flash)
    warn = st.session_state.pop("cur_flash_warn", None)
    if warn:
        b3.warning(warn, icon="⚠️")
    if problem := data.truth_problem(rd):
        st.warning(shown(problem, 500), icon="⚠️")
    for problem in state.problems[:5]:
        st.warning(f"Decision log: {shown(problem, 300)}", icon="⚠️")


def _step_back(action: str, run_dir: str, author: str, expected: str | None) -> None:
    """Button callback: undo or redo exactly the decision ``expected`` the page showed; if another
    tab or a terminal changed the log since, nothing happens and the page says so."""
    if expected is None:
        return
    try:
        (undo if action == "undo" else redo)(Run(run_dir), author=author or None, expected=expected)
    except StaleError as exc:
        st.session_state["cur_flash_warn"] = str(exc)
    except (OSError, ValueError) as exc:  # shown, never a traceback (a callback runs outside the page's guard)
        st.session_state["cur_flash_warn"] = f"{action} failed: {exc}"


def _describe(d, run: Run) -> str:
    names, classes = run.domain_names(), run.class_names()
    first = d.edges[0] if d.edges else None
    what = (
        f"{class_label(first.a, first.i, names, classes)} → {class_label(first.b, first.j, names, classes)}"
        if first
        else ""
    )
    more = f" and {len(d.edges) - 1} more" if len(d.edges) > 1 else ""
    return f"{d.action} {shown(what, 200)}{more} ({shown(d.author)}, {d.time})"


def decisions_row(run_dir: str, setting: Setting, kind: str, stamp: float) -> None:
    """On 🔗 Relationships: the setting scored against the researcher's decisions (when any are in
    force), beside the synthetic scores."""
    cstamp = cd.curation_stamp(run_dir)
    if not cstamp or not cd.curation_state(run_dir, cstamp).applied:
        return
    sc = cd.curation_scores(run_dir, kind, setting.method, setting.value, stamp, cstamp)
    c = st.columns(4)
    c[0].metric(
        "Precision vs. decisions",
        "—" if not sc["n_judged"] else f"{sc['precision']:.3f}",
        help="Among the edges this setting selects, the judged ones are those you accepted or rejected on "
        "✍️ Curation: the share of them you accepted.",
    )
    c[1].metric(
        "Recall vs. decisions",
        "—" if not sc["n_accepted"] else f"{sc['recall']:.3f}",
        help="The share of the edges you accepted (or added) that this setting selects.",
    )
    c[2].metric("Judged edges", f"{sc['n_judged']} of {sc['n_selected']}")
    c[3].metric("Edges ✅ / ❌", f"{sc['n_accepted']} / {sc['n_rejected']}")


# ----------------------------------------------------------------------------- review


def _view(df: pd.DataFrame, show: str, relations, min_conf: float, pair, search: str) -> pd.DataFrame:
    keep = df["relation"].isin(relations) & (df["confidence"] >= min_conf)
    if show == "selected":
        keep &= df["selected"]
    elif show == "decided":
        keep &= df["decision"].notna()
    elif show == "undecided":
        keep &= df["selected"] & df["decision"].isna()
    if pair is not None:
        keep &= (df["domain_a"] == pair[0]) & (df["domain_b"] == pair[1])
    if search.strip():
        s = search.strip().lower()
        keep &= df["class_a"].str.lower().str.contains(s, regex=False) | df["class_b"].str.lower().str.contains(
            s, regex=False
        )
    return df[keep]


def _names_column(rd: str, df: pd.DataFrame) -> pd.Series | None:
    """Name similarity of every row's two classes, when the names model is on and was loaded."""
    if not (st.session_state.get(NAMES_KEY) or os.path.exists(os.path.join(rd, F.NAME_EMBEDDINGS))):
        return None
    sims = name_embeddings(rd)
    if sims is None:
        return None
    from core.names import edge_name_similarity

    return pd.Series(
        edge_name_similarity(sims, *(df[c].to_numpy(dtype=np.int64) for c in ("a", "i", "b", "j"))), index=df.index
    )


@st.cache_resource(show_spinner=False, max_entries=4)
def _name_embeddings_cached(rd: str, stamp: float):
    from core.names import name_embeddings

    return name_embeddings(Run(rd))


def name_embeddings(rd: str):
    """core.names.name_embeddings of the run (cached), or None when the names model is off or missing."""
    try:
        return _name_embeddings_cached(rd, data.stamp_of(rd, F.DOMAINS))
    except Exception:  # noqa: BLE001 - the names are extra evidence
        return None


def review_tab(run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str) -> None:
    """Filters, the sortable table of edges with their decisions, accept / reject of the picked
    rows (and their reverse edges), bulk actions, and the images of the first picked edge."""
    rd = str(run.path)
    df = cd.review_edges(rd, kind, setting.method, setting.value, stamp, cstamp)
    sims = _names_column(rd, df)
    if sims is not None:
        df = df.assign(**{"names alike": sims})
    names = data.domain_info(rd)[0]
    f1, f2, f3, f4, f5 = st.columns([1.6, 2.2, 1.1, 1.4, 1.4])
    show = f1.selectbox("Show", list(SHOW), format_func=SHOW.get, key="cur_show")
    relations = f2.multiselect("Relation", RELATIONS, default=list(RELATIONS), key="cur_rel")
    min_conf = f3.slider("Min. confidence", 0.0, 1.0, 0.0, 0.05, key="cur_conf")
    pairs = [None, *((a, b) for a in names for b in names if a != b)]
    pair = f4.selectbox("Domains", pairs, format_func=lambda p: "all pairs" if p is None else f"{p[0]} → {p[1]}",
                        key="cur_pair")  # fmt: skip
    sorts = [s for s in SORTS if s != "names" or sims is not None]
    order = f5.selectbox("Sort by", sorts, key="cur_sort", format_func=lambda s: {
        "evidence": "evidence P(a→b) ↓", "confidence": "confidence ↓", "uncertainty": "uncertainty (confidence ↑)",
        "names": "names alike ↓"}[s])  # fmt: skip
    search = st.text_input("Find a class", key="cur_search", max_chars=MAX_PARAM_CHARS, placeholder="e.g. dog")
    view = _view(df, show, relations, min_conf, pair, search)
    column, ascending = SORTS.get(order, SORTS["evidence"])
    table = _table(view)
    table = table.sort_values(column, ascending=ascending, kind="stable") if column in table else table
    st.caption(
        f"{len(table):,} edges shown of {len(df):,} · ✅ accepted ❌ rejected ➕ added by you · “in taxonomy”: "
        "in the curated edge set. Tick rows (left edge) to act on them."
    )
    gen = st.session_state.get(TABLE_KEY, 0)
    event = st.dataframe(
        table.drop(columns=["a", "i", "b", "j"]),
        hide_index=True,
        width="stretch",
        height=380,
        on_select="rerun",
        selection_mode="multi-row",
        key=f"cur_table_{gen}",
        column_config={
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
            "P(a→b)": st.column_config.NumberColumn(format="%.3f"),
            "P(b→a)": st.column_config.NumberColumn(format="%.3f"),
            "names alike": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    rows = [int(r) for r in (event.selection.rows if event is not None else [])]
    picked = [EdgeRef(*map(int, table.iloc[r][["a", "i", "b", "j"]])) for r in rows if r < len(table)]
    actions(run, picked, author, key="cur_rows")
    _bulk(run, table, author)
    if picked:
        edge_panel(run, picked[0], stamp)


def review_table_for(
    run: Run, setting: Setting, kind: str, stamp: float, cstamp: float, author: str, *, cls: tuple[int, int]
) -> None:
    """The edges from or to one class (selected, candidates and decided), pickable, with accept / reject."""
    df = cd.review_edges(str(run.path), kind, setting.method, setting.value, stamp, cstamp)
    a, i = cls
    view = df[((df["a"] == a) & (df["i"] == i)) | ((df["b"] == a) & (df["j"] == i))]
    table = _table(view).sort_values("P(a→b)", ascending=False, kind="stable")
    gen = st.session_state.get(TABLE_KEY, 0)
    event = st.dataframe(
        table.drop(columns=["a", "i", "b", "j"]),
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key=f"cur_cls_table_{gen}",
    )
    rows = [int(r) for r in (event.selection.rows if event is not None else []) if int(r) < len(table)]
    picked = [EdgeRef(*map(int, table.iloc[r][["a", "i", "b", "j"]])) for r in rows]
    actions(run, picked, author, key="cur_cls")
    if picked:
        edge_panel(run, picked[0], stamp)


def _table(view: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "a": view["a"],
            "i": view["i"],
            "b": view["b"],
            "j": view["j"],
            "decision": [
                "➕" if d == "accept" and not s else ICONS.get(d, "")
                for d, s in zip(view["decision"], view["selected"])
            ],
            "in taxonomy": view["curated"],
            "domain a": view["domain_a"],
            "class a": view["class_a"],
            "domain b": view["domain_b"],
            "class b": view["class_b"],
            "relation": view["relation"],
            "confidence": view["confidence"],
            "P(a→b)": view["p_ab"],
            "P(b→a)": view["p_ba"],
            "images a": view["n_ab"],
            "images b": view["n_ba"],
        }
    )
    if "names alike" in view:
        out["names alike"] = view["names alike"]
    out["note"] = view["note"]
    return out


def actions(run: Run, edges: list[EdgeRef], author: str, *, key: str) -> None:
    """Note, "both directions", and the accept / reject buttons for ``edges``."""
    c1, c2, c3, c4 = st.columns([3, 1.3, 1, 1])
    gen = st.session_state.get(TABLE_KEY, 0)  # a new, empty field after every decision: the browser would
    note = c1.text_input(  # otherwise send the old text back with the next click
        "Note (optional)", key=f"{key}_note_{gen}", max_chars=2000, placeholder="why, for the record"
    )
    both = c2.toggle(
        "Also b → a",
        value=True,
        key=f"{key}_both",
        help="On: each decision also covers the reverse edge b:j → a:i "
        "(a relationship both ways). Off: only a:i → b:j, which leaves the reverse edge as it is.",
    )
    todo = sorted({*edges, *(e.reverse() for e in edges)}) if both else edges
    n = len(todo)
    if c3.button(f"✅ Accept ({n})", key=f"{key}_acc", disabled=not n, type="primary"):
        act(run, "accept", todo, author=author, note=note)
    if c4.button(f"❌ Reject ({n})", key=f"{key}_rej", disabled=not n):
        act(run, "reject", todo, author=author, note=note)


def _bulk(run: Run, table: pd.DataFrame, author: str) -> None:
    with st.expander("Bulk actions on the edges shown"):
        c1, c2, c3 = st.columns([1.5, 1.5, 1.2])
        relation = c1.selectbox("Relation", RELATIONS, key="cur_bulk_rel")
        threshold = c2.slider("Confidence ≥", 0.0, 1.0, 0.9, 0.05, key="cur_bulk_conf")
        action = c3.radio("Action", ["accept", "reject"], horizontal=True, key="cur_bulk_action")
        done = ICONS[action] if action == "reject" else (ICONS["accept"], "➕")
        hit = table[
            (table["relation"] == relation) & (table["confidence"] >= threshold) & ~table["decision"].isin(done)
        ]
        edges = [EdgeRef(*map(int, r)) for r in hit[["a", "i", "b", "j"]].itertuples(index=False)]
        label = (
            f"{ICONS[action]} {action.capitalize()} these {len(edges)} {relation} edges (confidence ≥ {threshold:.2f})"
        )
        if st.button(label, key="cur_bulk_go", disabled=not edges):
            act(run, action, edges, author=author, note=f"bulk: {relation}, confidence >= {threshold:.2f}")


# ----------------------------------------------------------------------------- one edge


def edge_panel(run: Run, edge: EdgeRef, stamp: float) -> None:
    """The edge under review: both classes' test images side by side (those the other domain's
    model confused with the other class first), with the evidence in words."""
    rd = str(run.path)
    names, classes = data.domain_info(rd)
    a, i, b, j = edge.a, edge.i, edge.b, edge.j
    st.markdown(f"#### {shown(names[a])}: {shown(classes[a][i])} → {shown(names[b])}: {shown(classes[b][j])}")
    preds = data.load_predictions(rd, stamp)
    left, right = st.columns(2)
    for col, (x, xi, y, yj) in ((left, (a, i, b, j)), (right, (b, j, a, i))):
        confused = evidence_indices(preds, x, xi, y, yj)
        rest = _class_images(preds, x, xi, exclude=confused)
        idx = np.concatenate([confused, rest])[:12]
        col.caption(
            f"**{shown(names[x])}: {shown(classes[x][xi])}**: {len(confused)} of its test images were called "
            f"{shown(classes[y][yj])} by the {shown(names[y])} model" + (" (shown first)." if len(confused) else ".")
        )
        imgs = data.test_images(rd, x, tuple(int(k) for k in idx))
        if imgs:
            col.image(imgs, width=88)
        else:
            col.caption(
                "No images to show: this run was imported from prediction files and has none."
                if is_imported(run)
                else "No images to show: this run has none (synthetic counts) or its data is not reachable here."
            )


def _class_images(preds: dict | None, a: int, i: int, *, exclude: np.ndarray) -> np.ndarray:
    if preds is None or a not in preds["true"]:
        return np.zeros(0, dtype=np.int64)
    rows = np.flatnonzero(preds["true"][a] == i)
    item = preds.get("item", {}).get(a)
    idx = rows if item is None else np.asarray(item)[rows]
    return np.setdiff1d(idx, exclude, assume_unique=False)


# ----------------------------------------------------------------------------- add


def add_tab(run: Run, author: str, kind: str, stamp: float) -> None:
    """ "Add an edge" between any two classes of two domains (searchable pickers), with its
    relation (which fixes the direction), a note, and the evidence the images give."""
    rd = str(run.path)
    names, classes = data.domain_info(rd)
    options = cd.class_options(names, classes)

    def label(o):
        return f"{names[o[0]]}: {classes[o[0]][o[1]]}"

    c1, c2 = st.columns(2)
    gen = st.session_state.get(TABLE_KEY, 0)  # new, empty pickers after each decision (see actions)
    x = c1.selectbox(
        "Class A", options, index=None, format_func=label, key=f"cur_add_a_{gen}", placeholder="Type to search…"
    )
    others = [o for o in options if x is None or o[0] != x[0]]  # B is in another domain
    y = c2.selectbox(
        "Class B", others, index=None, format_func=label, key=f"cur_add_b_{gen}", placeholder="Type to search…"
    )
    readings = {None: "related both ways, type not stated", **{r: RELATION_READING[r] for r in RELATIONS}}
    relation = st.radio(
        "Relation",
        list(readings),
        format_func=lambda r: readings[r].format(x="A", y="B") + (f" ({r})" if r else ""),
        horizontal=False,
        key=f"cur_add_rel_{gen}",
    )
    note = st.text_input("Note (optional)", key=f"cur_add_note_{gen}", max_chars=2000)
    if x is None or y is None:
        st.caption("Pick two classes of two different domains.")
        return
    if x[0] == y[0]:
        st.warning("Both classes are in one domain; a relationship joins two domains.")
        return
    ab, ba = EdgeRef(x[0], x[1], y[0], y[1]), EdgeRef(y[0], y[1], x[0], x[1])
    edges = {"narrower": [ab], "broader": [ba]}.get(relation, [ab, ba])
    P = data.load_matrices(rd, kind, stamp)
    p_ab, p_ba = float(P[x[0], y[0]][x[1], y[1]]), float(P[y[0], x[0]][y[1], x[1]])
    st.caption(
        f"Evidence: P(A→B) = {p_ab:.3f} (A's images the {names[y[0]]} model calls B), P(B→A) = {p_ba:.3f}. "
        f"Adds {' and '.join(f'{label((e.a, e.i))} → {label((e.b, e.j))}' for e in edges)}."
    )
    if st.button("➕ Add", key="cur_add_go", type="primary"):
        act(run, "add", edges, author=author, note=note, relation=relation)
