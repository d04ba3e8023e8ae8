"""Domain shifts, seeded per image: the same (seed, key) always gives the same pixels.

    SHIFTS: dict[str, str]                                     name -> description (core.registry)
    apply_shift(images (B,H,W,3) uint8, keys (B,), *, shift, seed=0) -> (B,H,W,3) uint8

"none" returns the input; "A" noisy greyscale; "B" rotation + Gaussian blur; "C" random erasing +
colour jitter + perspective (the three shifts of the thesis). Every random draw comes from
``core.procedural.hash_uniform(seed, key, j)``, so one image's result never depends on its batch,
and cached features stay reproducible. Strengths scale with image size (blur sigma in pixels is
relative to 64 px). Vectorised over the batch with torch (grid_sample, grouped convolution).

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.procedural import _NOISE_BANK, _noise_tile, hash_uniform
from core.registry import SHIFTS

__all__ = ["SHIFTS", "apply_shift", "check_shift"]


def check_shift(shift: str) -> str:
    """Validate a shift name; returns it. Raises ValueError listing the valid names."""
    if not isinstance(shift, str):
        raise TypeError(f"shift must be a str, got {type(shift).__name__}")
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {sorted(SHIFTS)}")
    return shift


def apply_shift(images: np.ndarray, keys: np.ndarray, *, shift: str, seed: int = 0) -> np.ndarray:
    """images (B,H,W,3) uint8, keys (B,) int (one per image, e.g. its index) -> shifted (B,H,W,3) uint8."""
    check_shift(shift)
    images = np.asarray(images)
    keys = np.asarray(keys)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (B,H,W,3), got {images.dtype} {images.shape}")
    if keys.shape != (images.shape[0],):
        raise ValueError(f"keys must have shape ({images.shape[0]},), got {keys.shape}")
    if shift == "none" or images.shape[0] == 0:
        return images
    r = hash_uniform(seed, keys.astype(np.uint64), 24).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
        x = _SHIFT_FUNCS[shift](x, torch.from_numpy(r), r)
        x = x.clamp(0, 1).mul_(255).add_(0.5)
        return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _noise(r: np.ndarray, b: int, h: int, w: int) -> torch.Tensor:
    """Unit Gaussian noise (B,1,H,W): crops of the shared bank at hashed offsets and channel; r (B,2)."""
    tile = _noise_tile(max(h, w))
    oy = (r[:, 0] * _NOISE_BANK).astype(np.int64)
    ox = (r[:, 1] * _NOISE_BANK).astype(np.int64)
    ch = (r[:, 0] * _NOISE_BANK * 3).astype(np.int64) % 3
    out = np.stack([tile[oy[n] : oy[n] + h, ox[n] : ox[n] + w, ch[n]] for n in range(b)])
    return torch.from_numpy(out).unsqueeze(1)


def _shift_a(x: torch.Tensor, r: torch.Tensor, rn: np.ndarray) -> torch.Tensor:
    """Noisy greyscale: luma, then additive Gaussian noise with std in [0.03, 0.08]."""
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    sigma = (0.03 + 0.05 * r[:, 2]).view(-1, 1, 1, 1)
    grey = grey + sigma * _noise(rn[:, :2], x.shape[0], x.shape[2], x.shape[3])
    return grey.expand(-1, 3, -1, -1)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Affine warp of (B,3,H,W) by theta (B,2,3), reflection-padded so no black corners appear."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _blur(x: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Per-image Gaussian blur: sigma (B,) <= max_sigma pixels; separable grouped convolution.

    The kernel width comes from max_sigma, not the batch, so an image's result is batch-independent.
    """
    b, c, h, w = x.shape
    radius = max(1, min(int(np.ceil(3 * max_sigma)), h - 1, w - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.view(-1, 1)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, 2r+1)
    y = x.reshape(1, b * c, h, w)
    y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def _shift_b(x: torch.Tensor, r: torch.Tensor, rn: np.ndarray) -> torch.Tensor:
    """Rotation by +-(10..40) degrees, then Gaussian blur with sigma 0.6..1.6 px at 64 px."""
    sign = torch.where(r[:, 0] < 0.5, -1.0, 1.0)
    angle = sign * torch.deg2rad(10 + 30 * r[:, 1])
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    x = _warp(x, theta)
    unit = x.shape[-1] / 64
    return _blur(x, (0.6 + 1.0 * r[:, 2]) * unit, max_sigma=1.6 * unit)


def _perspective(x: torch.Tensor, r: np.ndarray, distortion: float = 0.25) -> torch.Tensor:
    """Random perspective: each corner moves inward by up to distortion/2 of the side; r (B,8).

    The homography mapping output to input coordinates is solved per image in numpy (8x8
    systems), then applied elementwise to build the sampling grid.
    """
    b, _, h, w = x.shape
    src = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    dst = src[None] - np.sign(src)[None] * distortion * r.reshape(b, 4, 2).astype(np.float64)
    a = np.zeros((b, 8, 8))
    rhs = np.zeros((b, 8))
    for i in range(4):
        xd, yd = dst[:, i, 0], dst[:, i, 1]
        xs, ys = src[i]
        a[:, 2 * i, 0], a[:, 2 * i, 1], a[:, 2 * i, 2] = xd, yd, 1
        a[:, 2 * i, 6], a[:, 2 * i, 7] = -xd * xs, -yd * xs
        a[:, 2 * i + 1, 3], a[:, 2 * i + 1, 4], a[:, 2 * i + 1, 5] = xd, yd, 1
        a[:, 2 * i + 1, 6], a[:, 2 * i + 1, 7] = -xd * ys, -yd * ys
        rhs[:, 2 * i], rhs[:, 2 * i + 1] = xs, ys
    hc = torch.from_numpy(np.linalg.solve(a, rhs[..., None])[..., 0].astype(np.float32)).view(b, 8, 1, 1)
    gy = ((torch.arange(h, dtype=x.dtype) + 0.5) / h * 2 - 1).view(1, h, 1)
    gx = ((torch.arange(w, dtype=x.dtype) + 0.5) / w * 2 - 1).view(1, 1, w)
    den = hc[:, 6] * gx + hc[:, 7] * gy + 1
    grid = torch.stack(
        [(hc[:, 0] * gx + hc[:, 1] * gy + hc[:, 2]) / den, (hc[:, 3] * gx + hc[:, 4] * gy + hc[:, 5]) / den], dim=-1
    )
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_LUMA = torch.tensor([0.299, 0.587, 0.114])
_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _colour_jitter(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation in [0.65, 1.35] and hue rotation +-0.06 turns; r (B,4).

    Applied in that order, the four are one affine colour map per image, x -> A x + o with
    A = contrast * brightness * Hue * Sat (3x3) and o = (1 - contrast) * brightness * mean luma
    (Sat and Hue keep grey fixed), so it costs one batched matmul.
    """
    b, c, h, w = x.shape
    bright, contrast, sat = (0.65 + 0.7 * r[:, k] for k in range(3))
    angle = (r[:, 3] - 0.5) * 0.12 * 2 * np.pi
    eye = torch.eye(3).expand(b, 3, 3)
    grey_proj = torch.ones(3, 1) @ _LUMA.view(1, 3)  # every channel := luma
    sat_m = sat.view(-1, 1, 1) * eye + (1 - sat).view(-1, 1, 1) * grey_proj
    rot = torch.zeros(b, 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = (
        torch.cos(angle),
        -torch.sin(angle),
        torch.sin(angle),
        torch.cos(angle),
    )
    hue_m = torch.linalg.inv(_TO_YIQ) @ rot @ _TO_YIQ
    a = (contrast * bright).view(-1, 1, 1) * (hue_m @ sat_m)
    mean_luma = x.mean((2, 3)) @ _LUMA  # luma is linear: mean of luma = luma of the mean
    offset = ((1 - contrast) * bright * mean_luma).view(-1, 1, 1)
    return (torch.bmm(a, x.reshape(b, c, h * w)) + offset).view(b, c, h, w)


def _erase(x: torch.Tensor, r: torch.Tensor, rn: np.ndarray) -> torch.Tensor:
    """One rectangle of 4-14 % of the area, aspect 0.3-3.3, filled with random colour noise."""
    b, _, h, w = x.shape
    area = (0.04 + 0.10 * r[:, 0]) * h * w
    aspect = torch.exp(np.log(0.3) + (np.log(3.3) - np.log(0.3)) * r[:, 1])
    eh = torch.sqrt(area * aspect).clamp(1, h)
    ew = torch.sqrt(area / aspect).clamp(1, w)
    top = (r[:, 2] * (h - eh)).floor()
    left = (r[:, 3] * (w - ew)).floor()
    rows = torch.arange(h, dtype=x.dtype).view(1, h, 1)
    cols = torch.arange(w, dtype=x.dtype).view(1, 1, w)
    inside = (rows >= top.view(-1, 1, 1)) & (rows < (top + eh).view(-1, 1, 1))
    inside = inside & (cols >= left.view(-1, 1, 1)) & (cols < (left + ew).view(-1, 1, 1))
    fill = 0.5 + 0.25 * _noise(rn[:, 4:6], b, h, w).expand(-1, 3, -1, -1)
    fill = fill * (0.5 + r[:, 6:9]).view(b, 3, 1, 1)
    return torch.where(inside.unsqueeze(1), fill, x)


def _shift_c(x: torch.Tensor, r: torch.Tensor, rn: np.ndarray) -> torch.Tensor:
    """Perspective, colour jitter, then random erasing."""
    x = _perspective(x, rn[:, 10:18])
    x = _colour_jitter(x, r[:, 18:22])
    return _erase(x, r, rn)


# one implementation per shift of core.registry.SHIFTS but "none" (tests/test_shifts.py checks)
_SHIFT_FUNCS = {"A": _shift_a, "B": _shift_b, "C": _shift_c}
