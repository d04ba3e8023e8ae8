"""Drawing a prediction of 🖼️ Try it: the universal top-k, then each domain's top-k as the
universal model maps it to that domain's classes (``d_a = M_a p``)."""

from __future__ import annotations

import streamlit as st

__all__ = ["MAX_PER_ROW", "DOMAIN_SCORES_NOTE", "prediction_tables"]

MAX_PER_ROW = 3  # domain tables side by side; more domains wrap to further rows
DOMAIN_SCORES_NOTE = (
    "Each domain's table is the **universal model** read in that domain's classes, not a model of "
    "its own: a domain's scores are the universal probabilities summed through its mapping, "
    "d_a = M_a p (d_a[i] = Σ_u M_a[i, u] p_u). Unlike the universal top-k they do not sum to 1: "
    "a universal class with no member in the domain (one made of other domains' classes) adds "
    "nothing, and one joined through a one-way relationship adds only its weight w < 1. The sum "
    "under each table is the share of the universal probability that domain's classes account for."
)


def _table(col, rows: list[tuple[str, float]], label: str, help_: str) -> None:
    col.dataframe(
        [{"class": n, "p": float(p)} for n, p in rows],
        hide_index=True,
        width="stretch",
        column_config={
            "class": st.column_config.TextColumn("class", width="medium"),
            "p": st.column_config.ProgressColumn(
                label, min_value=0.0, max_value=1.0, format="%.3f", width="small", help=help_
            ),
        },
    )


def prediction_tables(res: dict, method: str, top_k: int, n_classes: dict[str, int] | None = None) -> None:
    """``res`` (core.inference.predict_image's answer) as probability-bar tables: the universal
    model's top-``top_k``, then one table per domain (at most :data:`MAX_PER_ROW` a row). When a
    domain's list holds all of its ``n_classes[domain]`` classes (predict with a large top_k),
    the sum of its scores is shown under its table."""
    key = res.get("method", method)
    universal = res["universal"][:top_k]
    st.subheader(f"Universal top-{len(universal)} ({key})")
    _table(st, universal, "p", "the universal model's softmax probability")
    st.markdown("**Per domain: the universal model mapped to each domain's classes (d_a = M_a p)**")
    st.caption(DOMAIN_SCORES_NOTE)
    domains = list(res["domains"].items())
    for start in range(0, len(domains), MAX_PER_ROW):
        cols = st.columns(MAX_PER_ROW)
        for col, (dom, scores) in zip(cols, domains[start : start + MAX_PER_ROW]):
            col.markdown(f"**{dom}** classes · d = M_{dom} p")
            _table(col, scores[:top_k], "d", f"Σ_u M_{dom}[class, u] p_u")
            n = (n_classes or {}).get(dom)
            if n is not None and len(scores) >= n:
                col.caption(f"sum over {dom}'s {n} classes: **{sum(float(p) for _, p in scores):.3f}**")
