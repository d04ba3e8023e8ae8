"""Tables for the 📚 Runs page (no streamlit import)."""

from __future__ import annotations

import pandas as pd

from core.runs import STATE_ICONS

__all__ = ["runs_table", "flatten", "config_diff", "headline_table", "best_method"]

TEXT_COLUMNS = ("run", "created", "state", "step", "config", "message")


def runs_table(infos) -> pd.DataFrame:
    """One row per RunInfo: id, created, state (with its icon), step, config name, the status
    message (for a corrupt run: why) and its headline metrics."""
    rows = []
    for i in infos:
        row = {
            "run": i.id,
            "created": i.created,
            "state": f"{STATE_ICONS.get(i.state, '•')} {i.state}",
            "step": i.step,
            "config": i.config_name,
            "message": i.message,
        }
        row.update({k: round(v, 4) if isinstance(v, float) else v for k, v in (i.headline or {}).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    text = [c for c in TEXT_COLUMNS if c in table.columns]
    table[text] = table[text].astype(object).where(table[text].notna(), "")  # a missing value reads as empty
    return table


def flatten(cfg, prefix: str = "") -> dict:
    """{"a.b.c": value} for a nested dict (lists kept as their string form)."""
    out = {}
    for k, v in (cfg or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if not isinstance(v, list) else str(v)
    return out


def config_diff(a: dict, b: dict) -> pd.DataFrame:
    """Keys whose values differ between two configs: key, A, B."""
    fa, fb = flatten(a), flatten(b)
    keys = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
    return pd.DataFrame(
        {
            "key": keys,
            "A": [str(fa[k]) if k in fa else "" for k in keys],
            "B": [str(fb[k]) if k in fb else "" for k in keys],
        }
    )


def headline_table(headline: dict) -> pd.DataFrame:
    """One row per selection method: the universal model's mean test accuracy and the method's
    F1 against the ground truth, from a run's headline ({"universal_mean/<m>": .., "f1/<m>": ..})."""
    rows: dict[str, dict] = {}
    for key, value in headline.items():
        kind, _, method = key.partition("/")
        if method and kind in ("universal_mean", "f1"):
            rows.setdefault(method, {"method": method})[
                "universal: mean test accuracy" if kind == "universal_mean" else "F1 vs ground truth"
            ] = value
    return pd.DataFrame(list(rows.values()))


def best_method(headline: dict | None, keys: list[str]) -> str | None:
    """The method key of ``keys`` whose universal model has the best mean test accuracy in a
    run's headline (``{"universal_mean/<key>": ..}``; ties: the first in ``keys``), or None when
    the headline scores none of them."""
    scored = []
    for pos, key in enumerate(keys):
        value = (headline or {}).get(f"universal_mean/{key}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            scored.append((-float(value), pos, key))
    return min(scored)[2] if scored else None
