"""The results step's numbers: the accuracy table, its intervals, the spread over seeds, the embedding.

Is a difference real? Every accuracy gets a bootstrap interval over the test images (per
domain, and for the mean over domains resampling within each domain); every universal model is
compared with the baselines on the same images (a paired bootstrap of the difference, per
domain and for the mean), and a difference whose interval contains 0 is marked as within
noise. With ``evaluation.seeds > 1`` every head is trained again with other seeds on the cached
features, and the mean and spread of its test accuracy are reported. The universal models are
read with the configured inference rule (``universal.inference``); their test accuracy under
the other rule is reported beside it (``inference_summary``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.intervals import bootstrap_accuracy, mean_over_domains, paired_difference, paired_mean_difference
from core.runs import Run

__all__ = [
    "results_table",
    "test_correctness",
    "test_correctness_by_rule",
    "inference_summary",
    "inference_lines",
    "accuracy_intervals",
    "seed_accuracies",
    "embedding",
]


def results_table(run: Run, keys: list[str]) -> tuple[pd.DataFrame, dict]:
    """(table, mean row): baseline and universal test accuracy per domain, plus a "mean" row."""
    base, counts = run.baseline_metrics(), run.class_counts()
    uni = {k: run.universal_metrics(k) for k in keys}
    rows = [
        {"domain": name, "n_classes": counts[a], "baseline": base[name]["test_acc"],
         **{f"universal/{k}": uni[k][name] for k in keys}}
        for a, name in enumerate(run.domain_names())
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    mean = {"domain": "mean", "n_classes": int(df["n_classes"].sum())}
    mean.update({c: float(df[c].mean()) for c in df.columns if c not in ("domain", "n_classes")})
    return pd.concat([df, pd.DataFrame([mean])], ignore_index=True), mean


def test_correctness_by_rule(ctx, keys: list[str]) -> dict[str, dict[str, list[np.ndarray]]]:
    """Which test images each model gets right, under every inference rule:
    ``{rule: {"baseline": [(n_a,) bool per domain], "universal/<key>": [...]}}`` for each rule
    of ``core.universal.INFERENCE_RULES`` (the baseline column is the same under both). One
    forward pass per model and domain: the rules differ only in how d_a is read off the logits."""
    from core.context import split_data
    from core.training import predict_logits
    from core.universal import INFERENCE_RULES, domain_scores

    run, n = ctx.run, len(ctx.all_domains())
    tests = [split_data(ctx, a, "test") for a in range(n)]
    baseline = []
    for a, (X, y, _) in enumerate(tests):
        model, _ = run.load_model(run.baseline_model_path(a))
        baseline.append(predict_logits(model, X, device=ctx.device).argmax(axis=1) == y)
    out = {rule: {"baseline": baseline} for rule in INFERENCE_RULES}
    for key in keys:
        model, _ = run.load_model(run.universal_model_path(key))
        mappings = run.taxonomy(key).sparse_mappings
        logits = [predict_logits(model, X, device=ctx.device) for X, _, _ in tests]
        for rule in INFERENCE_RULES:
            out[rule][f"universal/{key}"] = [
                domain_scores(z, mappings[a], inference=rule).argmax(axis=1) == y
                for a, (z, (_, y, _)) in enumerate(zip(logits, tests))
            ]
    return out


def test_correctness(ctx, keys: list[str], *, inference: str = "probs") -> dict[str, list[np.ndarray]]:
    """Which test images each model gets right: ``{"baseline": [(n_a,) bool per domain],
    "universal/<key>": [...]}`` on each domain's readable test images (one row per image, the
    same rows for every model), the universal models read with the ``inference`` rule."""
    from core.universal import check_inference

    return test_correctness_by_rule(ctx, keys)[check_inference(inference)]


def inference_summary(
    correct_by_rule: dict[str, dict[str, list[np.ndarray]]], names: list[str], configured: str
) -> dict:
    """The universal models' test accuracy under every inference rule, from
    ``test_correctness_by_rule``: ``{"configured": rule, "<rule>": {"universal/<key>": {domain:
    acc | None, "mean": mean over the domains with images | None}}}``."""
    out: dict = {"configured": configured}
    for rule, correct in correct_by_rule.items():
        out[rule] = {}
        for col, per_domain in correct.items():
            if col == "baseline":
                continue
            accs = {name: float(c.mean()) if c.size else None for name, c in zip(names, per_domain)}
            usable = [v for v in accs.values() if v is not None]
            out[rule][col] = {**accs, "mean": float(np.mean(usable)) if usable else None}
    return out


def inference_lines(summary: object) -> list[str]:
    """One line per universal model comparing the configured inference rule with the other
    (mean test accuracy over domains), from results.json's ``"inference"``; [] without one
    (runs written before the option, or a damaged entry)."""
    if not isinstance(summary, dict) or not isinstance(summary.get(summary.get("configured")), dict):
        return []
    rule = summary["configured"]

    def mean(r: str, col: str) -> float | None:
        accs = summary.get(r)
        value = accs.get(col, {}).get("mean") if isinstance(accs, dict) and isinstance(accs.get(col), dict) else None
        return value if isinstance(value, int | float) else None

    lines = []
    for col in summary[rule]:
        others = [
            f"{r} {mean(r, col):.3f}" for r in summary if r not in ("configured", rule) and mean(r, col) is not None
        ]
        if mean(rule, col) is not None and others:
            lines.append(f"{col} mean test accuracy: {rule} (configured) {mean(rule, col):.3f}; " + "; ".join(others))
    return lines


def accuracy_intervals(
    correct: dict[str, list[np.ndarray]], names: list[str], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    """Intervals of every accuracy and of every universal-minus-baseline difference.

    Returns ``{"level", "n_boot", "accuracy": {column: {domain|"mean": [acc, lo, hi]}},
    "vs_baseline": {column: {domain|"mean": {"diff", "lo", "hi", "within_noise"[, "p_value"]}}}}``.
    A domain without test images gets None.
    """
    kw = {"n_boot": n_boot, "level": level, "seed": seed}
    acc, diff = {}, {}
    for col, per_domain in correct.items():
        acc[col] = {name: list(bootstrap_accuracy(c, **kw)) if c.size else None for name, c in zip(names, per_domain)}
        usable = [c for c in per_domain if c.size]
        acc[col]["mean"] = list(mean_over_domains(usable, **kw)) if usable else None
        if col == "baseline":
            continue
        base = correct["baseline"]
        diff[col] = {name: paired_difference(c, b, **kw) if c.size else None
                     for name, c, b in zip(names, per_domain, base)}  # fmt: skip
        pairs = [(c, b) for c, b in zip(per_domain, base) if c.size]
        diff[col]["mean"] = paired_mean_difference([p[0] for p in pairs], [p[1] for p in pairs], **kw)
    return {"level": level, "n_boot": n_boot, "accuracy": acc, "vs_baseline": diff}


def seed_accuracies(ctx, keys: list[str], seeds: int) -> dict[str, dict[str, list[float]]]:
    """Test accuracy of every head trained with ``seeds`` seeds: the run's own model (seed 0)
    and ``seeds - 1`` more, same recipe, on the cached features. ``{column: {domain: [acc per
    seed]}}``; the extra models are not kept."""
    import torch

    from core.context import split_data, train_universal_head, union
    from core.heads import build_head
    from core.training import predict_logits, train_classifier
    from core.universal import evaluate_universal

    run, cfg, names = ctx.run, ctx.cfg, ctx.run.domain_names()
    base = run.baseline_metrics()
    out = {"baseline": {n: [base[n]["test_acc"]] for n in names}}
    for a, name in enumerate(names):
        (X, y, _), (Xv, yv, _), (Xt, yt, _) = (split_data(ctx, a, s) for s in ("train", "val", "test"))
        for k in range(1, seeds):
            torch.manual_seed(cfg.seed + a + 1000 * k)
            model = build_head(X.shape[1], len(ctx.all_domains()[a].class_names), cfg.baselines.head)
            res = train_classifier(
                model, X, y, Xv, yv, config=cfg.baselines.train, seed=cfg.seed + a + 1000 * k, device=ctx.device
            )
            pred = predict_logits(res.model, Xt, device=ctx.device).argmax(axis=1)
            out["baseline"][name].append(float((pred == yt).mean()) if len(yt) else float("nan"))
    train, val, test = (union(ctx, s) for s in ("train", "val", "test"))
    for key in keys:
        first = run.universal_metrics(key)
        col = out[f"universal/{key}"] = {n: [first[n]] for n in names}
        mappings = run.taxonomy(key).sparse_mappings
        for k in range(1, seeds):
            res = train_universal_head(ctx, train, val, mappings, seed=cfg.seed + 1000 * k)
            accs = evaluate_universal(res.model, *test, mappings, device=ctx.device, inference=cfg.universal.inference)
            for a, v in accs.items():
                col[names[a]].append(v)
    return out


def _embedding_is_current(run, key: str) -> bool:
    """The saved embedding is of model ``key`` and newer than that model's file."""
    from core.runs import F

    try:
        current = run.embedding()
    except Exception:  # noqa: BLE001 - an unreadable embedding is simply made again
        return False
    model = run.universal_model_path(key)
    return (
        current is not None
        and str(current.get("key")) == key
        and model.exists()
        and run.stamp(F.EMBEDDING) > model.stat().st_mtime
    )


def embedding(ctx, keys: list[str]) -> None:
    """2-D embedding of the universal features (input of the last layer) of the test images of the
    best universal model; kept when the saved one is already that model's (and newer than it)."""
    import torch

    from core.context import split_data, union
    from core.embedding import embed_2d

    best = max(keys, key=lambda k: np.nanmean(list(ctx.run.universal_metrics(k).values())))
    if _embedding_is_current(ctx.run, best):
        return  # e.g. a curated model was added that is not the best: t-SNE is not redone for nothing
    model, _ = ctx.run.load_model(ctx.run.universal_model_path(best))
    X, dom, y = union(ctx, "test")
    items = np.concatenate([split_data(ctx, a, "test")[2] for a in range(len(ctx.all_domains()))])
    emb = ctx.cfg.embedding
    idx = np.sort(np.random.default_rng(ctx.cfg.seed).choice(len(X), size=min(len(X), emb.max_points), replace=False))
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(X[idx], dtype=np.float32))  # X may be a float16 map
        feats, upred = model.features(x).numpy(), model(x).argmax(dim=1).numpy()
    xy, how = embed_2d(feats, method=emb.method, tsne_max=emb.tsne_max, seed=ctx.cfg.seed)
    ctx.run.write_embedding(
        {
            "xy": xy.astype(np.float32),
            "domain": dom[idx],
            "label": y[idx],
            "universal_pred": upred,
            "item": items[idx],
            "key": np.array(best),
            "algorithm": np.array(how),
        }
    )
    ctx.log(f"embedding: {len(idx)} test images of universal model {best} by {how}")
