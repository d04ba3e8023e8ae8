"""Drawing helpers of the 🔗 Relationships page: the score row and the row of label-free
indicators, each value with its change since the setting shown before."""

from __future__ import annotations

import math

import streamlit as st

__all__ = ["SCORES", "INDICATORS", "previous_scores", "score_row", "indicator_row"]

SCORES = [("edr", "EDR ↓"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1")]
# (key, label, help) of the label-free indicators (core.evidence.label_free_indicators + the sweep)
INDICATORS = [
    ("n_universal", "Universal classes", "Universal classes of the taxonomy this setting builds (🌳 Taxonomy)."),
    (
        "split_share",
        "Split classes",
        "Share of all domain classes mapped to more than one universal class (one-way edges split a class).",
    ),
    (
        "bidirectional_agreement",
        "Two-way agreement",
        "Bidirectional agreement: the share of the selected edges a:i → b:j whose reverse b:j → a:i is "
        "selected too (both domains' models see the relationship).",
    ),
    (
        "val_acc",
        "Val. accuracy (sweep)",
        "Mean validation accuracy of the universal model trained with this setting, from the 🎯 Accuracy "
        "sweep ('—': the sweep has no row for this setting).",
    ),
]


def previous_scores(setting: tuple, scores: dict | None, slot: str = "rel") -> dict | None:
    """The values of the setting shown before ``setting`` in this session (None at first); each
    ``slot`` keeps its own history."""
    last = st.session_state.get(f"{slot}_last")
    if last is None or last[0] != setting:
        st.session_state[f"{slot}_prev"] = last[1] if last else None
        st.session_state[f"{slot}_last"] = (setting, scores)
    return st.session_state.get(f"{slot}_prev")


def score_row(setting: tuple, scores: dict | None, n_edges: int) -> None:
    """The edge count and the scores against the ground truth (with their change since the
    previous setting); without ground truth, a note saying so."""
    prev = previous_scores(setting, scores)
    cols = st.columns(1 + len(SCORES) if scores is not None else [1, len(SCORES)])
    cols[0].metric("Edges selected", f"{n_edges:,}")
    if scores is None:
        cols[1].info(
            "ℹ️ This run has real (non-synthetic) domains: no ground truth, so no EDR/F1. Judge a setting "
            "by the label-free indicators below and by the validation accuracy of the **🎯 Accuracy sweep**; "
            "the taxonomy follows the slider."
        )
        return
    for col, (key, label) in zip(cols[1:], SCORES):
        delta = None if not prev else round(scores[key] - prev[key], 4)
        col.metric(label, f"{scores[key]:.3f}", delta=delta, delta_color="inverse" if key == "edr" else "normal")


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _text(key: str, x: object) -> str:
    if not _finite(x):
        return "—"
    if key == "n_universal":
        return f"{int(x):,}"
    return f"{x:.1%}" if key in ("split_share", "bidirectional_agreement") else f"{x:.3f}"


def indicator_row(setting: tuple, values: dict) -> None:
    """The label-free indicators of ``setting`` (``values`` keyed as :data:`INDICATORS`; a
    missing or NaN value reads '—'), aligned under the score row, with their change since the
    previous setting."""
    prev = previous_scores(setting, values, slot="ind") or {}
    cols = st.columns(1 + len(INDICATORS))
    cols[0].caption("🏷️ **Label-free** (no ground truth needed)")
    for col, (key, label, help_) in zip(cols[1:], INDICATORS):
        now, before = values.get(key), prev.get(key)
        delta = None
        if _finite(now) and _finite(before) and now != before:
            d = float(now - before)
            delta = (
                f"{int(d):+d}" if key == "n_universal" else f"{d:+.3f}" if key == "val_acc" else f"{100 * d:+.1f} pp"
            )
        neutral = key in ("n_universal", "split_share")  # more or fewer is neither better nor worse
        col.metric(label, _text(key, now), delta=delta, delta_color="off" if neutral else "normal", help=help_)
