"""Engine benchmark: prints times and ratios measured in this one run.

1. Selection + scores for all five methods over 10 domains x ~1000 classes (90 ordered pairs of
   ~1000 x 1000 count-based matrices from the synthetic noise model): cold (validation and
   ranking included) and per slider move (ranking cached, as in the app), against a per-row
   Python loop (run on a few pairs, scaled to 90 pairs).
2. Universal taxonomy build at that size with ~2 edges per row, and against the literal
   restart-after-every-change engine on sizes where that one still finishes.

Run: .venv/bin/python bench/bench_engine.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core._reference import build_taxonomy_restart, select_loop  # noqa: E402
from core.crossdomain import normalize_rows  # noqa: E402
from core.metrics import rank_all, relationship_scores, score_selection  # noqa: E402
from core.selection import Edges  # noqa: E402
from core.synthetic import make_synthetic_taxonomy, sample_cross_counts  # noqa: E402
from core.taxonomy import build_universal_taxonomy  # noqa: E402

PARAMS = {"threshold": {"t": 0.2}, "mcfp": {}, "mcfp_binary": {}, "density": {"p": 0.7}, "hypothesis": {"k_max": 3}}


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_selection(n_domains: int, concepts: int, loop_pairs: int) -> None:
    world = make_synthetic_taxonomy(concepts * 3 // 2, n_domains, concepts, 100, 2, 1, seed=0)
    counts = sample_cross_counts(world, images_per_class=50, noise=0.3, seed=0)
    mats = {k: normalize_rows(c) for k, c in counts.items()}
    true = {k: Edges.from_dense(w) for k, w in world.true_relationships().items()}
    k = world.class_counts
    print(f"selection + scores: {n_domains} domains, classes {min(k)}..{max(k)}, {len(mats)} pairs")

    def cold():
        ranked = rank_all(mats)
        return [score_selection(ranked, true, k, m, **p) for m, p in PARAMS.items()]

    t_cold, _ = timed(cold)
    ranked = rank_all(mats)
    t_warm, _ = timed(lambda: [score_selection(ranked, true, k, m, **p) for m, p in PARAMS.items()])
    t_move, _ = timed(lambda: score_selection(ranked, true, k, "threshold", t=0.25), repeat=5)
    some = dict(list(mats.items())[:loop_pairs])
    some_true = {key: true[key].dense() for key in some}
    t_loop, _ = timed(
        lambda: [
            relationship_scores({key: select_loop(p, m, **prm) for key, p in some.items()}, some_true, k)
            for m, prm in PARAMS.items()
        ],
        repeat=1,
    )
    t_loop_all = t_loop * len(mats) / loop_pairs
    print(f"  all five methods, cold (validate + rank + select + score): {t_cold:.3f} s")
    print(f"  all five methods, ranking cached:                          {t_warm:.3f} s")
    print(f"  one slider move (threshold, all pairs):                    {t_move * 1000:.1f} ms")
    print(f"  per-row Python loop, {loop_pairs} pairs scaled to {len(mats)}:           {t_loop_all:.1f} s")
    print(f"  ratio loop / cold: {t_loop_all / t_cold:.0f}x   loop / cached: {t_loop_all / t_warm:.0f}x")


def random_edges(rng, n_domains: int, k: int, per_row: float) -> dict:
    rel = {}
    for a in range(n_domains):
        for b in range(n_domains):
            if a != b:
                n = int(per_row * k)
                key = np.unique(rng.integers(0, k, n) * k + rng.integers(0, k, n))
                r, c = np.divmod(key, k)
                rel[(a, b)] = Edges(r, c, np.round(rng.random(r.size), 2) + 0.01, (k, k))
    return rel


def bench_taxonomy(n_domains: int, k: int) -> None:
    rng = np.random.default_rng(0)
    rel = random_edges(rng, n_domains, k, 2.0)
    t, tax = timed(lambda: build_universal_taxonomy(rel, [k] * n_domains), repeat=1)
    n_edges = sum(e.rows.size for e in rel.values())
    print(
        f"taxonomy: {n_domains} domains x {k} classes, {n_edges} edges -> "
        f"{tax.n_universal} universal classes in {t:.3f} s"
    )
    for small in (10, 20, 40):
        rel_s = {key: e.dense() for key, e in random_edges(rng, 3, small, 2.0).items()}
        t_fast, _ = timed(lambda rel_s=rel_s, small=small: build_universal_taxonomy(rel_s, [small] * 3))
        t_slow, _ = timed(lambda rel_s=rel_s, small=small: build_taxonomy_restart(rel_s, [small] * 3), repeat=1)
        print(
            f"  3 domains x {small:3d} classes: worklist {t_fast * 1000:7.1f} ms, restart engine "
            f"{t_slow * 1000:9.1f} ms, ratio {t_slow / t_fast:6.0f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        bench_selection(4, 400, 2)
        bench_taxonomy(4, 200)
    else:
        bench_selection(10, 2000, 3)  # ~2000 concepts in classes of ~2: ~1000 classes
        bench_taxonomy(10, 1000)


if __name__ == "__main__":
    main()
