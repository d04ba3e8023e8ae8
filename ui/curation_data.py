"""Cached loaders of the curation: the decision log replayed, the curated edge set and taxonomy of
a setting, its scores against the decisions (and against a ground truth when the run has one) and
the review table. Keyed like ui.data: run folder, the matrices' stamp and :func:`curation_stamp`
(the log's size and time), so a decision made in another tab or in a terminal shows at the next
rerun. All maths is in core.curation."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from core.runs import F, open_run
from ui import data

__all__ = [
    "curation_stamp",
    "curation_state",
    "curated_edges",
    "curated_taxonomy",
    "curation_scores",
    "curated_truth_scores",
    "review_edges",
    "class_options",
]


def curation_stamp(run_dir: str) -> float:
    """Changes whenever the decision log grows: its size plus its modification time (0: no log)."""
    try:
        st_ = os.stat(os.path.join(run_dir, F.CURATION))
    except OSError:
        return 0.0
    return st_.st_size + st_.st_mtime_ns / 1e9


@st.cache_resource(show_spinner=False, max_entries=16)
def curation_state(run_dir: str, cstamp: float):
    """core.curation.load_state of the run (the decisions in force, the redo stack, problems)."""
    from core.curation import load_state

    return load_state(open_run(run_dir))


@st.cache_resource(show_spinner=False, max_entries=32)
def curated_edges(run_dir: str, kind: str, method: str, value: float | None, stamp: float, cstamp: float) -> dict:
    """``{(a, b): Edges}``: the setting's edges + accepted - rejected (core.curation.curated_edge_set)."""
    from core.curation import curated_edge_set

    counts = [len(c) for c in data.domain_info(run_dir)[1]]
    return curated_edge_set(
        data.select_all(run_dir, kind, method, value, stamp), curation_state(run_dir, cstamp), counts
    )


@st.cache_resource(show_spinner=False, max_entries=32)
def curated_taxonomy(run_dir: str, kind: str, method: str, value: float | None, stamp: float, cstamp: float):
    """The UniversalTaxonomy of the curated edge set, built now."""
    from core.taxonomy import build_universal_taxonomy

    names, class_names = data.domain_info(run_dir)
    return build_universal_taxonomy(
        curated_edges(run_dir, kind, method, value, stamp, cstamp),
        [len(c) for c in class_names],
        class_names=class_names,
        domain_names=names,
    )


@st.cache_data(show_spinner=False, max_entries=64)
def curation_scores(run_dir: str, kind: str, method: str, value: float | None, stamp: float, cstamp: float) -> dict:
    """core.curation.curation_scores of the setting: the decisions as ground truth."""
    from core.curation import curation_scores as score

    return score(data.select_all(run_dir, kind, method, value, stamp), curation_state(run_dir, cstamp))


@st.cache_data(show_spinner=False, max_entries=64)
def curated_truth_scores(
    run_dir: str, kind: str, method: str, value: float | None, stamp: float, cstamp: float
) -> dict | None:
    """EDR / precision / recall / F1 of the curated edge set against the run's ground truth
    (None: the run has none)."""
    from core.metrics import relationship_scores

    truth = data.load_truth(run_dir, stamp)
    if truth is None:
        return None
    return relationship_scores(
        curated_edges(run_dir, kind, method, value, stamp, cstamp), truth["true"], truth["class_counts"]
    )


@st.cache_data(show_spinner=False, max_entries=32)
def review_edges(
    run_dir: str, kind: str, method: str, value: float | None, stamp: float, cstamp: float
) -> pd.DataFrame:
    """core.curation.review_table: the setting's edge evidence (selected edges and candidates)
    with each edge's decision, whether it is in the curated set, and the decision's note."""
    from core.curation import review_table

    names, class_names = data.domain_info(run_dir)
    return review_table(
        data.edge_evidence(run_dir, kind, method, value, stamp), curation_state(run_dir, cstamp), names, class_names
    )


def class_options(names: list[str], class_names: list[list[str]]) -> list[tuple[int, int]]:
    """Every (domain, class) of the run, for the searchable class pickers."""
    return [(a, i) for a in range(len(names)) for i in range(len(class_names[a]))]
