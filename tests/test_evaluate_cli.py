import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from core.evaluate import EvaluateConfig, evaluate, main

ROOT = Path(__file__).resolve().parents[1]


def test_evaluate_table_has_every_method(capsys, tmp_path):
    assert main(["--n-concepts", "60", "--concepts-mean", "30", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("threshold", "mcfp", "mcfp_binary", "density", "hypothesis"):
        assert name in out
    best = pd.read_csv(tmp_path / "best.csv")
    assert list(best.columns[:3]) == ["method", "param", "value"]
    assert json.loads((tmp_path / "best.json").read_text())["config"]["n_concepts"] == 60
    assert len(pd.read_csv(tmp_path / "sweep.csv")) > len(best)


def test_noise_free_expected_matrices_are_recovered_by_threshold():
    best, _ = evaluate(EvaluateConfig(n_concepts=60, concepts_mean=30, expected=True, uniform_remainder=False))
    row = best.set_index("method").loc["threshold"]
    assert row.f1 == 1.0 and row.edr == 0.0


def test_bad_value_is_an_error_not_a_traceback(capsys):
    assert main(["--noise", "1.5"]) == 2
    assert "noise must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_python_dash_m_core_entry():
    res = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--n-concepts", "40", "--concepts-mean", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "hypothesis" in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "core", "frobnicate"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2 and "unknown command 'frobnicate'" in res.stderr
