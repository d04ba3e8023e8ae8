"""Drawing helpers of the 🔗 Relationships page: the score row, with each score's change since
the setting shown before."""

from __future__ import annotations

import streamlit as st

__all__ = ["SCORES", "previous_scores", "score_row"]

SCORES = [("edr", "EDR ↓"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1")]


def previous_scores(setting: tuple, scores: dict | None) -> dict | None:
    """The scores of the setting shown before ``setting`` in this session (None at first)."""
    last = st.session_state.get("rel_last")
    if last is None or last[0] != setting:
        st.session_state.rel_prev = last[1] if last else None
        st.session_state.rel_last = (setting, scores)
    return st.session_state.get("rel_prev")


def score_row(setting: tuple, scores: dict | None, n_edges: int) -> None:
    """The edge count and the scores against the ground truth (with their change since the
    previous setting); without ground truth, a note saying so."""
    prev = previous_scores(setting, scores)
    cols = st.columns(1 + len(SCORES))
    cols[0].metric("Edges selected", f"{n_edges:,}")
    if scores is None:
        st.info(
            "ℹ️ This run has real (non-synthetic) domains: no ground truth, so no EDR/F1. "
            "The edge count and the taxonomy still follow the slider."
        )
        return
    for col, (key, label) in zip(cols[1:], SCORES):
        delta = None if not prev else round(scores[key] - prev[key], 4)
        col.metric(label, f"{scores[key]:.3f}", delta=delta, delta_color="inverse" if key == "edr" else "normal")
