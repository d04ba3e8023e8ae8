"""Domain shifts A/B/C: seeded per image, batch-independent, and doing what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from core.procedural import render
from core.shifts import SHIFTS, apply_shift


@pytest.fixture
def images(seed):
    return render(np.arange(12) % 48, np.arange(12), size=40, seed=seed)


@pytest.mark.parametrize("shift", ["A", "B", "C"])
def test_shift_is_deterministic_per_image(images, shift):
    keys = np.arange(100, 112)
    a = apply_shift(images, keys, shift=shift, seed=3)
    np.testing.assert_array_equal(a, apply_shift(images, keys, shift=shift, seed=3))
    for k in (0, 5, 11):  # alone or in another batch: same pixels
        np.testing.assert_array_equal(a[k], apply_shift(images[k : k + 1], keys[k : k + 1], shift=shift, seed=3)[0])
    np.testing.assert_array_equal(a[4:9], apply_shift(images[4:9], keys[4:9], shift=shift, seed=3))
    assert a.dtype == np.uint8 and a.shape == images.shape
    assert not np.array_equal(a, images)
    assert not np.array_equal(a, apply_shift(images, keys, shift=shift, seed=4))


def test_none_is_identity(images):
    np.testing.assert_array_equal(apply_shift(images, np.arange(12), shift="none"), images)


def test_a_is_noisy_greyscale(images):
    out = apply_shift(images, np.arange(12), shift="A").astype(int)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    luma = images.astype(float) @ np.array([0.299, 0.587, 0.114])
    resid = out[..., 0] - luma
    assert 2 < resid.std() < 30  # noise present, image still recognisable


def test_b_blurs(images):
    out = apply_shift(images, np.arange(12), shift="B").astype(float)

    def edges(x):
        return np.abs(np.diff(x, axis=2)).mean()

    assert edges(out) < 0.8 * edges(images.astype(float))


def test_c_erases_a_rectangle_and_changes_colours(images):
    out = apply_shift(images, np.arange(12), shift="C")
    changed = (np.abs(out.astype(int) - images.astype(int)).max(-1) > 0).mean(axis=(1, 2))
    assert (changed > 0.2).all()


def test_shift_validation(images):
    with pytest.raises(ValueError, match="unknown shift 'D'"):
        apply_shift(images, np.arange(12), shift="D")
    with pytest.raises(ValueError, match="uint8"):
        apply_shift(images.astype(np.float32), np.arange(12), shift="A")
    with pytest.raises(ValueError, match="keys must have shape"):
        apply_shift(images, np.arange(3), shift="A")
    assert set(SHIFTS) == {"none", "A", "B", "C"}


def test_every_registry_shift_has_an_implementation():
    from core import registry, shifts

    assert shifts.SHIFTS is registry.SHIFTS  # one definition, re-exported
    assert set(shifts._SHIFT_FUNCS) == set(registry.SHIFTS) - {"none"}
    assert set(registry.DEFAULT_SHIFTS) <= set(registry.SHIFTS)
