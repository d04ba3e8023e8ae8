"""Benchmark the headless pipeline (not a test): prints figures measured in one run.

    .venv/bin/python bench/bench_pipeline.py [--config assets/configs/demo.yaml] [--device cpu]

1. End-to-end time of a config, split by step (a fresh run folder and a fresh feature cache,
   so the backbone really runs).
2. Backbone passes per image during cross-domain prediction (target: exactly 1): images
   forwarded through the backbone / distinct images, and extra passes in the crossdomain step.
3. Training throughput (samples/s) of the heads (baseline and universal recipe).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "assets/configs/demo.yaml"))
    parser.add_argument("--device", default=None, help="override the config's device")
    parser.add_argument("--image-size", type=int, default=None, help="override features.image_size")
    parser.add_argument("--keep", help="keep the run in this folder")
    args = parser.parse_args(argv)

    import numpy as np

    from core import context, pipeline, steps
    from core.config import load_config
    from core.runs import open_run

    cfg = load_config(args.config)
    if args.device:
        cfg = dataclasses.replace(cfg, device=args.device)
    if args.image_size:
        cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, image_size=args.image_size))
    tmp = tempfile.mkdtemp(prefix="bench-pipeline-")
    os.environ["UNITAX_CACHE"] = str(Path(tmp) / "cache")  # fresh feature cache: the backbone runs
    run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
    t0 = time.perf_counter()
    status = pipeline.run_pipeline(cfg, run_dir)
    total = time.perf_counter() - t0
    if status["state"] != "done":
        print(f"run ended {status['state']}: {status.get('error')}")
        return 1
    run = open_run(run_dir)
    timings = run.timings()
    print(f"config {cfg.name}  device {run.environment().get('device')}  image size {cfg.features.image_size}")
    print(f"end to end: {total:.1f} s")
    for step, s in timings.items():
        print(f"  {step:<12} {s:7.1f} s  ({s / total:5.1%})")
    n_images = sum(d["n_train"] + d["n_val"] + d["n_test"] for d in run.domains())
    forwarded = context.BACKBONE_COUNTER["images"]
    print(
        f"backbone: {forwarded} images forwarded for {n_images} distinct images "
        f"= {forwarded / max(n_images, 1):.3f} passes per image (target 1)"
    )
    # cross-domain step alone, from a new process state: features come from the cache, 0 passes
    before = context.BACKBONE_COUNTER["images"]
    ctx = context.RunContext(cfg=cfg, run=run, device="cpu" if cfg.device == "auto" else cfg.device, record=False)
    steps.step_crossdomain(ctx)
    n_test = sum(d["n_test"] for d in run.domains())
    extra = context.BACKBONE_COUNTER["images"] - before
    n = len(run.domains())
    print(
        f"crossdomain step rerun: {extra} backbone passes for {n * (n - 1)} model-domain pairs over "
        f"{n_test} test images (features reused; naive per-pair extraction would need {n_test * (n - 1)})"
    )
    base = run.baseline_metrics()
    sps = [m["samples_per_s"] for m in base.values()]
    print(f"baseline head training: {np.mean(sps):.0f} samples/s (mean over {len(sps)} domains)")
    _throughput(cfg)
    res = run.results()
    print(res.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    scores = run.results_json()["selection_scores"]
    for k, s in scores.items():
        if s:
            print(f"selection {k}: " + " ".join(f"{m}={v:.3f}" for m, v in s.items()))
    return 0


def _throughput(cfg) -> None:
    """Head training throughput on synthetic features of the backbone's width, in isolation."""
    import numpy as np

    from core.device import pick_device
    from core.heads import build_head
    from core.training import train_classifier
    from core.universal import train_universal

    device = pick_device(None if cfg.device == "auto" else cfg.device)
    rng = np.random.default_rng(0)
    n, d, k = 20000, 1280, 20
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    train = dataclasses.replace(cfg.baselines.train, epochs=3, patience=0)
    res = train_classifier(build_head(d, k, cfg.baselines.head), X, y, X[:2000], y[:2000], config=train, device=device)
    print(
        f"head training throughput ({device}, {n} x {d} features, batch {train.batch_size}, "
        f"{cfg.baselines.head.depth} layers x {cfg.baselines.head.width}): {res.samples_per_s:.0f} samples/s"
    )
    dom = rng.integers(0, 3, n)
    M = [np.eye(k)[:, :] for _ in range(3)]
    res = train_universal(
        X, dom, y, X[:2000], dom[:2000], y[:2000], M, head=cfg.universal.head, train=train, device=device
    )
    print(f"universal head training throughput: {res.samples_per_s:.0f} samples/s")


if __name__ == "__main__":
    sys.exit(main())
