"""Plotly figure builders (no streamlit import). Streamlit's plotly theme follows the app's
light/dark theme, so figures set no colours of their own beyond the domain palette."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from ui.graph import DOMAIN_COLOURS

__all__ = [
    "SORTS",
    "sort_order",
    "heatmap",
    "row_bars",
    "sweep_curves",
    "accuracy_curves",
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


def accuracy_curves(df: pd.DataFrame, *, current: tuple[str, float | None] | None = None) -> go.Figure:
    """Validation accuracy (mean over domains) of an accuracy sweep (core.sweep table) over each
    method's parameter: one panel per parametrised method, parameter-free methods as dashed
    reference lines in every panel, the number of universal classes on a second y axis, F1 dotted
    where the table has a ground truth, and the ``current`` (method, value) marked."""
    from plotly.subplots import make_subplots

    missing = {"method", "param", "value", "val_acc_mean", "n_universal"} - set(df.columns)
    if missing:
        raise ValueError(f"the sweep table lacks the column(s) {sorted(missing)}")
    groups = [(m, g) for m, g in df.groupby("method", sort=False) if g["val_acc_mean"].notna().any()]
    curves = [(m, g.sort_values("value")) for m, g in groups if g["value"].notna().any()]
    flat = [(m, g.iloc[0]) for m, g in groups if not g["value"].notna().any()]
    truth = "f1" in df.columns and df["f1"].notna().any()
    n = max(1, len(curves))
    fig = make_subplots(
        rows=1,
        cols=n,
        specs=[[{"secondary_y": True}] * n],
        horizontal_spacing=0.09 if n > 1 else 0.02,
        subplot_titles=[f"{m} ({g['param'].iloc[0]})" for m, g in curves] or ["parameter-free methods"],
    )
    ys = [df["val_acc_mean"]] + ([df["f1"]] if truth else [])
    lo = min(float(np.nanmin(y)) for y in ys if y.notna().any())
    hi = max(float(np.nanmax(y)) for y in ys if y.notna().any())
    yrange = [max(0.0, lo - 0.05), min(1.0, hi + 0.05)]
    urange = [0, max(1.0, float(np.nanmax(df["n_universal"]))) * 1.08]  # one scale for every panel
    cur_m, cur_v = current if current is not None else (None, None)
    dashes = ["dash", "dot", "dashdot", "longdash"]
    hover = "%{x}<br>val. acc %{y:.3f}<br>%{customdata}<extra>%{fullData.name}</extra>"
    for c, (m, g) in enumerate(curves, start=1):
        text = [
            f"{int(u)} universal classes" + (f"<br>same taxonomy as {s}" if isinstance(s, str) and s else "")
            for u, s in zip(g["n_universal"], g.get("same_as", [""] * len(g)))
        ]
        colour = DOMAIN_COLOURS[(c - 1) % len(DOMAIN_COLOURS)]
        fig.add_trace(
            go.Scatter(
                x=g["value"],
                y=g["val_acc_mean"],
                mode="lines+markers",
                name=f"{m}: val. accuracy",
                customdata=text,
                hovertemplate=hover,
                line=dict(color=colour, width=2.5),
            ),
            row=1,
            col=c,
        )
        if truth:
            fig.add_trace(
                go.Scatter(
                    x=g["value"],
                    y=g["f1"],
                    mode="lines",
                    name="F1 (ground truth)",
                    legendgroup="f1",
                    showlegend=c == 1,
                    line=dict(color=colour, dash="dot", width=1.5),
                    hovertemplate="%{x}<br>F1 %{y:.3f}<extra></extra>",
                ),
                row=1,
                col=c,
            )
        fig.add_trace(
            go.Scatter(
                x=g["value"],
                y=g["n_universal"],
                mode="lines",
                name="universal classes",
                legendgroup="n_universal",
                showlegend=c == 1,
                line=dict(color="#808495", width=1, shape="hv"),
                hovertemplate="%{x}<br>%{y} universal classes<extra></extra>",
            ),
            row=1,
            col=c,
            secondary_y=True,
        )
        x0, x1 = float(g["value"].min()), float(g["value"].max())
        for k, (fm, row) in enumerate(flat):
            now = fm == cur_m
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[row["val_acc_mean"]] * 2,
                    mode="lines",
                    name=f"{fm}{' (now)' if now else ''}: val. accuracy",
                    legendgroup=fm,
                    showlegend=c == 1,
                    line=dict(dash=dashes[k % len(dashes)], color="#808495", width=3 if now else 1.5),
                    hovertemplate=f"{fm}: val. acc %{{y:.3f}}, {int(row['n_universal'])} universal classes"
                    "<extra></extra>",
                ),
                row=1,
                col=c,
            )
        if m == cur_m and cur_v is not None:
            fig.add_vline(x=float(cur_v), line=dict(color=colour, dash="dash", width=1), row=1, col=c)
            at = g[np.isclose(g["value"].astype(float), float(cur_v))]
            if len(at):
                fig.add_trace(
                    go.Scatter(
                        x=[float(cur_v)],
                        y=[float(at["val_acc_mean"].iloc[0])],
                        mode="markers",
                        name="now",
                        showlegend=False,
                        marker=dict(size=14, symbol="circle-open", color=colour, line=dict(width=3)),
                        hoverinfo="skip",
                    ),
                    row=1,
                    col=c,
                )
        fig.update_xaxes(title_text=str(g["param"].iloc[0]), row=1, col=c)
        fig.update_yaxes(range=yrange, showticklabels=c == 1, row=1, col=c, secondary_y=False)
        fig.update_yaxes(
            range=urange, showgrid=False, tickformat="d", showticklabels=c == n, row=1, col=c, secondary_y=True
        )
    if not curves:  # only parameter-free methods were swept: one point each
        names = [m for m, _ in flat]
        fig.add_trace(
            go.Scatter(x=names, y=[r["val_acc_mean"] for _, r in flat], mode="markers", name="val. accuracy"),
            secondary_y=False,
        )
        fig.add_trace(
            go.Bar(x=names, y=[r["n_universal"] for _, r in flat], name="universal classes", opacity=0.3),
            secondary_y=True,
        )
        fig.update_yaxes(range=yrange, secondary_y=False)
    fig.update_yaxes(title_text="validation accuracy (mean)", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="universal classes", row=1, col=n, secondary_y=True)
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.22))
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
