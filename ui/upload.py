"""Verified image uploads (no streamlit import): size limit, real image check, RGB conversion.
An upload is hostile until proven otherwise: whatever goes wrong while reading it comes out as
one ValueError whose message says why, in words fit for the page."""

from __future__ import annotations

import io
import warnings

__all__ = ["MAX_UPLOAD_BYTES", "MAX_PIXELS", "read_image", "upload_error"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize = 10 (MB) in .streamlit/config.toml
MAX_PIXELS = 40_000_000  # refuse decompression bombs well before PIL's own warning


def read_image(payload: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES):
    """Decode ``payload`` into an RGB PIL image; ValueError naming the problem otherwise
    (TypeError when ``payload`` is not bytes at all)."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the uploaded bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    if len(payload) == 0:
        raise ValueError("the file is empty")
    if len(payload) > max_bytes:
        raise ValueError(f"the file has {len(payload) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that: a bomb all the same
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(payload)) as probe:
                _check_size(probe.width, probe.height)
                probe.verify()
            with Image.open(io.BytesIO(payload)) as img:
                _check_size(img.width, img.height)
                return img.convert("RGB")
    except _TooLarge as exc:
        raise ValueError(str(exc)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the image is too large to open safely ({exc})") from None
    except UnidentifiedImageError:
        raise ValueError(
            "this file is not an image that can be read (its content is not PNG, "
            "JPEG, WEBP or BMP); upload another file"
        ) from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"this image is damaged or truncated ({_reason(exc)}); upload another file") from None
    except MemoryError:
        raise ValueError("the image needs more memory than this server has to open it") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds; none may reach the page
        raise ValueError(
            f"this image cannot be decoded ({type(exc).__name__}: {_reason(exc)}); upload another file"
        ) from None


class _TooLarge(Exception):
    pass


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise _TooLarge(f"the image has {width}x{height} pixels; the limit is {MAX_PIXELS:,}")


def _reason(exc: BaseException) -> str:
    """The first line of ``exc``'s message, at most 160 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def upload_error(name: object, exc: BaseException) -> str:
    """The one-line message the page shows for an unreadable upload ``name``."""
    from ui.urlstate import shown

    return f"Could not read ‘{shown(name if isinstance(name, str) else '?')}’: {_reason(exc)}"
