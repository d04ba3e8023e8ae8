"""Cached loaders beside ui.data: whether a shipped or saved config can run here, the evidence
behind a taxonomy's relationships (core.evidence.edge_table), the taxonomy graph drawn with that
evidence, and the figures of 🎯 Universal model. Like ui.data, every function takes the run
folder as a string plus file stamps, so an entry is reused on revisits and refreshed when the
run writes new files; the maths stays in ``core``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.runs import F, open_run
from ui import data

__all__ = [
    "EDGE_COLUMNS",
    "config_problem",
    "relation_table",
    "graph_data",
    "training_figure",
    "results_figure",
    "embedding_figure",
]

# Columns of the "Edges CSV" download and of the graph's relationship tooltips, in order.
EDGE_COLUMNS = [
    "domain_a",
    "class_a",
    "domain_b",
    "class_b",
    "weight",
    "relation",
    "confidence",
    "p_ab",
    "p_ba",
    "n_ab",
    "n_ba",
    "a",
    "i",
    "b",
    "j",
]


@st.cache_data(show_spinner=False, max_entries=64)
def config_problem(path: str, stamp: float) -> str | None:
    """Why the config file at ``path`` cannot be launched on this machine (a dataset that is not
    on disk, an invalid config), in one line; None when it can."""
    from core.config import load_config
    from core.domains import check_data

    try:
        check_data(load_config(path))
    except FileNotFoundError as exc:
        return f"the config file is gone ({exc})"
    except (ValueError, TypeError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _selected(run_dir: str, source: str, kind: str, method: str, value, stamp: float) -> dict:
    """``{(a, b): W_ab}`` (dense or core.selection.Edges) of a saved taxonomy (``"saved: KEY"``),
    of the live setting plus the decisions (``"curated: ..."``) or of the live setting."""
    if source.startswith("saved: "):
        return open_run(run_dir).relationships(source[len("saved: ") :])
    if source.startswith("curated: "):
        from ui.curation_data import curated_edges, curation_stamp

        return curated_edges(run_dir, kind, method, value, data.matrices_stamp(run_dir), curation_stamp(run_dir))
    return data.select_all(run_dir, kind, method, value, stamp)


def _weights(selected: dict, a: np.ndarray, i: np.ndarray, b: np.ndarray, j: np.ndarray) -> np.ndarray:
    """W_ab[i, j] of every row (a, i, b, j)."""
    dense = {pair: (w.dense() if hasattr(w, "dense") else np.asarray(w, dtype=float)) for pair, w in selected.items()}
    return np.array([float(dense[(x, y)][r, c]) for x, r, y, c in zip(a, i, b, j)], dtype=float)


@st.cache_data(show_spinner=False, max_entries=32)
def relation_table(run_dir: str, source: str, kind: str, method: str, value, stamp: float) -> pd.DataFrame | None:
    """The selected relationships of a taxonomy with their evidence (core.evidence.edge_table on
    the run's count matrices, every selected edge listed): columns :data:`EDGE_COLUMNS`, one row
    per selected directed edge a:i -> b:j. None when the run kept no count matrices."""
    from core.evidence import edge_table

    counts = data.load_matrices(run_dir, "count", stamp)
    if not counts:
        return None
    names, class_names = data.domain_info(run_dir)
    selected = {pair: w for pair, w in _selected(run_dir, source, kind, method, value, stamp).items() if pair in counts}
    table = edge_table(counts, data.image_counts(run_dir, stamp), selected=selected, class_names=class_names,
                       domain_names=names)  # fmt: skip
    out = table[table["selected"]].reset_index(drop=True)
    out["weight"] = _weights(selected, *(out[c].to_numpy() for c in ("a", "i", "b", "j")))
    return out[EDGE_COLUMNS]


@st.cache_data(show_spinner=False, max_entries=64)
def graph_data(
    run_dir: str,
    source: str,
    stamp: float,
    flt,
    _tax,
    class_names: list,
    domain_names: list,
    _relations: pd.DataFrame | None,
) -> tuple[list[dict], list[dict]]:
    """ui.graph.graph_elements of one taxonomy (named by ``source``) with its relationships
    (``_relations``, from :func:`relation_table` of the same source; neither is hashed)."""
    from ui.graph import graph_elements

    relations = None if _relations is None else _relations.to_dict("records")
    return graph_elements(_tax.mappings, _tax.names, class_names, domain_names, flt=flt, relations=relations)


# ----------------------------------------------------------------------------- 🎯 Universal model


@st.cache_resource(show_spinner=False, max_entries=16)
def training_figure(run_dir: str, keys: tuple[str, ...], stamps: tuple[float, ...]):
    """The training curves of several universal models in ONE figure (a chart each costs the
    browser a plotly instance): losses on the left, accuracies on the right, one colour per
    method, training dotted and validation solid; clicking a method in the legend hides it.
    None when no model has a history."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from core.palette import DOMAIN_COLOURS

    run = open_run(run_dir)
    fig = make_subplots(rows=1, cols=2, subplot_titles=["loss", "accuracy"], horizontal_spacing=0.08)
    drawn = False
    for n, key in enumerate(keys):
        hist = run.history(key)
        if hist is None or not len(hist):
            continue
        x = hist["epoch"] if "epoch" in hist.columns else pd.Series(range(1, len(hist) + 1))
        colour = DOMAIN_COLOURS[n % len(DOMAIN_COLOURS)]
        first = True
        for col in hist.columns:
            panel = 1 if col.endswith("loss") else 2 if col.endswith("acc") and not col.startswith("best") else 0
            if not panel:
                continue
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=hist[col],
                    name=key,
                    legendgroup=key,
                    showlegend=first,
                    mode="lines",
                    line=dict(color=colour, dash="solid" if col.startswith("val") else "dot"),
                    hovertemplate=f"{key} · {col}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=panel,
            )
            first, drawn = False, True
    if not drawn:
        return None
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(
        height=340,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25, title_text="method (dotted: training, solid: validation)  "),
    )
    return fig


@st.cache_resource(show_spinner=False, max_entries=8)
def results_figure(run_dir: str, stamp: float, columns: tuple[str, ...]):
    """Bars of the results table's ``columns`` (the domain column first)."""
    from ui.plots import results_bars

    table = open_run(run_dir).results()
    return results_bars(table[list(columns)], domain_col=columns[0])


@st.cache_resource(show_spinner=False, max_entries=8)
def embedding_figure(run_dir: str, stamp: float, by: str):
    """The 2-D embedding coloured by ``by`` ("domain" or "class"), or None without one."""
    from ui.plots import class_labels, embedding_scatter

    run = open_run(run_dir)
    emb = run.embedding()
    if emb is None:
        return None
    names, class_names = data.domain_info(run_dir)
    if by == "class":  # a class is (domain, class index): name both, so domains don't mix
        labels = class_labels(emb["domain"], emb["label"], names, class_names)
        return embedding_scatter(emb["xy"], labels, legend="class")
    return embedding_scatter(emb["xy"], emb["domain"], names=names)


def universal_stamp(run_dir: str, key: str) -> float:
    """Cache stamp of a universal model's history."""
    return data.stamp_of(run_dir, F.universal(key, "history.json"))
