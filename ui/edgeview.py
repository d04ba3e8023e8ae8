"""The 🧾 Edge evidence tab of 🔗 Relationships: every candidate relationship read in both
directions of the run's count matrices (core.evidence.edge_table), its type and how sure the
images make it, the current setting's edges marked; filters and a CSV download."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.evidence import RELATIONS
from ui import data
from ui.setting import Setting

__all__ = ["LEGEND", "RELATIONS", "filter_edges", "edge_tab"]

ALL_PAIRS = "all domain pairs"
LEGEND = (
    "**Relation types** (a direction is *high* when at least half of a class's test images go to the "
    "other class): **equivalent**: both directions high, the same class; **narrower**: a:i → b:j high, "
    "b:j → a:i low, a:i is a part of b:j; **broader**: the reverse, b:j is a part of a:i; **overlap**: "
    "both low, the classes share only part of each other.\n\n"
    "**Confidence** (0 to 1) that the type holds: for each direction, how sure its images make it that "
    "the true share lies on the observed side of one half (a continuity-corrected score test, so it "
    "grows with the number of images), multiplied over the two directions. It is sample-size aware: "
    "one image is never evidence (confidence 0 even at 100 %); per direction, 3 of 3 images give 0.75, "
    "6 of 10 give 0.25, 60 of 100 give 0.94. It rates the *type* of a candidate, not whether the edge "
    "exists. Candidates: entries with P ≥ 0.05 in either direction, and every selected edge; each appears once "
    "per direction."
)
COLUMNS = {
    "selected": "selected",
    "domain_a": "domain a",
    "class_a": "class a",
    "domain_b": "domain b",
    "class_b": "class b",
    "relation": "relation",
    "confidence": "confidence",
    "p_ab": "P(a→b)",
    "p_ba": "P(b→a)",
    "n_ab": "images of a",
    "n_ba": "images of b",
}


def filter_edges(
    df: pd.DataFrame,
    *,
    pair: tuple[str, str] | None = None,
    relations: tuple[str, ...] = RELATIONS,
    selected_only: bool = False,
    min_confidence: float = 0.0,
) -> pd.DataFrame:
    """Rows of an edge table (with names and ``selected``) from domain ``pair`` (a, b) (None:
    every pair), of the given relation types, selected only if asked, with at least
    ``min_confidence``; the selected edges first, then by the share P(a→b), highest first."""
    keep = df["relation"].isin(relations) & (df["confidence"] >= min_confidence)
    if pair is not None:
        keep &= (df["domain_a"] == pair[0]) & (df["domain_b"] == pair[1])
    if selected_only:
        keep &= df["selected"]
    return df[keep].sort_values(["selected", "p_ab"], ascending=False, kind="stable")


def edge_tab(run_dir: str, kind: str, setting: Setting, stamp: float) -> None:
    """Filters, the table of the candidates that pass them, the CSV download and the legend."""
    df = data.edge_evidence(run_dir, kind, setting.method, setting.value, stamp)
    names = data.domain_info(run_dir)[0]
    pairs = [(a, b) for a in names for b in names if a != b]
    c1, c2, c3, c4 = st.columns([1.3, 2.9, 0.9, 1.3])
    pair = c1.selectbox(
        "Domain pair",
        [None, *pairs],
        format_func=lambda p: ALL_PAIRS if p is None else f"{p[0]} → {p[1]}",
        key="ev_pair",
    )
    relations = c2.multiselect("Relation", RELATIONS, default=list(RELATIONS), key="ev_rel")
    selected_only = c3.toggle("Selected only", key="ev_sel", help=f"Only the edges {setting.describe()} selects")
    min_conf = c4.slider("Min. confidence", 0.0, 1.0, 0.0, 0.05, key="ev_conf")
    view = filter_edges(
        df, pair=pair, relations=tuple(relations), selected_only=selected_only, min_confidence=min_conf
    )[list(COLUMNS)].rename(columns=COLUMNS)
    st.caption(
        f"{len(view):,} of {len(df):,} candidate edges shown · the {int(df['selected'].sum()):,} edges of "
        f"{setting.describe()} are all among them · click a column header to sort."
    )
    st.dataframe(
        view,
        hide_index=True,
        width="stretch",
        column_config={
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
            "P(a→b)": st.column_config.NumberColumn(format="%.3f"),
            "P(b→a)": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    key = setting.describe().replace(" ", "").replace("(", "_").replace(")", "").replace("=", "")
    st.download_button(
        "⬇️ edges.csv (as filtered)",
        view.to_csv(index=False),
        file_name=f"edges-{key}.csv",
        mime="text/csv",
        key="ev_csv",
    )
    st.markdown(LEGEND)
