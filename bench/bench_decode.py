"""Does decoding keep up with the backbone? Decode-only, forward-only and end-to-end images/s.

    .venv/bin/python bench/bench_decode.py                                 # CPU, Lite0, 224 px, 256 JPEGs
    .venv/bin/python bench/bench_decode.py --device cuda --n 2048          # nvjpeg on the GPU
    .venv/bin/python bench/bench_decode.py --device cuda --backbone resnet50 --random-init

Writes ``--n`` JPEGs of random sizes (``--min-side``..``--max-side`` px, quality 90) to a
temporary folder (deleted afterwards), then measures at ``--size`` px:

- decode: the CPU path (``ImageSet.images`` = PIL decode + PIL resize) in 1 and ``--workers``
  threads and in ``--workers`` processes; torchvision's decoder (core.decode.decode_files: nvjpeg
  on CUDA, libjpeg-turbo on CPU, resize by core.decode.resize_square); on CUDA also
  core.decode.stage_batch as compute_features uses it.
- forward: the backbone on uint8 batches already on the device (uint8 -> float, AMP and
  channels_last on CUDA), as compute_features does.
- end to end: core.features.compute_features on the files (its default batch size and workers).

Ratios: end-to-end / forward (1.0 = the backbone bounds throughput) and decode / forward.
``--random-init`` builds the backbone without weights (a machine without the weights file
measures the same speed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.decode import decode_files, stage_batch  # noqa: E402
from core.device import autocast, default_batch_size, default_workers, pick_device, tune_cpu_allocator  # noqa: E402
from core.imagesets import ImageSet  # noqa: E402
from core.pools import FilePool  # noqa: E402


def write_jpegs(folder: Path, n: int, min_side: int, max_side: int, seed: int = 0) -> list[str]:
    """``n`` photo-like JPEGs (procedural concepts, resized to random sides) -> their paths."""
    from PIL import Image

    from core.procedural import render

    rng = np.random.default_rng(seed)
    paths = []
    for start in range(0, n, 64):
        k = min(64, n - start)
        imgs = render(np.arange(start, start + k) % 48, np.arange(start, start + k), size=128, seed=seed)
        for j in range(k):
            w, h = (int(v) for v in rng.integers(min_side, max_side + 1, 2))
            p = folder / f"img{start + j:06d}.jpg"
            Image.fromarray(imgs[j]).resize((w, h), Image.BILINEAR).save(p, quality=90)
            paths.append(str(p))
    return paths


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load_chunk(args: tuple[list[str], int]) -> int:
    paths, size = args
    imgs, ok = FilePool(paths, key="bench").load(np.arange(len(paths)), size)
    return int(ok.sum())


def decode_rates(split: ImageSet, size: int, batch: int, workers: int, device: torch.device) -> dict[str, float]:
    """Images/s of each decoder over the whole split."""
    n, paths = len(split), split.pool.paths
    starts = list(range(0, n, batch))
    out = {}

    def cpu_batch(s: int) -> int:
        return int(split.images(np.arange(s, min(s + batch, n)), size)[1].sum())

    for w in sorted({1, workers}):
        t = time.perf_counter()
        with ThreadPoolExecutor(w) as pool:
            list(pool.map(cpu_batch, starts))
        out[f"PIL decode+resize, {w} thread(s)"] = n / (time.perf_counter() - t)
    chunks = [(paths[s : s + batch], size) for s in starts]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_load_chunk, chunks[:workers]))  # start the processes
        t = time.perf_counter()
        list(pool.map(_load_chunk, chunks))
        out[f"PIL decode+resize, {workers} processes"] = n / (time.perf_counter() - t)
    decode_files(paths[:batch], size, device=device)  # warm-up (nvjpeg handles, kernels)
    _sync(device)
    t = time.perf_counter()
    for s in starts:
        decode_files(paths[s : s + batch], size, device=device)
    _sync(device)
    out[f"torchvision decode_jpeg on {device.type} (1 thread)"] = n / (time.perf_counter() - t)
    if device.type == "cuda":
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            staged = list(pool.map(lambda s: stage_batch(split, np.arange(s, min(s + batch, n)), size, device), starts))
        for b in staged:
            b.ready(device)
        _sync(device)
        out[f"stage_batch on cuda, {workers} threads"] = n / (time.perf_counter() - t)
    return out


def forward_rate(model, size: int, batch: int, n: int, device: torch.device) -> float:
    """Images/s of the backbone alone on uint8 batches already on the device."""
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    reps = max(2, -(-n // batch))
    with torch.inference_mode():
        for i in range(reps + 1):
            if i == 1:  # the first pass warms up (cuDNN, allocator)
                _sync(device)
                t = time.perf_counter()
            with autocast(device):
                f = model.features(x.float().div_(255))
            f.float().cpu()
    return reps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--n", type=int, default=256, help="JPEGs to write and read")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--min-side", type=int, default=256)
    ap.add_argument("--max-side", type=int, default=500)
    ap.add_argument("--batch", type=int, default=None, help="default: core.device.default_batch_size")
    ap.add_argument("--workers", type=int, default=2, help="threads / processes for the decode-only figures")
    args = ap.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu":
        tune_cpu_allocator()
    from core.backbones import load_backbone
    from core.features import compute_features

    model = load_backbone(args.backbone, pretrained=not args.random_init).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    # every figure times the same batches: a batch larger than the images would time the forward
    # pass on full batches against one partial batch end to end
    batch = min(args.batch or default_batch_size(device, args.size), args.n)
    folder = Path(tempfile.mkdtemp(prefix="unitax-bench-decode-"))
    try:
        t = time.perf_counter()
        paths = write_jpegs(folder, args.n, args.min_side, args.max_side)
        mb = sum(Path(p).stat().st_size for p in paths) / 1e6
        print(
            f"{args.n} JPEGs {args.min_side}-{args.max_side} px ({mb:.1f} MB) written in {time.perf_counter() - t:.1f}s"
        )
        split = ImageSet(FilePool(paths, key=f"bench:{folder}"), np.arange(len(paths)), np.zeros(len(paths)))
        print(f"device {device}, {args.backbone}{' (random init)' if args.random_init else ''}, {args.size} px, "
              f"batch {batch}, torch threads {torch.get_num_threads()}")  # fmt: skip
        dec = decode_rates(split, args.size, batch, args.workers, device)
        fwd = forward_rate(model, args.size, batch, args.n, device)
        workers = default_workers(device)
        compute_features(split, model, image_size=args.size, device=device, batch_size=batch, num_workers=workers)
        _, _, e2e = compute_features(
            split, model, image_size=args.size, device=device, batch_size=batch, num_workers=workers
        )
        for name, rate in dec.items():
            print(f"decode   {name:<40} {rate:9.1f} images/s  ({rate / fwd:5.2f} x forward)")
        print(f"forward  {'backbone on device-resident uint8':<40} {fwd:9.1f} images/s")
        print(f"end2end  {f'compute_features ({workers} producer(s))':<40} {e2e:9.1f} images/s  "
              f"({e2e / fwd:5.2f} x forward)")  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
