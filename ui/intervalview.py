"""Accuracies with their intervals, and whether a universal model's difference from the
baselines is more than noise (from the results step's ``intervals`` and ``seeds``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

__all__ = ["interval_table", "seed_table", "show_intervals"]


def _acc(v: list | None) -> str:
    return "" if not v else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def _diff(d: dict | None) -> str:
    if not d:
        return ""
    verdict = "within noise" if d["within_noise"] else ("better" if d["diff"] > 0 else "worse")
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] {verdict}"


def interval_table(intervals: dict, domains: list[str]) -> pd.DataFrame:
    """One row per domain and "mean": every model's accuracy as "acc [lo, hi]" and every
    universal model's difference from the baselines as "+d [lo, hi] verdict"."""
    rows = []
    for name in [*domains, "mean"]:
        row = {"domain": name}
        for col, per in intervals["accuracy"].items():
            row[col] = _acc(per.get(name))
        for col, per in intervals.get("vs_baseline", {}).items():
            row[f"{col} - baseline"] = _diff(per.get(name))
        rows.append(row)
    return pd.DataFrame(rows)


def seed_table(seeds: dict) -> pd.DataFrame:
    """Mean ± standard deviation (n seeds) of every model's test accuracy per domain."""
    import numpy as np

    domains = list(next(iter(seeds.values())))
    rows = []
    for name in domains:
        row = {"domain": name}
        for col, per in seeds.items():
            v = np.asarray(per[name], dtype=float)
            row[col] = f"{v.mean():.3f} ± {v.std(ddof=1):.3f} (n={v.size})" if v.size > 1 else f"{v.mean():.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def show_intervals(summary: dict | None, domains: list[str]) -> None:
    """The "is the difference real?" section of the Universal model page."""
    iv = (summary or {}).get("intervals")
    if not iv:
        st.caption("No intervals for this run (its results step ran before they were computed): rerun it.")
        return
    st.subheader("Is the difference real?")
    st.dataframe(interval_table(iv, domains), hide_index=True, width="stretch")
    st.caption(
        f"{iv['level']:.0%} bootstrap intervals over the test images ({iv['n_boot']} resamples; the mean resamples "
        'within each domain). Differences are paired: the same images judged by both models. "within noise": '
        "the interval contains 0, so these test images cannot tell the two models apart."
    )
    if summary.get("seeds"):
        st.dataframe(seed_table(summary["seeds"]), hide_index=True, width="stretch")
        st.caption("Every head trained again with other seeds (same recipe, cached features): mean ± spread.")
