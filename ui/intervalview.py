"""Accuracies with their intervals, and whether a universal model's difference from the
baselines is more than noise (from the results step's ``intervals`` and ``seeds``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

__all__ = ["interval_table", "difference_table", "seed_table", "show_intervals"]


def _acc(v: list | None) -> str:
    return "" if not v else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def interval_table(intervals: dict, domains: list[str]) -> pd.DataFrame:
    """One row per domain and "mean": every model's accuracy as "acc [lo, hi]"."""
    rows = []
    for name in [*domains, "mean"]:
        row = {"domain": name}
        for col, per in intervals["accuracy"].items():
            row[col] = _acc(per.get(name))
        rows.append(row)
    return pd.DataFrame(rows)


def difference_table(intervals: dict, domains: list[str]) -> pd.DataFrame:
    """One row per universal model and domain (mean first): its accuracy minus the baselines'
    on the same images, the interval, the exact test's p-value and the verdict."""
    rows = []
    for col, per in intervals.get("vs_baseline", {}).items():
        for name in ["mean", *domains]:
            d = per.get(name)
            if not d:
                continue
            verdict = "within noise" if d["within_noise"] else ("better" if d["diff"] > 0 else "worse")
            p = d.get("p_value")
            rows.append({"model": col, "domain": name, "verdict": verdict, "difference": f"{d['diff']:+.3f}",
                         "interval": f"[{d['lo']:+.3f}, {d['hi']:+.3f}]",
                         "p (exact)": "" if p is None else f"{p:.3g}"})  # fmt: skip
    return pd.DataFrame(rows)


def seed_table(seeds: dict) -> pd.DataFrame:
    """Mean ± standard deviation (n seeds) of every model's test accuracy per domain."""
    import numpy as np

    domains = list(next(iter(seeds.values())))
    rows = []
    for name in [*domains, "mean"]:
        row = {"domain": name}
        for col, per in seeds.items():
            if name == "mean":  # the mean over domains, per seed
                v = np.mean([np.asarray(per[d], dtype=float) for d in domains], axis=0)
            else:
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
    diffs = difference_table(iv, domains)
    if len(diffs):
        st.dataframe(diffs, hide_index=True, width="stretch")
    st.caption(
        f"{iv['level']:.0%} bootstrap intervals over the test images ({iv['n_boot']} resamples; the mean resamples "
        "within each domain). Differences are paired: the same images judged by both models. A difference is "
        f'"better" or "worse" only when its interval excludes 0 and the exact McNemar test rejects at '
        f'{1 - iv["level"]:.2g}; otherwise it is "within noise": these test images cannot tell the two models apart.'
    )
    if summary.get("seeds"):
        st.dataframe(seed_table(summary["seeds"]), hide_index=True, width="stretch")
        st.caption(
            "Every head trained again with other seeds (same recipe, cached features): mean ± standard deviation "
            "over the seeds (n seeds); the mean row averages the domains per seed first."
        )
