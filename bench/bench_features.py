"""Feature extraction throughput: whole pipeline vs bare backbone forward, in one run.

    .venv/bin/python bench/bench_features.py                       # 64 and 224 px, this machine
    .venv/bin/python bench/bench_features.py --sizes 64 --n 1024
    .venv/bin/python bench/bench_features.py --compare-allocators  # glibc / mallopt-tuned / tcmalloc

Pipeline = extract_features (render or decode, resize, shift C, uint8 -> float, forward, copy
back; cache off). Bare = model.features on the same images already as float tensors on the
device. The ratio pipeline/bare is the overhead figure (target >= 0.8). Also prints procedural
rendering speed on one core and the page faults per image of each run: with glibc's allocator
PyTorch CPU inference re-faults its activation buffers every batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def bench_render(n: int) -> float:
    from core.procedural import render

    c, i = np.arange(n) % 48, np.arange(n)
    render(c[:64], i[:64])
    t = time.perf_counter()
    render(c, i, size=64)
    return n / (time.perf_counter() - t)


def bench_size(
    size: int, n: int, device: str | None, batch_size: int | None, shift: str, reps: int, workers: int | None = None
) -> dict:
    import torch

    from core.device import autocast, default_batch_size, pick_device, tune_cpu_allocator
    from core.features import _cached_backbone, extract_features_report
    from core.sources import load_source

    dev = pick_device(device)
    if dev.type == "cpu" and os.environ.get("UNITAX_MALLOC_TUNE", "1") != "0":
        tune_cpu_allocator()
    per = -(-n // 48)
    split = load_source("procedural", per_class=(per, 1, 1)).splits["train"].with_shift(shift, seed=1)
    split = split.subset(np.arange(n))
    bs = batch_size or default_batch_size(dev, size)
    model = _cached_backbone("efficientnet_lite0", str(dev))
    imgs, _ = split.images(np.arange(n), size)
    xs = [torch.from_numpy(imgs[s : s + bs]).permute(0, 3, 1, 2).float().div(255).to(dev) for s in range(0, n, bs)]
    if dev.type == "cuda":
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]

    def bare() -> float:
        t = time.perf_counter()
        with torch.inference_mode(), autocast(dev):
            for x in xs:
                model.features(x).float().cpu()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - t)

    def pipeline() -> float:
        return extract_features_report(
            split, image_size=size, device=dev, batch_size=bs, num_workers=workers, use_cache=False
        ).images_per_s

    bare()  # warm-up (allocator, kernels)
    pipeline()
    # interleaved repeats, best of each: robust to other processes loading a shared machine
    bare_rate = pipe_rate = 0.0
    fb = fp = 0
    cb = cp = float("inf")  # CPU seconds per image: work done, insensitive to other processes
    for _ in range(reps):
        f0, c0 = _faults(), _cpu_s()
        bare_rate = max(bare_rate, bare())
        f1, c1 = _faults(), _cpu_s()
        pipe_rate = max(pipe_rate, pipeline())
        f2, c2 = _faults(), _cpu_s()
        fb, fp = fb + f1 - f0, fp + f2 - f1
        cb, cp = min(cb, (c1 - c0) / n), min(cp, (c2 - c1) / n)
    return {
        "size": size,
        "n": n,
        "batch": bs,
        "workers": workers,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "bare_img_s": round(bare_rate, 1),
        "pipeline_img_s": round(pipe_rate, 1),
        "ratio": round(pipe_rate / bare_rate, 3),
        "cpu_ms_per_img_bare": round(cb * 1e3, 2),
        "cpu_ms_per_img_pipeline": round(cp * 1e3, 2),
        "cpu_ratio": round(cb / cp, 3),
        "faults_per_img_bare": round(fb / (reps * n), 1),
        "faults_per_img_pipeline": round(fp / (reps * n), 1),
    }


def allocator_name() -> str:
    pre = os.environ.get("LD_PRELOAD", "")
    if "tcmalloc" in pre:
        return "tcmalloc (LD_PRELOAD)"
    return "glibc default" if os.environ.get("UNITAX_MALLOC_TUNE") == "0" else "glibc + mallopt (default)"


def compare_allocators(args: argparse.Namespace) -> None:
    tc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
    variants = [("glibc default", {"UNITAX_MALLOC_TUNE": "0"}), ("glibc + mallopt", {})]
    if Path(tc).exists():
        variants.append(("tcmalloc", {"LD_PRELOAD": tc}))
    else:
        print(f"(tcmalloc not found at {tc}: apt-get install libtcmalloc-minimal4)")
    for label, env in variants:
        cmd = [
            sys.executable,
            __file__,
            "--json",
            "--sizes",
            *map(str, args.sizes),
            "--n",
            str(args.n),
            "--reps",
            str(args.reps),
            "--shift",
            args.shift,
        ]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
        for row in json.loads(out.strip().splitlines()[-1]):
            print(
                f"{label:16s} {row['size']:4d}px batch {row['batch']:4d}: bare {row['bare_img_s']:7.1f} img/s "
                f"pipeline {row['pipeline_img_s']:7.1f} img/s ratio {row['ratio']:.2f} "
                f"CPU ms/img {row['cpu_ms_per_img_bare']:.2f} faults/img {row['faults_per_img_bare']:.0f}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    p.add_argument("--n", type=int, default=512, help="images per measurement (224 px uses n/4)")
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--shift", default="C", help="domain shift applied in the pipeline (none/A/B/C)")
    p.add_argument("--workers", type=int, default=None, help="producer threads (default: by device; 0 = inline)")
    p.add_argument("--reps", type=int, default=5, help="interleaved repeats; the best of each is kept")
    p.add_argument("--json", action="store_true", help="print one JSON list (used by --compare-allocators)")
    p.add_argument("--compare-allocators", action="store_true")
    args = p.parse_args()
    if args.compare_allocators:
        compare_allocators(args)
        return
    rows = [
        bench_size(
            s,
            args.n if s <= 96 else max(64, args.n // 4),
            args.device,
            args.batch_size,
            args.shift,
            args.reps,
            args.workers,
        )
        for s in args.sizes
    ]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"allocator: {allocator_name()}; procedural render: {bench_render(2048):.0f} img/s at 64 px (one core)")
    for r in rows:
        print(
            f"{r['size']:4d}px on {r['device']} ({r['threads']} threads, batch {r['batch']}): "
            f"bare forward {r['bare_img_s']:.1f} img/s, whole pipeline {r['pipeline_img_s']:.1f} img/s, "
            f"ratio {r['ratio']:.2f} (target >= 0.8); CPU ms/img {r['cpu_ms_per_img_bare']:.2f} bare, "
            f"{r['cpu_ms_per_img_pipeline']:.2f} pipeline (work ratio {r['cpu_ratio']:.2f}); page faults/img "
            f"{r['faults_per_img_bare']:.0f} bare, {r['faults_per_img_pipeline']:.0f} pipeline"
        )


if __name__ == "__main__":
    main()
