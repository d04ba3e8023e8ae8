"""The headless pipeline: config -> run folder, one step at a time, resumable.

Steps (core.runs.STEPS, in order)::

    domains      build the domains (synthetic over a base source, or real ones); domains.json,
                 ground_truth.json (synthetic)
    features     backbone features of every domain's train/val/test images (disk cache, one
                 backbone pass per image in total)
    baselines    one head per domain (same recipe as the universal model); baselines/
    crossdomain  every baseline on every other domain's test features: hard/soft/count
                 matrices and per-image predictions; crossdomain/
    selection    relationships W_ab per selection method (+ scores vs ground truth)
    taxonomy     universal taxonomy per method; taxonomy/<method>/
    universal    one universal head per method on the union of the domains; universal/<method>/
    results      the thesis table (results.json/.csv) and a 2-D embedding (embedding.npz)

A finished step is reused when the config sections it depends on are unchanged (hashes in
``steps.json``); ``from_step`` reruns that step and all later ones. SIGTERM/SIGINT end the run
with state "cancelled", an exception with "failed" + the error; finished steps are kept.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.config import RunConfig, config_from_dict, config_hash, config_to_dict, load_config
from core.fsio import atomic_path, os_error_message, write_npz, write_text
from core.runs import (
    STEPS,
    Run,
    pair_key,
    RunLock,
    append_log,
    check_step_outputs,
    clear_step_outputs,
    init_run_dir,
    read_json,
    read_status,
    write_json,
    write_status,
)
from core.runlock import process_identity

__all__ = ["Cancelled", "RunContext", "DomainData", "run_pipeline", "plan_steps", "load_run_domains", "build_config_domains", "check_data", "STEP_FUNCTIONS",
           "step_dependencies", "BACKBONE_COUNTER"]


class Cancelled(Exception):
    """Raised inside the pipeline when SIGTERM/SIGINT arrives."""


# Config sections each step depends on (cumulative: a step also depends on all earlier ones).
_STEP_SECTIONS: dict[str, tuple[str, ...]] = {
    "domains": ("seed", "data_root", "domains"),
    "features": ("features",),
    "baselines": ("baselines",),
    "crossdomain": (),
    "selection": ("crossdomain", "selection"),
    "taxonomy": (),
    "universal": ("universal",),
    "results": ("embedding",),
}


def step_dependencies(cfg: RunConfig) -> dict[str, str]:
    """Cumulative config hash per step: a step is stale when its hash changed."""
    out, acc = {}, []
    for step in STEPS:
        acc += [getattr(cfg, s) for s in _STEP_SECTIONS[step]]
        out[step] = config_hash(acc)
    return out


# Counts images forwarded through a backbone by this process (cache hits do not count).
BACKBONE_COUNTER = {"images": 0}


@dataclass
class DomainData:
    """One domain as the later steps need it."""

    name: str
    source: str
    shift: str
    class_names: list[str]
    splits: dict[str, Any]  # "train"/"val"/"test" -> issue-3 split object (len, image(i), labels)
    labels: dict[str, np.ndarray]  # split -> (N,) int labels


@dataclass
class RunContext:
    """State shared by the steps of one pipeline invocation."""

    cfg: RunConfig
    run_dir: Path
    device: Any = None
    on_progress: Callable[[str, float, float | None, str], None] | None = None
    domains: list[DomainData] | None = None
    features: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)
    failed: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # unreadable images
    timings: dict[str, float] = field(default_factory=dict)
    _last_write: float = 0.0
    step: str = ""

    def log(self, message: str) -> None:
        append_log(self.run_dir, message)
        if self.on_progress is not None:
            self.on_progress(self.step, -1.0, None, message)

    def progress(self, fraction: float, *, eta_s: float | None = None, message: str = "", force: bool = False) -> None:
        """Report progress within the current step (status.json written at most 4x/s)."""
        now = time.monotonic()
        if force or now - self._last_write > 0.25:
            self._last_write = now
            write_status(self.run_dir, state="running", progress=float(min(max(fraction, 0.0), 1.0)),
                         eta_s=None if eta_s is None else float(eta_s), message=message)
        if self.on_progress is not None:
            self.on_progress(self.step, fraction, eta_s, message)

    @property
    def class_counts(self) -> list[int]:
        return [len(d["class_names"]) for d in read_json(self.run_dir / "domains.json", default=[])]

    @property
    def domain_names(self) -> list[str]:
        return [d["name"] for d in read_json(self.run_dir / "domains.json", default=[])]


# ---------------------------------------------------------------------------- steps


def _synthetic_taxonomy(cfg: RunConfig):
    from core.synthetic import make_synthetic_taxonomy

    s = cfg.domains.synthetic
    return make_synthetic_taxonomy(s.n_concepts, s.n_domains, s.concepts_mean, s.concepts_var,
                                   s.class_size_mean, s.class_size_var, seed=cfg.seed)


def _load_domains(ctx: RunContext) -> list[DomainData]:
    """Build (or rebuild, deterministically) the domains of the config via core.domains."""
    if ctx.domains is not None:
        return ctx.domains
    from core import domains as dom

    cfg = ctx.cfg
    specs = []
    if cfg.domains.synthetic is not None:
        tax = _synthetic_taxonomy(cfg)
        s = cfg.domains.synthetic
        names = list(s.names) if s.names else [f"syn{i}" for i in range(s.n_domains)]
        for a in range(s.n_domains):
            specs.append(dom.DomainSpec(
                name=names[a], source=s.base, shift=s.shifts[a % len(s.shifts)],
                synthetic=tax, synthetic_index=a,
                n_train=cfg.domains.n_train, n_val=cfg.domains.n_val, n_test=cfg.domains.n_test,
                root=cfg.data_root))
    for d in cfg.domains.list:
        specs.append(dom.DomainSpec(
            name=d.name, source=d.source, shift=d.shift, root=d.root or cfg.data_root,
            n_train=cfg.domains.n_train, n_val=cfg.domains.n_val, n_test=cfg.domains.n_test))
    built = dom.build_domains(specs, root=cfg.data_root, seed=cfg.seed)
    out = []
    for spec, d in zip(specs, built):
        splits = {k: d.splits[k] for k in ("train", "val", "test")}
        out.append(DomainData(name=d.name, source=spec.source, shift=spec.shift,
                              class_names=list(d.class_names), splits=splits,
                              labels={k: np.asarray(v.labels, dtype=np.int64) for k, v in splits.items()}))
    ctx.domains = out
    return out


def load_run_domains(run_dir: str | os.PathLike) -> list[DomainData]:
    """Rebuild a run's domains from its config.yaml (deterministic: same images, same labels).

    For showing images: ``load_run_domains(run.path)[a].splits["test"].image(i)`` is the image
    behind row ``i`` of the run's ``predictions()["item"][a]`` (uint8 (H, W, 3)).
    """
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{os.fspath(run_dir)!r} has no config.yaml")
    cfg = config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return _load_domains(RunContext(cfg=cfg, run_dir=Path(run_dir)))


def check_data(cfg: RunConfig) -> None:
    """Check, cheaply and before any work, that every dataset the config names is on disk
    (folders and files are looked up, nothing is read); raise ValueError naming the domain and
    the layout expected."""
    from core.sources import check_root

    wanted = []
    if cfg.domains.synthetic is not None:
        wanted.append(("synthetic domains", cfg.domains.synthetic.base, cfg.data_root))
    wanted += [(d.name, d.source, d.root or cfg.data_root) for d in cfg.domains.list]
    for name, source, root in wanted:
        try:
            check_root(source, root)
        except ValueError as exc:
            raise ValueError(f"domains: {name}: {exc}") from None


def build_config_domains(cfg: RunConfig) -> list[DomainData]:
    """The domains a config describes, built exactly as a run builds them (no run folder)."""
    import tempfile

    return _load_domains(RunContext(cfg=cfg, run_dir=Path(tempfile.gettempdir())))


def step_domains(ctx: RunContext) -> None:
    domains = _load_domains(ctx)
    for d in domains:
        if len(d.class_names) < 2:
            raise ValueError(f"domain {d.name!r} has {len(d.class_names)} class(es); at least 2 are needed")
        if len(d.labels["train"]) == 0:
            raise ValueError(f"domain {d.name!r} has no training images")
    info = [{"name": d.name, "source": d.source, "shift": d.shift, "class_names": d.class_names,
             "n_train": int(len(d.labels["train"])), "n_val": int(len(d.labels["val"])),
             "n_test": int(len(d.labels["test"]))} for d in domains]
    write_json(ctx.run_dir / "domains.json", info)
    gt = ctx.run_dir / "ground_truth.json"
    if ctx.cfg.domains.synthetic is not None:
        write_json(gt, _synthetic_taxonomy(ctx.cfg).to_dict())
    elif gt.exists():
        gt.unlink()
    for d in info:
        ctx.log(f"domain {d['name']}: {len(d['class_names'])} classes, "
                f"{d['n_train']}/{d['n_val']}/{d['n_test']} train/val/test images, shift {d['shift']}")


def _features(ctx: RunContext, a: int, split: str) -> np.ndarray:
    """Features (N, D) of domain a's split: memory, else the disk cache, else the backbone.

    Rows of unreadable images are zero; :func:`_split_data` drops them.
    """
    key = (a, split)
    if key in ctx.features:
        return ctx.features[key]
    from core.features import extract_features_report

    d = _load_domains(ctx)[a]
    cfg = ctx.cfg

    def progress(done: int, total: int, images_per_s: float, eta_s: float | None) -> None:
        ctx.progress(done / max(total, 1), eta_s=eta_s,
                     message=f"{d.name}/{split}: {done}/{total} images, {images_per_s:.0f} img/s")

    res = extract_features_report(d.splits[split], backbone=cfg.features.backbone,
                                  image_size=cfg.features.image_size, device=ctx.device,
                                  batch_size=cfg.features.batch_size, progress=progress)
    feats = np.asarray(res.features, dtype=np.float32)
    if not res.from_cache:
        BACKBONE_COUNTER["images"] += len(feats)
        ctx.log(f"features {d.name}/{split}: {len(feats)} images in {res.seconds:.1f}s "
                f"({res.images_per_s:.0f} img/s)")
    if res.failed.size:
        ctx.log(f"warning: {d.name}/{split}: {res.failed.size} unreadable image(s) skipped "
                f"(indices {res.failed[:10].tolist()})")
    ctx.features[key] = feats
    ctx.failed[key] = np.asarray(res.failed, dtype=np.int64)
    return feats


def _split_data(ctx: RunContext, a: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X (n, D), labels (n,), item (n,) indices into the split) without unreadable images."""
    X = _features(ctx, a, split)
    y = _load_domains(ctx)[a].labels[split]
    keep = np.ones(len(y), dtype=bool)
    keep[ctx.failed.get((a, split), np.zeros(0, np.int64))] = False
    item = np.flatnonzero(keep)
    return X[item], y[item], item


def step_features(ctx: RunContext) -> None:
    domains = _load_domains(ctx)
    jobs = [(a, s) for a in range(len(domains)) for s in ("train", "val", "test")]
    for i, (a, s) in enumerate(jobs):
        ctx.progress(i / len(jobs), message=f"features {domains[a].name}/{s}", force=True)
        _features(ctx, a, s)
    dims = {ctx.features[j].shape[1] for j in jobs if len(ctx.features[j])}
    ctx.log(f"features: {sum(len(ctx.features[j]) for j in jobs)} images, dim {sorted(dims)}")


def _model_path(ctx: RunContext, a: int) -> Path:
    return ctx.run_dir / "baselines" / f"domain_{a}.pt"


def _epoch_reporter(ctx: RunContext, label: str, index: int, count: int):
    """Progress callback for one model's training; also keeps ``live_history.json`` (this
    model's epochs so far) up to date, so the dashboard draws exact live curves."""
    epochs: list[dict] = []

    def report(info) -> None:
        epochs.append({k: getattr(info, k) for k in ("epoch", "train_loss", "train_acc",
                                                     "val_loss", "val_acc")})
        write_json(ctx.run_dir / "live_history.json", {"label": label, "epochs": epochs})
        frac = (index + info.epoch / info.epochs) / count
        # this model's remaining epochs + the models still to train at this model's epoch time
        eta = info.eta_s + (count - index - 1) * info.epoch_s * info.epochs
        ctx.progress(frac, eta_s=eta, message=(
            f"{label}: epoch {info.epoch}/{info.epochs} loss {info.train_loss:.3f} "
            f"acc {info.train_acc:.3f} val {info.val_acc:.3f}, {info.samples_per_s:.0f} samples/s"))
    return report


def step_baselines(ctx: RunContext) -> None:
    import torch

    from core.heads import build_head, save_model
    from core.training import predict_logits, train_classifier

    domains = _load_domains(ctx)
    cfg = ctx.cfg
    metrics = {}
    for a, d in enumerate(domains):
        (X, y, _), (Xv, yv, _), (Xt, yt, _) = (_split_data(ctx, a, s) for s in ("train", "val", "test"))
        torch.manual_seed(cfg.seed + a)  # the head's initial weights depend on the seed only
        model = build_head(X.shape[1], len(d.class_names), cfg.baselines.head)
        res = train_classifier(model, X, y, Xv, yv, config=cfg.baselines.train,
                               seed=cfg.seed + a, device=ctx.device,
                               progress=_epoch_reporter(ctx, f"baseline {d.name}", a, len(domains)))
        pred = predict_logits(res.model, Xt, device=ctx.device).argmax(axis=1)
        test_acc = float((pred == yt).mean()) if len(pred) else float("nan")
        with atomic_path(_model_path(ctx, a)) as tmp:
            save_model(tmp, res.model, domain=d.name, domain_index=a, class_names=d.class_names,
                       best_epoch=res.best_epoch, val_acc=res.best_val_acc, test_acc=test_acc,
                       backbone=cfg.features.backbone, image_size=cfg.features.image_size)
        metrics[d.name] = {"test_acc": test_acc, "val_acc": res.best_val_acc, "best_epoch": res.best_epoch,
                           "samples_per_s": res.samples_per_s, "history": res.history}
        ctx.log(f"baseline {d.name}: val {res.best_val_acc:.3f} (epoch {res.best_epoch}) test {test_acc:.3f}, "
                f"{res.samples_per_s:.0f} samples/s")
    write_json(ctx.run_dir / "baselines" / "metrics.json", metrics)


def step_crossdomain(ctx: RunContext) -> None:
    from core.crossdomain import count_matrix, empty_classes, normalize_rows, ordered_pairs
    from core.heads import load_model
    from core.training import predict_logits

    domains = _load_domains(ctx)
    n = len(domains)
    K = [len(d.class_names) for d in domains]
    models = [load_model(_model_path(ctx, b))[0] for b in range(n)]
    mats, preds = {}, {}
    for a in range(n):
        Xt, y, item = _split_data(ctx, a, "test")  # one backbone pass per image, shared by all models
        preds[f"true/{a}"] = y
        preds[f"item/{a}"] = item  # index of each row in domain a's test split
        for b in range(n):
            if a == b:
                continue
            probs = _softmax(predict_logits(models[b], Xt, device=ctx.device))
            hard = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
            preds[f"pred/{a}-{b}"] = hard.astype(np.int64)
            preds[f"conf/{a}-{b}"] = probs.max(axis=1).astype(np.float16) if len(probs) else np.zeros(0, np.float16)
            counts = count_matrix(y, hard, K[a], K[b])
            mats[f"count/{a}-{b}"] = counts
            mats[f"hard/{a}-{b}"] = normalize_rows(counts)
            mats[f"soft/{a}-{b}"] = normalize_rows(count_matrix(y, probs, K[a], K[b])) if len(probs) else counts
        empty = empty_classes(counts)  # rows are a's true classes: the same for every model b
        if empty.size:
            ctx.log(f"warning: domain {domains[a].name}: classes {empty.tolist()} have no test images (all-zero rows)")
        ctx.progress((a + 1) / n, message=f"cross-domain predictions on {domains[a].name}")
    assert len([k for k in mats if k.startswith("hard/")]) == len(ordered_pairs(n))
    out = ctx.run_dir / "crossdomain"
    write_npz(out / "matrices.npz", mats)
    write_npz(out / "predictions.npz", preds)
    ctx.log(f"cross-domain: {len(ordered_pairs(n))} ordered pairs")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True) if len(logits) else logits
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True) if len(logits) else e


def step_selection(ctx: RunContext) -> None:
    from core.selection import select_relationships

    run = Run(ctx.run_dir)
    P = run.matrices(ctx.cfg.crossdomain.matrix)
    gt = run.ground_truth()
    # scores need a ground truth for every pair: only when all domains are synthetic
    true = gt.true_relationships() if gt is not None and not ctx.cfg.domains.list else None
    counts = ctx.class_counts
    for i, m in enumerate(ctx.cfg.selection.methods):
        W = {ab: select_relationships(p, m.name, **m.params) for ab, p in P.items()}
        scores = None
        if true is not None:
            from core.metrics import relationship_scores

            scores = {k: float(v) for k, v in relationship_scores(W, true, counts).items()}
        folder = ctx.run_dir / "taxonomy" / m.key
        write_npz(folder / "relationships.npz", {pair_key(a, b): w for (a, b), w in W.items()})
        write_json(folder / "selection.json", {"method": m.name, "params": m.params, "matrix": ctx.cfg.crossdomain.matrix,
                                               "n_edges": int(sum((w > 0).sum() for w in W.values())),
                                               "scores": scores})
        msg = f"selection {m.key}: {sum(int((w > 0).sum()) for w in W.values())} edges"
        if scores:
            msg += " " + " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        ctx.log(msg)
        ctx.progress((i + 1) / len(ctx.cfg.selection.methods), message=msg)


def step_taxonomy(ctx: RunContext) -> None:
    from core.taxonomy import build_universal_taxonomy

    counts = ctx.class_counts
    info = read_json(ctx.run_dir / "domains.json")
    names = [d["class_names"] for d in info]
    dnames = [d["name"] for d in info]
    for m in ctx.cfg.selection.methods:
        folder = ctx.run_dir / "taxonomy" / m.key
        W = Run(ctx.run_dir).relationships(m.key)
        tax = build_universal_taxonomy(W, counts, class_names=names, domain_names=dnames)
        write_text(folder / "taxonomy.json", tax.to_json())
        with atomic_path(folder / "taxonomy.graphml") as tmp:
            tax.to_graphml(tmp)
        write_text(folder / "mappings.csv", tax.mapping_table().to_csv(index=False))
        write_json(folder / "label_map.json", tax.label_map())
        ctx.log(f"taxonomy {m.key}: {len(tax.classes)} universal classes from {sum(counts)} domain classes")


def _load_taxonomy(ctx: RunContext, key: str):
    tax = Run(ctx.run_dir).taxonomy(key)
    if tax is None:
        raise FileNotFoundError(f"{ctx.run_dir / 'taxonomy' / key / 'taxonomy.json'} is missing")
    return tax


def _union(ctx: RunContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = [_split_data(ctx, a, split) for a in range(len(_load_domains(ctx)))]
    X = np.concatenate([p[0] for p in parts])
    dom = np.concatenate([np.full(len(p[1]), a, dtype=np.int64) for a, p in enumerate(parts)])
    y = np.concatenate([p[1] for p in parts])
    return X, dom, y


def step_universal(ctx: RunContext) -> None:
    from core.heads import save_model
    from core.universal import evaluate_universal, train_universal

    cfg = ctx.cfg
    train, val, test = (_union(ctx, s) for s in ("train", "val", "test"))
    names = ctx.domain_names
    methods = cfg.selection.methods
    for i, m in enumerate(methods):
        tax = _load_taxonomy(ctx, m.key)
        mappings = [np.asarray(M) for M in tax.mappings]
        res = train_universal(*train, *val, mappings, head=cfg.universal.head, train=cfg.universal_train,
                              loss=cfg.universal.loss, label_smoothing=cfg.universal.label_smoothing,
                              seed=cfg.seed, device=ctx.device,
                              progress=_epoch_reporter(ctx, f"universal {m.key}", i, len(methods)))
        acc = evaluate_universal(res.model, *test, mappings, device=ctx.device)
        folder = ctx.run_dir / "universal" / m.key
        with atomic_path(folder / "model.pt") as tmp:
            save_model(tmp, res.model, method=m.key, n_universal=len(tax.classes),
                       universal_names=list(tax.names), domain_names=names, best_epoch=res.best_epoch,
                       val_acc=res.best_val_acc, backbone=cfg.features.backbone,
                       image_size=cfg.features.image_size)
        write_json(folder / "history.json", res.history)
        write_json(folder / "metrics.json", {names[a]: v for a, v in acc.items()})
        ctx.log(f"universal {m.key}: U={len(tax.classes)} val {res.best_val_acc:.3f} (epoch {res.best_epoch}) "
                f"test " + " ".join(f"{names[a]}={v:.3f}" for a, v in acc.items()))


def step_results(ctx: RunContext) -> None:
    import pandas as pd

    names = ctx.domain_names
    base = read_json(ctx.run_dir / "baselines" / "metrics.json")
    rows = []
    keys = [m.key for m in ctx.cfg.selection.methods]
    uni = {k: read_json(ctx.run_dir / "universal" / k / "metrics.json") for k in keys}
    for a, name in enumerate(names):
        row = {"domain": name, "n_classes": ctx.class_counts[a], "baseline": base[name]["test_acc"]}
        for k in keys:
            row[f"universal/{k}"] = uni[k][name]
        rows.append(row)
    df = pd.DataFrame(rows)
    mean = {"domain": "mean", "n_classes": int(df["n_classes"].sum())}
    mean.update({c: float(df[c].mean()) for c in df.columns if c not in ("domain", "n_classes")})
    df = pd.concat([df, pd.DataFrame([mean])], ignore_index=True)
    write_text(ctx.run_dir / "results.csv", df.to_csv(index=False))
    selection = {k: (read_json(ctx.run_dir / "taxonomy" / k / "selection.json") or {}).get("scores") for k in keys}
    n_universal = {k: len(_load_taxonomy(ctx, k).classes) for k in keys}
    headline = {"baseline_mean": mean["baseline"]}
    headline.update({f"universal_mean/{k}": mean[f"universal/{k}"] for k in keys})
    for k, s in selection.items():
        if s:
            headline[f"f1/{k}"] = s.get("f1")
    write_json(ctx.run_dir / "results.json", {"table": df.to_dict(orient="records"), "headline": headline,
                                              "selection_scores": selection, "n_universal": n_universal,
                                              "timings_s": _timings(ctx)})
    ctx.log("results: " + ", ".join(f"{k}={v:.3f}" for k, v in headline.items() if v is not None))
    _embedding(ctx, keys)


def _timings(ctx: RunContext) -> dict:
    return read_json(ctx.run_dir / "timings.json", default={}) or {}


def _embedding(ctx: RunContext, keys: list[str]) -> None:
    """2-D embedding of the universal features (input of the last layer) of the test images."""
    import torch

    from core.embedding import embed_2d
    from core.heads import load_model

    best = max(keys, key=lambda k: np.nanmean(list(read_json(ctx.run_dir / "universal" / k / "metrics.json").values())))
    model, _ = load_model(ctx.run_dir / "universal" / best / "model.pt")
    X, dom, y = _union(ctx, "test")
    items = [_split_data(ctx, a, "test")[2] for a in range(len(_load_domains(ctx)))]
    rng = np.random.default_rng(ctx.cfg.seed)
    emb = ctx.cfg.embedding
    idx = np.sort(rng.choice(len(X), size=min(len(X), emb.max_points), replace=False))
    with torch.no_grad():
        x = torch.from_numpy(X[idx])
        feats = model.features(x).numpy()
        upred = model(x).argmax(dim=1).numpy()
    xy, how = embed_2d(feats, method=emb.method, tsne_max=emb.tsne_max, seed=ctx.cfg.seed)
    write_npz(ctx.run_dir / "embedding.npz", {"xy": xy.astype(np.float32), "domain": dom[idx], "label": y[idx],
                                           "universal_pred": upred,
                                           "item": np.concatenate(items)[idx], "method": np.array(best), "algorithm": np.array(how)})
    ctx.log(f"embedding: {len(idx)} test images of universal model {best} by {how}")


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


# ---------------------------------------------------------------------------- driver


def _environment(cfg: RunConfig, device) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("numpy", "torch", "torchvision", "timm", "scikit-learn", "pandas", "networkx", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    env = {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
           "device": str(device), "seed": cfg.seed, "hostname": socket.gethostname(), "pid": os.getpid(),
           "start_time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv}
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if device is not None and str(device).startswith("cuda"):
            env["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - environment is informative only
        pass
    return env


def _resolve(config: RunConfig | dict | str | os.PathLike) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def plan_steps(run_dir: str | os.PathLike, cfg: RunConfig, from_step: str | None = None,
               until_step: str | None = None) -> tuple[list[str], list[str], list[str]]:
    """(steps to reuse, steps to run, warnings) for running ``cfg`` in ``run_dir``.

    A step is reused only if it and every earlier step finished with the same config and its
    outputs still read back (a truncated file makes that step run again, with a warning naming
    the file). ``from_step`` reruns that step and all later ones; ``until_step`` stops after that
    step. Raises ValueError for a contradictory range and :class:`core.runs.CorruptRunError`
    when the bookkeeping cannot be read (it is never taken for "nothing done").
    """
    for name, value in (("from_step", from_step), ("until_step", until_step)):
        if value is not None and value not in STEPS:
            raise ValueError(f"{name} {value!r} is not a step; valid: {list(STEPS)}")
    if from_step and until_step and STEPS.index(from_step) > STEPS.index(until_step):
        raise ValueError(f"--from {from_step} comes after --until {until_step}: that range holds no step")
    run_dir = Path(run_dir)
    done = read_status(run_dir)["steps_done"]
    old = _read_step_hashes(run_dir)
    new = step_dependencies(cfg)
    keep, warnings = [], []
    for step in STEPS:
        if step == from_step or step not in done or old.get(step) != new[step]:
            break
        problems = check_step_outputs(run_dir, step)
        if problems:
            warnings.append(f"step {step} runs again: " + "; ".join(problems))
            break
        keep.append(step)
    todo = [s for s in STEPS if s not in keep]
    if until_step is not None:
        todo = [s for s in todo if STEPS.index(s) <= STEPS.index(until_step)]
    return keep, todo, warnings


def _read_step_hashes(run_dir: Path) -> dict:
    from core.fsio import read_json_strict
    from core.runs import CorruptRunError

    try:
        hashes = read_json_strict(run_dir / "steps.json")
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CorruptRunError(str(exc)) from None
    if not isinstance(hashes, dict):
        raise CorruptRunError(f"{run_dir / 'steps.json'} is corrupt: not a mapping of steps")
    return hashes


class _SignalGuard:
    """Turn SIGTERM/SIGINT into :class:`Cancelled` while the pipeline runs (main thread only)."""

    def __enter__(self):
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.old[sig] = signal.signal(sig, self._raise)
        return self

    def _raise(self, signum, frame):
        raise Cancelled(f"received {signal.Signals(signum).name}")

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False


def _error_text(exc: BaseException) -> str:
    """The one line a user reads about a failed step."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_error_message(exc)
    return f"{type(exc).__name__}: {exc}"


def _prepare(run_dir: Path, cfg: RunConfig, device, keep: list[str]) -> dict[str, str]:
    """Write the resolved config and environment, forget the steps that rerun; return the hashes
    of the kept steps (the locked run folder's bookkeeping before the first step)."""
    import yaml

    write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    env = _environment(cfg, device)
    old_env = read_json(run_dir / "environment.json", default={}) or {}
    env["created"] = old_env.get("created") or old_env.get("start_time") or env["start_time"]
    write_json(run_dir / "environment.json", env)
    hashes = step_dependencies(cfg)
    stored = {s: hashes[s] for s in keep}
    write_status(run_dir, steps_done=list(keep))  # first: a crash after it never claims a cleared step
    write_json(run_dir / "steps.json", stored)
    clear_step_outputs(run_dir, [s for s in STEPS if s not in keep])  # later steps depend on the rerun ones
    return stored


def _run_steps(ctx: RunContext, keep: list[str], todo: list[str], stored: dict[str, str]) -> list[str]:
    """Run ``todo`` in order, recording each finished step; return every step done."""
    run_dir, pid = ctx.run_dir, os.getpid()
    hashes = step_dependencies(ctx.cfg)
    timings = read_json(run_dir / "timings.json", default={}) or {}
    done = list(keep)
    for step in todo:
        ctx.step = step
        write_status(run_dir, state="running", pid=pid, pid_identity=process_identity(pid), step=step,
                     progress=0.0, eta_s=None, message=f"{step}...")
        t0 = time.perf_counter()
        STEP_FUNCTIONS[step](ctx)
        timings[step] = round(time.perf_counter() - t0, 3)
        write_json(run_dir / "timings.json", timings)
        done.append(step)
        stored[step] = hashes[step]
        write_json(run_dir / "steps.json", stored)
        write_status(run_dir, steps_done=list(done), progress=1.0, eta_s=0.0, message=f"{step} done")
        append_log(run_dir, f"step {step} done in {timings[step]:.1f}s")
        if ctx.on_progress is not None:
            ctx.on_progress(step, 1.0, 0.0, f"{step} done")
    return done


def run_pipeline(
    config: RunConfig | dict | str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    from_step: str | None = None,
    until_step: str | None = None,
    on_progress: Callable[[str, float, float | None, str], None] | None = None,
) -> dict:
    """Run (or resume) the pipeline into ``run_dir``; return the final status dict.

    ``from_step`` reruns that step and all later ones; ``until_step`` stops after that step.
    ``on_progress(step, fraction, eta_s, message)`` is called often (fraction -1 = log line).

    Refusals raise before anything in the folder changes: a bad step range (ValueError), a
    folder that is not empty and not a run folder (:class:`core.runs.NotARunFolderError`), a run
    folder another process works in (:class:`core.runs.LockedError`), corrupt bookkeeping
    (:class:`core.runs.CorruptRunError`). Once started it never raises for a failing step: the
    status says "failed" with the error (or "cancelled"). When there is nothing to run, nothing
    is touched.
    """
    cfg = _resolve(config)
    if from_step and until_step and STEPS.index(from_step) > STEPS.index(until_step):
        plan_steps(run_dir, cfg, from_step, until_step)  # raises the range error before any folder exists
    run_dir = init_run_dir(run_dir)
    with RunLock(run_dir, purpose="run"):
        keep, todo, warnings = plan_steps(run_dir, cfg, from_step, until_step)
        if not todo:
            append_log(run_dir, f"nothing to run: {keep or 'no step'} done, range ends at {until_step}")
            return read_status(run_dir)
        from core.device import pick_device

        device = pick_device(None if cfg.device == "auto" else cfg.device)
        ctx = RunContext(cfg=cfg, run_dir=run_dir, device=device, on_progress=on_progress)
        with _SignalGuard():
            try:
                for line in warnings:
                    ctx.log(f"warning: {line}")
                stored = _prepare(run_dir, cfg, device, keep)
                write_status(run_dir, state="running", step=todo[0], progress=0.0, eta_s=None, message="starting",
                             pid=os.getpid(), pid_identity=process_identity(os.getpid()), error=None)
                append_log(run_dir, f"run {run_dir.name}: config {cfg.name!r}, device {device}, "
                                    f"reusing {keep or 'nothing'}, running {todo}")
                done = _run_steps(ctx, keep, todo, stored)
            except Cancelled as exc:
                append_log(run_dir, f"cancelled: {exc}")
                return write_status(run_dir, state="cancelled", message=f"cancelled during {ctx.step or 'start'}",
                                    eta_s=None, pid=None, pid_identity=None, error=None)
            except Exception as exc:  # noqa: BLE001 - any crash must leave "failed" + the error
                append_log(run_dir, "failed:\n" + traceback.format_exc())
                return write_status(run_dir, state="failed", message=f"failed during {ctx.step or 'start'}",
                                    eta_s=None, pid=None, pid_identity=None, error=_error_text(exc))
        state = "done" if len(done) == len(STEPS) else "pending"
        msg = "done" if state == "done" else f"stopped after {done[-1] if done else 'nothing'}"
        return write_status(run_dir, state=state, step=None, message=msg, eta_s=None, pid=None, pid_identity=None)
