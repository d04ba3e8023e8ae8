"""Plotly figure builders (no streamlit import). Streamlit's plotly theme follows the app's
light/dark theme, so figures set no colours of their own beyond the domain palette."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.palette import DOMAIN_COLOURS

__all__ = [
    "SORTS",
    "sort_order",
    "heatmap",
    "row_bars",
    "sweep_curves",
    "results_bars",
    "history_curves",
    "embedding_scatter",
]

SORTS = ("class index", "diagonal-like (argmax)", "confidence (row max)")


def sort_order(P: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Row and column orders of P (K_a, K_b) for display: index, argmax-diagonal or confidence."""
    P = np.asarray(P, dtype=float)
    rows, cols = np.arange(P.shape[0]), np.arange(P.shape[1])
    if how == SORTS[1]:
        cols = np.argsort(-P.sum(axis=0), kind="stable")
        rank = np.empty_like(cols)
        rank[cols] = np.arange(len(cols))
        rows = np.lexsort((-P.max(axis=1), rank[P.argmax(axis=1)]))
    elif how == SORTS[2]:
        rows = np.argsort(-P.max(axis=1), kind="stable")
        cols = np.argsort(-P.sum(axis=0), kind="stable")
    elif how != SORTS[0]:
        raise ValueError(f"sort {how!r} is not one of {SORTS}")
    return rows, cols


def heatmap(
    P: np.ndarray,
    row_names: list[str],
    col_names: list[str],
    *,
    sort: str = SORTS[0],
    row_label: str = "true class",
    col_label: str = "predicted class",
) -> go.Figure:
    """Heatmap of P (K_a, K_b); hover shows both class names and the probability."""
    rows, cols = sort_order(P, sort)
    Z = np.asarray(P, dtype=float)[np.ix_(rows, cols)]
    rn = np.array([str(row_names[i]) for i in rows], dtype=object)
    cn = np.array([str(col_names[j]) for j in cols], dtype=object)
    text = np.stack(np.broadcast_arrays(rn[:, None], cn[None, :]), axis=-1)
    fig = go.Figure(
        go.Heatmap(
            z=Z,
            customdata=text,
            colorscale="Viridis",
            zmin=0,
            zmax=max(float(Z.max(initial=0)), 1e-9),
            hovertemplate=f"{row_label}: %{{customdata[0]}}<br>{col_label}: %{{customdata[1]}}"
            "<br>P = %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(
        title=col_label,
        showticklabels=len(cols) <= 40,
        tickvals=list(range(len(cols))),
        ticktext=[short(c) for c in cn],
        tickangle=-45,
        automargin=True,
    )
    fig.update_yaxes(
        title=row_label,
        autorange="reversed",
        showticklabels=len(rows) <= 40,
        tickvals=list(range(len(rows))),
        ticktext=[short(r) for r in rn],
        automargin=True,
    )
    fig.update_layout(height=min(900, 420 + 12 * len(rows)), margin=dict(l=10, r=10, t=30, b=10))
    return fig


def short(name: str, limit: int = 24) -> str:
    """A tick label: the name cut to ``limit`` characters (the full name is in the hover)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def row_bars(row: np.ndarray, col_names: list[str], *, top_k: int = 15, title: str = "") -> go.Figure:
    """Bars of one class's foreign predictions: the top_k entries of one row of P."""
    row = np.asarray(row, dtype=float)
    order = np.argsort(-row, kind="stable")[:top_k]
    full = [str(col_names[j]) for j in order]
    fig = go.Figure(
        go.Bar(
            x=row[order],
            y=[f"{short(n, 32)} ({j})" for n, j in zip(full, order)],
            orientation="h",
            customdata=full,
            hovertemplate="%{customdata}: %{x:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_layout(
        title=title,
        height=120 + 24 * len(order),
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="share of the class's images",
    )
    return fig


def sweep_curves(df: pd.DataFrame, metric: str) -> go.Figure:
    """``metric`` over each method's parameter (core.metrics.sweep table): one panel per
    parametrised method (their parameters have different ranges), parameter-free methods as
    dashed reference lines in every panel."""
    from plotly.subplots import make_subplots

    if metric not in df.columns:
        raise ValueError(f"metric {metric!r} is not a column of the sweep table {list(df.columns)}")
    groups = list(df.groupby("method", sort=False))
    curves = [(m, g.sort_values("value")) for m, g in groups if g["value"].notna().sum() > 1]
    flat = [(m, float(g[metric].iloc[0])) for m, g in groups if g["value"].notna().sum() <= 1]
    fig = make_subplots(
        rows=1,
        cols=max(1, len(curves)),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{m} ({g['param'].iloc[0]})" for m, g in curves] or [""],
    )
    dashes = ["dash", "dot", "dashdot", "longdash"]
    for c, (m, g) in enumerate(curves, start=1):
        fig.add_trace(
            go.Scatter(
                x=g["value"],
                y=g[metric],
                mode="lines+markers",
                name=m,
                line=dict(color=DOMAIN_COLOURS[(c - 1) % len(DOMAIN_COLOURS)]),
            ),
            row=1,
            col=c,
        )
        lo, hi = float(g["value"].min()), float(g["value"].max())
        for k, (fm, v) in enumerate(flat):
            fig.add_trace(
                go.Scatter(
                    x=[lo, hi],
                    y=[v, v],
                    mode="lines",
                    name=fm,
                    legendgroup=fm,
                    showlegend=c == 1,
                    line=dict(dash=dashes[k % len(dashes)], color="#808495"),
                ),
                row=1,
                col=c,
            )
        fig.update_xaxes(title_text=str(g["param"].iloc[0]), row=1, col=c)
    fig.update_yaxes(title_text=metric, row=1, col=1)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def results_bars(table: pd.DataFrame, *, domain_col: str = "domain") -> go.Figure:
    """Grouped bars: per domain, the baseline and each universal method's test accuracy."""
    long = table.melt(id_vars=[domain_col], var_name="model", value_name="accuracy").dropna()
    fig = px.bar(long, x=domain_col, y="accuracy", color="model", barmode="group")
    fig.update_layout(height=380, yaxis_range=[0, 1], margin=dict(l=10, r=10, t=30, b=10))
    return fig


def history_curves(hist: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Training curves over the epochs: losses on the left axis, accuracies on the right."""
    from plotly.subplots import make_subplots

    x = hist["epoch"] if "epoch" in hist.columns else pd.Series(range(1, len(hist) + 1))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col in hist.columns:
        if col.endswith("loss") or col.endswith("acc") and not col.startswith("best"):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=hist[col],
                    name=col,
                    mode="lines+markers",
                    line=dict(dash="dot" if col.endswith("loss") else "solid"),
                ),
                secondary_y=col.endswith("acc"),
            )
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="accuracy", range=[0, 1], secondary_y=True)
    fig.update_layout(
        title=title,
        height=320,
        xaxis_title="epoch",
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def class_labels(domain: np.ndarray, label: np.ndarray, names: list[str], class_names: list[list[str]]) -> np.ndarray:
    """Readable "domain: class" labels (N,) for domain (N,) and per-domain class indices (N,)."""
    return np.array([f"{names[int(d)]}: {class_names[int(d)][int(c)]}" for d, c in zip(domain, label)])


def embedding_scatter(
    xy: np.ndarray,
    colour: np.ndarray,
    *,
    names: list[str] | None = None,
    legend: str = "domain",
    max_points: int = 20000,
    seed: int = 0,
) -> go.Figure:
    """2-D embedding (N, 2) coloured by a label array (N,); subsampled above ``max_points``."""
    xy = np.asarray(xy)
    idx = np.arange(len(xy))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    lab = np.asarray(colour)[idx]
    text = [names[int(v)] if names is not None and 0 <= int(v) < len(names) else str(v) for v in lab]
    fig = px.scatter(
        x=xy[idx, 0],
        y=xy[idx, 1],
        color=text,
        labels={"color": legend},
        color_discrete_sequence=DOMAIN_COLOURS if legend == "domain" else None,
    )
    fig.update_traces(marker=dict(size=4, opacity=0.7))
    fig.update_layout(height=480, xaxis_title="", yaxis_title="", margin=dict(l=10, r=10, t=30, b=10))
    return fig
