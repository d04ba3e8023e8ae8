"""An image-free run folder drawn from the synthetic noise model, following the run-folder
contract (core/runs.py). Used by the app tests, the browser tests' fallback and bench/ to
exercise every page without training anything: the cross-domain counts come from
``core.synthetic.sample_cross_counts``; accuracies, histories and the embedding written with
``full=True`` are PLACEHOLDERS derived from the noise level, never measurements.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_synthetic_run"]


def _predictions(counts: dict, class_counts: list[int]) -> dict[str, np.ndarray]:
    """Per-image hard predictions consistent with the count matrices (images sorted by class)."""
    out = {}
    for (a, b), C in counts.items():
        true = np.repeat(np.arange(class_counts[a]), C.sum(axis=1).astype(np.int64))
        pred = np.concatenate([np.repeat(np.arange(C.shape[1]), row.astype(np.int64)) for row in C])
        out[f"true/{a}"] = true
        out[f"pred/{a}-{b}"] = pred
    return out


def _default_params(method: str) -> dict:
    from core.selection import check_params

    return check_params(method, {})


def write_synthetic_run(root: str | Path, run_id: str, taxonomy, *, images_per_class: int = 30,
                        noise: float = 0.2, seed: int = 0, methods: tuple[str, ...] = ("mcfp",),
                        full: bool = True) -> Path:
    """Write ``root/run_id`` from a SyntheticTaxonomy; return the folder.

    Writes config, status (state done), domains, ground truth and crossdomain/ (hard, soft = hard,
    count matrices; predictions). With ``full``: taxonomies for ``methods`` (if core.taxonomy is
    available), baselines/universal metrics, histories, results and an embedding (placeholders).
    """
    import yaml

    from core.config import config_to_dict, config_from_dict
    from core.crossdomain import normalize_rows
    from core.runs import STEPS, init_run_dir, validate_run_id, write_json, write_status

    run_dir = init_run_dir(Path(root) / validate_run_id(run_id))  # a marked run folder, as the tool makes
    (run_dir / "crossdomain").mkdir(parents=True, exist_ok=True)
    counts = taxonomy.class_counts
    names = [f"syn{a}" for a in range(len(counts))]
    class_names = taxonomy.class_names()
    cfg = config_from_dict({"name": run_id, "seed": seed, "domains": {"synthetic": {
        "n_concepts": taxonomy.n_concepts, "n_domains": len(counts),
        "concepts_mean": float(min(np.mean([sum(map(len, d)) for d in taxonomy.domains]), taxonomy.n_concepts)),
    }}, "selection": {"methods": [{"name": m, "params": _default_params(m), "label": m} for m in methods]}})
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    write_json(run_dir / "domains.json", [
        {"name": names[a], "source": "noise-model", "shift": "none", "class_names": class_names[a],
         "n_train": 0, "n_val": 0, "n_test": images_per_class * counts[a]} for a in range(len(counts))])
    write_json(run_dir / "ground_truth.json", taxonomy.to_dict())
    from core.synthetic import sample_cross_counts

    C = sample_cross_counts(taxonomy, images_per_class=images_per_class, noise=noise, seed=seed)
    mats = {}
    for (a, b), c in C.items():
        mats[f"count/{a}-{b}"] = c
        mats[f"hard/{a}-{b}"] = mats[f"soft/{a}-{b}"] = normalize_rows(c)
    np.savez_compressed(run_dir / "crossdomain" / "matrices.npz", **mats)
    np.savez_compressed(run_dir / "crossdomain" / "predictions.npz", **_predictions(C, counts))
    (run_dir / "log.txt").write_text("[00:00:00] synthetic noise-model run (no images)\n", encoding="utf-8")
    done = list(STEPS[:4])
    if full:
        done = _write_full(run_dir, taxonomy, C, names, class_names, methods, noise, seed) and list(STEPS) or done
    write_status(run_dir, state="done", step=done[-1], steps_done=done, progress=1.0, message="done", pid=None)
    write_json(run_dir / "environment.json", {"start_time": "2026-01-01T00:00:00+00:00", "seed": seed})
    return run_dir


def _write_full(run_dir, taxonomy, C, names, class_names, methods, noise, seed) -> bool:
    """Placeholder results for UI tests; False when core.taxonomy is not available."""
    import pandas as pd

    from core.runs import write_json

    try:
        from core.selection import select_relationships
        from core.taxonomy import build_universal_taxonomy
    except ImportError:
        return False
    from core.crossdomain import normalize_rows

    rng = np.random.default_rng(seed)
    counts = taxonomy.class_counts
    base = {n: {"test_acc": round(1 - noise + 0.05 * rng.random(), 4), "val_acc": round(1 - noise, 4),
                "history": [{"epoch": e, "loss": 1 / (e + 1), "val_acc": (1 - noise) * e / 4} for e in range(1, 5)]}
            for n in names}
    write_json(run_dir / "baselines" / "metrics.json", base)
    rows = {n: {"domain": n, "baseline": base[n]["test_acc"]} for n in names}
    for m in methods:
        W = {pair: select_relationships(normalize_rows(c), m, **_default_params(m)) for pair, c in C.items()}
        tax = build_universal_taxonomy(W, counts, class_names=class_names, domain_names=names)
        out = run_dir / "taxonomy" / m
        out.mkdir(parents=True, exist_ok=True)
        (out / "taxonomy.json").write_text(tax.to_json(), encoding="utf-8")
        write_json(out / "selection.json", {"method": m, "params": _default_params(m), "scores": None})
        uni = {n: round(base[n]["test_acc"] - 0.03 * rng.random(), 4) for n in names}
        write_json(run_dir / "universal" / m / "metrics.json", uni)
        write_json(run_dir / "universal" / m / "history.json",
                   [{"epoch": e, "loss": 1.2 / (e + 1), "val_acc": (1 - noise) * e / 4} for e in range(1, 5)])
        for n in names:
            rows[n][f"universal/{m}"] = uni[n]
    table = pd.DataFrame(rows.values())
    mean = {"domain": "mean", **table.drop(columns="domain").mean().round(4).to_dict()}
    table = pd.concat([table, pd.DataFrame([mean])], ignore_index=True)
    table.to_csv(run_dir / "results.csv", index=False)
    write_json(run_dir / "results.json", {"headline": {k: float(v) for k, v in mean.items() if k != "domain"}})
    n = 60 * len(names)
    np.savez_compressed(run_dir / "embedding.npz", xy=rng.normal(size=(n, 2)), domain=np.repeat(np.arange(len(names)), 60),
                        label=rng.integers(0, 5, n), method=np.array(methods[0]))
    return True
