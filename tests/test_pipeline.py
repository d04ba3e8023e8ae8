"""End-to-end pipeline on tiny procedural domains: quality, resume, cancel, crash, CLI.

One tiny run (assets/configs/tiny.yaml, CPU, seconds) is shared by the module. Stated bars:
the best selection method's F1 against the synthetic ground truth is >= 0.7, and the universal
model's mean test accuracy is at most 0.10 below the baselines' mean.
"""

import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow  # end-to-end runs of the tiny config: excluded from the quick loop (-m "not slow")

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "assets" / "configs" / "tiny.yaml"
F1_BAR = 0.7
ACC_MARGIN = 0.10


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipe")
    old = {k: os.environ.get(k) for k in ("UNITAX_CACHE", "UNITAX_RUNS")}
    os.environ["UNITAX_CACHE"] = str(base / "cache")
    os.environ["UNITAX_RUNS"] = str(base / "runs")
    yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def tiny_cfg():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def tiny_run(env, tiny_cfg):
    from core import pipeline

    status = pipeline.run_pipeline(tiny_cfg, env / "runs" / "tiny1")
    assert status["state"] == "done", status
    return env / "runs" / "tiny1", _forwarded(env / "runs" / "tiny1")


def _forwarded(run_dir: Path, since: int = 0) -> int:
    """Images forwarded through the backbone, from the run's log lines after character ``since``
    ("features <domain>/<split>: N images in ..."; cached features write no such line)."""
    import re

    text = (run_dir / "log.txt").read_text()[since:]
    return sum(int(n) for n in re.findall(r"features \S+/\w+: (\d+) images in", text))


def _log_size(run_dir: Path) -> int:
    return len((run_dir / "log.txt").read_text())


def test_tiny_run_recovers_relationships_and_universal_matches_baselines(tiny_run):
    from core.runs import open_run

    run_dir, _ = tiny_run
    run = open_run(run_dir)
    res = run.results_json()
    f1 = {k: s["f1"] for k, s in res["selection_scores"].items()}
    print("tiny F1 per method:", f1, "headline:", res["headline"])
    assert max(f1.values()) >= F1_BAR
    head = res["headline"]
    base = head["baseline_mean"]
    for k in f1:
        assert head[f"universal_mean/{k}"] >= base - ACC_MARGIN, (k, head)
    assert base > 0.5  # the baselines learned something on these images
    df = run.results()
    assert list(df["domain"])[-1] == "mean" and len(df) == len(run.domains()) + 1


def test_run_folder_contract(tiny_run):
    from core.runs import STEPS, open_run

    run_dir, _ = tiny_run
    run = open_run(run_dir)
    st = run.status()
    assert st["steps_done"] == list(STEPS) and st["state"] == "done"
    for name in (
        "config.yaml",
        "environment.json",
        "log.txt",
        "domains.json",
        "ground_truth.json",
        "baselines/metrics.json",
        "crossdomain/matrices.npz",
        "crossdomain/predictions.npz",
        "results.json",
        "results.csv",
        "embedding.npz",
    ):
        assert (run_dir / name).exists(), name
    live = json.loads((run_dir / "live_history.json").read_text())  # the last model trained
    assert live["label"].startswith("universal")
    assert [e["epoch"] for e in live["epochs"]] == list(range(1, len(live["epochs"]) + 1))
    n = len(run.domains())
    for kind in ("hard", "soft", "count"):
        mats = run.matrices(kind)
        assert len(mats) == n * (n - 1)
    for (a, b), P in run.matrices("hard").items():
        K = run.class_counts()
        assert P.shape == (K[a], K[b])
        assert np.allclose(P.sum(axis=1), 1.0)
    preds = run.predictions()
    assert set(preds["true"]) == set(range(n)) and len(preds["pred"]) == n * (n - 1)
    for m in run.methods():
        tax = run.taxonomy(m)
        assert [M.shape[0] for M in tax.mappings] == run.class_counts()
        assert all((np.asarray(M).sum(axis=1) > 0).all() for M in tax.mappings)  # every class maps somewhere
        for f in ("taxonomy.graphml", "mappings.csv", "label_map.json", "selection.json"):
            assert (run_dir / "taxonomy" / m / f).exists()
        assert run.history(m) is not None and (run_dir / "universal" / m / "model.pt").exists()
    emb = run.embedding()
    assert emb["xy"].shape == (len(emb["domain"]), 2)
    assert run.ground_truth() is not None
    assert "step results done" in run.log_tail(5)


def test_one_backbone_pass_per_image(tiny_run):
    from core.runs import open_run

    run_dir, forwarded = tiny_run
    run = open_run(run_dir)
    n_images = sum(d["n_train"] + d["n_val"] + d["n_test"] for d in run.domains())
    assert forwarded == n_images  # the module starts with an empty feature cache


def test_resume_reuses_finished_steps_and_from_step_reruns(tiny_run, tiny_cfg):
    from core import pipeline
    from core.runs import open_run, read_status

    run_dir, _ = tiny_run
    t_before = open_run(run_dir).timings()
    before = _log_size(run_dir)
    status = pipeline.run_pipeline(tiny_cfg, run_dir)
    assert status["state"] == "done"
    assert _forwarded(run_dir, before) == 0  # no backbone pass on resume
    assert open_run(run_dir).timings() == t_before  # nothing re-ran
    # --from selection: reruns selection..results, keeps baselines (same model file mtime)
    mtime = (run_dir / "baselines" / "domain_0.pt").stat().st_mtime_ns
    status = pipeline.run_pipeline(tiny_cfg, run_dir, from_step="selection")
    assert status["state"] == "done"
    assert (run_dir / "baselines" / "domain_0.pt").stat().st_mtime_ns == mtime
    t_after = open_run(run_dir).timings()
    assert t_after["baselines"] == t_before["baselines"]
    assert _forwarded(run_dir, before) == 0
    # a changed selection config invalidates selection and later steps only
    cfg = copy.deepcopy(tiny_cfg)
    cfg["selection"]["methods"] = [{"name": "mcfp_binary"}]
    keep, todo, _ = pipeline.plan_steps(run_dir, pipeline.config_from_dict(cfg))
    assert keep == ["domains", "features", "baselines", "crossdomain"]
    assert todo[0] == "selection"
    assert read_status(run_dir)["state"] == "done"


def test_crash_leaves_failed_with_error_and_keeps_steps(env, tiny_cfg, monkeypatch):
    from core import pipeline
    from core.runs import open_run

    def boom(ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "baselines", boom)
    status = pipeline.run_pipeline(tiny_cfg, env / "runs" / "crash")
    assert status["state"] == "failed" and "disk on fire" in status["error"]
    run = open_run(env / "runs" / "crash")
    assert run.has("features") and not run.has("baselines")
    assert "RuntimeError: disk on fire" in run.log_tail(20)


def test_bad_config_refused_before_work(env, tmp_path):
    from core.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbaselines:\n  train:\n    lr: -1\n")
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_sigterm_cancels_and_run_resumes(env, tiny_cfg, tmp_path):
    """A job killed with SIGTERM mid-training says "cancelled", keeps its steps, and resumes."""
    from core import pipeline
    from core.jobs import cancel_job, is_alive, start_job
    from core.runs import open_run

    slow = copy.deepcopy(tiny_cfg)
    slow["baselines"]["train"].update(epochs=10000, patience=0)  # training never ends by itself
    run_id = start_job(slow, run_id="killme")
    run_dir = Path(os.environ["UNITAX_RUNS"]) / run_id
    deadline = time.time() + 90
    while time.time() < deadline:
        st = open_run(run_dir).status()
        if st["state"] == "running" and st.get("step") == "baselines":
            break
        assert st["state"] in ("pending", "running"), (st, open_run(run_dir).log_tail(30))
        time.sleep(0.2)
    else:
        pytest.fail("job never reached the baselines step")
    assert is_alive(run_id)
    st = cancel_job(run_id)
    assert st["state"] == "cancelled"
    assert not is_alive(run_id)
    assert open_run(run_dir).status()["state"] == "cancelled"
    assert {"domains", "features"} <= set(st["steps_done"]) and "baselines" not in st["steps_done"]
    # resume with a finite recipe: domains + features are reused, no backbone pass
    before = _log_size(run_dir)
    status = pipeline.run_pipeline(tiny_cfg, run_dir)
    assert status["state"] == "done"
    assert _forwarded(run_dir, before) == 0
    assert "reusing ['domains', 'features']" in (run_dir / "log.txt").read_text()


def test_cli_status_and_list(tiny_run, capsys):
    from core.cli import main

    run_dir, _ = tiny_run
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "state    done" in out and "mean" in out
    assert main(["list"]) == 0
    assert "tiny1" in capsys.readouterr().out
    assert main(["status", "../etc"]) == 2


def test_predict_one_image(tiny_run):
    from core.inference import predict_image
    from core.procedural import render

    run_dir, _ = tiny_run
    img = render(np.array([0]), np.array([0]), size=32, seed=1)[0]
    out = predict_image(str(run_dir), img, top_k=2, device="cpu")
    assert len(out["universal"]) == 2
    assert set(out["domains"]) == {d for d in ("syn0", "syn1", "syn2")}
    probs = [p for _, p in out["universal"]]
    assert probs == sorted(probs, reverse=True) and 0 <= probs[0] <= 1


def test_predictions_point_at_images_of_the_run(tiny_run):
    from core.pipeline import run_domains
    from core.runs import open_run

    run_dir, _ = tiny_run
    run = open_run(run_dir)
    domains = run_domains(run_dir)
    preds = run.predictions()
    for a, d in enumerate(domains):
        items = preds["item"][a]
        assert np.array_equal(d.splits["test"].labels[items], preds["true"][a])
        img = d.splits["test"].image(int(items[0]))
        assert img.dtype == np.uint8 and img.ndim == 3
    assert all(0.0 <= float(c.min()) and float(c.max()) <= 1.0 for c in preds["conf"].values())


def test_predict_refuses_unreadable_upload(tiny_run, tmp_path):
    from core.inference import load_image, predict_image

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(bad, size=32)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png", size=32)
    with pytest.raises(ValueError, match="image array must be"):
        load_image(np.zeros((2, 2, 2, 2)), size=32)
    run_dir, _ = tiny_run
    with pytest.raises(ValueError, match="method 'nope' has no universal model"):
        predict_image(str(run_dir), np.zeros((8, 8, 3), np.uint8), method="nope")
    from PIL import Image

    Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 65535).astype(np.uint16)).save(tmp_path / "g16.png")
    assert load_image(tmp_path / "g16.png", size=32).shape == (32, 32, 3)  # 16-bit greyscale works


def test_rerun_removes_stale_outputs_of_dropped_methods(tiny_run, tiny_cfg, tmp_path):
    import shutil

    from core import pipeline
    from core.runs import open_run

    run_dir, _ = tiny_run
    copy_dir = tmp_path / "copy"
    shutil.copytree(run_dir, copy_dir)
    cfg = copy.deepcopy(tiny_cfg)
    cfg["selection"]["methods"] = [{"name": "mcfp"}]
    status = pipeline.run_pipeline(cfg, copy_dir, until_step="taxonomy")
    assert status["state"] == "pending" and status["steps_done"][-1] == "taxonomy"
    run = open_run(copy_dir)
    assert run.methods() == ["mcfp"]  # threshold_t0.25 from the first config is gone
    assert not (copy_dir / "universal").exists() and run.results() is None


def test_cli_progress_bars_show_percent_and_message(monkeypatch):
    import io

    from core.cli import ProgressBars

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bars = ProgressBars(True)
    bars("features", 0.5, 3.0, "syn0/train: 10/20 images, 150 img/s")
    bars("features", -1.0, None, "a log line")
    bars("baselines", 1.0, 0.0, "done")
    bars.close()
    text = err.getvalue()
    assert "features" in text and "50%|" in text and "150 img/s" in text
    assert "a log line" in text and "baselines" in text and "100%|" in text


def test_results_carry_intervals_that_agree_with_the_table(tiny_run):
    """Every accuracy of the results table has a bootstrap interval around it, and each
    universal model a paired difference with the baselines on the same images."""
    from core.runs import open_run

    run_dir, _ = tiny_run
    run = open_run(run_dir)
    res, table = run.results_json(), run.results()
    iv = res["intervals"]
    assert iv["level"] == 0.95 and iv["n_boot"] == 2000
    correct = run.test_correct()
    assert set(correct) == {"baseline", *(f"universal/{k}" for k in ("mcfp", "threshold_t0.25"))}
    for col, per in iv["accuracy"].items():
        for _, row in table.iterrows():
            acc, lo, hi = per[row["domain"]]
            assert acc == pytest.approx(row[col]) and lo <= acc <= hi
    for col, per in iv["vs_baseline"].items():
        mean = per["mean"]
        assert mean["diff"] == pytest.approx(table[col].iloc[-1] - table["baseline"].iloc[-1])
        assert mean["within_noise"] == (mean["lo"] <= 0 <= mean["hi"])
    assert res["seeds"] is None


def test_seeds_retrain_every_head_and_report_the_spread(tiny_run, tiny_cfg):
    from core import pipeline
    from core.runs import open_run

    run_dir, _ = tiny_run
    cfg = copy.deepcopy(tiny_cfg)
    cfg["evaluation"] = {"seeds": 2, "bootstrap": 200}
    status = pipeline.run_pipeline(cfg, run_dir)
    assert status["state"] == "done"
    res = open_run(run_dir).results_json()
    first = open_run(run_dir).results()
    for col, per in res["seeds"].items():
        for domain, accs in per.items():
            assert len(accs) == 2 and all(0 <= a <= 1 for a in accs)
            assert accs[0] == pytest.approx(first.set_index("domain").loc[domain, col])
    assert (
        "reusing ['domains', 'features', 'baselines', 'crossdomain', 'selection', 'taxonomy', 'universal']"
        in (run_dir / "log.txt").read_text()
    )
