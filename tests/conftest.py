"""Shared fixtures: explicit seeds, and run folders in a temporary root."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def seed() -> int:
    return 42


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
