"""Drawing a prediction of 🖼️ Try it: the universal top-k and every domain model's top-k."""

from __future__ import annotations

import streamlit as st

__all__ = ["prediction_tables"]


def prediction_tables(res: dict, method: str) -> None:
    """``res`` (core.inference.predict_image's answer) as probability-bar tables: the universal
    model's top-k, then one column per domain model."""
    bar = {"p": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="%.3f")}
    st.subheader(f"Universal top-{len(res['universal'])} ({res.get('method', method)})")
    st.dataframe(
        [{"class": n, "p": float(p)} for n, p in res["universal"]], hide_index=True, width="stretch", column_config=bar
    )
    cols = st.columns(max(1, len(res["domains"])))
    for col, (dom, top) in zip(cols, res["domains"].items()):
        col.markdown(f"**{dom}** model")
        col.dataframe(
            [{"class": n, "p": float(p)} for n, p in top], hide_index=True, width="stretch", column_config=bar
        )
