"""Dashboard latency on a thesis-sized run (three domains of 257, 101 and 100 classes, cross-domain
counts drawn from the synthetic noise model; no images).

1. Slider -> metrics: server-side time of one Relationships rerun after a threshold-slider move
   to a value not seen before (AppTest drives the real page; no cache hit), and the bare compute
   (selection of all 6 pairs + scores) without Streamlit. Target: median < 150 ms.
2. First render of every page (caches cleared first = cold) and a revisit (warm caches).

Run: .venv/bin/python bench/bench_app.py [--moves 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TARGET_MS = 150.0
PAGES = ["home", "domains", "crossdomain", "relationships", "taxonomy", "universal", "try_it", "runs"]


def thesis_taxonomy(seed: int = 0, class_counts=(257, 101, 100), n_concepts: int = 320):
    """A SyntheticTaxonomy with exactly the thesis's class counts: each domain draws concepts and
    splits them into K_a non-empty classes (one concept each, the rest spread at random)."""
    from core.synthetic import SyntheticTaxonomy

    rng = np.random.default_rng(seed)
    domains = []
    for k in class_counts:
        m = min(n_concepts, int(k * 1.3))
        concepts = rng.choice(n_concepts, size=m, replace=False)
        owner = np.concatenate([np.arange(k), rng.integers(0, k, m - k)])
        domains.append([frozenset(int(c) for c in concepts[owner == i]) for i in range(k)])
    return SyntheticTaxonomy(n_concepts, domains, seed, {"class_counts": list(class_counts)})


def bare_compute_ms(run_dir: Path, values) -> list[float]:
    from core.metrics import relationship_scores
    from core.runs import open_run
    from core.selection import rank_rows, select_edges

    run = open_run(run_dir)
    mats, tax = run.matrices("hard"), run.ground_truth()
    true, counts = tax.true_relationships(), tax.class_counts
    ranked = {k: rank_rows(P) for k, P in mats.items()}
    out = []
    for t in values:
        t0 = time.perf_counter()
        pred = {k: select_edges(r, "threshold", t=float(t)).dense() for k, r in ranked.items()}
        relationship_scores(pred, true, counts)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def slider_ms(moves: int) -> tuple[list[float], list[str]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("pages/relationships.py").run()
    at.selectbox(key="rel_method").set_value("threshold").run()
    times, f1s = [], []
    for t in np.round(np.linspace(0.05, 0.95, moves), 3):
        at.slider(key="rel_threshold_t").set_value(float(t))
        t0 = time.perf_counter()
        at.run()
        times.append(1000 * (time.perf_counter() - t0))
        f1s.append(next(m.value for m in at.metric if m.label == "F1"))
    assert not at.exception, [e.value for e in at.exception]
    return times, f1s


def page_ms(name: str) -> tuple[float, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    times = []
    for _ in range(2):  # cold, then warm (a revisit)
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        t0 = time.perf_counter()
        at.run()
        if name != "home":
            at.switch_page(f"pages/{name}.py").run()
        times.append(1000 * (time.perf_counter() - t0))
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].value}")
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=30)
    args = ap.parse_args()
    from tests.sample_run import write_synthetic_run

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["UNITAX_RUNS"] = tmp
        t0 = time.perf_counter()
        tax = thesis_taxonomy()
        run_dir = write_synthetic_run(
            tmp, "thesis-sized", tax, images_per_class=30, noise=0.3, methods=("mcfp", "threshold")
        )
        print(f"run: classes {tax.class_counts}, built in {time.perf_counter() - t0:.1f} s")
        values = np.round(np.linspace(0.05, 0.95, args.moves), 3)
        bare = bare_compute_ms(run_dir, values)
        ui, f1s = slider_ms(args.moves)
        med = statistics.median(ui)
        print(f"slider -> metrics, {args.moves} new threshold values:")
        print(
            f"  page rerun (AppTest, server side): median {med:.1f} ms, p90 "
            f"{np.percentile(ui, 90):.1f} ms, max {max(ui):.1f} ms"
        )
        print(f"  bare compute (6 pairs select + scores): median {statistics.median(bare):.1f} ms")
        print(
            f"  ratio median / target {TARGET_MS:.0f} ms = {med / TARGET_MS:.2f} "
            f"({'meets' if med < TARGET_MS else 'misses'} the target); F1 went {f1s[0]} -> {f1s[-1]}"
        )
        print("first render per page (ms): cold caches / revisit")
        for name in PAGES:
            cold, warm = page_ms(name)
            print(f"  {name:<14} {cold:8.0f} / {warm:6.0f}")


if __name__ == "__main__":
    main()
