"""Architecture rules: the engine never imports streamlit, and importing it loads no torch."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit():
    offenders = [
        p.name
        for p in (ROOT / "core").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+streamlit", p.read_text(), re.M)
    ]
    assert offenders == []


def test_importing_core_is_cheap():
    heavy = "('torch', 'sklearn', 'streamlit', 'torchvision')"
    code = f"import sys, core; print(sorted(m for m in {heavy} if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_public_api_is_exported():
    import core

    for name in core.__all__:
        assert getattr(core, name) is not None
