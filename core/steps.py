"""The pipeline's steps: one function each, reading what earlier steps wrote through :class:`core.runs.Run`.

Every step takes a :class:`RunContext` (the config, the run, the device, in-memory features)
and writes its outputs with the run's writers; none spells a path. Order: ``core.runs.STEPS``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.context import RunContext, split_data, train_universal_head, union

__all__ = ["STEP_FUNCTIONS"]

# ---------------------------------------------------------------------------- steps


def step_domains(ctx: RunContext) -> None:
    """Build the domains. Writes domains.json and, for synthetic domains, ground_truth.json."""
    from core.domains import synthetic_world

    info = []
    for d in ctx.all_domains():
        n = {s: len(d.splits[s].labels) for s in ("train", "val", "test")}
        if len(d.class_names) < 2:
            raise ValueError(f"domain {d.name!r} has {len(d.class_names)} class(es); at least 2 are needed")
        if n["train"] == 0:
            raise ValueError(f"domain {d.name!r} has no training images")
        info.append(
            {
                "name": d.name,
                "source": d.source,
                "shift": d.shift,
                "class_names": list(d.class_names),
                "n_train": n["train"],
                "n_val": n["val"],
                "n_test": n["test"],
            }
        )
        ctx.log(
            f"domain {d.name}: {len(d.class_names)} classes, {n['train']}/{n['val']}/{n['test']} "
            f"train/val/test images, shift {d.shift}"
        )
    ctx.run.write_domains(info)
    ctx.run.write_ground_truth(synthetic_world(ctx.cfg))


def step_features(ctx: RunContext) -> None:
    """Backbone features of every domain's train/val/test images. Writes only the feature cache
    (outside the run folder): one backbone pass per image in total. Fine-tuning: nothing."""
    if ctx.cfg.finetune:
        from core import finetune_steps

        return finetune_steps.features(ctx)
    domains = ctx.all_domains()
    jobs = [(a, s) for a in range(len(domains)) for s in ("train", "val", "test")]
    for i, (a, s) in enumerate(jobs):
        ctx.progress(i / len(jobs), message=f"features {domains[a].name}/{s}", force=True)
        split_data(ctx, a, s)
    dims = {ctx.features[j].shape[1] for j in jobs if len(ctx.features[j])}
    ctx.log(f"features: {sum(len(ctx.features[j]) for j in jobs)} images, dim {sorted(dims)}")


def _epoch_reporter(ctx: RunContext, label: str, index: int, count: int):
    """Progress callback for one model's training; keeps the run's live history (this model's
    epochs so far) up to date, so the dashboard draws exact live curves."""
    epochs: list[dict] = []

    def report(info) -> None:
        epochs.append({k: getattr(info, k) for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")})
        ctx.run.write_live_history(label, epochs)
        frac = (index + info.epoch / info.epochs) / count
        # this model's remaining epochs + the models still to train at this model's epoch time
        eta = info.eta_s + (count - index - 1) * info.epoch_s * info.epochs
        ctx.progress(
            frac,
            eta_s=eta,
            message=(
                f"{label}: epoch {info.epoch}/{info.epochs} loss {info.train_loss:.3f} "
                f"acc {info.train_acc:.3f} val {info.val_acc:.3f}, {info.samples_per_s:.0f} samples/s"
            ),
        )

    return report


def step_baselines(ctx: RunContext) -> None:
    """One head per domain on its training features. Writes baselines/domain_<a>.pt and
    baselines/metrics.json (validation and test accuracy, history per domain). Fine-tuning: one
    network per domain (core.finetune_steps)."""
    if ctx.cfg.finetune:
        from core import finetune_steps

        return finetune_steps.baselines(ctx)
    import torch

    from core.heads import build_head
    from core.training import predict_logits, train_classifier

    domains, cfg = ctx.all_domains(), ctx.cfg
    metrics = {}
    for a, d in enumerate(domains):
        (X, y, _), (Xv, yv, _), (Xt, yt, _) = (split_data(ctx, a, s) for s in ("train", "val", "test"))
        torch.manual_seed(cfg.seed + a)  # the head's initial weights depend on the seed only
        model = build_head(X.shape[1], len(d.class_names), cfg.baselines.head)
        res = train_classifier(
            model,
            X,
            y,
            Xv,
            yv,
            config=cfg.baselines.train,
            seed=cfg.seed + a,
            device=ctx.device,
            progress=_epoch_reporter(ctx, f"baseline {d.name}", a, len(domains)),
        )
        pred = predict_logits(res.model, Xt, device=ctx.device).argmax(axis=1)
        test_acc = float((pred == yt).mean()) if len(pred) else float("nan")
        ctx.run.write_model(
            ctx.run.baseline_model_path(a),
            res.model,
            domain=d.name,
            domain_index=a,
            class_names=list(d.class_names),
            best_epoch=res.best_epoch,
            val_acc=res.best_val_acc,
            test_acc=test_acc,
            backbone=cfg.features.backbone,
            image_size=cfg.features.image_size,
        )
        metrics[d.name] = {
            "test_acc": test_acc,
            "val_acc": res.best_val_acc,
            "best_epoch": res.best_epoch,
            "samples_per_s": res.samples_per_s,
            "history": res.history,
        }
        ctx.log(
            f"baseline {d.name}: val {res.best_val_acc:.3f} (epoch {res.best_epoch}) test {test_acc:.3f}, "
            f"{res.samples_per_s:.0f} samples/s"
        )
    ctx.run.write_baseline_metrics(metrics)


def _softmax(logits: np.ndarray) -> np.ndarray:
    if not len(logits):
        return logits
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _add_pair(
    mats: dict[str, dict], pred: dict, conf: dict, a: int, b: int, y: np.ndarray, probs: np.ndarray, K: list[int]
) -> np.ndarray:
    """Model b's class probabilities ``probs`` (n, K_b) on domain a's test images (true labels
    ``y`` (n,)) into the crossdomain step's outputs: ``pred[a, b]`` (n,) int64 argmax,
    ``conf[a, b]`` (n,) float16 top probability and ``mats[kind][a, b]`` (K_a, K_b) for the kinds
    count, hard (row-normalised counts) and soft (row-normalised probabilities). Returns the
    count matrix. Shared by the frozen and the fine-tuned (core.finetune_steps) crossdomain steps."""
    from core.crossdomain import count_matrix, normalize_rows

    hard = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    pred[a, b] = hard.astype(np.int64)
    conf[a, b] = probs.max(axis=1).astype(np.float16) if len(probs) else np.zeros(0, np.float16)
    counts = count_matrix(y, hard, K[a], K[b])
    mats["count"][a, b] = counts
    mats["hard"][a, b] = normalize_rows(counts)
    mats["soft"][a, b] = normalize_rows(count_matrix(y, probs, K[a], K[b])) if len(probs) else counts
    return counts


CROSSDOMAIN_CHUNK = 4 * 4096  # test rows per streamed batch (a multiple of predict_logits' batch)


def step_crossdomain(ctx: RunContext) -> None:
    """Every baseline on every other domain's test features. Reads the baselines; writes
    crossdomain/matrices.npz (hard, soft, count per ordered pair) and predictions.npz.
    Streams: each chunk of CROSSDOMAIN_CHUNK test rows goes through every model and into the
    pairs' accumulators (core.crossdomain.PairAccumulator), so no (N, K_b) probability matrix of
    a whole domain is held. Fine-tuning: the networks on the test images (core.finetune_steps)."""
    if ctx.cfg.finetune:
        from core import finetune_steps

        return finetune_steps.crossdomain(ctx)
    from core.crossdomain import compact, empty_classes, pair_matrices, stream_domain
    from core.training import predict_logits

    domains = ctx.all_domains()
    n, K = len(domains), [len(d.class_names) for d in domains]
    models = [ctx.run.load_model(ctx.run.baseline_model_path(b))[0] for b in range(n)]
    mats: dict[str, dict] = {"hard": {}, "soft": {}, "count": {}}
    true, item, pred, conf = {}, {}, {}, {}

    def probs_of(b: int, x: np.ndarray) -> np.ndarray:
        return _softmax(predict_logits(models[b], x, device=ctx.device))

    for a in range(n):
        Xt, y, item[a] = split_data(ctx, a, "test")  # one backbone pass per image, shared by all models
        true[a] = y
        others = {b: K[b] for b in range(n) if b != a}
        streamed = stream_domain(y, Xt, K[a], others, probs_of, chunk=CROSSDOMAIN_CHUNK)
        for b, (acc, hard, top) in streamed.items():
            pred[a, b], conf[a, b] = hard, top
            pair = pair_matrices(acc)
            counts = pair["count"]
            for kind, m in pair.items():  # count and hard held in CSR form when mostly zeros
                mats[kind][a, b] = m if kind == "soft" else compact(m)
        empty = empty_classes(counts)  # rows are a's true classes: the same for every model b
        if empty.size:
            ctx.log(f"warning: domain {domains[a].name}: classes {empty.tolist()} have no test images (all-zero rows)")
        ctx.progress((a + 1) / n, message=f"cross-domain predictions on {domains[a].name}")
    ctx.run.write_crossdomain(mats, true, item, pred, conf)
    ctx.log(f"cross-domain: {n * (n - 1)} ordered pairs")


def step_selection(ctx: RunContext) -> None:
    """Relationships W_ab per configured method from the cross-domain matrices (scored against
    the run's ground truth when it has one: Run.true_relationships). Writes taxonomy/<key>/relationships.npz
    and selection.json."""
    from scipy.sparse import csr_array

    from core.metrics import relationship_scores
    from core.selection import select_edges

    P = ctx.run.matrices(ctx.cfg.crossdomain.matrix)
    from core.fsio import CorruptFileError

    try:
        true = ctx.run.true_relationships()  # an imported truth, else the synthetic world's
    except CorruptFileError as exc:  # an imported truth.csv that no longer fits the domains: unscored
        ctx.log(f"warning: {exc}; the relationships are not scored (import the truth again)")
        true = None
    counts = ctx.run.class_counts()
    methods = ctx.cfg.selection.methods
    for i, m in enumerate(methods):
        edges = {ab: select_edges(p, m.name, **m.params) for ab, p in P.items()}  # sparse: no dense W_ab
        scores = None if true is None else {k: float(v) for k, v in relationship_scores(edges, true, counts).items()}
        n_edges = int(sum(e.rows.size for e in edges.values()))
        W = {ab: csr_array((e.weights, (e.rows, e.cols)), shape=e.shape) for ab, e in edges.items()}
        ctx.run.write_selection(
            m.key,
            W,
            {
                "method": m.name,
                "params": m.params,
                "matrix": ctx.cfg.crossdomain.matrix,
                "n_edges": n_edges,
                "scores": scores,
            },
        )
        msg = f"selection {m.key}: {n_edges} edges" + (
            "" if not scores else " " + " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        )
        ctx.log(msg)
        ctx.progress((i + 1) / len(methods), message=msg)


def step_taxonomy(ctx: RunContext) -> None:
    """The universal taxonomy of each method's relationships. Writes taxonomy/<key>/taxonomy.json,
    taxonomy.graphml, mappings.csv and label_map.json."""
    from core.taxonomy import build_universal_taxonomy

    counts = ctx.run.class_counts()
    for m in ctx.cfg.selection.methods:
        tax = build_universal_taxonomy(
            ctx.run.relationships(m.key), counts, class_names=ctx.run.class_names(), domain_names=ctx.run.domain_names()
        )
        ctx.run.write_taxonomy(m.key, tax)
        ctx.log(f"taxonomy {m.key}: {len(tax.classes)} universal classes from {sum(counts)} domain classes")


def _taxonomy(ctx: RunContext, key: str):
    tax = ctx.run.taxonomy(key)
    if tax is None:
        raise FileNotFoundError(f"the taxonomy of method {key!r} is missing from {ctx.run.path}")
    return tax


def step_universal(ctx: RunContext) -> None:
    """One universal head per method on the union of the domains, with soft targets from the
    taxonomy's mappings. Writes universal/<key>/model.pt, history.json, metrics.json.
    Fine-tuning: one network per method (core.finetune_steps)."""
    if ctx.cfg.finetune:
        from core import finetune_steps

        return finetune_steps.universal(ctx)
    from core.universal import evaluate_universal

    cfg = ctx.cfg
    train, val, test = (union(ctx, s) for s in ("train", "val", "test"))
    names, methods = ctx.run.domain_names(), cfg.selection.methods
    for i, m in enumerate(methods):
        tax = _taxonomy(ctx, m.key)
        mappings = tax.sparse_mappings  # CSR (K_a, U): never dense K_a x U
        res = train_universal_head(ctx, train, val, mappings, seed=cfg.seed,
                                   progress=_epoch_reporter(ctx, f"universal {m.key}", i, len(methods)))  # fmt: skip
        acc = evaluate_universal(res.model, *test, mappings, device=ctx.device, inference=cfg.universal.inference)
        ctx.run.write_model(
            ctx.run.universal_model_path(m.key),
            res.model,
            method=m.key,
            n_universal=len(tax.classes),
            universal_names=list(tax.names),
            domain_names=names,
            best_epoch=res.best_epoch,
            val_acc=res.best_val_acc,
            backbone=cfg.features.backbone,
            image_size=cfg.features.image_size,
        )
        ctx.run.write_universal(m.key, res.history, {names[a]: v for a, v in acc.items()})
        ctx.log(
            f"universal {m.key}: U={len(tax.classes)} val {res.best_val_acc:.3f} (epoch {res.best_epoch}) "
            f"test " + " ".join(f"{names[a]}={v:.3f}" for a, v in acc.items())
        )


def step_results(ctx: RunContext) -> None:
    """The results table (baselines vs universal per method, and the curated model when one is
    trained: core.curated) with intervals (and the spread over seeds when configured), and a 2-D
    embedding of the best universal model's features. Writes results.csv, results.json,
    test_correct.npz, embedding.npz."""
    from core.results import (
        accuracy_intervals,
        embedding,
        inference_summary,
        results_table,
        seed_accuracies,
        test_correctness_by_rule,
    )
    from core.runs import CURATED

    if ctx.cfg.finetune:  # the fine-tuned networks read the test images, not cached features
        from core.finetune_steps import embedding, test_correctness_by_rule
    keys, ev = [m.key for m in ctx.cfg.selection.methods], ctx.cfg.evaluation
    keys += [CURATED] if ctx.run.has_curated_model() else []
    df, mean = results_table(ctx.run, keys)
    by_rule = test_correctness_by_rule(ctx, keys)  # both inference rules from one forward pass
    correct = by_rule[ctx.cfg.universal.inference]
    ctx.run.write_test_correct(correct)
    ctx.progress(0.2, message=f"intervals: {ev.bootstrap} bootstrap resamples")
    intervals = accuracy_intervals(correct, ctx.run.domain_names(), n_boot=ev.bootstrap, level=ev.level,
                                   seed=ctx.cfg.seed)  # fmt: skip
    if ev.seeds > 1:
        ctx.progress(0.4, message=f"training every head with {ev.seeds - 1} more seed(s)", force=True)
    seeds = seed_accuracies(ctx, keys, ev.seeds) if ev.seeds > 1 else None
    selection = {k: (ctx.run.selection(k) or {}).get("scores") for k in keys}
    headline = {"baseline_mean": mean["baseline"], **{f"universal_mean/{k}": mean[f"universal/{k}"] for k in keys}}
    headline.update({f"f1/{k}": s.get("f1") for k, s in selection.items() if s})
    ctx.run.write_results(
        df,
        {
            "table": df.to_dict(orient="records"),
            "headline": headline,
            "selection_scores": selection,
            "n_universal": {k: len(_taxonomy(ctx, k).classes) for k in keys},
            "timings_s": ctx.run.timings(),
            "intervals": intervals,
            "seeds": seeds,
            "protocol": ctx.cfg.features.mode,  # frozen (cached features) | finetune (end to end)
            "inference": inference_summary(by_rule, ctx.run.domain_names(), ctx.cfg.universal.inference),
        },
    )
    ctx.log("results: " + ", ".join(f"{k}={v:.3f}" for k, v in headline.items() if v is not None))
    embedding(ctx, keys)


STEP_FUNCTIONS: dict[str, Callable[[RunContext], None]] = {
    "domains": step_domains,
    "features": step_features,
    "baselines": step_baselines,
    "crossdomain": step_crossdomain,
    "selection": step_selection,
    "taxonomy": step_taxonomy,
    "universal": step_universal,
    "results": step_results,
}
