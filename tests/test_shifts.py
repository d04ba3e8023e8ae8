"""Domain shifts A/B/C: the thesis's v2 transforms, redrawn per pass or fixed per image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from core.procedural import render
from core.registry import SHIFT_DRAWS, describe_shift
from core.shifts import SHIFTS, apply_shift, redraw_shift, thesis_shift_transform


@pytest.fixture
def images(seed):
    return render(np.arange(12) % 48, np.arange(12), size=40, seed=seed)


def _steps(name: str) -> list:
    t = thesis_shift_transform(name)
    assert isinstance(t, v2.Compose)
    return list(t.transforms)


def test_a_is_greyscale_then_gaussian_noise_sigma_01():
    grey, noise = _steps("A")  # noise after greyscale, as in the thesis
    assert isinstance(grey, v2.Grayscale) and grey.num_output_channels == 3
    assert isinstance(noise, v2.GaussianNoise) and (noise.mean, noise.sigma, noise.clip) == (0.0, 0.1, True)


def test_b_is_rotation_30_photometric_distortion_and_blur_3_sigma_01_to_2():
    rot, photo, blur = _steps("B")
    assert isinstance(rot, v2.RandomRotation) and list(rot.degrees) == [-30.0, 30.0]
    assert isinstance(photo, v2.RandomPhotometricDistort)  # torchvision's defaults
    assert (photo.brightness, photo.contrast, photo.saturation, photo.hue, photo.p) == (
        (0.875, 1.125),
        (0.5, 1.5),
        (0.5, 1.5),
        (-0.05, 0.05),
        0.5,
    )
    assert isinstance(blur, v2.GaussianBlur) and blur.kernel_size == (3, 3) and list(blur.sigma) == [0.1, 2.0]


def test_c_is_colour_jitter_black_erasing_and_perspective():
    jitter, erase, persp = _steps("C")
    assert isinstance(jitter, v2.ColorJitter)
    assert (jitter.brightness, jitter.contrast, jitter.saturation) == ((0.6, 1.4),) * 3
    assert jitter.hue == (-0.1, 0.1)
    assert isinstance(erase, v2.RandomErasing)
    assert (erase.p, erase.scale, erase.value) == (0.5, (0.02, 0.33), [0.0])  # black
    assert isinstance(persp, v2.RandomPerspective) and (persp.distortion_scale, persp.p) == (0.3, 0.5)


def test_none_is_the_identity_and_unknown_names_are_refused(images):
    assert isinstance(thesis_shift_transform("none"), v2.Identity)
    np.testing.assert_array_equal(apply_shift(images, np.arange(12), shift="none"), images)
    with pytest.raises(ValueError, match="unknown shift 'D'"):
        thesis_shift_transform("D")
    with pytest.raises(TypeError, match="shift must be a str"):
        thesis_shift_transform(1)


@pytest.mark.parametrize("shift", ["A", "B", "C"])
def test_per_pass_transform_is_redrawn_on_every_call(images, shift):
    x = torch.from_numpy(images[3]).permute(2, 0, 1).float() / 255
    t = thesis_shift_transform(shift)
    torch.manual_seed(0)
    draws = [t(x) for _ in range(4)]
    assert all(d.shape == x.shape and d.dtype == torch.float32 for d in draws)
    assert len({d.numpy().tobytes() for d in draws}) == 4  # a new corruption every pass
    batch = torch.stack([x, x])
    y = redraw_shift(batch, shift=shift)
    assert y.shape == batch.shape and not torch.equal(y[0], y[1])  # one draw per image, not per batch


@pytest.mark.parametrize("shift", ["A", "B", "C"])
def test_fixed_per_image_is_deterministic_and_batch_independent(images, shift):
    keys = np.arange(100, 112)
    a = apply_shift(images, keys, shift=shift, seed=3)
    np.testing.assert_array_equal(a, apply_shift(images, keys, shift=shift, seed=3))
    for k in (0, 5, 11):  # alone or in another batch: same pixels
        np.testing.assert_array_equal(a[k], apply_shift(images[k : k + 1], keys[k : k + 1], shift=shift, seed=3)[0])
    np.testing.assert_array_equal(a[4:9], apply_shift(images[4:9], keys[4:9], shift=shift, seed=3))
    assert a.dtype == np.uint8 and a.shape == images.shape
    assert not np.array_equal(a, images)
    assert not np.array_equal(a, apply_shift(images, keys, shift=shift, seed=4))
    same = np.repeat(images[:1], 3, axis=0)  # one image, three keys: three draws
    out = apply_shift(same, np.array([1, 2, 3]), shift=shift, seed=3)
    assert len({o.tobytes() for o in out}) == 3


def test_fixed_draws_leave_torchs_rng_and_threads_as_they_were(images):
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(5)
    torch.manual_seed(7)
    apply_shift(images, np.arange(12), shift="C", seed=1)
    np.testing.assert_array_equal(torch.rand(5).numpy(), expected.numpy())
    assert torch.get_num_threads() == threads


def test_a_is_grey_plus_noise_of_sigma_01(seed):
    flat = np.full((4, 48, 48, 3), (200, 60, 90), dtype=np.uint8)  # a saturated colour, far from 0 and 255
    out = apply_shift(flat, np.arange(4), shift="A", seed=seed).astype(float)
    luma = 0.2989 * 200 + 0.587 * 60 + 0.114 * 90
    assert abs(out.mean() - luma) < 2  # the colour is gone: every channel is the grey level
    for c in range(3):
        assert abs(out[..., c].mean() - luma) < 2
        assert 0.08 * 255 < out[..., c].std() < 0.12 * 255  # sigma 0.1 of the [0, 1] range
    assert (out[..., 0] != out[..., 1]).mean() > 0.5  # independent noise per channel


def test_b_blurs_and_c_changes_most_pixels(images):
    out = apply_shift(images, np.arange(12), shift="B").astype(float)

    def edges(x):
        return np.abs(np.diff(x, axis=2)).mean()

    assert edges(out) < edges(images.astype(float))
    c = apply_shift(images, np.arange(12), shift="C")
    changed = (np.abs(c.astype(int) - images.astype(int)).max(-1) > 0).mean(axis=(1, 2))
    assert (changed > 0.2).all()


def test_shift_validation(images):
    with pytest.raises(ValueError, match="unknown shift 'D'"):
        apply_shift(images, np.arange(12), shift="D")
    with pytest.raises(ValueError, match="uint8"):
        apply_shift(images.astype(np.float32), np.arange(12), shift="A")
    with pytest.raises(ValueError, match="keys must have shape"):
        apply_shift(images, np.arange(3), shift="A")
    with pytest.raises(ValueError, match=r"float tensor \(B,3,H,W\).*\(2, 40, 40\)"):
        redraw_shift(torch.zeros(2, 40, 40), shift="A")
    assert set(SHIFTS) == {"none", "A", "B", "C"}


def test_registry_names_the_thesis_shifts_and_how_they_are_drawn():
    from core import registry, shifts

    assert shifts.SHIFTS is registry.SHIFTS  # one definition, re-exported
    assert set(registry.DEFAULT_SHIFTS) <= set(registry.SHIFTS)
    for name in ("A", "B", "C"):
        assert SHIFTS[name].startswith(f"the thesis's {name}:")
        assert describe_shift(name, "frozen").endswith(SHIFT_DRAWS["frozen"])
        assert "fixed per image" in describe_shift(name, "frozen")
        assert "redrawn on every pass" in describe_shift(name, "finetune")
    assert "sigma 0.1" in SHIFTS["A"] and "30 degrees" in SHIFTS["B"] and "2-33 %" in SHIFTS["C"]
    assert describe_shift("none", "finetune") == "none"
    with pytest.raises(ValueError, match="unknown mode 'cached'"):
        describe_shift("A", "cached")
    with pytest.raises(ValueError, match="unknown shift 'Z'"):
        describe_shift("Z")
