"""The accuracy sweep's figure: validation accuracy over each method's parameter (core.sweep table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.palette import DOMAIN_COLOURS

__all__ = ["accuracy_curves"]

_DASHES = ["dash", "dot", "dashdot", "longdash"]
_HOVER = "%{x}<br>val. acc %{y:.3f}<br>%{customdata}<extra>%{fullData.name}</extra>"
_GREY = "#808495"


@dataclass
class _Frame:
    """What every panel shares: the parameter-free rows, the ranges, the current setting."""

    flat: list
    truth: bool
    yrange: list[float]
    urange: list[float]
    current: tuple
    n: int


def accuracy_curves(df: pd.DataFrame, *, current: tuple[str, float | None] | None = None) -> go.Figure:
    """Validation accuracy (mean over domains) of an accuracy sweep over each method's parameter:
    one panel per parametrised method, parameter-free methods as dashed reference lines in every
    panel, the number of universal classes on a second y axis, F1 dotted where the table has a
    ground truth, and the ``current`` (method, value) marked."""
    from plotly.subplots import make_subplots

    missing = {"method", "param", "value", "val_acc_mean", "n_universal"} - set(df.columns)
    if missing:
        raise ValueError(f"the sweep table lacks the column(s) {sorted(missing)}")
    groups = [(m, g) for m, g in df.groupby("method", sort=False) if g["val_acc_mean"].notna().any()]
    curves = [(m, g.sort_values("value")) for m, g in groups if g["value"].notna().any()]
    frame = _frame(df, [(m, g.iloc[0]) for m, g in groups if not g["value"].notna().any()], current, len(curves))
    fig = make_subplots(
        rows=1,
        cols=frame.n,
        specs=[[{"secondary_y": True}] * frame.n],
        horizontal_spacing=0.09 if frame.n > 1 else 0.02,
        subplot_titles=[f"{m} ({g['param'].iloc[0]})" for m, g in curves] or ["parameter-free methods"],
    )
    for c, (m, g) in enumerate(curves, start=1):
        _panel(fig, c, m, g, frame)
    if not curves:
        _parameter_free(fig, frame)
    fig.update_yaxes(title_text="validation accuracy (mean)", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="universal classes", row=1, col=frame.n, secondary_y=True)
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.22))
    return fig


def _frame(df: pd.DataFrame, flat: list, current, n_curves: int) -> _Frame:
    truth = "f1" in df.columns and df["f1"].notna().any()
    ys = [df["val_acc_mean"]] + ([df["f1"]] if truth else [])
    lo = min(float(np.nanmin(y)) for y in ys if y.notna().any())
    hi = max(float(np.nanmax(y)) for y in ys if y.notna().any())
    urange = [0, max(1.0, float(np.nanmax(df["n_universal"]))) * 1.08]  # one scale for every panel
    return _Frame(flat, truth, [max(0.0, lo - 0.05), min(1.0, hi + 0.05)], urange,
                  current if current is not None else (None, None), max(1, n_curves))  # fmt: skip


def _panel(fig: go.Figure, c: int, m: str, g: pd.DataFrame, fr: _Frame) -> None:
    """One method's panel: accuracy, F1, universal classes, reference lines, the current value."""
    colour = DOMAIN_COLOURS[(c - 1) % len(DOMAIN_COLOURS)]
    text = [
        f"{int(u)} universal classes" + (f"<br>same taxonomy as {s}" if isinstance(s, str) and s else "")
        for u, s in zip(g["n_universal"], g.get("same_as", [""] * len(g)))
    ]
    line = dict(color=colour, width=2.5)
    fig.add_trace(go.Scatter(x=g["value"], y=g["val_acc_mean"], mode="lines+markers", name=f"{m}: val. accuracy",
                             customdata=text, hovertemplate=_HOVER, line=line), row=1, col=c)  # fmt: skip
    if fr.truth:
        fig.add_trace(go.Scatter(x=g["value"], y=g["f1"], mode="lines", name="F1 (ground truth)", legendgroup="f1",
                                 showlegend=c == 1, line=dict(color=colour, dash="dot", width=1.5),
                                 hovertemplate="%{x}<br>F1 %{y:.3f}<extra></extra>"), row=1, col=c)  # fmt: skip
    fig.add_trace(go.Scatter(x=g["value"], y=g["n_universal"], mode="lines", name="universal classes",
                             legendgroup="n_universal", showlegend=c == 1, line=dict(color=_GREY, width=1, shape="hv"),
                             hovertemplate="%{x}<br>%{y} universal classes<extra></extra>"),
                  row=1, col=c, secondary_y=True)  # fmt: skip
    _reference_lines(fig, c, float(g["value"].min()), float(g["value"].max()), fr)
    if m == fr.current[0] and fr.current[1] is not None:
        _current_marker(fig, c, g, float(fr.current[1]), colour)
    fig.update_xaxes(title_text=str(g["param"].iloc[0]), row=1, col=c)
    fig.update_yaxes(range=fr.yrange, showticklabels=c == 1, row=1, col=c, secondary_y=False)
    fig.update_yaxes(range=fr.urange, showgrid=False, tickformat="d", showticklabels=c == fr.n, row=1, col=c,
                     secondary_y=True)  # fmt: skip


def _reference_lines(fig: go.Figure, c: int, x0: float, x1: float, fr: _Frame) -> None:
    """The parameter-free methods as flat lines across a panel (the current one thicker)."""
    for k, (fm, row) in enumerate(fr.flat):
        now = fm == fr.current[0]
        hover = f"{fm}: val. acc %{{y:.3f}}, {int(row['n_universal'])} universal classes<extra></extra>"
        fig.add_trace(go.Scatter(x=[x0, x1], y=[row["val_acc_mean"]] * 2, mode="lines",
                                 name=f"{fm}{' (now)' if now else ''}: val. accuracy", legendgroup=fm,
                                 showlegend=c == 1, hovertemplate=hover,
                                 line=dict(dash=_DASHES[k % len(_DASHES)], color=_GREY, width=3 if now else 1.5)),
                      row=1, col=c)  # fmt: skip


def _current_marker(fig: go.Figure, c: int, g: pd.DataFrame, value: float, colour: str) -> None:
    """A vertical line at the slider's value and a ring on its point when the sweep has it."""
    fig.add_vline(x=value, line=dict(color=colour, dash="dash", width=1), row=1, col=c)
    at = g[np.isclose(g["value"].astype(float), value)]
    if len(at):
        marker = dict(size=14, symbol="circle-open", color=colour, line=dict(width=3))
        fig.add_trace(go.Scatter(x=[value], y=[float(at["val_acc_mean"].iloc[0])], mode="markers", name="now",
                                 showlegend=False, marker=marker, hoverinfo="skip"), row=1, col=c)  # fmt: skip


def _parameter_free(fig: go.Figure, fr: _Frame) -> None:
    """Only parameter-free methods were swept: one point (and a bar of universal classes) each."""
    names = [m for m, _ in fr.flat]
    fig.add_trace(go.Scatter(x=names, y=[r["val_acc_mean"] for _, r in fr.flat], mode="markers",
                             name="val. accuracy"), secondary_y=False)  # fmt: skip
    fig.add_trace(go.Bar(x=names, y=[r["n_universal"] for _, r in fr.flat], name="universal classes", opacity=0.3),
                  secondary_y=True)  # fmt: skip
    fig.update_yaxes(range=fr.yrange, secondary_y=False)
