"""What the pipeline's steps share: the run context and the features of each domain's splits.

:class:`RunContext` carries the config, the run, the device and the features of one pipeline
invocation; :func:`split_data` gives a split's features without unreadable images (from memory,
else the feature cache, else one backbone pass); :func:`union` stacks every domain's split.

Memory: a split's features up to core.featstore.RAM_LIMIT bytes are float32 arrays in RAM (as
always); a larger split stays a read-only memmap of the feature store (float32 or float16,
``features.store_dtype``), and what :func:`split_data` and :func:`union` build from such splits
(unreadable rows dropped, domains stacked) is written chunk by chunk into a map of an unlinked
temporary file in the feature cache folder, never into one (N, D) array in RAM. The consumers
(core.training, predict_logits) read maps batch by batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.config import RunConfig
from core.featstore import gather_rows, is_mapped
from core.runs import Run

__all__ = ["RunContext", "BACKBONE_COUNTER", "split_data", "union", "train_universal_head"]

Progress = Callable[[str, float, "float | None", str], None]

# Counts images forwarded through a backbone by this process (cache hits do not count).
BACKBONE_COUNTER = {"images": 0}


@dataclass
class RunContext:
    """State shared by the steps of one pipeline invocation."""

    cfg: RunConfig
    run: Run
    device: Any = None
    on_progress: Progress | None = None
    domains: list | None = None  # core.domains.Domain, built on first use
    features: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)
    failed: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # unreadable images
    # maps built by split_data / union from memory-mapped splits, kept for the invocation
    stacked: dict[tuple, np.ndarray] = field(default_factory=dict)
    # False for work that only reads the run (a sweep): no status.json or log.txt writes
    record: bool = True
    step: str = ""
    _last_write: float = 0.0

    def log(self, message: str) -> None:
        if self.record:
            self.run.log(message)
        else:
            print(message, flush=True)
        if self.on_progress is not None:
            self.on_progress(self.step, -1.0, None, message)

    def progress(self, fraction: float, *, eta_s: float | None = None, message: str = "", force: bool = False) -> None:
        """Report progress within the current step (status.json written at most 4x/s)."""
        now = time.monotonic()
        if self.record and (force or now - self._last_write > 0.25):
            self._last_write = now
            self.run.write_status(
                state="running",
                progress=float(min(max(fraction, 0.0), 1.0)),
                eta_s=None if eta_s is None else float(eta_s),
                message=message,
            )
        if self.on_progress is not None:
            self.on_progress(self.step, fraction, eta_s, message)

    def all_domains(self) -> list:
        """The config's domains (built once per invocation, deterministically)."""
        if self.domains is None:
            from core.domains import domains_from_config

            self.domains = domains_from_config(self.cfg)
        return self.domains


# ---------------------------------------------------------------------------- features


def _features(ctx: RunContext, a: int, split: str) -> np.ndarray:
    """Features (N, D) of domain a's split: memory, else the disk cache, else the backbone.
    Rows of unreadable images are zero; :func:`split_data` drops them."""
    key = (a, split)
    if key in ctx.features:
        return ctx.features[key]
    from core.features import extract_features_report

    d, f = ctx.all_domains()[a], ctx.cfg.features

    def progress(done: int, total: int, images_per_s: float, eta_s: float | None) -> None:
        ctx.progress(
            done / max(total, 1),
            eta_s=eta_s,
            message=f"{d.name}/{split}: {done}/{total} images, {images_per_s:.0f} img/s",
        )

    res = extract_features_report(
        d.splits[split],
        backbone=f.backbone,
        image_size=f.image_size,
        device=ctx.device,
        batch_size=f.batch_size,
        progress=progress,
        store_dtype=f.store_dtype,
    )
    feats = res.features if is_mapped(res.features) else np.asarray(res.features, dtype=np.float32)
    if not res.from_cache:
        BACKBONE_COUNTER["images"] += len(feats)
        ctx.log(f"features {d.name}/{split}: {len(feats)} images in {res.seconds:.1f}s ({res.images_per_s:.0f} img/s)")
    if res.failed.size:
        ctx.log(
            f"warning: {d.name}/{split}: {res.failed.size} unreadable image(s) skipped "
            f"(indices {res.failed[:10].tolist()})"
        )
    ctx.features[key] = feats
    ctx.failed[key] = np.asarray(res.failed, dtype=np.int64)
    return feats


def _scratch_folder():
    """Where the temporary maps go: the feature cache folder (a disk; /tmp may live in RAM)."""
    from core.features import default_cache_dir

    return default_cache_dir()


def split_data(ctx: RunContext, a: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X (n, D), labels (n,), item (n,) indices into the split) without unreadable images.
    X is float32 in RAM, or a read-only map for a split over core.featstore.RAM_LIMIT bytes."""
    X = _features(ctx, a, split)
    y = np.asarray(ctx.all_domains()[a].splits[split].labels, dtype=np.int64)
    keep = np.ones(len(y), dtype=bool)
    keep[ctx.failed.get((a, split), np.zeros(0, np.int64))] = False
    item = np.flatnonzero(keep)
    if not is_mapped(X):
        return X[item], y[item], item
    if len(item) == len(X):  # nothing unreadable: the store's own map
        return X, y[item], item
    if (a, split) not in ctx.stacked:
        ctx.stacked[(a, split)] = gather_rows([(X, item)], folder=_scratch_folder())
    return ctx.stacked[(a, split)], y[item], item


def union(ctx: RunContext, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X (N, D), domain (N,), label (N,)) of every domain's ``split``, domain by domain."""
    parts = [split_data(ctx, a, split) for a in range(len(ctx.all_domains()))]
    if not any(is_mapped(p[0]) for p in parts):
        X = np.concatenate([p[0] for p in parts])
    elif len(parts) == 1:
        X = parts[0][0]
    else:
        if ("union", split) not in ctx.stacked:
            ctx.stacked[("union", split)] = gather_rows([(p[0], None) for p in parts], folder=_scratch_folder())
        X = ctx.stacked[("union", split)]
    dom = np.concatenate([np.full(len(p[1]), a, dtype=np.int64) for a, p in enumerate(parts)])
    return X, dom, np.concatenate([p[1] for p in parts])


def train_universal_head(
    ctx: RunContext,
    train: tuple,
    val: tuple,
    mappings: list[np.ndarray],
    *,
    seed: int,
    progress: Callable | None = None,
):
    """A universal head trained with the run's recipe (head, train, loss, label smoothing) on
    ``train``/``val`` = (X, domain, label); returns core.training.TrainResult."""
    from core.universal import train_universal

    u = ctx.cfg.universal
    return train_universal(*train, *val, mappings, head=u.head, train=ctx.cfg.universal_train, loss=u.loss,
                           label_smoothing=u.label_smoothing, seed=seed, device=ctx.device,
                           progress=progress, inference=u.inference)  # fmt: skip
