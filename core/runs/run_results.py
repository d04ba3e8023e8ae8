"""The readers and writers of what the universal and results steps write: the universal model's
metrics and history, the results table, the 2-D embedding and which test images each model got
right. Mixed into :class:`core.runs.Run`, the one owner of the run folder's layout (file names
from :mod:`core.runs.layout`); the same rules hold: readers re-read the files on every call, writers
are atomic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.fsio import read_json, read_npz, write_json, write_npz, write_text
from core.runs.layout import F

__all__ = ["ResultsMixin"]


class ResultsMixin:
    """Universal-model and results readers and writers of :class:`core.runs.Run`."""

    path: Path  # the run folder (set by Run, which also gives baseline_metrics(), read by history)

    def universal_metrics(self, key: str) -> dict | None:
        """``{domain name: test accuracy}`` of the universal model of method ``key``."""
        return read_json(self.path / F.universal(key, "metrics.json"))

    def write_universal(self, key: str, history: list[dict], metrics: dict[str, float]) -> None:
        write_json(self.path / F.universal(key, "history.json"), history)
        write_json(self.path / F.universal(key, "metrics.json"), metrics)

    def history(self, key: str):
        """Per-epoch training history of the universal model of ``key`` as a DataFrame, or None.

        ``key="baseline/<domain name>"`` gives a baseline's history instead.
        """
        import pandas as pd

        if key.startswith("baseline/"):
            entry = (self.baseline_metrics() or {}).get(key.split("/", 1)[1])
            return pd.DataFrame(entry["history"]) if entry and entry.get("history") else None
        hist = read_json(self.path / F.universal(key, "history.json"))
        return pd.DataFrame(hist) if hist else None

    def results(self):
        """The results table as a DataFrame (one row per domain plus "mean"), or None."""
        path = self.path / F.RESULTS_CSV
        if not path.exists():
            return None
        import pandas as pd

        return pd.read_csv(path)

    def results_json(self) -> dict | None:
        """``{"table", "headline", "selection_scores", "n_universal", "timings_s"}`` or None."""
        return read_json(self.path / F.RESULTS_JSON)

    def write_results(self, table, summary: dict) -> None:
        write_text(self.path / F.RESULTS_CSV, table.to_csv(index=False))
        write_json(self.path / F.RESULTS_JSON, summary)

    def embedding(self) -> dict | None:
        """``{"xy": (N, 2), "domain": (N,), "label": (N,), "item": (N,) test index in its domain,
        "universal_pred": (N,), "key": the universal model's method key, "algorithm": "tsne"|"pca"}``
        or None."""
        path = self.path / F.EMBEDDING
        if not path.exists():
            return None
        out = read_npz(path)
        if "method" in out and "key" not in out:  # written before the key had its own word
            out["key"] = out.pop("method")
        for key in ("key", "algorithm"):
            if key in out:
                out[key] = str(out[key])
        return out

    def write_embedding(self, arrays: dict[str, np.ndarray]) -> None:
        write_npz(self.path / F.EMBEDDING, arrays)

    def test_correct(self) -> dict[str, list[np.ndarray]] | None:
        """Which test images each model got right: ``{"baseline" | "universal/<key>": [(n_a,) bool
        per domain]}``, or None (runs from before the results kept them)."""
        path = self.path / F.TEST_CORRECT
        if not path.exists():
            return None
        out: dict[str, dict[int, np.ndarray]] = {}
        for key, arr in read_npz(path).items():
            col, _, a = key.rpartition("/")
            out.setdefault(col, {})[int(a)] = arr.astype(bool)
        return {col: [per[a] for a in sorted(per)] for col, per in out.items()}

    def write_test_correct(self, correct: dict[str, list[np.ndarray]]) -> None:
        write_npz(
            self.path / F.TEST_CORRECT,
            {f"{col}/{a}": np.asarray(c, dtype=bool) for col, per in correct.items() for a, c in enumerate(per)},
        )
