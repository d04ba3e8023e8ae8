"""What a sweep table says: the best setting per method, and whether F1/EDR predict accuracy."""

from __future__ import annotations

import pandas as pd

__all__ = ["best_by_accuracy", "sweep_correlations"]

# the columns a sweep table has before its per-domain ones (core.sweep.SWEEP_COLUMNS)
_EMPTY = ("method", "param", "value", "n_edges", "n_universal", "val_acc_mean")


def best_by_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, the setting with the best mean validation accuracy (ties: the first)."""
    if table is None or table.empty:
        return pd.DataFrame(columns=list(_EMPTY))
    ok = table.dropna(subset=["val_acc_mean"])
    idx = ok.groupby("method", sort=False)["val_acc_mean"].idxmax()
    return ok.loc[idx].reset_index(drop=True)


def sweep_correlations(table: pd.DataFrame) -> dict:
    """Spearman rank correlation, across the distinct taxonomies swept (settings that share a
    taxonomy, ``same_as``, count once: they are one trained head) with a ground truth, of F1 and
    of -EDR with the mean validation accuracy: ``{"n", "f1", "f1_p", "neg_edr", "neg_edr_p"}``
    (NaN when fewer than 3 have scores)."""
    from scipy.stats import spearmanr

    if table is None or "f1" not in table:
        return {"n": 0, "f1": float("nan"), "f1_p": float("nan"), "neg_edr": float("nan"), "neg_edr_p": float("nan")}
    ok = table.dropna(subset=["f1", "edr", "val_acc_mean"])
    if "same_as" in ok:
        same = ok["same_as"]  # empty or missing: a setting trained on its own (not a copy of another)
        ok = ok[same.isna() | (same.astype(str) == "")]
    out = {"n": int(len(ok))}
    for key, col in (("f1", ok["f1"]), ("neg_edr", -ok["edr"])):
        if len(ok) < 3 or col.nunique() < 2 or ok["val_acc_mean"].nunique() < 2:
            out[key], out[f"{key}_p"] = float("nan"), float("nan")
        else:
            res = spearmanr(col, ok["val_acc_mean"])
            out[key], out[f"{key}_p"] = float(res.statistic), float(res.pvalue)
    return out
