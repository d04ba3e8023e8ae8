import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.evaluate import EvaluateConfig, evaluate, evaluate_runs, main, run_sweep
from core.mapping_io import truth_text
from core.metrics import best_on_average, parameter_grid, sweep
from core.runs import Run, init_run_dir
from core.synthetic import make_synthetic_taxonomy

ROOT = Path(__file__).resolve().parents[1]
NAMES, CLASSES = ["A", "B"], [["a0", "a1"], ["b0", "b1", "b2"]]


def _hand_run(root: Path, name: str, P_ab: list, truth: list | None) -> Path:
    """A run folder of two domains (A: 2 classes, B: 3) holding only P_AB (P_BA all zero rows)
    and, unless ``truth`` is None, an imported truth.csv of the related pairs (a, i, b, j)."""
    run = Run(init_run_dir(root / name))
    run.write_domains([{"name": n, "class_names": c} for n, c in zip(NAMES, CLASSES)])
    hard = {(0, 1): np.array(P_ab, dtype=float), (1, 0): np.zeros((3, 2))}
    run.write_crossdomain({"hard": hard, "soft": hard}, {}, {}, {}, {})
    if truth is not None:
        (run.path / "truth.csv").write_text(truth_text(truth, NAMES, CLASSES))
    return run.path


@pytest.fixture
def runs(tmp_path):
    """Two runs whose best threshold is known by hand (truth: a0 <-> b1 in both).

    r1, P_AB = [[.6, .4, 0], [0, 0, 1]]. True entries: a0->b1, b1->a0 and the self-loops of
    the untouched classes a1, b0, b2 (5, weight 1). Three regimes of t:
      t <= .4     edges .6, .4, 1 (no loop): 1 of 3 shared (weight .4): P 1/3, R 1/5, F1 .25,
                  EDR (2 + 5 - .8) / (2 + 5 - .4) = .939
      .4 < t <= .6  edges .6, 1 + loop b1: nothing shared: F1 0, EDR 1
      t > .6      edge 1 + loops a0, b0, b1: loop b0 shared: P 1/4, R 1/5, F1 2/9,
                  EDR (4 + 5 - 2) / (4 + 5 - 1) = 7/8
    so by EDR t = .65 (the smallest of the tied .65..1), by F1 t = 0 (smallest of 0..0.4).
    r2, P_AB = [[0, 1, 0], [0, 0, 1]]: every t gives the edges a0->b1, a1->b2 + loop b0: shared
    a0->b1 and loop b0: P 2/3, R 2/5, F1 .5, EDR (3 + 5 - 4) / (3 + 5 - 2) = 2/3.
    """
    truth = [(0, 0, 1, 1)]
    r1 = _hand_run(tmp_path, "r1", [[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]], truth)
    r2 = _hand_run(tmp_path, "r2", [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], truth)
    return r1, r2


def _row(df, method="threshold", run=None):
    sel = df[(df.method == method) & ((df.run == run) if run is not None else True)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_best_setting_per_run_is_the_hand_computed_one(runs):
    r1, _ = runs
    by_edr = evaluate_runs([r1], select_by="edr").per_run
    row = _row(by_edr, run="r1")
    assert row.value == pytest.approx(0.65) and row.edr == pytest.approx(7 / 8) and row.f1 == pytest.approx(2 / 9)
    by_f1 = evaluate_runs([r1], select_by="f1").per_run
    row = _row(by_f1, run="r1")
    assert row.value == 0.0 and row.f1 == pytest.approx(0.25) and row.edr == pytest.approx(6.2 / 6.6)


def test_averaged_table_reports_both_f1s(runs):
    res = evaluate_runs(list(runs), select_by="edr")
    avg = _row(res.average)
    # by mean EDR: t in (.6, 1] gives (7/8 + 2/3) / 2, lower than (.939 + 2/3) / 2 and (1 + 2/3) / 2
    assert avg.value == pytest.approx(0.65) and avg.n_runs == 2
    assert avg.edr == pytest.approx((7 / 8 + 2 / 3) / 2)
    p, r = (1 / 4 + 2 / 3) / 2, (1 / 5 + 2 / 5) / 2
    assert (avg.precision, avg.recall) == pytest.approx((p, r))
    assert avg.f1_mean == pytest.approx((2 / 9 + 0.5) / 2)  # the mean of the runs' F1 ...
    assert avg.f1_of_mean == pytest.approx(2 * p * r / (p + r))  # ... is not the F1 of the means
    assert abs(avg.f1_mean - avg.f1_of_mean) > 1e-3
    by_f1 = _row(evaluate_runs(list(runs), select_by="f1").average)
    assert by_f1.value == 0.0 and by_f1.f1_mean == pytest.approx((0.25 + 0.5) / 2)
    assert list(res.per_run.run.unique()) == ["r1", "r2"]


def test_a_run_without_truth_is_refused_naming_it(runs, tmp_path, capsys):
    bare = _hand_run(tmp_path, "bare", [[0.6, 0.4, 0.0], [0.0, 0.0, 1.0]], None)
    with pytest.raises(ValueError, match=r"run 'bare' has no ground truth"):
        evaluate_runs([runs[0], bare])
    assert main(["--runs", str(runs[0]), str(bare)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run 'bare' has no ground truth" in err
    assert main(["--runs", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_and_world_options_do_not_mix(runs, capsys):
    assert main(["--runs", str(runs[0]), "--noise", "0.1", "--seed", "3"]) == 2
    assert "--noise, --seed apply to the simulated world, not to --runs" in capsys.readouterr().err
    with pytest.raises(ValueError, match="select_by must be one of edr, f1; got 'auc'"):
        evaluate_runs(list(runs), select_by="auc")


def test_cli_prints_and_writes_the_tables(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--runs", *map(str, runs), "--select-by", "edr", "--grid", "thesis", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Best setting per run (lowest EDR, thesis grid)" in text and "best by mean EDR" in text
    assert "t=0.65" in text and "f1_of_mean" in text
    per_run = pd.read_csv(out / "best_per_run.csv")
    assert len(per_run) == 2 * 5 and list(per_run.columns[:4]) == ["run", "method", "param", "value"]
    avg = pd.read_csv(out / "best_on_average.csv")
    assert set(avg.columns) >= {"f1_mean", "f1_of_mean", "n_runs"} and len(avg) == 5
    sw = pd.read_csv(out / "sweep.csv")
    n_settings = 21 + 1 + 1 + 20 + 9  # thesis grid: threshold, mcfp, mcfp_binary, density, hypothesis
    assert len(sw) == 2 * n_settings and set(sw.run) == {"r1", "r2"}
    meta = json.loads((out / "evaluate.json").read_text())
    assert meta["select_by"] == "edr" and meta["grid"] == "thesis" and meta["matrix"] == "hard"
    assert meta["grid_values"]["threshold"][0] == 0.0 and meta["grid_values"]["hypothesis"] == list(range(1, 10))
    assert meta["best_on_average"][1]["value"] is None  # mcfp: no parameter, strict JSON
    assert set(meta["runs"]) == {"r1", "r2"}
    # the old --by spelling and the fine grid
    assert main(["--runs", str(runs[0]), "--by", "f1", "--grid", "fine"]) == 0
    assert "highest F1, fine grid" in capsys.readouterr().out


def test_synthetic_run_folder_scores_against_its_world(tmp_path):
    """A run with a synthetic world's ground_truth.json: the sweep is the one of its matrices."""
    from tests.sample_run import write_synthetic_run

    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    path = write_synthetic_run(tmp_path, "syn", tax, noise=0.2, seed=1, methods=("mcfp",), full=False)
    run = Run(path)
    got = run_sweep(run, grid="thesis")
    want = sweep(run.matrices("hard"), tax.true_relationships(), tax.class_counts, grid=parameter_grid("thesis"))
    pd.testing.assert_frame_equal(got, want)
    res = evaluate_runs([path, _hand_run(tmp_path, "h", [[0.6, 0.4, 0], [0, 0, 1]], [(0, 0, 1, 1)])])
    pd.testing.assert_frame_equal(
        res.average, best_on_average({"syn": want, "h": run_sweep(Run(tmp_path / "h"))}, by="edr")
    )


def test_world_table_has_every_method(capsys, tmp_path):
    assert main(["--n-concepts", "60", "--concepts-mean", "30", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("One simulated world (seed 42") and "Not the thesis's experiment" in out
    for name in ("threshold", "mcfp", "mcfp_binary", "density", "hypothesis"):
        assert name in out
    best = pd.read_csv(tmp_path / "best.csv")
    assert list(best.columns[:3]) == ["method", "param", "value"]
    meta = json.loads((tmp_path / "best.json").read_text())
    assert meta["config"]["n_concepts"] == 60 and meta["config"]["select_by"] == "edr"
    assert meta["config"]["grid"] == "thesis" and "One simulated world" in meta["what"]
    assert len(pd.read_csv(tmp_path / "sweep.csv")) == 21 + 1 + 1 + 20 + 9


def test_world_select_by_and_grid_change_the_choice():
    cfg = EvaluateConfig(n_concepts=60, concepts_mean=30)
    _, thesis = evaluate(cfg)
    best_f1, fine = evaluate(EvaluateConfig(n_concepts=60, concepts_mean=30, select_by="f1", grid="fine"))
    assert sorted(thesis[thesis.method == "threshold"].value) == list(parameter_grid("thesis")["threshold"])
    assert sorted(fine[fine.method == "threshold"].value) == list(parameter_grid("fine")["threshold"])
    row = best_f1.set_index("method").loc["density"]
    assert row.f1 == fine[fine.method == "density"].f1.max()
    with pytest.raises(ValueError, match="grid must be one of thesis, fine; got 'coarse'"):
        evaluate(EvaluateConfig(grid="coarse"))


def test_noise_free_expected_matrices_are_recovered_by_threshold():
    best, _ = evaluate(EvaluateConfig(n_concepts=60, concepts_mean=30, expected=True, uniform_remainder=False))
    row = best.set_index("method").loc["threshold"]
    assert row.f1 == 1.0 and row.edr == 0.0


def test_bad_value_is_an_error_not_a_traceback(capsys):
    assert main(["--noise", "1.5"]) == 2
    assert "noise must be in [0, 1], got 1.5" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_core_entry(runs):
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
        [sys.executable, "-m", "core", "evaluate", "--runs", str(runs[0])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "Best setting per run" in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "core", "frobnicate"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2 and "unknown command 'frobnicate'" in res.stderr


def test_the_same_run_by_two_spellings_or_a_link_is_refused(tmp_path):
    import os

    from core.evaluate import evaluate_runs
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    path = write_synthetic_run(tmp_path, "r", make_synthetic_taxonomy(12, 2, 6, 3, 1.5, 0.5, seed=1), full=False)
    os.symlink(path, tmp_path / "alias")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="a run is given twice"):
        evaluate_runs([path, tmp_path / "sub" / ".." / "r"])
    with pytest.raises(ValueError, match="a run is given twice"):
        evaluate_runs([path, tmp_path / "alias"])
