"""The curated model (core.curated): the curated relationships follow the decision log, the job
trains and scores the universal model on them, writes it under the reserved key ``curated`` and
puts it in the results; refusals, lock, cancellation, the background job (core.jobs)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from core import curation as C
from core.curated import check_curated, curated_job, curated_relationships
from core.runs import CURATED, F, LockedError, Run, RunLock, read_status, write_status
from core.synthetic import make_synthetic_taxonomy
from tests.sample_run import write_synthetic_run

REPO = Path(__file__).resolve().parent.parent


def _edges(W: dict) -> set[C.EdgeRef]:
    return C.selected_set(W)


def _pick(run: Run, method: str = "mcfp", value=None) -> tuple[C.EdgeRef, C.EdgeRef, C.EdgeRef]:
    """(a selected edge to reject, a selected edge to accept, an unselected edge to add)."""
    base = C.setting_edges(run.matrices("hard"), method, value)
    selected = sorted(C.selected_set(base))
    reject, accept = selected[0], selected[-1]
    counts = run.class_counts()
    add = next(
        C.EdgeRef(0, i, 1, j)
        for i in range(counts[0])
        for j in range(counts[1])
        if C.EdgeRef(0, i, 1, j) not in selected
    )
    return reject, accept, add


# ---------------------------------------------------------------------------- image-free run (fast)


@pytest.fixture
def sample(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_AUTHOR", "ada")
    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    return Run(write_synthetic_run(tmp_path, "r1", tax, noise=0.2, seed=1, methods=("mcfp",)))


def test_without_decisions_the_curated_relationships_are_the_base_setting(sample):
    W, info = curated_relationships(sample, "threshold", 0.3)
    base = C.setting_edges(sample.matrices("hard"), "threshold", 0.3)
    assert set(W) == {(a, b) for a in range(3) for b in range(3) if a != b}
    for ab, w in W.items():
        np.testing.assert_array_equal(w, base[ab].dense())
    assert info["method"] == CURATED and info["n_decisions"] == 0 and info["n_accepted"] == info["n_rejected"] == 0
    assert info["base"] == {"method": "threshold", "param": "t", "value": 0.3, "matrix": "hard"}
    assert info["n_edges"] == len(_edges(base)) > 0
    assert set(info["scores"]) == {"edr", "precision", "recall", "f1"}  # the synthetic truth scores them
    assert info["curation"]["n_judged"] == 0


def test_curated_relationships_follow_the_decisions(sample):
    reject, accept, add = _pick(sample)
    C.decide(sample, "reject", [reject])
    C.decide(sample, "accept", [accept])
    C.decide(sample, "add", [add], relation="equivalent")
    W, info = curated_relationships(sample, "mcfp", None)
    base = C.setting_edges(sample.matrices("hard"), "mcfp", None)
    assert W[reject.a, reject.b][reject.i, reject.j] == 0
    assert W[accept.a, accept.b][accept.i, accept.j] == 1.0
    assert W[add.a, add.b][add.i, add.j] == 1.0
    assert _edges(W) == (_edges(base) | {add}) - {reject}
    assert (info["n_decisions"], info["n_accepted"], info["n_rejected"]) == (3, 2, 1)
    assert info["n_edges"] == len(_edges(base))  # one removed, one added
    assert info["curation"]["precision"] == 0.5 and info["curation"]["recall"] == 0.5
    C.undo(sample)  # the added edge is taken back
    W, info = curated_relationships(sample, "mcfp", None)
    assert W[add.a, add.b][add.i, add.j] == 0 and info["n_decisions"] == 2


def test_curated_relationships_use_the_configured_matrix_unless_told(sample):
    assert curated_relationships(sample, "mcfp", None)[1]["matrix"] == "hard"
    assert curated_relationships(sample, "mcfp", None, kind="soft")[1]["base"]["matrix"] == "soft"
    with pytest.raises(ValueError, match="kind 'nope'"):
        curated_relationships(sample, "mcfp", None, kind="nope")


def test_bad_settings_are_refused(sample):
    with pytest.raises(ValueError, match="unknown selection method 'nope'"):
        curated_relationships(sample, "nope", None)
    with pytest.raises(ValueError, match="'mcfp' takes no parameter, got value 0.3"):
        curated_relationships(sample, "mcfp", 0.3)
    with pytest.raises(ValueError, match="'threshold' needs a value for its parameter 't'"):
        curated_relationships(sample, "threshold", None)
    with pytest.raises(ValueError):
        curated_relationships(sample, "threshold", 7.0)  # out of range


def test_image_free_and_unfinished_runs_are_refused_before_anything_is_written(sample, tmp_path):
    before = sorted(p.relative_to(sample.path) for p in sample.path.rglob("*"))
    with pytest.raises(ValueError, match="no training images in domain.*image-free run"):
        curated_job(sample.path, method="mcfp", value=None)
    assert sorted(p.relative_to(sample.path) for p in sample.path.rglob("*")) == before
    assert sample.curated_status() is None
    write_status(sample.path, steps_done=["domains", "features", "baselines"])
    with pytest.raises(ValueError, match="no finished crossdomain step"):
        check_curated(sample.path, "mcfp", None)
    with pytest.raises(ValueError, match="not a unitax run folder"):
        check_curated(tmp_path / "nowhere", "mcfp", None)
    link = tmp_path / "linked"
    shutil.copytree(sample.path, link)
    (link / "taxonomy" / CURATED).symlink_to(tmp_path)
    with pytest.raises(ValueError, match="symbolic link"):
        check_curated(link, "mcfp", None)


# ---------------------------------------------------------------------------- a tiny run with images


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("curated")
    old = {k: os.environ.get(k) for k in ("UNITAX_CACHE", "UNITAX_RUNS", "UNITAX_AUTHOR")}
    os.environ.update(UNITAX_CACHE=str(base / "cache"), UNITAX_RUNS=str(base / "runs"), UNITAX_AUTHOR="ada")
    from core.pipeline import run_pipeline

    cfg = yaml.safe_load((REPO / "assets/configs/tiny.yaml").read_text())
    run = base / "runs" / "tiny"
    assert run_pipeline(cfg, run)["state"] == "done"
    yield Run(run)
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def trained(tiny):
    """The tiny run with two decisions and a curated model trained on them."""
    reject, accept, add = _pick(tiny, "threshold", 0.25)
    C.decide(tiny, "reject", [reject])
    C.decide(tiny, "add", [add])
    seen = []
    status = curated_job(tiny.path, method="threshold", value=0.25, on_progress=lambda *a: seen.append(a))
    return status, seen, reject, add


@pytest.mark.slow
def test_the_curated_job_writes_the_taxonomy_the_model_and_the_results(tiny, trained):
    status, seen, reject, add = trained
    assert status["state"] == "done", status
    assert status["error"] is None and status["pid"] is None and status["progress"] == 1.0
    assert status["base"] == {"method": "threshold", "value": 0.25}
    assert status["result"]["n_decisions"] == 2 and status["result"]["results_rewritten"] is True
    done, total = [d for d, _, _, _ in seen], {t for _, t, _, _ in seen}
    assert len(total) == 1 and done[0] == 0 and done[-1] == total.pop() and done == sorted(done)
    assert any("epoch" in m for *_, m in seen) and any(m.startswith("results") for *_, m in seen)
    # the taxonomy: accepted edges in, rejected ones out
    W = tiny.relationships(CURATED)
    assert W[add.a, add.b][add.i, add.j] == 1.0 and W[reject.a, reject.b][reject.i, reject.j] == 0
    base = C.setting_edges(tiny.matrices("hard"), "threshold", 0.25)
    assert _edges(W) == (_edges(base) | {add}) - {reject}
    sel = tiny.selection(CURATED)
    assert sel["base"]["method"] == "threshold" and sel["n_edges"] == len(_edges(W)) and sel["n_decisions"] == 2
    tax = tiny.taxonomy(CURATED)
    assert tax is not None and CURATED in tiny.methods_with_model() and tiny.has_curated_model()
    assert [np.asarray(M).shape[0] for M in tax.mappings] == tiny.class_counts()
    # the model and its metrics
    metrics = tiny.universal_metrics(CURATED)
    assert set(metrics) == set(tiny.domain_names()) and all(0 <= v <= 1 for v in metrics.values())
    _, meta = tiny.load_model(tiny.universal_model_path(CURATED))
    assert meta["n_universal"] == len(tax.classes)
    # the results, next to the configured methods
    table = tiny.results()
    assert {"universal/mcfp", "universal/threshold_t0.25", "universal/curated"} <= set(table.columns)
    assert table["universal/curated"].iloc[-1] == pytest.approx(np.mean(list(metrics.values())))
    summary = tiny.results_json()
    assert summary["headline"]["universal_mean/curated"] == pytest.approx(status["result"]["universal_mean"])
    assert "f1/curated" in summary["headline"] and summary["n_universal"][CURATED] == len(tax.classes)
    assert "universal/curated" in summary["intervals"]["accuracy"]
    assert len(tiny.test_correct()["universal/curated"]) == 3
    assert "done" in tiny.curated_log_path().read_text()
    assert tiny.status()["state"] == "done"  # the run's own status is untouched


@pytest.mark.slow
def test_rerunning_the_results_step_keeps_the_curated_model(tiny, trained):
    from core.pipeline import run_pipeline

    before = tiny.results_json()["headline"]["universal_mean/curated"]
    (tiny.path / F.RESULTS_JSON).unlink()
    assert run_pipeline(tiny.config, tiny.path, from_step="results")["state"] == "done"
    assert tiny.results_json()["headline"]["universal_mean/curated"] == before
    assert "universal/curated" in tiny.results().columns


@pytest.mark.slow
def test_a_locked_run_is_refused_and_a_sigterm_cancels_keeping_the_previous_model(tiny, trained):
    model = tiny.universal_model_path(CURATED).read_bytes()
    with RunLock(tiny.path):
        with pytest.raises(LockedError, match="in use by pid"):
            curated_job(tiny.path, method="mcfp", value=None)
    status = tiny.curated_status()
    assert status["state"] == "done"  # the refusal touched nothing

    def cancel(done, total, eta, message):
        if "epoch" in message:
            os.kill(os.getpid(), signal.SIGTERM)

    status = curated_job(tiny.path, method="mcfp", value=None, on_progress=cancel)
    assert status["state"] == "cancelled" and "SIGTERM" in status["message"] and status["pid"] is None
    assert tiny.curated_status()["state"] == "cancelled"
    assert tiny.universal_model_path(CURATED).read_bytes() == model  # the previous model stays
    assert tiny.selection(CURATED)["base"]["method"] == "threshold"


@pytest.mark.slow
def test_a_changed_config_is_refused(tiny, trained, tmp_path):
    run = tmp_path / "runs" / "copy"
    shutil.copytree(tiny.path, run, ignore=shutil.ignore_patterns(".lock"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["universal"]["head"]["width"] = 32
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"shift definitions\) changed since its universal step ran"):
        curated_job(run, method="mcfp", value=None)
    assert read_status(run)["state"] == "done"


def _has_cli() -> bool:
    res = subprocess.run([sys.executable, "-m", "core", "curate", "--help"], cwd=REPO, capture_output=True)
    return res.returncode == 0


STAND_IN = """#!{python}
# stands in for `python -m core curate RUN train --method M [--param V]` until that command exists
import sys
from core.curated import curated_job

args = sys.argv[1:]
assert args[:3] == ["-m", "core", "curate"] and args[4:6] == ["train", "--method"], args
value = float(args[args.index("--param") + 1]) if "--param" in args else None
status = curated_job(args[3], method=args[6], value=value, on_progress=lambda *a: print(a, flush=True))
sys.exit({{"done": 0, "cancelled": 130}}.get(status["state"], 1))
"""


@pytest.mark.slow
def test_start_and_cancel_the_background_job(tiny, trained, tmp_path):
    from core.jobs import cancel_curated, start_curated

    python = None  # the real command when it is there, else a stand-in that calls curated_job
    if not _has_cli():
        script = tmp_path / "python"
        script.write_text(STAND_IN.format(python=sys.executable))
        script.chmod(0o755)
        python = str(script)
    with pytest.raises(ValueError, match="unknown selection method 'nope'"):
        start_curated(tiny.id, method="nope", value=None, root=tiny.path.parent)
    start_curated(tiny.id, method="threshold", value=0.25, root=tiny.path.parent, python=python)
    deadline = time.time() + 120
    while time.time() < deadline and tiny.curated_status()["state"] in ("pending", "running"):
        time.sleep(0.2)
    assert tiny.curated_status()["state"] == "done", tiny.curated_log_path().read_text()
    assert tiny.selection(CURATED)["base"]["value"] == 0.25
    start_curated(tiny.id, method="mcfp", value=None, root=tiny.path.parent, python=python)
    with pytest.raises(LockedError, match="curated-model job|in use by pid"):
        start_curated(tiny.id, method="mcfp", value=None, root=tiny.path.parent, python=python)
    status = cancel_curated(tiny.id, root=tiny.path.parent)  # long before it is done (it imports torch)
    assert status["state"] == "cancelled" and tiny.curated_status()["state"] == "cancelled"
    assert tiny.has_curated_model() and tiny.selection(CURATED)["base"]["method"] == "threshold"  # kept


@pytest.mark.parametrize("entries", [["a", "b"], [None, None], [{"name": "x", "n_train": "abc"}, {"n_train": True}]])
def test_a_damaged_domains_list_is_refused_as_having_no_images(tmp_path, entries):
    from core.curated import check_curated
    from core.runs import Run
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    run = Run(write_synthetic_run(tmp_path, "r", make_synthetic_taxonomy(12, 2, 6, 3, 1.5, 0.5, seed=1), full=False))
    (run.path / "domains.json").write_text(__import__("json").dumps(entries))
    with pytest.raises(ValueError, match="no training images in domain"):
        check_curated(run.path, "mcfp", None)
