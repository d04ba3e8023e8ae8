"""An image-free run folder drawn from the synthetic noise model, written with the run's own
writers (core.runs.Run). Used by the app tests, the browser tests and bench/ to exercise every
page without training anything: the cross-domain counts come from
``core.synthetic.sample_cross_counts``; accuracies, histories and the embedding written with
``full=True`` are PLACEHOLDERS derived from the noise level, never measurements.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.config import config_from_dict, config_to_dict, default_domain_names
from core.crossdomain import normalize_rows
from core.runs import STEPS, Run, init_run_dir, validate_run_id
from core.selection import check_params, select_relationships
from core.synthetic import sample_cross_counts
from core.taxonomy import build_universal_taxonomy

__all__ = ["write_synthetic_run"]


def _predictions(counts: dict, class_counts: list[int]) -> tuple[dict, dict]:
    """Per-image hard predictions consistent with the count matrices (images sorted by class)."""
    true, pred = {}, {}
    for (a, b), C in counts.items():
        true[a] = np.repeat(np.arange(class_counts[a]), C.sum(axis=1).astype(np.int64))
        pred[a, b] = np.concatenate([np.repeat(np.arange(C.shape[1]), row.astype(np.int64)) for row in C])
    return true, pred


def write_synthetic_run(
    root: str | Path,
    run_id: str,
    taxonomy,
    *,
    images_per_class: int = 30,
    noise: float = 0.2,
    seed: int = 0,
    methods: tuple[str, ...] = ("mcfp",),
    full: bool = True,
) -> Path:
    """Write ``root/run_id`` from a SyntheticTaxonomy; return the folder.

    Writes config, status (state done), domains, ground truth and the cross-domain outputs
    (hard, soft = hard, count matrices; predictions). With ``full``: taxonomies for
    ``methods``, baselines/universal metrics, histories, results and an embedding (placeholders).
    """
    run = Run(init_run_dir(Path(root) / validate_run_id(run_id)))
    counts = taxonomy.class_counts
    names, class_names = default_domain_names(len(counts)), taxonomy.class_names()
    cfg = config_from_dict(
        {
            "name": run_id,
            "seed": seed,
            "domains": {
                "synthetic": {
                    "n_concepts": taxonomy.n_concepts,
                    "n_domains": len(counts),
                    "concepts_mean": float(
                        min(np.mean([sum(map(len, d)) for d in taxonomy.domains]), taxonomy.n_concepts)
                    ),
                }
            },
            "selection": {"methods": [{"name": m, "params": check_params(m, {}), "label": m} for m in methods]},
        }
    )
    run.write_config(config_to_dict(cfg))
    run.write_domains(
        [
            {
                "name": names[a],
                "source": "noise-model",
                "shift": "none",
                "class_names": class_names[a],
                "n_train": 0,
                "n_val": 0,
                "n_test": images_per_class * counts[a],
            }
            for a in range(len(counts))
        ]
    )
    run.write_ground_truth(taxonomy)
    C = sample_cross_counts(taxonomy, images_per_class=images_per_class, noise=noise, seed=seed)
    hard = {ab: normalize_rows(c) for ab, c in C.items()}
    true, pred = _predictions(C, counts)
    run.write_crossdomain({"count": C, "hard": hard, "soft": hard}, true, {}, pred, {})
    run.log("synthetic noise-model run (no images)")
    done = list(STEPS[:4])
    if full:
        _write_full(run, taxonomy, C, names, class_names, methods, noise, seed)
        done = list(STEPS)
    run.write_status(state="done", step=done[-1], steps_done=done, progress=1.0, message="done", pid=None)
    run.write_environment({"start_time": "2026-01-01T00:00:00+00:00", "seed": seed})
    return run.path


def _write_full(run: Run, taxonomy, C, names, class_names, methods, noise, seed) -> None:
    """Placeholder results for UI tests."""
    rng = np.random.default_rng(seed)
    counts = taxonomy.class_counts
    base = {
        n: {
            "test_acc": round(1 - noise + 0.05 * rng.random(), 4),
            "val_acc": round(1 - noise, 4),
            "history": [{"epoch": e, "loss": 1 / (e + 1), "val_acc": (1 - noise) * e / 4} for e in range(1, 5)],
        }
        for n in names
    }
    run.write_baseline_metrics(base)
    rows = {n: {"domain": n, "baseline": base[n]["test_acc"]} for n in names}
    for m in methods:
        params = check_params(m, {})
        W = {pair: select_relationships(normalize_rows(c), m, **params) for pair, c in C.items()}
        tax = build_universal_taxonomy(W, counts, class_names=class_names, domain_names=names)
        run.write_selection(m, W, {"method": m, "params": params, "scores": None})
        run.write_taxonomy(m, tax)
        uni = {n: round(base[n]["test_acc"] - 0.03 * rng.random(), 4) for n in names}
        run.write_universal(
            m, [{"epoch": e, "loss": 1.2 / (e + 1), "val_acc": (1 - noise) * e / 4} for e in range(1, 5)], uni
        )
        for n in names:
            rows[n][f"universal/{m}"] = uni[n]
    table = pd.DataFrame(rows.values())
    mean = {"domain": "mean", **table.drop(columns="domain").mean().round(4).to_dict()}
    table = pd.concat([table, pd.DataFrame([mean])], ignore_index=True)
    run.write_results(table, {"headline": {k: float(v) for k, v in mean.items() if k != "domain"}})
    n = 60 * len(names)
    run.write_embedding(
        {
            "xy": rng.normal(size=(n, 2)),
            "domain": np.repeat(np.arange(len(names)), 60),
            "label": rng.integers(0, 5, n),
            "key": np.array(methods[0]),
        }
    )
