"""The pipeline's steps under ``features.mode: finetune``: networks trained end to end on images.

:mod:`core.steps` hands over to these when a run fine-tunes (the thesis's protocol); they write
the same files through :class:`core.runs.Run` as the frozen-feature steps, so every later step and
page reads a fine-tuned run like any other. A model file then holds the whole network (backbone +
head, ``core.heads.load_model`` reads it back as a :class:`core.finetune.FinetunedNet`).

    features(ctx)        nothing is cached: logs that the images are read while training
    baselines(ctx)       one network per domain (its recipe and backbone: baselines.recipes)
    crossdomain(ctx)     every fine-tuned baseline on every other domain's test images
    universal(ctx)       one network per selection method, soft targets from the mappings
    test_correctness_by_rule(ctx, keys), embedding(ctx, keys)   for the results step

Under torchrun the steps run on rank 0 only, unchanged: :func:`core.finetune.finetune` and
:func:`core.finetune.predict_images` are shared by every rank from inside (DistributedDataParallel
training, sharded prediction passes gathered on rank 0), so only rank 0 reads and writes the run
folder. Prediction passes use ``features.batch_size`` when set (the whole batches the ranks share).

Imports torch (through core.finetune) when a step runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["features", "baselines", "crossdomain", "universal", "test_correctness_by_rule", "embedding"]


def _weights_for(ctx, backbone: str) -> str | None:
    """features.weights for ``backbone``: a folder serves every backbone, a file only features.backbone."""
    w = ctx.cfg.features.weights
    if w is None or Path(w).expanduser().is_dir() or backbone == ctx.cfg.features.backbone:
        return w
    return None


def _batch_reporter(ctx, label: str, index: int, count: int):
    """on_batch callback of model ``index`` of ``count``: ``done`` of ``total`` training batches
    over all its epochs (status.json is written at most 4x/s)."""

    def report(done: int, total: int) -> None:
        ctx.progress((index + done / max(total, 1)) / count, message=f"{label}: batch {done}/{total}")

    return report


def _free(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.empty_cache()


def features(ctx) -> None:
    """Fine-tuning caches no features: every network reads the images while it trains."""
    f = ctx.cfg.features
    ctx.log(f"features: protocol fine-tuning (backbone {f.backbone} + head, {f.image_size} px): no cached features")


def baselines(ctx) -> None:
    """One network (backbone + baselines.head) per domain, fine-tuned on its training images with
    its recipe. Writes baselines/domain_<a>.pt (the whole network) and baselines/metrics.json."""
    import torch

    from core.finetune import build_network, classifier_objective, finetune, predict_images
    from core.steps import _epoch_reporter

    domains, cfg, f = ctx.all_domains(), ctx.cfg, ctx.cfg.features
    metrics = {}
    for a, d in enumerate(domains):
        recipe, backbone = cfg.baselines.recipe(d.name), cfg.baselines.backbone(d.name, f.backbone)
        torch.manual_seed(cfg.seed + a)  # the head's initial weights depend on the seed only
        net = build_network(backbone, len(d.class_names), cfg.baselines.head, weights=_weights_for(ctx, backbone))
        label = f"baseline {d.name}"
        res = finetune(
            net,
            [d.splits["train"]],
            [d.splits["val"]],
            classifier_objective(),
            config=recipe,
            image_size=f.image_size,
            crop_scale=f.crop_scale,
            flip=f.flip,
            seed=cfg.seed + a,
            device=ctx.device,
            progress=_epoch_reporter(ctx, label, a, len(domains)),
            on_batch=_batch_reporter(ctx, label, a, len(domains)),
        )
        logits, ok = predict_images(res.model, d.splits["test"], image_size=f.image_size, device=ctx.device,
                                    batch_size=f.batch_size)  # fmt: skip
        y = d.splits["test"].labels
        test_acc = float((logits[ok].argmax(axis=1) == y[ok]).mean()) if ok.any() else float("nan")
        ctx.run.write_model(
            ctx.run.baseline_model_path(a),
            res.model.cpu(),
            domain=d.name,
            domain_index=a,
            class_names=list(d.class_names),
            best_epoch=res.best_epoch,
            val_acc=res.best_val_acc,
            test_acc=test_acc,
            backbone=backbone,
            image_size=f.image_size,
            protocol="finetune",
            checkpoint=recipe.checkpoint,
        )
        metrics[d.name] = {
            "test_acc": test_acc,
            "val_acc": res.best_val_acc,
            "best_epoch": res.best_epoch,
            "checkpoint": recipe.checkpoint,
            "backbone": backbone,
            "samples_per_s": res.samples_per_s,
            "history": res.history,
        }
        ctx.log(
            f"baseline {d.name} (fine-tuned {backbone}): val {res.best_val_acc:.3f} (epoch {res.best_epoch}, "
            f"{recipe.checkpoint}) test {test_acc:.3f}, {res.samples_per_s:.1f} images/s"
        )
        del net, res
        _free(ctx.device)
    ctx.run.write_baseline_metrics(metrics)


def _test_logits(ctx, model, a: int, what: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """(out (n, K), item (n,)): ``model`` on domain a's readable test images, item = their indices."""
    from core.finetune import predict_images

    split = ctx.all_domains()[a].splits["test"]
    f = ctx.cfg.features
    out, ok = predict_images(
        model, split, image_size=f.image_size, device=ctx.device, what=what, batch_size=f.batch_size
    )
    item = np.flatnonzero(ok)
    return out[item], item


def crossdomain(ctx) -> None:
    """Every fine-tuned baseline b on every other domain a's test images (one network in memory
    at a time). Writes crossdomain/matrices.npz and predictions.npz, as the frozen step does."""
    import torch

    from core.crossdomain import empty_classes
    from core.steps import _add_pair

    domains = ctx.all_domains()
    n, K = len(domains), [len(d.class_names) for d in domains]
    mats: dict[str, dict] = {"hard": {}, "soft": {}, "count": {}}
    true, item, pred, conf = {}, {}, {}, {}
    for b in range(n):
        model, _ = ctx.run.load_model(ctx.run.baseline_model_path(b))
        for a in (a for a in range(n) if a != b):
            logits, item[a] = _test_logits(ctx, model, a)
            y = true[a] = domains[a].splits["test"].labels[item[a]]
            probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy() if len(logits) else logits
            counts = _add_pair(mats, pred, conf, a, b, y, probs, K)
            if b == (1 if a == 0 else 0):  # once per domain a: its rows are its true classes
                empty = empty_classes(counts)
                if empty.size:
                    ctx.log(f"warning: domain {domains[a].name}: classes {empty.tolist()} have no test images")
        ctx.progress((b + 1) / n, message=f"cross-domain predictions of the fine-tuned {domains[b].name} model")
        del model
        _free(ctx.device)
    ctx.run.write_crossdomain(mats, true, item, pred, conf)
    ctx.log(f"cross-domain: {n * (n - 1)} ordered pairs (fine-tuned networks on test images)")


def universal(ctx) -> None:
    """One universal network (backbone + universal.head) per selection method, fine-tuned on the
    union of the domains' training images with soft targets from the taxonomy's mappings.
    Writes universal/<key>/model.pt (the whole network), history.json, metrics.json."""
    import torch

    from core.finetune import build_network, finetune, universal_objective
    from core.steps import _epoch_reporter, _taxonomy
    from core.universal import rule_accuracies

    cfg, f, u = ctx.cfg, ctx.cfg.features, ctx.cfg.universal
    domains, names, methods = ctx.all_domains(), ctx.run.domain_names(), cfg.selection.methods
    train = [d.splits["train"] for d in domains]
    val = [d.splits["val"] for d in domains]
    for i, m in enumerate(methods):
        tax = _taxonomy(ctx, m.key)
        mappings = tax.sparse_mappings
        objective = universal_objective(mappings, loss=u.loss, label_smoothing=u.label_smoothing,
                                        inference=u.inference, device=ctx.device)  # fmt: skip
        torch.manual_seed(cfg.seed)
        net = build_network(f.backbone, len(tax.classes), u.head, weights=_weights_for(ctx, f.backbone))
        label = f"universal {m.key}"
        res = finetune(
            net,
            train,
            val,
            objective,
            config=cfg.universal_train,
            image_size=f.image_size,
            crop_scale=f.crop_scale,
            flip=f.flip,
            seed=cfg.seed,
            device=ctx.device,
            progress=_epoch_reporter(ctx, label, i, len(methods)),
            on_batch=_batch_reporter(ctx, label, i, len(methods)),
        )
        parts = [_test_logits(ctx, res.model, a) for a in range(len(domains))]
        logits = np.concatenate([p[0] for p in parts])
        dom = np.concatenate([np.full(len(p[1]), a, dtype=np.int64) for a, p in enumerate(parts)])
        y = np.concatenate([domains[a].splits["test"].labels[p[1]] for a, p in enumerate(parts)])
        acc = rule_accuracies(logits, dom, y, mappings, inference=u.inference)
        ctx.run.write_model(
            ctx.run.universal_model_path(m.key),
            res.model.cpu(),
            method=m.key,
            n_universal=len(tax.classes),
            universal_names=list(tax.names),
            domain_names=names,
            best_epoch=res.best_epoch,
            val_acc=res.best_val_acc,
            backbone=f.backbone,
            image_size=f.image_size,
            protocol="finetune",
        )
        ctx.run.write_universal(m.key, res.history, {names[a]: v for a, v in acc.items()})
        ctx.log(
            f"universal {m.key} (fine-tuned {f.backbone}): U={len(tax.classes)} val {res.best_val_acc:.3f} "
            f"(epoch {res.best_epoch}) test "
            + " ".join(f"{names[a]}={v:.3f}" for a, v in acc.items())
            + f", {res.samples_per_s:.1f} images/s"
        )
        del net, res
        _free(ctx.device)


def test_correctness_by_rule(ctx, keys: list[str]) -> dict[str, dict[str, list[np.ndarray]]]:
    """As ``core.results.test_correctness_by_rule``, from the fine-tuned networks on the test
    images: ``{rule: {"baseline": [(n_a,) bool], "universal/<key>": [...]}}``."""
    from core.universal import INFERENCE_RULES, domain_scores

    run, n = ctx.run, len(ctx.all_domains())
    baseline, labels = [], []
    for a in range(n):
        model, _ = run.load_model(run.baseline_model_path(a))
        logits, item = _test_logits(ctx, model, a)
        labels.append(ctx.all_domains()[a].splits["test"].labels[item])
        baseline.append(logits.argmax(axis=1) == labels[a])
    out = {rule: {"baseline": baseline} for rule in INFERENCE_RULES}
    for key in keys:
        model, _ = run.load_model(run.universal_model_path(key))
        if not hasattr(model, "backbone"):  # a head on frozen features (e.g. a curated model)
            raise ValueError(
                f"universal model {key!r} of run {run.id!r} is a head on frozen features; this run fine-tunes "
                "(features.mode finetune): its results need fine-tuned networks"
            )
        mappings = run.taxonomy(key).sparse_mappings
        logits = [_test_logits(ctx, model, a)[0] for a in range(n)]
        for rule in INFERENCE_RULES:
            out[rule][f"universal/{key}"] = [
                domain_scores(z, mappings[a], inference=rule).argmax(axis=1) == labels[a] for a, z in enumerate(logits)
            ]
    return out


def embedding(ctx, keys: list[str]) -> None:
    """2-D embedding of the best universal network's features (its head's last-layer input) on
    up to embedding.max_points test images. Writes embedding.npz, as the frozen step does."""
    import torch

    from core.embedding import embed_2d
    from core.finetune import predict_images

    best = max(keys, key=lambda k: np.nanmean(list(ctx.run.universal_metrics(k).values())))
    model, _ = ctx.run.load_model(ctx.run.universal_model_path(best))
    domains, emb, size = ctx.all_domains(), ctx.cfg.embedding, ctx.cfg.features.image_size
    feats, logits, dom, y, items = [], [], [], [], []
    for a, d in enumerate(domains):
        split = d.splits["test"]
        f, ok = predict_images(model, split, image_size=size, device=ctx.device, what="features",
                               batch_size=ctx.cfg.features.batch_size)  # fmt: skip
        with torch.no_grad():
            z = model.head.out(torch.from_numpy(f)).numpy()  # logits from the features: no second pass
        keep = np.flatnonzero(ok)
        feats.append(f[keep])
        logits.append(z[keep])
        dom.append(np.full(keep.size, a, dtype=np.int64))
        y.append(split.labels[keep])
        items.append(keep)
    X, Z = np.concatenate(feats), np.concatenate(logits)
    dom, y, items = np.concatenate(dom), np.concatenate(y), np.concatenate(items)
    idx = np.sort(np.random.default_rng(ctx.cfg.seed).choice(len(X), size=min(len(X), emb.max_points), replace=False))
    xy, how = embed_2d(X[idx], method=emb.method, tsne_max=emb.tsne_max, seed=ctx.cfg.seed)
    ctx.run.write_embedding(
        {
            "xy": xy.astype(np.float32),
            "domain": dom[idx],
            "label": y[idx],
            "universal_pred": Z[idx].argmax(axis=1),
            "item": items[idx],
            "key": np.array(best),
            "algorithm": np.array(how),
        }
    )
    ctx.log(f"embedding: {len(idx)} test images of the fine-tuned universal network {best} by {how}")
