"""Backbone features of an ImageSet, computed once per image and cached on disk.

Public API (what the pipeline calls)::

    feats = extract_features(split, backbone="efficientnet_lite0", image_size=64,
                             device=None, batch_size=None, num_workers=None,
                             cache_dir=None, progress=None)        # -> float32 (N, D)
    result = extract_features_report(split, ...)                   # FeatureResult: features, failed,
                                                                   # from_cache, seconds, images_per_s
    feature_cache_key(split, backbone=..., image_size=...) -> str  # hex digest naming the cache file
    check_readable(domain_name, n_total, failed, example=path)     # ValueError if no image was read

``split`` is a core.sources.ImageSet (a Domain's ``splits["train"]`` etc.). ``progress(done, total,
images_per_s, eta_s)`` is called after every batch. Unreadable images (corrupt / truncated files,
decompression bombs) are skipped and counted: their rows are zero, their indices are in
``FeatureResult.failed``, and extract_features warns once. A split none of whose images could be
read is refused with a ValueError naming its domain and one of the files (``check_readable``).
The cache lives in ``$UNITAX_CACHE`` or ``<repo>/.cache/features``, one ``<key>.npy`` +
``<key>.json`` per (images + shift, backbone, image size, transform, store dtype): the feature
store of core.featstore, written batch by batch into a memory-mapped file (float32, or float16
with ``store_dtype="float16"``); a file that is truncated, altered, of another dtype or written
for other images is rebuilt, never trusted (header, size and a streamed crc32 are checked).
Features of a split up to core.featstore.RAM_LIMIT bytes come back in RAM as float32; a larger
split comes back as a read-only ``np.memmap`` of the store's dtype (read it in batches).
Decoding and rendering run in producer threads while the model computes (overlap); on CUDA the
batches are staged by core.decode (JPEG files decoded on the GPU, other images pinned and copied
asynchronously on a side stream; measured in bench/bench_decode.py); on CPU the glibc allocator is
tuned first (core.device.tune_cpu_allocator; measured in bench/bench_features.py).

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from core import featstore
from core.backbones import DEFAULT_BACKBONE, Backbone, load_backbone
from core.decode import StagedBatch, stage_batch
from core.device import autocast, default_batch_size, default_workers, pick_device, tune_cpu_allocator
from core.registry import SPLITS
from core.sources import ImageSet

__all__ = [
    "FeatureResult",
    "extract_features",
    "extract_features_report",
    "compute_features",
    "feature_cache_key",
    "default_cache_dir",
    "check_readable",
]

TRANSFORM_VERSION = "rgb-uint8/resize-bilinear-square/v1"  # bump when preprocessing changes
CACHE_FORMAT = featstore.FORMAT  # 2: float32 | float16 store with its dtype in the meta (1 is still read)

Progress = Callable[[int, int, float, "float | None"], None]


@dataclass(frozen=True)
class FeatureResult:
    """Features of one split plus what happened while computing them."""

    features: np.ndarray  # (N, D) float32 in RAM, or a read-only memmap (core.featstore); unreadable rows are zero
    failed: np.ndarray  # (F,) int64 indices of unreadable images
    from_cache: bool
    seconds: float
    images_per_s: float  # of the forward pipeline (0.0 when read from cache)


def default_cache_dir() -> Path:
    """$UNITAX_CACHE, else <repo>/.cache/features."""
    env = os.environ.get("UNITAX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / ".cache" / "features"


def _backbone_name(backbone: str | Backbone) -> str:
    if isinstance(backbone, Backbone):
        return backbone.name
    if not isinstance(backbone, str) or not backbone:
        raise TypeError(f"backbone must be a name or a core.backbones.Backbone, got {backbone!r}")
    return backbone


def _key_text(split: ImageSet, backbone: str, image_size: int, store_dtype: str = "float32") -> str:
    """What a cache entry is of; a float16 store adds its dtype (float32 keys are as they were)."""
    text = f"{split.key}|backbone={backbone}|size={int(image_size)}|{TRANSFORM_VERSION}"
    return text if featstore.check_store_dtype(store_dtype).name == "float32" else f"{text}|store={store_dtype}"


def feature_cache_key(
    split: ImageSet, *, backbone: str | Backbone = DEFAULT_BACKBONE, image_size: int = 64, store_dtype: str = "float32"
) -> str:
    """Hex digest of (images + shift, backbone, image size, transform version, store dtype): the cache file name."""
    text = _key_text(split, _backbone_name(backbone), image_size, store_dtype)
    return hashlib.sha1(text.encode()).hexdigest()[:24]


def _write_cache(path: Path, key_text: str, writer: featstore.FeatureWriter, failed: np.ndarray,
                 store_dtype: str) -> np.ndarray:  # fmt: skip
    """Commit the entry ``writer`` (filled by compute_features) at ``path`` (data renamed into
    place, meta last); returns the features as a cache hit reads them (float16 rounding
    included), so a first run and a rerun agree."""
    writer.commit(key_text, failed)
    hit = featstore.load_features(path, key_text, writer.n, dtype=store_dtype)
    if hit is None:  # e.g. another process replaced it meanwhile with something else
        raise OSError(f"the feature cache entry {path} could not be read back after writing it")
    return hit[0]


@lru_cache(maxsize=2)
def _cached_backbone(name: str, device: str) -> Backbone:
    """Load each backbone once per process and device (loading costs more than a small split)."""
    model = load_backbone(name).to(device)
    if device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    return model


def _check_args(split: ImageSet, image_size: int, batch_size: int | None, num_workers: int | None) -> None:
    if not isinstance(split, ImageSet):
        raise TypeError(f"split must be a core.sources.ImageSet, got {type(split).__name__}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or not 16 <= image_size <= 1024:
        raise ValueError(f"image_size must be an int in 16..1024, got {image_size!r}")
    for name, v in (("batch_size", batch_size), ("num_workers", num_workers)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "batch_size" else 0)
        ):
            raise ValueError(f"{name} must be a positive int or None, got {v!r}")


def compute_features(
    split: ImageSet,
    model: Backbone,
    *,
    image_size: int,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    progress: Progress | None = None,
    sink: featstore.ArraySink | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Forward every image of ``split`` -> (features (N, D), failed (F,), images/s).

    Each batch goes to ``sink.write(start, rows)`` as soon as it is computed (a
    core.featstore.FeatureWriter writes it into the memory-mapped store file); the features
    returned are ``sink.array``. Without a sink: float32, in RAM up to featstore.RAM_LIMIT bytes,
    else an unlinked temporary file in the cache folder, so memory does not grow with N.

    ``num_workers`` producer threads build uint8 batches (decode/render + resize + shift) ahead
    of the model (decode overlaps compute); 0 builds each batch inline in this thread.
    """
    n = len(split)
    if sink is None:
        sink = featstore.ArraySink(featstore.scratch(n, model.dim, folder=default_cache_dir()))
    failed = []
    starts = list(range(0, n, batch_size))
    cuda = device.type == "cuda"
    t0 = time.perf_counter()
    done = 0

    def produce(start: int) -> tuple[int, StagedBatch, np.ndarray]:
        # CUDA: decoded on the GPU (JPEG files) or pinned + copied on a side stream (core.decode)
        staged = stage_batch(split, np.arange(start, min(start + batch_size, n)), image_size, device)
        return start, staged, staged.ok

    workers = max(1, num_workers)
    # num_workers=0: produce each batch inline (no overlap, but no thread oversubscription either)
    with ThreadPoolExecutor(max_workers=workers) as pool, torch.inference_mode():
        if num_workers == 0:
            queue: deque = deque([None] * len(starts))
        else:
            queue = deque(pool.submit(produce, s) for s in starts[: workers + 1])
        next_start = len(queue)
        position = 0
        while queue:
            item = queue.popleft()
            start, x, ok = produce(starts[position]) if item is None else item.result()
            position += 1
            if next_start < len(starts):
                queue.append(pool.submit(produce, starts[next_start]))
                next_start += 1
            x = x.ready(device)  # waits (on the device) for its decode / asynchronous copy
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                f = model.features(x.float().div_(255))
            rows = f.float().cpu().numpy()
            bad = np.flatnonzero(~ok)
            if bad.size:
                rows[bad] = 0.0
                failed.extend((start + bad).tolist())
            sink.write(start, rows)
            done += len(ok)
            if progress is not None:
                elapsed = time.perf_counter() - t0
                rate = done / elapsed if elapsed > 0 else 0.0
                progress(done, n, rate, (n - done) / rate if rate > 0 else None)
    elapsed = time.perf_counter() - t0
    return sink.array, np.asarray(failed, dtype=np.int64), (n / elapsed if elapsed > 0 else 0.0)


def check_readable(
    domain_name: str, n_total: int, failed: np.ndarray, *, example: str | None = None, what: str = "images"
) -> None:
    """Refuse a domain (or one of its splits) none of whose ``n_total`` images could be read.

    ``failed`` holds the indices of the unreadable images; ``example`` names one of them (a path)
    for the message. An empty set of images, or one with any readable image, passes.
    """
    if not isinstance(domain_name, str):
        raise TypeError(f"domain_name must be a str, got {type(domain_name).__name__}")
    if isinstance(n_total, bool) or not isinstance(n_total, (int, np.integer)) or n_total < 0:
        raise ValueError(f"n_total must be a non-negative int, got {n_total!r}")
    n_failed = np.unique(np.asarray(failed, dtype=np.int64).reshape(-1)).size
    if n_total == 0 or n_failed < n_total:
        return
    where = f" (e.g. path {example!r})" if example else ""
    raise ValueError(f"domain {domain_name!r}: none of its {int(n_total)} {what} could be read{where}")


def _split_domain_name(split: ImageSet) -> tuple[str, str]:
    """("domain", "train") from an ImageSet named "domain/train"; ("name", "") otherwise."""
    head, sep, tail = split.name.rpartition("/")
    if sep and head and tail in SPLITS:
        return head, tail
    return split.name or split.pool.key, ""


def _check_split_readable(split: ImageSet, failed: np.ndarray) -> None:
    """check_readable for one split of a domain, naming the split and an unreadable file."""
    if len(split) == 0 or failed.size < len(split):
        return
    domain, part = _split_domain_name(split)
    check_readable(
        domain, len(split), failed, example=split.describe(int(failed[0])), what=f"{part} images" if part else "images"
    )


def extract_features_report(
    split: ImageSet,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    image_size: int = 64,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    store_dtype: str = "float32",
) -> FeatureResult:
    """Features of every image of ``split`` (disk-cached) plus a report; see the module docstring.
    ``store_dtype`` (float32 | float16) is the cache's dtype; the features come back as float32
    in RAM, or as a read-only memmap of that dtype for a split over featstore.RAM_LIMIT bytes."""
    _check_args(split, image_size, batch_size, num_workers)
    featstore.check_store_dtype(store_dtype)
    name = _backbone_name(backbone)
    key = feature_cache_key(split, backbone=name, image_size=image_size, store_dtype=store_dtype)
    key_text = _key_text(split, name, image_size, store_dtype)
    path = Path(cache_dir).expanduser() / f"{key}.npy" if cache_dir is not None else default_cache_dir() / f"{key}.npy"
    t0 = time.perf_counter()
    if use_cache:
        hit = featstore.load_features(path, key_text, len(split), dtype=store_dtype)
        if hit is not None:
            _check_split_readable(split, hit[1])
            if progress is not None:
                progress(len(split), len(split), 0.0, 0.0)
            return FeatureResult(hit[0], hit[1], True, time.perf_counter() - t0, 0.0)
    dev = pick_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    model = backbone.to(dev) if isinstance(backbone, Backbone) else _cached_backbone(name, str(dev))
    bs = int(batch_size) if batch_size else default_batch_size(dev, int(image_size))
    nw = default_workers(dev) if num_workers is None else int(num_workers)
    # with the cache, each batch goes straight into the memory-mapped store file (no (N, D) array in RAM)
    writer = featstore.open_writer(path, len(split), model.dim, store_dtype) if use_cache else None
    try:
        from core.distributed import compute_shared  # under torchrun: shared by the ranks; else compute_features

        feats, failed, rate = compute_shared(
            compute_features, split, model, image_size=int(image_size), device=dev, batch_size=bs,
            num_workers=nw, progress=progress, sink=writer,
        )  # fmt: skip
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if use_cache:
        feats = _write_cache(path, key_text, writer, failed, store_dtype)
    _check_split_readable(split, failed)  # after caching: a rerun on the same files refuses at once
    return FeatureResult(feats, failed, False, time.perf_counter() - t0, rate)


def extract_features(
    split: ImageSet,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    image_size: int = 64,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    store_dtype: str = "float32",
) -> np.ndarray:
    """Features (N, D) of every image of ``split`` (float32, or a memmap for a large split; see
    extract_features_report); cached on disk; warns about unreadable images."""
    result = extract_features_report(
        split,
        backbone=backbone,
        image_size=image_size,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        cache_dir=cache_dir,
        progress=progress,
        store_dtype=store_dtype,
    )
    if result.failed.size:
        shown = ", ".join(str(i) for i in result.failed[:10])
        warnings.warn(
            f"{result.failed.size} of {len(split)} images in {split!r} could not be read "
            f"(indices {shown}{', ...' if result.failed.size > 10 else ''}); their feature rows are zero",
            stacklevel=2,
        )
    return result.features
