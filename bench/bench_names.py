"""Benchmark the class-name evidence (not a test): prints figures measured in one run.

    .venv/bin/python bench/bench_names.py [--repeat 3] [--threads N]

1. What a process pays once: importing sentence-transformers, loading the bundled
   all-MiniLM-L6-v2 (core.names, on the CPU), and the memory it adds.
2. Encoding class names (core.names.embed_names; best of ``--repeat``): the default demo run's
   names (demo.yaml's synthetic world, no images built), 458 names (the thesis's 257 + 101 + 100
   classes) and 1,000 names; the synthetic ones are unions of 1-3 procedural concept names.
3. A run's cache (core.names.name_embeddings) for 3 domains of 458 names: first call (encode +
   write), a cached call (read + key check), and the size of ``evidence/names.npz``; then
   missing_links over those embeddings with no selected edges.

``--threads N`` sets torch's CPU threads before encoding (default: torch's choice); on a machine
that other processes keep busy, 1 thread gives steadier figures than several.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _rss_mib() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def demo_names() -> list[list[str]]:
    """The class names the default demo run gets (its synthetic world; no images)."""
    from core import procedural
    from core.config import load_config
    from core.domains import synthetic_world

    cfg = load_config(REPO / "assets/configs/demo.yaml")
    world = synthetic_world(cfg)
    return world.class_names(procedural.concept_names(world.n_concepts))


def synthetic_names(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct names, each a union of 1-3 procedural concept names joined by '+'."""
    from core import procedural

    rng = np.random.default_rng(seed)
    concepts = procedural.concept_names(procedural.MAX_CONCEPTS)
    out: dict[str, None] = {}
    while len(out) < n:
        k = int(rng.integers(1, 4))
        out["+".join(concepts[c] for c in sorted(rng.choice(len(concepts), k, replace=False)))] = None
    return list(out)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    rows: list[tuple[str, str]] = []

    t0 = time.perf_counter()
    from core import names

    rows.append(("import core.names", f"{time.perf_counter() - t0:.2f} s"))
    t0 = time.perf_counter()
    why = names.names_unavailable()
    rows.append(("names_unavailable()", f"{(time.perf_counter() - t0) * 1e3:.1f} ms"))
    if why:
        print(why, file=sys.stderr)
        return 1
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    import sentence_transformers  # noqa: F401 - timed on its own

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    names._load_model()
    t_load = time.perf_counter() - t0
    rows.append(("import sentence_transformers", f"{t_import:.2f} s"))
    rows.append(("load the model (CPU)", f"{t_load:.2f} s"))
    rows.append(("import + load", f"{t_import + t_load:.2f} s"))
    rows.append(("peak memory added", f"{_rss_mib() - rss0:.0f} MiB"))
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows.append(("torch CPU threads", str(torch.get_num_threads())))

    demo = [t for dom in demo_names() for t in dom]
    t0 = time.perf_counter()
    names.embed_names(demo)
    rows.append((f"first encode: demo's {len(demo)} names", f"{(time.perf_counter() - t0) * 1e3:.0f} ms"))
    for label, texts in (
        (f"demo's {len(demo)} names", demo),
        ("458 names", synthetic_names(458)),
        ("1,000 names", synthetic_names(1000, seed=1)),
    ):
        dt = best_of(args.repeat, lambda texts=texts: names.embed_names(texts))
        rows.append((f"encode {label}", f"{dt * 1e3:.0f} ms ({dt / len(texts) * 1e3:.2f} ms/name)"))

    from core.runs import F, Run, init_run_dir

    with tempfile.TemporaryDirectory() as tmp:
        run = Run(init_run_dir(Path(tmp) / "r"))
        doms = [synthetic_names(458, seed=s) for s in (2, 3, 4)]
        run.write_domains([{"name": f"d{a}", "class_names": c} for a, c in enumerate(doms)])
        t0 = time.perf_counter()
        emb = names.name_embeddings(run)
        rows.append(("name_embeddings, 3 x 458 names, first", f"{(time.perf_counter() - t0) * 1e3:.0f} ms"))
        dt = best_of(args.repeat, lambda: names.name_embeddings(run))
        rows.append(("name_embeddings, 3 x 458 names, cached", f"{dt * 1e3:.1f} ms"))
        size = run.file(F.NAME_EMBEDDINGS).stat().st_size
        rows.append(("cache file evidence/names.npz", f"{size / 1024:.0f} KiB ({size / 1374:.0f} B/name)"))
        dt = best_of(args.repeat, lambda: names.missing_links(emb, {}, min_similarity=0.8))
        rows.append(("missing_links, 3 x 458 names, no edges", f"{dt * 1e3:.1f} ms"))

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
