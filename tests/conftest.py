"""Shared fixtures: explicit seeds, and run folders in a temporary root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def seed() -> int:
    return 42


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


APP = str(Path(__file__).resolve().parent.parent / "app.py")


def page_opener(runs_root: Path, monkeypatch):
    """``open(name, **query) -> AppTest``: the app on ``runs_root`` with the URL's ``query``,
    switched to ``pages/<name>.py`` (Home when name is "home"), failing on any exception."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("UNITAX_RUNS", str(runs_root))

    def _open(name: str, **query):
        at = AppTest.from_file(APP, default_timeout=60)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        if name != "home":
            at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open
