"""Where an ImageSet's pixels come from: a pool of images addressed by integer items.

    pool.load(items (B,), size) -> (uint8 (B,size,size,3), ok (B,) bool)
    pool.native(item) -> uint8 (H,W,3); pool.describe(item) -> str; pool.key: names the pixels

:class:`ProceduralPool` renders built-in concepts (:mod:`core.procedural`), :class:`ArrayPool`
holds images in memory, :class:`FilePool` decodes files with :func:`decode_image`, which reads
any PIL-readable file as RGB and refuses decompression bombs from the header. Unreadable files are
not dropped here: ``FilePool.load`` reports them in its ``ok`` mask. Numpy + PIL at import time.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from PIL import Image

from core import procedural

__all__ = ["Pool", "ProceduralPool", "ArrayPool", "FilePool", "decode_image"]


class Pool:
    """Where pixels come from: ``load(items (B,), size)`` -> (uint8 (B,size,size,3), ok (B,) bool)."""

    key: str = ""

    def native(self, item: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def describe(self, item: int) -> str:
        """Where an item comes from, for messages: a file path, else pool key and item id."""
        return f"{self.key} item {int(item)}"


_CONCEPT_SHIFT = 40  # procedural item id = concept << 40 | instance


class ProceduralPool(Pool):
    """Rendered concepts; item id = concept << 40 | instance, rendered at the requested size."""

    def __init__(self, *, seed: int, size: int = 64) -> None:
        self.seed, self.size = int(seed), int(size)
        self.key = f"procedural:v{procedural.RENDER_VERSION}:seed={self.seed}"

    @staticmethod
    def items(concepts: np.ndarray, instances: np.ndarray) -> np.ndarray:
        return (np.asarray(concepts, dtype=np.int64) << _CONCEPT_SHIFT) | np.asarray(instances, dtype=np.int64)

    def _split(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64)
        return items >> _CONCEPT_SHIFT, items & ((1 << _CONCEPT_SHIFT) - 1)

    def native(self, item: int) -> np.ndarray:
        c, i = self._split(np.array([item]))
        return procedural.render(c, i, size=self.size, seed=self.seed)[0]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        c, i = self._split(items)
        return procedural.render(c, i, size=size, seed=self.seed), np.ones(len(c), dtype=bool)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR, reducing_gap=None))


class ArrayPool(Pool):
    """Images held in memory: uint8 (N,H,W,3); resized with PIL bilinear (antialiased)."""

    def __init__(self, array: np.ndarray, *, key: str) -> None:
        if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"array must be uint8 (N,H,W,3), got {array.dtype} {array.shape}")
        self.array, self.key = array, key

    def native(self, item: int) -> np.ndarray:
        return self.array[int(item)]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64)
        if self.array.shape[1] == size and self.array.shape[2] == size:
            return self.array[items], np.ones(len(items), dtype=bool)
        out = (
            np.stack([_resize(self.array[i], size) for i in items])
            if len(items)
            else np.zeros((0, size, size, 3), np.uint8)
        )
        return out, np.ones(len(items), dtype=bool)


# What PIL's parsers raise on hostile or corrupt files besides OSError/ValueError; decode_image
# turns them into ValueError so that callers catch one pair of types.
_PARSER_ERRORS = (
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
_DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default, used when Image.MAX_IMAGE_PIXELS is None


def _pixel_limit() -> int:
    """PIL's decompression-bomb limit (pixels), read at call time; never unlimited."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else _DEFAULT_MAX_PIXELS


def _check_pixels(im: Image.Image, path: str | os.PathLike) -> None:
    """Refuse, before decoding, an image whose header claims more pixels than the limit."""
    w, h = im.size
    if w * h > _pixel_limit():
        raise ValueError(
            f"{os.fspath(path)!r}: image of {w} x {h} pixels exceeds the limit of "
            f"{_pixel_limit()} pixels (a decompression bomb?)"
        )


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode any PIL-readable file to uint8 (H,W,3) RGB.

    Greyscale, palette, CMYK -> RGB; RGBA/LA composited over white; 16-bit and 32-bit integer or
    float greyscale rescaled by their own range. Raises OSError for missing, corrupt or truncated
    files (PIL's own errors) and ValueError for files PIL's parsers choke on otherwise, and for
    images larger than PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``), which are
    refused from their header, before any pixel is decoded.
    """
    try:
        return _decode(path)
    except _PARSER_ERRORS as err:
        raise ValueError(f"{os.fspath(path)!r} is not a readable image: {type(err).__name__}: {err}") from err


def _decode(path: str | os.PathLike) -> np.ndarray:
    with Image.open(path) as im:
        _check_pixels(im, path)
        im.load()
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            a = np.asarray(im, dtype=np.float64)
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
            g = a.round().astype(np.uint8)
            return np.repeat(g[..., None], 3, axis=2)
        if mode in ("RGBA", "LA") or (mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
        return np.asarray(im.convert("RGB"))


class FilePool(Pool):
    """Image files on disk; item = index into ``paths``. Unreadable files give ok=False."""

    def __init__(self, paths: list[str], *, key: str) -> None:
        self.paths, self.key = list(paths), key

    def native(self, item: int) -> np.ndarray:
        return decode_image(self.paths[int(item)])

    def describe(self, item: int) -> str:
        return self.paths[int(item)]

    def load(self, items: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((len(items), size, size, 3), dtype=np.uint8)
        ok = np.ones(len(items), dtype=bool)
        for n, i in enumerate(np.asarray(items, dtype=np.int64)):
            try:
                out[n] = _resize(decode_image(self.paths[i]), size)
            except (OSError, ValueError):  # decode_image's errors for unreadable files
                ok[n] = False
        return out, ok
