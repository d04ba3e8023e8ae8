"""Architecture rules: the engine never imports streamlit, and importing it loads no torch."""

import re
from pathlib import Path

from tests.conftest import heavy_imports

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit():
    offenders = [
        p.name
        for p in (ROOT / "core").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+streamlit", p.read_text(), re.M)
    ]
    assert offenders == []


def test_importing_core_is_cheap():
    assert heavy_imports("core") == []


def test_public_api_is_exported():
    import core

    for name in core.__all__:
        assert getattr(core, name) is not None
