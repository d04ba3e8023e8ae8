"""Benchmark the universal-accuracy sweep (not a test): prints figures measured in one run.

    .venv/bin/python bench/bench_sweep.py [--run RUN] [--skip-demo] [--epochs-thesis 2]

1. Random features with the thesis's class counts (3 domains of 257/101/100 classes, random
   taxonomies; 45,000 training images x 1,280 features, fewer than the about 71,000 training
   images of its split) and of demo size (2,500 images, 8/6/6 classes):
   seconds per epoch of 8 universal heads trained together against one head trained alone
   (core.universal.train_universal), and the settings per minute this gives at 30 epochs.
2. The full default sweep (coarse grid, every method) of demo.yaml: wall time, settings and
   distinct taxonomies, settings per minute. Builds the demo run first (about 1.5 minutes)
   unless ``--run`` names a finished one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _random_taxonomies(rng, counts, n):
    from core.selection import Edges
    from core.taxonomy import build_universal_taxonomy

    out = []
    for _ in range(n):
        rel = {}
        for a in range(len(counts)):
            for b in range(len(counts)):
                if a != b:
                    rows = rng.integers(0, counts[a], counts[a] // 2)
                    cols = rng.integers(0, counts[b], rows.size)
                    rel[a, b] = Edges.from_dense(_dense(rows, cols, counts[a], counts[b]))
        out.append([np.asarray(M) for M in build_universal_taxonomy(rel, counts).mappings])
    return out


def _dense(rows, cols, ka, kb):
    W = np.zeros((ka, kb))
    W[rows, cols] = 0.5
    return W


def heads_together(epochs: int, counts: list[int], n: int, label: str, heads: int = 8) -> None:
    import torch

    from core.config import HeadConfig, TrainConfig
    from core.multihead import train_heads
    from core.universal import train_universal

    rng = np.random.default_rng(0)
    d = 1280
    dom = rng.integers(0, 3, n)
    y = np.array([rng.integers(0, counts[a]) for a in dom])
    X = rng.normal(size=(n, d)).astype(np.float32)
    nv = max(n // 9, 100)
    val = (X[:nv], dom[:nv], y[:nv])
    taxes = _random_taxonomies(rng, counts, heads)
    head, cfg = HeadConfig(depth=2, width=256, dropout=0.2), TrainConfig(epochs=epochs, batch_size=128, patience=0)
    print(f"{label}: {n} x {d} features, classes {counts}, U = {[t[0].shape[1] for t in taxes]}")
    print(f"torch threads: {torch.get_num_threads()}")
    t0 = time.perf_counter()
    train_universal(X, dom, y, *val, taxes[0], head=head, train=cfg, seed=0)
    alone = (time.perf_counter() - t0) / epochs
    t0 = time.perf_counter()
    train_heads((X, dom, y), val, taxes, head=head, config=cfg, seed=0)
    together = (time.perf_counter() - t0) / epochs / heads
    print(f"  one head alone: {alone:.2f} s/epoch; {heads} heads together: {together:.2f} s/epoch per head")
    print(f"  speed-up of training together: {alone / together:.1f}x")
    print(f"  at 30 epochs: {60 / (alone * 30):.2f} settings/min alone, {60 / (together * 30):.2f} together")


def demo_sweep(run: str | None) -> None:
    from core.pipeline import run_pipeline
    from core.sweep import sweep_job

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("UNITAX_CACHE", str(Path(tmp) / "cache"))
        if run is None:
            run = str(Path(tmp) / "demo")
            t0 = time.perf_counter()
            status = run_pipeline(REPO / "assets/configs/demo.yaml", run)
            print(f"demo run built in {time.perf_counter() - t0:.0f} s ({status['state']})")
        t0 = time.perf_counter()
        status = sweep_job(run)
        wall = time.perf_counter() - t0
        from core.runs import Run

        table = Run(run).sweep_table()
        distinct = int((table["same_as"].fillna("") == "").sum())
        print(f"demo sweep ({status['state']}): {len(table)} settings, {distinct} distinct taxonomies trained, "
              f"{wall:.0f} s wall = {len(table) / wall * 60:.1f} settings/min (target: all in < 300 s)")  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a finished run to sweep (default: build demo.yaml in a temporary folder)")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--epochs-thesis", type=int, default=2)
    args = ap.parse_args(argv)
    heads_together(args.epochs_thesis, [257, 101, 100], 45_000, "thesis-sized")
    heads_together(5, [8, 6, 6], 2_500, "demo-sized")
    if not args.skip_demo:
        demo_sweep(args.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
