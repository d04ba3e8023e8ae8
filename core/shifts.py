"""Domain shifts A, B, C, the thesis's three kinds (torchvision.transforms.v2), in two ways.

    SHIFTS: dict[str, str]                                  name -> description (core.registry)
    thesis_shift_transform(name) -> v2.Transform            redrawn on every call (fine-tuning)
    redraw_shift(x (B,3,H,W) float, *, shift) -> (B,3,H,W)  the same, one draw per image of a batch
    apply_shift(images (B,H,W,3) uint8, keys (B,), *, shift, seed=0) -> (B,H,W,3) uint8
                                                            fixed per image (cached features)

The shifts, with the parameters attributed to the thesis's code (it applies one as the
``domain_shift_transform`` of its ``*DomainShiftedDataModule``). Its text and slides name only
the kinds (A noisy greyscale; B rotated and blurred; C random erasing, perspective, colour
jitter); the notebook cell that builds them, and so the parameters and the order within a
shift, could not be checked against the copy of its repository read for this module:

    A  Grayscale(3 channels), then GaussianNoise(sigma 0.1): independent noise per channel
    B  RandomRotation(30), RandomPhotometricDistort() (torchvision's defaults), GaussianBlur(3, sigma 0.1-2)
    C  ColorJitter(0.4, 0.4, 0.4, 0.1), RandomErasing(p 0.5, scale 0.02-0.33, value 0 = black),
       RandomPerspective(0.3, p 0.5)

Each acts on one float image (3,H,W) in [0, 1], as in the thesis, where the shift comes right
after ``ToImage, ToDtype(float32, scale=True), RGB, Resize`` and before the augmentation and
``Normalize``. A v2 transform draws one set of parameters per call, so a batch must be shifted
image by image (:func:`redraw_shift` does).

**Per pass** (:func:`thesis_shift_transform`, :func:`redraw_shift`): every call draws anew from
torch's global RNG, so each epoch sees a new corruption of every image, as in the thesis. This is
what the fine-tuning path uses (core.finetune redraws the shift of every training image with
:func:`redraw_shift`; a torch-Dataset pipeline would put ``thesis_shift_transform(domain.shift)``
right after its resize).

**Fixed per image** (:func:`apply_shift`): the same transforms, but torch's RNG is seeded from
(seed, key) before each image, so one image always gets the same corruption, whatever its batch:
the frozen-feature path needs that to cache features. Only the CPU generator is seeded, its state
is restored afterwards, and a lock serialises the seeded section (feature extraction shifts in
producer threads); another thread drawing from torch's CPU RNG meanwhile would disturb a draw.

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torchvision.transforms import v2

from core.procedural import hash_uniform
from core.registry import SHIFTS

__all__ = ["SHIFTS", "apply_shift", "check_shift", "redraw_shift", "thesis_shift_transform"]

_SEED_LOCK = threading.Lock()


def check_shift(shift: str) -> str:
    """Validate a shift name; returns it. Raises ValueError listing the valid names."""
    if not isinstance(shift, str):
        raise TypeError(f"shift must be a str, got {type(shift).__name__}")
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {sorted(SHIFTS)}")
    return shift


def thesis_shift_transform(name: str) -> v2.Transform:
    """The thesis's shift ``name`` as a fresh v2 transform on one float image (3,H,W) in [0, 1].

    Every call of the returned transform draws new parameters ("none": the identity). The
    fine-tuning path applies it per image, after resizing and before augmentation/normalisation.
    """
    check_shift(name)
    if name == "A":
        return v2.Compose([v2.Grayscale(num_output_channels=3), v2.GaussianNoise(mean=0.0, sigma=0.1, clip=True)])
    if name == "B":
        return v2.Compose(
            [v2.RandomRotation(degrees=30), v2.RandomPhotometricDistort(), v2.GaussianBlur(3, sigma=(0.1, 2.0))]
        )
    if name == "C":
        return v2.Compose(
            [
                v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
                v2.RandomErasing(p=0.5, scale=(0.02, 0.33), value=0),
                v2.RandomPerspective(distortion_scale=0.3, p=0.5),
            ]
        )
    return v2.Identity()


def _check_float_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor (B,3,H,W) in [0, 1], got {shape}")


def redraw_shift(x: torch.Tensor, *, shift: str) -> torch.Tensor:
    """x (B,3,H,W) float in [0, 1] -> the shift drawn anew for every image (torch's global RNG).

    The per-pass shift of the fine-tuning path for a batch already on its device.
    """
    check_shift(shift)
    _check_float_batch(x)
    if shift == "none" or x.shape[0] == 0:
        return x
    t = thesis_shift_transform(shift)
    return torch.stack([t(img) for img in x])


def _image_seeds(seed: int, keys: np.ndarray) -> list[int]:
    """One 53-bit torch seed per key: a pure function of (seed, key)."""
    u = hash_uniform(int(seed), np.asarray(keys).astype(np.uint64), 1)[:, 0]
    return [int(v) for v in (u * float(1 << 53)).astype(np.int64)]


def apply_shift(images: np.ndarray, keys: np.ndarray, *, shift: str, seed: int = 0) -> np.ndarray:
    """images (B,H,W,3) uint8, keys (B,) int (one per image, e.g. its index) -> shifted (B,H,W,3) uint8.

    Fixed per image: the thesis's transform with torch's RNG seeded by (seed, key), so the same
    image and key give the same pixels in any batch and on every call.
    """
    check_shift(shift)
    images = np.asarray(images)
    keys = np.asarray(keys)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (B,H,W,3), got {images.dtype} {images.shape}")
    if keys.shape != (images.shape[0],):
        raise ValueError(f"keys must have shape ({images.shape[0]},), got {keys.shape}")
    if shift == "none" or images.shape[0] == 0:
        return images
    t = thesis_shift_transform(shift)
    seeds = _image_seeds(seed, keys)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    out = torch.empty_like(x)
    with _SEED_LOCK, torch.no_grad():
        state, threads = torch.get_rng_state(), torch.get_num_threads()
        torch.set_num_threads(1)  # one small image at a time: intra-op threads only add overhead
        try:
            for n, s in enumerate(seeds):
                torch.default_generator.manual_seed(s)  # the CPU generator only: CUDA's is left alone
                out[n] = t(x[n])
        finally:
            torch.set_rng_state(state)
            torch.set_num_threads(threads)
    out = out.clamp_(0, 1).mul_(255).add_(0.5)
    return out.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
