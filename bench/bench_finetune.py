"""Fine-tuning throughput (training images per second) with the thesis's baseline head on
procedural images, through core.finetune.finetune end to end (loading, the per-pass shift A, crop
+ flip, forward, backward, the optimiser step; validation is not in the rate).

    python bench/bench_finetune.py                                  # CPU, Lite0, 1 thread, 32/64/128 px
    python bench/bench_finetune.py --threads 2 --sizes 32 64
    python bench/bench_finetune.py --device cuda --backbone resnet50 --random-init --sizes 224 --images 4096

``--random-init`` builds the architecture without ImageNet weights (a machine without the weights
file measures the same speed). The rate is that of the second epoch (the first warms up).
"""

from __future__ import annotations

import argparse
import time

import torch

from core.config import TrainConfig, config_from_dict
from core.finetune import build_network, classifier_objective, finetune
from core.sources import load_source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU only)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--images", type=int, default=128, help="training images per epoch")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    head = config_from_dict({"baselines": {"head": {"preset": "thesis_baseline_head"}}}).baselines.head
    n_classes = 8
    splits = load_source("procedural", seed=0, n_concepts=n_classes, per_class=(args.images // n_classes, 1, 1)).splits
    train = splits["train"].with_shift("A", seed=1)
    for size in args.sizes:
        net = build_network(args.backbone, n_classes, head, pretrained=not args.random_init)
        cfg = TrainConfig(epochs=2, batch_size=args.batch, optimizer="sgd", lr=0.01, schedule="none", patience=0)
        t0 = time.perf_counter()
        res = finetune(net, [train], [splits["val"]], classifier_objective(), config=cfg, image_size=size,
                       device=args.device)  # fmt: skip
        rate = res.history[-1]["samples_per_s"]
        where = f"{args.threads} thread(s)" if args.device == "cpu" else args.device
        print(f"{args.backbone} on {where}, {size:>3} px, batch {args.batch}: {rate:7.1f} training images/s "
              f"({time.perf_counter() - t0:.1f}s in all)")  # fmt: skip


if __name__ == "__main__":
    main()
