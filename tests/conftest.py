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


def heavy_imports(modules: str, heavy: tuple[str, ...] = ("torch", "torchvision", "sklearn", "streamlit")) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has loaded after ``import <modules>`` (comma-separated)."""
    import subprocess
    import sys

    code = f"import sys, {modules}; print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [m for m in out.stdout.strip().split(",") if m]
