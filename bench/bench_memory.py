"""Peak memory and time per step of a simulated run: no backbone, random features.

10 domains x 1,000 classes x N images per class (train; N/5 per class, at least 2, for test;
1 per class for validation) of random float16 features (D = 256) with class structure: every
domain's classes are a permutation of 1,000 shared concepts, features = concept centre + noise.
Features are written in chunks to memory-mapped .npy files (``np.lib.format.open_memmap``) and
read back with ``np.load(mmap_mode="r")``. Steps, each in a fresh subprocess:

  generate     write the memory-mapped features (chunked)
  baselines    a nearest-class-mean linear head per domain (one streamed pass over the train map)
  crossdomain  every head on every other domain's test map, streamed (core.crossdomain.stream_domain),
               all 90 pairs x (count, hard, soft) matrices held as the pipeline step holds them (count
               and hard in CSR form when mostly zeros, soft dense)
  selection    core.selection.select_edges over the 90 hard matrices (mcfp, density p=0.7), as the step
  taxonomy     core.taxonomy.build_universal_taxonomy per method, sparse mappings and label map
  universal    core.universal.train_universal for 1 epoch on the train map (sparse mappings), then
               evaluate_universal on the test map (streamed); above --universal-rows (20,000) rows
               on every s-th row only (a strided view), its time scaled by s in the projection
               (with U ~ 45,000 universal classes, one epoch over 1 M rows takes about an hour on
               2 CPU cores: the head's (B, D) x (D, U) products, not the engine)

Memory: every step runs in its own process; it reports peak RSS (ru_maxrss, includes the
file-backed pages of the memory maps, which the kernel can drop) and peak anonymous RSS (RssAnon
of /proc/self/status sampled every 10 ms: the memory the step itself needs), both in MB, and the
same after the imports (the floor). Time: wall seconds of the step's work (imports excluded).
Two sizes (default 20 and 100 images per class) show how each figure grows with N; the last
columns project both linearly to 1.28 M images per domain (1,280 per class).

Files stay under --max-disk-gb (default 3) in a temporary folder that is deleted afterwards.

Run: .venv/bin/python bench/bench_memory.py [--images-per-class 20 100] [--quick] [--dim 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS = ("generate", "baselines", "crossdomain", "selection", "taxonomy", "universal")
METHODS = {"mcfp": {}, "density": {"p": 0.7}}
CHUNK = 65536  # rows per streamed chunk
TARGET = 1_280_000  # images per domain (ImageNet-1k train)


# ---------------------------------------------------------------------------- memory probe


class Probe:
    """Peak anonymous RSS (sampled) and peak total RSS (ru_maxrss) of this process, in MB."""

    def __init__(self, every_s: float = 0.01):
        self.peak_anon, self.every_s = self.anon(), every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def anon() -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    @staticmethod
    def maxrss() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_anon = max(self.peak_anon, self.anon())

    def __enter__(self) -> Probe:
        self.floor_anon, self.floor_rss = self.anon(), self.maxrss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_anon = max(self.peak_anon, self.anon())


# ---------------------------------------------------------------------------- the steps


def _meta(d: Path) -> dict:
    return json.loads((d / "meta.json").read_text())


def _load(d: Path, name: str) -> np.ndarray:
    return np.load(d / f"{name}.npy", mmap_mode="r")


def step_generate(d: Path, m: dict) -> None:
    n_dom, k, dim = m["domains"], m["classes"], m["dim"]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(k, dim)).astype(np.float32)  # one per shared concept
    perms = np.stack([rng.permutation(k) for _ in range(n_dom)])  # class i of domain a = concept perms[a, i]
    np.save(d / "perms.npy", perms)
    for split, per_class in (("train", m["n"]), ("test", m["n_test"]), ("val", 1)):
        rows = n_dom * k * per_class
        X = np.lib.format.open_memmap(d / f"X_{split}.npy", mode="w+", dtype=np.float16, shape=(rows, dim))
        y = np.lib.format.open_memmap(d / f"y_{split}.npy", mode="w+", dtype=np.int64, shape=(rows,))
        dom = np.lib.format.open_memmap(d / f"dom_{split}.npy", mode="w+", dtype=np.int64, shape=(rows,))
        for start in range(0, rows, CHUNK):
            stop = min(start + CHUNK, rows)
            idx = np.arange(start, stop)
            a, i = idx // (k * per_class), (idx % (k * per_class)) // per_class
            noise = rng.normal(scale=m["noise"], size=(stop - start, dim)).astype(np.float32)
            X[start:stop] = (centres[perms[a, i]] + noise).astype(np.float16)
            y[start:stop], dom[start:stop] = i, a
        X.flush(), y.flush(), dom.flush()
        del X, y, dom


def _domain_rows(m: dict, split: str, a: int) -> slice:
    per = {"train": m["n"], "test": m["n_test"], "val": 1}[split] * m["classes"]
    return slice(a * per, (a + 1) * per)


def _linear(W: np.ndarray, b: np.ndarray):
    """A linear head z = x W^T + b (W (K, D), b (K,)) as an nn.Module with ``out``."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                self.out.weight.copy_(torch.from_numpy(W))
                self.out.bias.copy_(torch.from_numpy(b))

        def forward(self, x):
            return self.out(x)

    return Head()


def step_baselines(d: Path, m: dict) -> None:
    """Nearest-class-mean heads: W = class means, b = -|mean|^2 / 2 (one streamed pass)."""
    from scipy import sparse

    X, y = _load(d, "X_train"), _load(d, "y_train")
    k = m["classes"]
    heads = {}
    for a in range(m["domains"]):
        rows = _domain_rows(m, "train", a)
        sums, counts = np.zeros((k, m["dim"])), np.zeros(k)
        for start in range(rows.start, rows.stop, CHUNK):
            stop = min(start + CHUNK, rows.stop)
            lab = np.asarray(y[start:stop])
            onehot = sparse.csr_array((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(k, len(lab)))
            sums += onehot @ np.asarray(X[start:stop], dtype=np.float64)
            counts += np.bincount(lab, minlength=k)
        mu = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        heads[f"W{a}"], heads[f"b{a}"] = mu, (-0.5 * (mu**2).sum(axis=1)).astype(np.float32)
    np.savez(d / "heads.npz", **heads)


def step_crossdomain(d: Path, m: dict) -> None:
    import torch

    from core.crossdomain import compact, pair_matrices, stream_domain
    from core.runs.run import pack_matrix
    from core.training import predict_logits

    heads = np.load(d / "heads.npz")
    n_dom, k = m["domains"], m["classes"]
    models = [_linear(heads[f"W{b}"], heads[f"b{b}"]) for b in range(n_dom)]
    X, y = _load(d, "X_test"), _load(d, "y_test")

    def probs_of(b: int, x: np.ndarray) -> np.ndarray:
        return torch.softmax(torch.from_numpy(predict_logits(models[b], x)), dim=1).numpy().astype(np.float64)

    mats: dict[str, dict] = {"count": {}, "hard": {}, "soft": {}}
    pred = {}
    for a in range(n_dom):
        rows = _domain_rows(m, "test", a)
        others = {b: k for b in range(n_dom) if b != a}
        streamed = stream_domain(np.asarray(y[rows]), X[rows], k, others, probs_of, chunk=4 * 4096)
        for b, (acc, hard, _conf) in streamed.items():
            pred[a, b] = hard
            for kind, mat in pair_matrices(acc).items():  # as the pipeline step holds them
                mats[kind][a, b] = mat if kind == "soft" else compact(mat)
    # the selection reads the hard matrices (the default); only those are kept on disk, as the run stores them
    packed: dict = {}
    for (a, b), mat in mats["hard"].items():
        packed.update(pack_matrix(f"hard/{a}-{b}", mat))
    np.savez(d / "hard.npz", **packed)
    perms = np.load(d / "perms.npy")
    hits = []
    for a, b in list(pred)[:3]:  # b's class with a's true concept
        want = np.argsort(perms[b])[perms[a]][np.asarray(y[_domain_rows(m, "test", a)])]
        hits.append((pred[a, b] == want).mean())
    print(json.dumps({"note": f"cross-domain top-1 on the matching concept (3 pairs): {np.mean(hits):.3f}"}))


def _pairs(d: Path) -> dict:
    from core.runs.run import _npz_pairs  # the run folder's reader: CSR parts come back dense

    return _npz_pairs(d / "hard.npz", "hard")


def step_selection(d: Path, m: dict) -> None:
    from core.selection import select_edges

    P = _pairs(d)
    for name, params in METHODS.items():
        out = {}
        for (a, b), p in P.items():
            e = select_edges(p, name, **params)  # as the pipeline's selection step: no dense W
            out[f"{a}_{b}_rows"], out[f"{a}_{b}_cols"], out[f"{a}_{b}_w"] = e.rows, e.cols, e.weights
        np.savez(d / f"edges_{name}.npz", **out)


def step_taxonomy(d: Path, m: dict) -> None:
    from core.selection import Edges
    from core.taxonomy import build_universal_taxonomy

    k, n_dom = m["classes"], m["domains"]
    sizes = {}
    for name in METHODS:
        with np.load(d / f"edges_{name}.npz") as z:
            rel = {
                (a, b): Edges(z[f"{a}_{b}_rows"], z[f"{a}_{b}_cols"], z[f"{a}_{b}_w"], (k, k))
                for a in range(n_dom)
                for b in range(n_dom)
                if a != b
            }
        tax = build_universal_taxonomy(rel, [k] * n_dom)
        tax.sparse_mappings, tax.label_map()  # what the run writes besides the JSON
        (d / f"tax_{name}.json").write_text(tax.to_json())
        sizes[name] = tax.n_universal
    print(json.dumps({"note": f"universal classes: {sizes}"}), flush=True)


def step_universal(d: Path, m: dict) -> None:
    """1 epoch of train_universal on every s-th training row (a strided view of the memory map,
    balanced over domains and classes; s = 1 unless the rows exceed --universal-rows), then
    evaluate_universal on every s-th test row. Time per row is what the projection scales."""
    from core.config import HeadConfig, TrainConfig
    from core.taxonomy import UniversalTaxonomy
    from core.universal import evaluate_universal, train_universal

    name = next(iter(METHODS))
    tax = UniversalTaxonomy.from_json((d / f"tax_{name}.json").read_text())
    maps = tax.sparse_mappings
    tr = [_load(d, f"{p}_train") for p in ("X", "dom", "y")]
    stride = max(1, -(-len(tr[2]) // m["universal_rows"]))
    tr = [t[::stride] for t in tr]  # strided views of the maps: nothing is read yet
    va = [_load(d, f"{p}_val") for p in ("X", "dom", "y")]
    t0 = time.perf_counter()
    res = train_universal(
        tr[0], np.asarray(tr[1]), np.asarray(tr[2]), va[0], np.asarray(va[1]), np.asarray(va[2]), maps,
        head=HeadConfig(depth=1), train=TrainConfig(epochs=1, batch_size=512), seed=0,
    )  # fmt: skip
    t_train = time.perf_counter() - t0
    te = [_load(d, f"{p}_test")[::stride] for p in ("X", "dom", "y")]
    t0 = time.perf_counter()
    acc = evaluate_universal(res.model, te[0], te[1], te[2], maps)
    t_eval = time.perf_counter() - t0
    mean = float(np.nanmean(list(acc.values())))
    note = (
        f"U={tax.n_universal}: 1 epoch on {len(tr[2]):,} rows (stride {stride}) {t_train:.1f}s "
        f"= {t_train / len(tr[2]) * 1e3:.2f} ms/row (val {len(va[2]):,} rows included); "
        f"evaluate {len(te[2]):,} test rows {t_eval:.1f}s; test acc {mean:.3f}"
    )
    print(json.dumps({"note": note, "train_rows": len(tr[2]), "stride": stride}), flush=True)


STEP_FUNCTIONS = {s: globals()[f"step_{s}"] for s in STEPS}


def child(step: str, d: Path) -> None:
    """Run one step in this (fresh) process and print its figures as one JSON line."""
    import torch  # the floor includes torch, which every real step imports

    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())  # its first use imports ~6 s of modules

    import core.crossdomain  # noqa: F401
    import core.selection  # noqa: F401
    import core.taxonomy  # noqa: F401
    import core.universal  # noqa: F401

    m = _meta(d)
    with Probe() as probe:
        t0 = time.perf_counter()
        STEP_FUNCTIONS[step](d, m)
        wall = time.perf_counter() - t0
    out = {
        "step": step,
        "wall_s": wall,
        "peak_rss_mb": probe.maxrss(),
        "peak_anon_mb": probe.peak_anon,
        "floor_rss_mb": probe.floor_rss,
        "floor_anon_mb": probe.floor_anon,
    }
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------- driver


def disk_bytes(m: dict) -> int:
    rows = m["domains"] * m["classes"] * (m["n"] + m["n_test"] + 1)
    mats = m["domains"] * (m["domains"] - 1) * m["classes"] ** 2 * 8  # hard.npz
    return rows * (m["dim"] * 2 + 16) + mats


def run_size(args, n: int) -> dict:
    m = {
        "domains": args.domains,
        "classes": args.classes,
        "dim": args.dim,
        "n": n,
        "n_test": max(2, n // 5),
        "noise": args.noise,
        "universal_rows": args.universal_rows,
    }
    need = disk_bytes(m)
    if need > args.max_disk_gb * 1e9:
        raise SystemExit(f"bench_memory: {n} images per class needs {need / 1e9:.1f} GB on disk (> --max-disk-gb)")
    d = Path(tempfile.mkdtemp(prefix="unitax-bench-memory-", dir=args.tmp))
    figures = {}
    try:
        (d / "meta.json").write_text(json.dumps(m))
        print(f"\n== {n} images per class: {m['domains']} x {m['classes']} classes, D={m['dim']}, "
              f"{m['domains'] * m['classes'] * n:,} train + {m['domains'] * m['classes'] * m['n_test']:,} test "
              f"images; ~{need / 1e9:.2f} GB in {d}", flush=True)  # fmt: skip
        for step in STEPS:
            proc = subprocess.run(
                [sys.executable, __file__, "--step", step, "--dir", str(d)], capture_output=True, text=True
            )
            if proc.returncode:
                raise SystemExit(f"bench_memory: step {step} failed:\n{proc.stderr[-3000:]}")
            for line in proc.stdout.splitlines():
                rec = json.loads(line) if line.startswith("{") else {"note": line}
                if "step" in rec:
                    figures[step] = rec
                    print(f"  {step:12s} {rec['wall_s']:8.1f} s   peak RSS {rec['peak_rss_mb']:7.0f} MB   "
                          f"peak anon {rec['peak_anon_mb']:7.0f} MB   (after imports: RSS "
                          f"{rec['floor_rss_mb']:.0f}, anon {rec['floor_anon_mb']:.0f})", flush=True)  # fmt: skip
                elif rec.get("note"):
                    print(f"  {'':12s} {rec['note']}", flush=True)
                    if "stride" in rec:
                        figures["universal_stride"] = rec["stride"]
        used = sum(f.stat().st_size for f in d.iterdir())
        print(f"  files: {used / 1e9:.2f} GB", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    figures.setdefault("universal_stride", 1)
    return {"m": m, "steps": figures}


def project(results: list[dict]) -> None:
    """Per step, a linear fit through the two sizes evaluated at TARGET images per domain; the
    universal step's time is first scaled to the full training set (x its row stride)."""
    (r1, r2) = results[0], results[-1]
    n1, n2 = (r["m"]["classes"] * r["m"]["n"] for r in (r1, r2))
    print(f"\n== projection to {TARGET:,} train images per domain (linear in images through "
          f"{n1:,} and {n2:,} per domain); universal: 1 epoch on all rows")  # fmt: skip
    print(f"  {'step':12s} {'s @' + str(n1):>10s} {'s @' + str(n2):>10s} {'proj. s':>9s}   "
          f"{'MB @' + str(n1):>10s} {'MB @' + str(n2):>10s} {'linear MB':>9s}")  # fmt: skip
    total = 0.0

    def line(x1: float, x2: float) -> float:
        return x2 + (x2 - x1) / (n2 - n1) * (TARGET - n2) if n2 != n1 else x2 * TARGET / n2

    for step in STEPS:
        a, b = r1["steps"].get(step), r2["steps"].get(step)
        if not a or not b:
            continue
        ta, tb = a["wall_s"], b["wall_s"]
        if step == "universal":
            ta, tb = ta * r1["steps"].get("universal_stride", 1), tb * r2["steps"].get("universal_stride", 1)
        t = max(line(ta, tb), tb)  # a step that got faster with N (noise) is taken as flat
        mem = max(line(a["peak_anon_mb"], b["peak_anon_mb"]), b["peak_anon_mb"])
        total += t
        print(f"  {step:12s} {a['wall_s']:10.1f} {b['wall_s']:10.1f} {t:9.0f}   "
              f"{a['peak_anon_mb']:10.0f} {b['peak_anon_mb']:10.0f} {mem:9.0f}")  # fmt: skip
    print("  (MB = peak anonymous RSS; 'linear MB' extrapolates the growth between the two sizes, an upper")
    print("   bound: the streamed steps' transients are bounded by their chunk sizes; the universal step")
    print("   reads its (strided) rows from the map a batch at a time; a step whose time fell between the")
    print("   sizes (noise, or too small to time) is projected as flat)")
    print(f"  {'total':12s} {'':10s} {total:10.0f} s = {total / 3600:.1f} h on this machine (CPU)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images-per-class", type=int, nargs="+", default=None, help="one or more sizes (20 100)")
    ap.add_argument("--quick", action="store_true", help="4 domains x 200 classes, D=64, 10 and 40 per class")
    ap.add_argument("--domains", type=int, default=10)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--universal-rows", type=int, default=20_000, help="train/test rows of the universal step (cap)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    ap.add_argument("--max-disk-gb", type=float, default=3.0)
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        return child(args.step, Path(args.dir))
    if args.quick:
        args.domains, args.classes, args.dim = 4, 200, 64
    sizes = args.images_per_class or ([10, 40] if args.quick else [20, 100])
    if min(sizes) < 1:
        raise SystemExit(f"bench_memory: --images-per-class must be >= 1, got {sizes}")
    print(f"bench_memory: {os.cpu_count()} CPUs; memory in MB (RSS = ru_maxrss incl. mapped file pages; "
          f"anon = sampled peak RssAnon); time = wall seconds of the step without imports")  # fmt: skip
    results = [run_size(args, n) for n in sizes]
    if len(results) > 1:
        project(results)


if __name__ == "__main__":
    main()
