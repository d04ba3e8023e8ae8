"""Feeding the GPU: batches of uint8 images decoded on the device (nvjpeg) and copied asynchronously.

    jpeg_header(data) -> JpegHeader | None            (width, height, components, sof, adobe_rgb) from the bytes
    gpu_decodable(header) -> bool                      what nvjpeg gets: baseline/extended/progressive 3-channel YCbCr
    read_file(path) -> bytearray
    resize_square(x uint8 (N,3,H,W), size) -> uint8 (N,3,size,size)   PIL-style antialiased bilinear, any device
    decode_files(paths, size, *, device, read_workers=8) -> (uint8 (B,3,size,size) on device, ok (B,) bool)
    gpu_decode_enabled(split, device) -> bool
    stage_batch(split, idx (B,), size, device) -> StagedBatch       what a producer thread makes
    stage_paths(paths, size, device) -> StagedBatch                  the same for image files
    StagedBatch.ready(device) -> uint8 (B,3,size,size) on ``device``, ordered on its current stream

On CUDA, :func:`stage_batch` builds each batch on a side stream in the producer thread: for a
plain (unshifted) :class:`core.pools.FilePool` split the file bytes are read in threads, the JPEGs
decoded together by ``torchvision.io.decode_jpeg(list, device="cuda")`` and resized on the GPU;
for any other split (procedural, in-memory, shifted) the CPU builds the batch as before
(``ImageSet.images``), it is pinned and copied with ``non_blocking=True``. The main thread's
:meth:`StagedBatch.ready` makes its stream wait for the batch's event, so decoding and copying of
batch i+1 overlap the forward pass of batch i. On CPU (and MPS) nothing changes: ``ready``
returns the host tensor ``ImageSet.images`` built (moved with ``.to`` on MPS).

The decoded pixels follow the CPU path's contract: a file that is not a JPEG nvjpeg can decode
(PNG, greyscale or CMYK JPEG, arithmetic-coded, truncated: no EOI marker) is decoded per file by
:func:`core.pools.decode_image` and resized by PIL, exactly as the CPU path does; a batch nvjpeg
refuses is retried file by file, each failure falling back to the CPU decoder; an unreadable
file (or one over PIL's decompression-bomb limit, checked from the header before any decoding)
gives ok False and a zero image. Numeric differences from the CPU path (measured in
tests/test_decode.py and bench/gpu_check.py): :func:`resize_square` is PIL's filter in two passes
rounded to uint8 between them, as PIL does, but PIL 13 picks the order of the passes by a rule
of its own, so up to a quarter of the pixels can differ by 1 grey level (2 at most, rarely);
nvjpeg's IDCT and chroma upsampling may differ from libjpeg-turbo's by a few levels. Feature
caches do not distinguish the two paths (as they do not distinguish fp32 CPU from AMP GPU
features). ``UNITAX_GPU_DECODE=0`` turns the GPU decoder off.

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from core.imagesets import ImageSet
from core.pools import FilePool, _pixel_limit, _resize, decode_image

__all__ = [
    "JpegHeader",
    "jpeg_header",
    "gpu_decodable",
    "read_file",
    "resize_square",
    "decode_files",
    "gpu_decode_enabled",
    "stage_batch",
    "stage_paths",
    "StagedBatch",
]

_GPU_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended sequential, progressive (Huffman): what nvjpeg decodes
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class JpegHeader(NamedTuple):
    """What a JPEG's markers say before any pixel is decoded."""

    width: int
    height: int
    components: int
    sof: int  # the start-of-frame marker (0xC0 baseline, 0xC2 progressive, ...)
    adobe_rgb: bool  # an Adobe APP14 segment says the 3 channels are RGB, not YCbCr


def jpeg_header(data: bytes | bytearray | memoryview) -> JpegHeader | None:
    """The frame header of a JPEG file's bytes; None when ``data`` is not a JPEG with a frame header.

    Walks the marker segments from SOI to the first SOFn (never past SOS); malformed segment
    lengths give None. Pure Python over the first few kilobytes: no pixel is decoded.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    mv = memoryview(data)
    n = len(mv)
    if n < 4 or mv[0] != 0xFF or mv[1] != 0xD8:
        return None
    pos, adobe_rgb = 2, False
    while pos + 4 <= n:
        if mv[pos] != 0xFF:
            return None
        marker = mv[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:  # standalone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            return None
        length = (mv[pos + 2] << 8) | mv[pos + 3]
        if length < 2 or pos + 2 + length > n:
            return None
        seg = pos + 4
        if marker == 0xEE and length >= 14 and bytes(mv[seg : seg + 5]) == b"Adobe":
            adobe_rgb = mv[seg + 11] == 0
        if marker in _SOF:
            if length < 8:
                return None
            height = (mv[seg + 1] << 8) | mv[seg + 2]
            width = (mv[seg + 3] << 8) | mv[seg + 4]
            return JpegHeader(width, height, int(mv[seg + 5]), int(marker), adobe_rgb)
        pos += 2 + length
    return None


def gpu_decodable(header: JpegHeader | None) -> bool:
    """Whether nvjpeg gets this JPEG: 3-channel YCbCr, Huffman baseline/extended/progressive, sized."""
    return (
        header is not None
        and header.sof in _GPU_SOF
        and header.components == 3
        and not header.adobe_rgb
        and header.width > 0
        and header.height > 0
    )


def read_file(path: str | os.PathLike) -> bytearray:
    """A file's bytes, in a writable buffer (``torch.frombuffer`` takes it without a copy)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        buf = bytearray(size)
        got = fh.readinto(buf)
    return buf if got == size else buf[:got]


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N,3,H,W) -> uint8 (N,3,size,size): PIL's antialiased bilinear resize, on x's device.

    Two separable passes, width then height, each rounded to uint8 as PIL's are; a pass whose
    side already has ``size`` pixels is skipped. See the module docstring for the difference
    from PIL (the order of the passes). Computed in float32.
    """
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a uint8 tensor (N,3,H,W), got {got}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    h, w = int(x.shape[2]), int(x.shape[3])
    if h == size and w == size:
        return x
    y = x.float()
    for shape in ((h, size), (size, size)):
        if tuple(y.shape[2:]) != shape:
            y = F.interpolate(y, size=shape, mode="bilinear", antialias=True, align_corners=False)
            y = y.add_(0.5).floor_().clamp_(0, 255)
    return y.to(torch.uint8)


# torchvision 0.29 deprecates its decoders in favour of TorchCodec (not installed here) and warns on
# every call; silenced for that module only (catch_warnings is not thread-safe: producer threads).
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io\.image")

_READERS: ThreadPoolExecutor | None = None
_READERS_LOCK = threading.Lock()


def _readers(workers: int) -> ThreadPoolExecutor:
    global _READERS
    with _READERS_LOCK:
        if _READERS is None:
            _READERS = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="unitax-read")
        return _READERS


def _read_and_check(path: str) -> tuple[bytearray | None, bool]:
    """(bytes, goes to nvjpeg) of one file; (None, False) when it cannot be read at all."""
    try:
        data = read_file(path)
    except OSError:
        return None, False
    header = jpeg_header(data)
    if not gpu_decodable(header):
        return data, False
    if header.width * header.height > _pixel_limit():
        return data, False  # the CPU decoder refuses it with its own message (ok False)
    if not bytes(data[-64:]).rstrip(b"\0").endswith(b"\xff\xd9"):
        return data, False  # truncated (or trailing bytes): PIL's verdict decides
    return data, True


def _cpu_image(path: str, size: int) -> np.ndarray | None:
    """The CPU path's pixels for one file (uint8 (size,size,3)); None when unreadable."""
    try:
        return _resize(decode_image(path), size)
    except (OSError, ValueError):
        return None


def _decode_jpegs(data: list[bytearray], device: torch.device) -> list[torch.Tensor | None]:
    """uint8 (3,H,W) per JPEG on ``device``, batched; None where nvjpeg refuses a file."""
    from torchvision.io import ImageReadMode, decode_jpeg

    tensors = [torch.frombuffer(d, dtype=torch.uint8) for d in data]
    if device.type == "cuda":
        # torchvision allocates the outputs on this stream but decodes on a stream of its own
        # without waiting for this one (pytorch/vision#9606): let this stream's queued work,
        # which may still read memory the allocator hands out again, finish first.
        torch.cuda.current_stream(device).synchronize()
    try:
        return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device))
    except (RuntimeError, ValueError):  # one bad file fails the batch: retry file by file
        pass
    out: list[torch.Tensor | None] = []
    for t in tensors:
        try:
            out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device))
        except (RuntimeError, ValueError):
            out.append(None)
    return out


def decode_files(
    paths: list[str], size: int, *, device: str | torch.device = "cpu", read_workers: int = 8
) -> tuple[torch.Tensor, np.ndarray]:
    """Decode and resize image files -> (uint8 (B,3,size,size) on ``device``, ok (B,) bool).

    JPEGs nvjpeg can take are decoded together by ``torchvision.io.decode_jpeg`` on ``device``
    (libjpeg-turbo on CPU) and resized by :func:`resize_square`; every other file by
    :func:`core.pools.decode_image` + PIL's resize. Unreadable files: ok False, zero image.
    Row i is ``paths[i]``. Runs on the current CUDA stream.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= 4096:
        raise ValueError(f"size must be an int in 1..4096, got {size!r}")
    if isinstance(read_workers, bool) or not isinstance(read_workers, int) or read_workers < 1:
        raise ValueError(f"read_workers must be a positive int, got {read_workers!r}")
    device = torch.device(device)
    paths = [os.fspath(p) for p in paths]
    b = len(paths)
    out = torch.zeros((b, 3, size, size), dtype=torch.uint8, device=device)
    ok = np.zeros(b, dtype=bool)
    if b == 0:
        return out, ok
    read = list(_readers(read_workers).map(_read_and_check, paths)) if b > 1 else [_read_and_check(paths[0])]
    gpu = [i for i, (data, to_gpu) in enumerate(read) if to_gpu]
    decoded = _decode_jpegs([read[i][0] for i in gpu], device) if gpu else []
    cpu = [i for i, (data, to_gpu) in enumerate(read) if not to_gpu and data is not None]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in zip(gpu, decoded):
        if img is None:
            cpu.append(i)  # nvjpeg refused it: PIL decides
        else:
            groups.setdefault(tuple(img.shape[1:]), []).append(i)
    by_row = {i: img for i, img in zip(gpu, decoded) if img is not None}
    del decoded  # each full-size image is freed once resized
    for same in groups.values():  # images of one size are resized together, 32 at a time (float memory)
        for k in range(0, len(same), 32):
            rows = same[k : k + 32]
            out[rows] = resize_square(torch.stack([by_row.pop(i) for i in rows]), size)
            ok[rows] = True
    host = [(i, _cpu_image(paths[i], size)) for i in sorted(cpu)]
    host = [(i, a) for i, a in host if a is not None]
    if host:
        rows = [i for i, _ in host]
        x = torch.from_numpy(np.stack([a for _, a in host])).permute(0, 3, 1, 2)
        if device.type == "cuda":
            x = x.pin_memory()
        out[rows] = x.to(device, non_blocking=device.type == "cuda")
        ok[rows] = True
    return out, ok


def gpu_decode_enabled(split: ImageSet, device: torch.device) -> bool:
    """Whether :func:`stage_batch` decodes ``split`` on the GPU: CUDA, a plain FilePool split, not turned off."""
    return (
        device.type == "cuda"
        and isinstance(split.pool, FilePool)
        and split.shift == "none"
        and os.environ.get("UNITAX_GPU_DECODE", "1") != "0"
    )


@dataclass
class StagedBatch:
    """A batch on its way to the device: uint8 (B,3,S,S) images, the ok mask, the event to wait for."""

    x: torch.Tensor  # on the device (CUDA) or the host (CPU/MPS)
    ok: np.ndarray  # (B,) bool
    event: torch.cuda.Event | None = None
    host: torch.Tensor | None = None  # the pinned source of an asynchronous copy, kept alive until ready

    def ready(self, device: torch.device) -> torch.Tensor:
        """The images on ``device``, safe to use on its current stream."""
        if self.event is None:
            return self.x if self.x.device == device else self.x.to(device)
        stream = torch.cuda.current_stream(self.x.device)
        stream.wait_event(self.event)
        self.x.record_stream(stream)  # the allocator must not reuse it before this stream is done
        self.host = None
        return self.x


def stage_batch(split: ImageSet, idx: np.ndarray, size: int, device: torch.device) -> StagedBatch:
    """Images ``idx`` of ``split`` at size x size, on their way to ``device`` (see the module docstring).

    CPU / MPS: ``split.images`` as a uint8 (B,3,S,S) host tensor (a view, no copy), as before.
    CUDA: decoded on the GPU (:func:`gpu_decode_enabled`) or built on the CPU, pinned and copied
    asynchronously; either on a side stream whose event :meth:`StagedBatch.ready` waits for.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if device.type != "cuda":
        imgs, ok = split.images(idx, size)
        return StagedBatch(torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2), ok)
    if gpu_decode_enabled(split, device):
        return stage_paths([split.pool.paths[int(i)] for i in split.items[split._check_indices(idx)]], size, device)
    stream = torch.cuda.Stream(device)
    imgs, ok = split.images(idx, size)
    host = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).pin_memory()
    with torch.cuda.stream(stream):
        x = host.to(device, non_blocking=True)
        event = stream.record_event()
    return StagedBatch(x, ok, event, host)


def stage_paths(paths: list[str], size: int, device: torch.device) -> StagedBatch:
    """Image files decoded by :func:`decode_files` for ``device``: on CUDA on a side stream whose
    event :meth:`StagedBatch.ready` waits for; elsewhere at once (no event)."""
    if device.type != "cuda":
        x, ok = decode_files(paths, size, device=device)
        return StagedBatch(x, ok)
    stream = torch.cuda.Stream(device)
    with torch.cuda.stream(stream):
        x, ok = decode_files(paths, size, device=device)
        event = stream.record_event()
    return StagedBatch(x, ok, event)
