"""Compute device selection and the CPU allocator fast path.

    pick_device(preferred=None) -> torch.device        cuda > mps > cpu, or the named one
    autocast(device) -> context manager                 bf16/fp16 autocast on GPU, no-op on CPU
    default_batch_size(device, image_size) -> int
    default_workers(device) -> int                      threads that decode/render while the model runs
    tune_cpu_allocator() -> bool                        glibc mallopt so big tensors stop page-faulting

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

import torch

__all__ = ["pick_device", "autocast", "default_batch_size", "default_workers", "tune_cpu_allocator"]

_DEVICE_NAMES = ("cuda", "mps", "cpu")


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``preferred`` when given, else CUDA, else MPS, else CPU.

    ``preferred`` may be "auto" (same as None), "cuda", "cuda:1", "mps" or "cpu".
    """
    if preferred is None or preferred == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(preferred, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(preferred).__name__}")
    try:
        device = torch.device(preferred)
    except RuntimeError as err:
        raise ValueError(f"unknown device {preferred!r}; expected one of {_DEVICE_NAMES} or 'auto'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {preferred!r} requested but CUDA is not available here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {preferred!r} requested but MPS is not available here")
    if device.type not in _DEVICE_NAMES:
        raise ValueError(f"unsupported device type {device.type!r}; expected one of {_DEVICE_NAMES}")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on GPU (bf16 where supported, else fp16); a no-op context on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "mps":
        try:
            return torch.autocast("mps", dtype=torch.float16)
        except RuntimeError:  # torch < 2.5 has no MPS autocast: run in float32
            return contextlib.nullcontext()
    return contextlib.nullcontext()


def default_batch_size(device: torch.device, image_size: int) -> int:
    """A batch that keeps the device busy without exhausting memory.

    GPU: 512 at 224 px, scaled with 1/pixels. CPU: the largest activation of an EfficientNet-
    style network (about 96 channels at half resolution: batch * 96 * size^2 bytes) is kept near
    100 MB so the working set stays cache- and allocator-friendly: 64 at 64 px, 24 at 224 px.
    """
    size = max(int(image_size), 16)
    if device.type == "cpu":
        return int(max(8, min(64, 120_000_000 // (96 * size * size))))
    base = 512 if device.type == "cuda" else 128
    return int(max(8, min(2048, base * (224 / size) ** 2)))


def default_workers(device: torch.device) -> int:
    """Producer threads for decoding/rendering; on CPU they share cores with the model."""
    cores = os.cpu_count() or 1
    if device.type == "cpu":
        return 1  # one producer overlaps with compute; more would steal the model's cores
    return max(1, min(8, cores - 1))


_TUNED = False


def tune_cpu_allocator() -> bool:
    """Keep freed large blocks in glibc's heap instead of returning them to the OS.

    PyTorch CPU inference frees and re-allocates the same multi-megabyte activation buffers
    every batch; glibc serves those with mmap/munmap, so every batch page-faults the memory
    again (measured in bench/bench_features.py: the forward pass spent more time in page faults
    than in compute). Turning mmap off (M_MMAP_MAX=0) and raising M_TRIM_THRESHOLD via
    ``mallopt`` removes that, at the cost of the process keeping its peak heap. Safe to call
    repeatedly; returns True when the settings were applied (glibc Linux only; a no-op elsewhere
    or under tcmalloc/jemalloc preloads, where it is not needed). Opt out with ``UNITAX_MALLOC_TUNE=0``.
    """
    global _TUNED
    if _TUNED:
        return True
    if os.environ.get("UNITAX_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    preload = os.environ.get("LD_PRELOAD", "")
    if "tcmalloc" in preload or "jemalloc" in preload or "mimalloc" in preload:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # absent on musl: not glibc
    except (OSError, AttributeError):
        return False
    del gnu_get_libc_version
    m_trim_threshold, m_top_pad, m_mmap_threshold, m_mmap_max = -1, -2, -3, -4
    # Serve every block from the heap (no mmap: glibc caps M_MMAP_THRESHOLD at 32 MiB, and 224 px
    # activations are larger), never give freed memory back (trim threshold 1 GiB), grow in
    # 64 MiB steps. Together: the same buffers are reused batch after batch without page faults.
    ok = (
        mallopt(m_mmap_max, 0)
        and mallopt(m_mmap_threshold, 32 << 20)
        and mallopt(m_trim_threshold, 1 << 30)
        and mallopt(m_top_pad, 64 << 20)
    )
    _TUNED = bool(ok)
    return _TUNED
