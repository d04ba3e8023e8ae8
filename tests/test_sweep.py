"""The universal-accuracy sweep: many heads at once, one row per setting, validation only, resume,
cancel; on a tiny real run (assets/configs/tiny.yaml) and on hand-made mappings."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from core.config import HeadConfig, TrainConfig
from core.multihead import train_heads
from core.sweep import (
    SWEEP_COLUMNS,
    Setting,
    best_by_accuracy,
    check_sweep,
    run_sweep,
    sweep_correlations,
    sweep_grid,
    sweep_settings,
)

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- grids


def test_grids_follow_the_method_registry():
    assert sweep_grid("mcfp") == [None]
    assert sweep_grid("hypothesis") == list(range(1, 11))
    coarse, fine = sweep_grid("threshold", "coarse"), sweep_grid("threshold", "fine")
    assert coarse[0] == 0.05 and coarse[-1] == 1.0 and len(coarse) == 20
    assert len(fine) == 100 and set(coarse) <= set(fine)
    assert sweep_grid("density")[0] == 0.05
    assert [s.method for s in sweep_settings(["mcfp", "mcfp_binary"])] == ["mcfp", "mcfp_binary"]
    with pytest.raises(ValueError, match="grid 'medium'"):
        sweep_grid("threshold", "medium")
    with pytest.raises(ValueError, match="unknown selection method 'nope'"):
        sweep_settings(["nope"])


# ---------------------------------------------------------------------------- stacked heads


def _toy(seed=0, n=400, d=32):
    rng = np.random.default_rng(seed)
    dom = rng.integers(0, 2, n)
    y = np.where(dom == 0, rng.integers(0, 5, n), rng.integers(0, 4, n))
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[np.arange(n), y + 5 * dom] += 3.0
    return (X, dom, y), (X[:120], dom[:120], y[:120])


def test_a_head_trains_the_same_alone_or_among_others():
    """Padding to the widest taxonomy and sharing batches leave a head's result unchanged."""
    train, val = _toy()
    narrow = [np.eye(5, 5), np.eye(4, 5)]
    wide = [np.eye(5, 9), np.eye(4, 9, 5)]
    merged = [np.eye(5, 6), np.vstack([np.eye(1, 6, 5), np.eye(3, 6, 1)])]
    head, cfg = HeadConfig(depth=2, width=16, dropout=0.0), TrainConfig(epochs=6, batch_size=64, patience=0)
    alone = train_heads(train, val, [narrow], head=head, config=cfg, seed=3)[0]
    together = train_heads(train, val, [wide, narrow, merged], head=head, config=cfg, seed=3)
    assert together[1].val_acc == pytest.approx(alone.val_acc)
    assert together[1].val_acc_by_domain == pytest.approx(alone.val_acc_by_domain)
    assert together[1].best_epoch == alone.best_epoch
    assert len(together[0].val_acc_by_domain) == 2 and 0 <= together[2].val_acc <= 1


def test_a_head_learns_and_stops_early():
    train, val = _toy(1)
    res = train_heads(
        train,
        val,
        [[np.eye(5), np.eye(4, 5)]],
        head=HeadConfig(depth=2, width=32, dropout=0.0),
        config=TrainConfig(epochs=60, batch_size=64, lr=3e-3, patience=3),
        seed=0,
    )[0]
    assert res.val_acc > 0.8 and res.epochs_run < 60


def test_train_heads_refuses_bad_input():
    train, val = _toy()
    cfg = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="loss 'hinge'"):
        train_heads(train, val, [[np.eye(5), np.eye(4)]], head=HeadConfig(), config=cfg, loss="hinge")
    with pytest.raises(ValueError, match="need at least one taxonomy"):
        train_heads(train, val, [], head=HeadConfig(), config=cfg)
    with pytest.raises(ValueError, match="maps to no universal class"):
        train_heads(train, val, [[np.zeros((5, 3)), np.eye(4, 3)]], head=HeadConfig(), config=cfg)


# ---------------------------------------------------------------------------- on a tiny run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    old = {k: os.environ.get(k) for k in ("UNITAX_CACHE", "UNITAX_RUNS")}
    os.environ.update(UNITAX_CACHE=str(base / "cache"), UNITAX_RUNS=str(base / "runs"))
    from core.pipeline import run_pipeline

    cfg = yaml.safe_load((REPO / "assets/configs/tiny.yaml").read_text())
    run = base / "runs" / "tiny"
    assert run_pipeline(cfg, run, until_step="crossdomain")["state"] == "pending"
    yield run
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.mark.slow
def test_sweep_writes_one_row_per_setting_on_validation_data_only(tiny, monkeypatch):
    import core.context

    asked = []
    real = core.context.union
    monkeypatch.setattr(core.context, "union", lambda ctx, split: asked.append(split) or real(ctx, split))
    table = run_sweep(tiny, methods=["mcfp", "mcfp_binary", "hypothesis"], epochs=3, fresh=True)
    assert sorted(set(asked)) == ["train", "val"]  # the test split is never read
    assert len(table) == 2 + 10
    assert list(table.columns[:6]) == list(SWEEP_COLUMNS[:6])
    assert {f"val_acc_syn{a}" for a in range(3)} <= set(table.columns)
    assert table["val_acc_mean"].between(0, 1).all() and table["f1"].notna().all()
    # settings with identical taxonomies share one trained head and say which
    shared = table[table["same_as"] != ""]
    assert len(shared) >= 1 and (shared["train_s"] == 0).all()
    labels = [Setting(m, None if np.isnan(v) else v).label for m, v in zip(table["method"], table["value"])]
    for _, row in shared.iterrows():
        owner = table.iloc[labels.index(row["same_as"])]
        assert owner["same_as"] == "" and owner["val_acc_mean"] == row["val_acc_mean"]
    on_disk = __import__("core.runs", fromlist=["Run"]).Run(tiny).sweep_table()
    assert len(on_disk) == len(table)


@pytest.mark.slow
def test_a_resumed_sweep_keeps_its_rows_and_trains_only_the_new_settings(tiny, monkeypatch):
    import core.multihead

    first = run_sweep(tiny, methods=["mcfp"], epochs=3, fresh=True)
    calls = []
    real = core.multihead.train_heads
    monkeypatch.setattr(core.multihead, "train_heads", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    second = run_sweep(tiny, methods=["mcfp", "density"], epochs=3)
    mcfp = second[second["method"] == "mcfp"].iloc[0]
    assert mcfp["val_acc_mean"] == first[first["method"] == "mcfp"].iloc[0]["val_acc_mean"]
    assert sum(calls) < len(sweep_grid("density")) + 1  # mcfp not retrained
    with pytest.raises(ValueError, match=r"another recipe \(epochs differ\).*--fresh"):
        run_sweep(tiny, methods=["mcfp"], epochs=4)  # its rows would be lost: refused
    assert len(run_sweep(tiny, methods=["mcfp"], epochs=3)) == len(second)
    third = run_sweep(tiny, methods=["mcfp"], epochs=4, fresh=True)  # a new table; the old one set aside
    assert len(third) == 1 and len(pd.read_csv(tiny / "sweep" / "sweep.previous.csv")) == len(second)


@pytest.mark.slow
def test_best_and_correlations(tiny):
    table = run_sweep(tiny, methods=["threshold"], epochs=3, fresh=True)
    best = best_by_accuracy(table)
    assert list(best["method"]) == ["threshold"]
    assert best["val_acc_mean"].iloc[0] == table["val_acc_mean"].max()
    corr = sweep_correlations(table)
    assert corr["n"] == int((table["same_as"].fillna("") == "").sum()) and -1 <= corr["f1"] <= 1


@pytest.mark.slow
def test_sweep_refusals(tiny, tmp_path):
    from core.runs import LockedError, RunLock, init_run_dir

    with pytest.raises(ValueError, match="nothing to train a sweep on"):
        check_sweep(init_run_dir(tmp_path / "empty"))
    with pytest.raises(ValueError, match="epochs must be in"):
        check_sweep(tiny, epochs=0)
    with RunLock(tiny):
        with pytest.raises(LockedError, match="in use by pid"):
            run_sweep(tiny, methods=["mcfp"], epochs=1)


@pytest.mark.slow
def test_sweep_job_can_be_cancelled_and_keeps_finished_rows(tiny):
    from core.jobs import cancel_sweep, start_sweep
    from core.runs import Run

    start_sweep(
        tiny.name, root=tiny.parent, grid="fine", epochs=500, fresh=True
    )  # minutes of work: cancelled long before
    run = Run(tiny)
    deadline = time.time() + 120
    while time.time() < deadline and (run.sweep_status() or {}).get("state") != "running":
        time.sleep(0.2)
    assert run.sweep_status()["state"] == "running", run.sweep_log_path().read_text()
    status = cancel_sweep(tiny.name, root=tiny.parent)
    assert status["state"] == "cancelled"
    assert run.sweep_status()["state"] == "cancelled"


@pytest.mark.slow
def test_a_sweep_reads_the_run_and_never_rewrites_its_status(tiny):
    from core.runs import Run, read_status

    before = read_status(tiny)
    log = (tiny / "log.txt").read_text()
    run_sweep(tiny, methods=["mcfp"], epochs=2, fresh=True)
    assert read_status(tiny) == before and Run(tiny).status()["state"] == before["state"]
    assert (tiny / "log.txt").read_text() == log


@pytest.mark.slow
def test_sweep_attacks_are_refused_before_anything_is_written(tiny, tmp_path, capsys):
    import shutil

    from core import cli

    run = tmp_path / "runs" / "copy"
    shutil.copytree(tiny, run, ignore=shutil.ignore_patterns(".lock", "sweep"))
    user = tmp_path / "user"
    user.mkdir()
    (user / "status.json").write_text('{"my": "data"}')
    (run / "sweep").symlink_to(user)
    with pytest.raises(ValueError, match="symbolic link"):
        check_sweep(run)
    assert (user / "status.json").read_text() == '{"my": "data"}' and sorted(p.name for p in user.iterdir()) == [
        "status.json"
    ]
    (run / "sweep").unlink()
    assert cli.main(["sweep", str(run), "--methods", ",,,"]) == 2
    assert "names no method" in capsys.readouterr().err
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["features"]["image_size"] = 48
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"shift definitions\) changed since its crossdomain step"):
        check_sweep(run)
