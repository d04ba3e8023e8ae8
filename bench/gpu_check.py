"""GPU check: the CUDA path end to end on real-format data, with throughput at 224 px.

    .venv/bin/python bench/gpu_check.py                      # on a GPU machine (a few minutes)
    .venv/bin/python bench/gpu_check.py --allow-cpu --per-concept 4 --size 64   # dry run on a CPU

Writes three imagefolder domains of JPEGs (``<root>/<class>/*.jpg``, random sides 256-500 px,
procedural concepts grouped differently per domain) to a temporary folder, then:

1. decode check: core.decode.decode_files on the device vs the CPU path (PIL) on every file:
   the share of pixels that differ and the largest difference, in grey levels;
2. throughput at ``--size`` px: decode-only (core.decode.stage_batch), forward-only (the default
   backbone on device-resident batches, AMP + channels_last) and end to end
   (core.features.compute_features), in images/s, and their ratios;
3. the pipeline (core.pipeline.run_pipeline): features (AMP, channels_last, GPU decode), heads,
   cross-domain, selection, taxonomy, universal, evaluation, results; its state must be "done";
4. fine-tuning (``features.mode: finetune``, EfficientNet-Lite0, whose weights ship with pip):
   the same pipeline, one epoch per network; and the training images/s of ResNet-50 (random
   init: no weights file needed) through core.finetune.finetune.

Exits 0 when every part passed; 1 with one line on stderr when one failed; 2 when CUDA is
missing (without ``--allow-cpu``). The temporary folder is deleted (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

# class -> base concepts, per domain: shared concepts, grouped differently (a taxonomy to find)
DOMAINS = {
    "alpha": {f"a{c}": [c] for c in range(8)},
    "beta": {"b01": [0, 1], "b23": [2, 3], "b45": [4, 5], "b67": [6, 7]},
    "gamma": {"g0": [0], "g12": [1, 2], "g3": [3], "g456": [4, 5, 6], "g8": [8]},
}


def write_domains(root: Path, per_concept: int, seed: int = 0) -> dict[str, Path]:
    """JPEG class folders of :data:`DOMAINS` under ``root`` -> {domain: folder}."""
    from PIL import Image

    from core.procedural import render

    rng = np.random.default_rng(seed)
    out = {}
    for d, (name, classes) in enumerate(DOMAINS.items()):
        for cls, concepts in classes.items():
            folder = root / name / cls
            folder.mkdir(parents=True)
            conc = np.repeat(concepts, per_concept)
            inst = np.arange(conc.size) + 1000 * d  # other instances in every domain
            imgs = render(conc, inst, size=128, seed=seed)
            for j, img in enumerate(imgs):
                w, h = (int(v) for v in rng.integers(256, 501, 2))
                Image.fromarray(img).resize((w, h), Image.BILINEAR).save(folder / f"{j:04d}.jpg", quality=90)
        out[name] = root / name
    return out


def config(folders: dict[str, Path], *, device: str, size: int, mode: str, epochs: int) -> dict:
    """A run config over the imagefolder domains."""
    train = {"epochs": epochs, "batch_size": 64, "lr": 0.003, "patience": 0}
    cfg = {
        "name": f"gpu-check-{mode}",
        "seed": 0,
        "device": device,
        "domains": {
            "list": [{"name": n, "source": "imagefolder", "root": str(p)} for n, p in folders.items()],
            "n_train": None,
            "n_val": None,
            "n_test": None,
        },
        "features": {"backbone": "efficientnet_lite0", "image_size": size, "mode": mode},
        "baselines": {"head": {"depth": 2, "width": 128, "dropout": 0.1, "activation": "relu"}, "train": train},
        "selection": {"methods": [{"name": "mcfp"}, {"name": "threshold", "params": {"t": 0.25}}]},
        "universal": {"head": {"depth": 2, "width": 128, "dropout": 0.1, "activation": "relu"}, "train": train},
        "embedding": {"method": "pca", "max_points": 300},
        "evaluation": {"bootstrap": 200},
        "evidence": {"names": False},
    }
    if mode == "finetune":
        cfg["baselines"]["train"] = dict(train, batch_size=32, optimizer="sgd", lr=0.01, schedule="none")
        cfg["universal"]["train"] = dict(train, batch_size=32, optimizer="adamw", lr=0.0005, schedule="none")
    return cfg


def decode_check(paths: list[str], size: int, device) -> str:
    """How far the device decoder is from the CPU path, over ``paths``."""
    from core.decode import decode_files
    from core.pools import FilePool

    diffs, n_ok = [], 0
    for s in range(0, len(paths), 256):
        chunk = paths[s : s + 256]
        want, want_ok = FilePool(chunk, key="check").load(np.arange(len(chunk)), size)
        got, ok = decode_files(chunk, size, device=device)
        if not np.array_equal(ok, want_ok):
            raise RuntimeError(f"decode check: ok mask differs from the CPU path in files {s}..{s + len(chunk)}")
        d = np.abs(got.permute(0, 2, 3, 1).cpu().numpy().astype(np.int16) - want.astype(np.int16))
        diffs.append(d[ok].reshape(-1))
        n_ok += int(ok.sum())
    d = np.concatenate(diffs)
    return (f"{device.type} decode vs PIL on {n_ok} images at {size} px: {100 * (d > 0).mean():.2f}% of values "
            f"differ, {100 * (d > 2).mean():.3f}% by more than 2, max {int(d.max())}, mean {d.mean():.3f}")  # fmt: skip


def throughput(split, size: int, device) -> tuple[float, float, float, int]:
    """(decode, forward, end-to-end) images/s at ``size`` px over ``split``; and the batch size."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.bench_decode import _sync, forward_rate
    from core.decode import stage_batch
    from core.device import default_batch_size, default_workers
    from core.features import _cached_backbone, compute_features

    n, workers = len(split), default_workers(device)
    batch = min(default_batch_size(device, size), n)  # every figure on the same batches
    starts = list(range(0, n, batch))

    def stage(s: int):
        return stage_batch(split, np.arange(s, min(s + batch, n)), size, device)

    stage(0).ready(device)  # warm-up
    _sync(device)
    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for b in pool.map(stage, starts):
            b.ready(device)
    _sync(device)
    dec = n / (time.perf_counter() - t)

    model = _cached_backbone("efficientnet_lite0", str(device))
    fwd = forward_rate(model, size, batch, max(n, 3 * batch), device)
    compute_features(split, model, image_size=size, device=device, batch_size=batch, num_workers=workers)
    _, _, e2e = compute_features(split, model, image_size=size, device=device, batch_size=batch, num_workers=workers)
    return dec, fwd, e2e, batch


def finetune_rate(split, size: int, device, backbone: str) -> float:
    """Training images/s of ``backbone`` (random init) + the thesis's head on ``split``, second epoch."""
    from core.config import TrainConfig, config_from_dict
    from core.finetune import build_network, classifier_objective, finetune

    head = config_from_dict({"baselines": {"head": {"preset": "thesis_baseline_head"}}}).baselines.head
    net = build_network(backbone, int(split.labels.max()) + 1, head, pretrained=False)
    cfg = TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.01, schedule="none", patience=0)
    res = finetune(net, [split], [split.subset(np.arange(min(8, len(split))))], classifier_objective(),
                   config=cfg, image_size=size, device=device)  # fmt: skip
    return float(res.history[-1]["samples_per_s"])


def run(args) -> None:
    import torch

    from core.device import pick_device
    from core.pipeline import run_pipeline
    from core.sources import load_source

    device = pick_device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"device: {device} ({name}), torch {torch.__version__}, {args.size} px")
    work = Path(tempfile.mkdtemp(prefix="unitax-gpu-check-"))
    os.environ["UNITAX_CACHE"] = str(work / "cache")  # nothing read from or left in the user's cache
    t_all = time.perf_counter()
    try:
        t = time.perf_counter()
        folders = write_domains(work / "data", args.per_concept)
        paths = sorted(str(p) for p in (work / "data").rglob("*.jpg"))
        print(
            f"data: {len(paths)} JPEGs in {len(folders)} imagefolder domains, written in {time.perf_counter() - t:.1f}s"
        )

        print(decode_check(paths, args.size, device))
        src = load_source("imagefolder", root=folders["alpha"])
        from core.imagesets import ImageSet
        from core.pools import FilePool

        everything = ImageSet(FilePool(paths, key=f"check:{work}"), np.arange(len(paths)), np.zeros(len(paths)))
        dec, fwd, e2e, batch = throughput(everything, args.size, device)
        print(f"throughput at {args.size} px, batch {batch}: decode {dec:.0f} images/s ({dec / fwd:.2f} x forward), "
              f"forward {fwd:.0f} images/s, end to end {e2e:.0f} images/s ({e2e / fwd:.2f} x forward)")  # fmt: skip

        for mode, epochs in (("frozen", args.epochs), ("finetune", 1)):
            t = time.perf_counter()
            cfg = config(folders, device=device.type, size=args.size if mode == "frozen" else args.ft_size,
                         mode=mode, epochs=epochs)  # fmt: skip
            status = run_pipeline(cfg, work / "runs" / mode)
            if status.get("state") != "done":
                raise RuntimeError(f"pipeline ({mode}) ended {status.get('state')!r}: {status.get('error')}")
            print(f"pipeline ({mode}): done in {time.perf_counter() - t:.1f}s")

        if not args.skip_resnet:
            rate = finetune_rate(src.splits["train"], args.ft_size, device, "resnet50")
            print(f"fine-tuning resnet50 (random init) at {args.ft_size} px: {rate:.0f} training images/s")
        what = "gpu check" if device.type == "cuda" else "dry run on the CPU (no GPU checked)"
        print(f"{what} passed in {time.perf_counter() - t_all:.1f}s")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allow-cpu", action="store_true", help="dry-run on the CPU when CUDA is missing")
    ap.add_argument("--per-concept", type=int, default=40, help="images per concept and class (default 40)")
    ap.add_argument("--size", type=int, default=224, help="image size of the frozen path and the figures")
    ap.add_argument("--ft-size", type=int, default=None, help="image size of fine-tuning (default: --size)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the heads on frozen features")
    ap.add_argument("--skip-resnet", action="store_true", help="skip the ResNet-50 fine-tuning figure")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.ft_size = args.ft_size or args.size
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: CUDA is not available here (use --allow-cpu for a dry run on the CPU)", file=sys.stderr)
        return 2
    try:
        run(args)
    except Exception as err:  # one line, no traceback: what failed and why
        print(f"gpu_check: FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
