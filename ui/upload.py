"""Verified image uploads (no streamlit import): size limit, real image check, RGB conversion."""

from __future__ import annotations

import io

__all__ = ["MAX_UPLOAD_BYTES", "read_image"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize = 10 (MB) in .streamlit/config.toml
MAX_PIXELS = 40_000_000  # refuse decompression bombs well before PIL's own warning


def read_image(payload: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """Decode ``payload`` into an RGB PIL image; ValueError naming the problem otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError(f"expected the uploaded bytes, got {type(payload).__name__}")
    if len(payload) == 0:
        raise ValueError("the file is empty")
    if len(payload) > max_bytes:
        raise ValueError(f"the file has {len(payload) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    try:
        with Image.open(io.BytesIO(payload)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise ValueError(f"the image has {probe.width}x{probe.height} pixels; the limit is {MAX_PIXELS:,}")
            probe.verify()
        with Image.open(io.BytesIO(payload)) as img:
            return img.convert("RGB")
    except UnidentifiedImageError as exc:
        raise ValueError("this file is not an image that can be read (its content is not PNG, "
                         "JPEG, WEBP or BMP); upload another file") from exc
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"this image is damaged or truncated ({exc}); upload another file") from exc
