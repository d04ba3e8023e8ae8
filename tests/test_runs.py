"""Run folders: ids, atomic status, reader API, listing, jobs' liveness checks (no torch)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from core.runs import (
    STEPS,
    LockedError,
    RunLock,
    delete_run,
    init_run_dir,
    list_runs,
    open_run,
    pid_alive,
    read_status,
    validate_run_id,
    write_status,
)
from tests.conftest import heavy_imports


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".", "", "a b", "x\\y"])
def test_path_like_run_ids_are_refused(bad, tmp_path):
    with pytest.raises(ValueError, match="not a plain name"):
        validate_run_id(bad)
    with pytest.raises(ValueError, match="not a plain name"):
        delete_run(bad, root=tmp_path)


def test_write_status_is_atomic_merge(tmp_path):
    write_status(tmp_path, state="running", step="features", progress=0.5)
    write_status(tmp_path, message="hi")
    st = read_status(tmp_path)
    assert st["state"] == "running" and st["step"] == "features" and st["message"] == "hi"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    with pytest.raises(ValueError, match="state 'weird'"):
        write_status(tmp_path, state="weird")
    with pytest.raises(ValueError, match=r"unknown status field\(s\) \['colour'\]"):
        write_status(tmp_path, colour="red")


def _fake_run(root, run_id, *, state="done", pid=None, created="2026-01-01T00:00:00+00:00"):
    d = init_run_dir(root / run_id)
    (d / "config.yaml").write_text(yaml.safe_dump({"name": "demo"}))
    (d / "environment.json").write_text(json.dumps({"start_time": created, "hostname": os.uname().nodename}))
    write_status(d, state=state, steps_done=list(STEPS[:3]), pid=pid)
    (d / "domains.json").write_text(
        json.dumps([{"name": "a", "class_names": ["x", "y"]}, {"name": "b", "class_names": ["p", "q", "r"]}])
    )
    (d / "crossdomain").mkdir()
    np.savez(
        d / "crossdomain" / "matrices.npz",
        **{"hard/0-1": np.ones((2, 3)) / 3, "hard/1-0": np.eye(3, 2), "soft/0-1": np.zeros((2, 3))},
    )
    (d / "results.json").write_text(json.dumps({"headline": {"baseline_mean": 0.5}}))
    (d / "log.txt").write_text("".join(f"line {i}\n" for i in range(100)))
    return d


def test_reader_api(tmp_path):
    _fake_run(tmp_path, "r1")
    run = open_run("r1", root=tmp_path)
    assert run.config["name"] == "demo"
    assert run.status()["state"] == "done"
    assert run.has("features") and not run.has("results")
    with pytest.raises(ValueError, match="unknown step"):
        run.has("nope")
    mats = run.matrices("hard")
    assert set(mats) == {(0, 1), (1, 0)} and mats[(0, 1)].shape == (2, 3)
    assert set(run.matrices("soft")) == {(0, 1)}
    assert run.log_tail(3) == "line 97\nline 98\nline 99\n"
    assert run.results() is None and run.embedding() is None and run.ground_truth() is None
    assert run.taxonomy("mcfp") is None and run.history("mcfp") is None
    assert run.class_counts() == [2, 3]
    # open by path too
    assert open_run(str(tmp_path / "r1")).id == "r1"
    with pytest.raises(FileNotFoundError, match="no run 'r2'"):
        open_run("r2", root=tmp_path)


def test_list_runs_newest_first_with_headline(tmp_path):
    _fake_run(tmp_path, "old", created="2026-01-01T00:00:00+00:00")
    _fake_run(tmp_path, "new", created="2026-02-01T00:00:00+00:00", state="failed")
    (tmp_path / "not-a-run").mkdir()
    infos = list_runs(tmp_path)
    assert [i.id for i in infos] == ["new", "old"]
    assert infos[1].headline == {"baseline_mean": 0.5} and infos[0].state == "failed"
    assert infos[0].config_name == "demo"
    assert list_runs(tmp_path / "missing") == []


def test_running_status_with_dead_pid_reads_as_interrupted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    _fake_run(tmp_path, "dead", state="running", pid=proc.pid)
    st = open_run("dead", root=tmp_path).status()
    assert not pid_alive(proc.pid)
    assert st["state"] == "failed" and "interrupted" in st["error"]
    from core.jobs import is_alive

    assert is_alive("dead", root=tmp_path) is False
    assert read_status(tmp_path / "dead")["state"] == "failed"  # written back by is_alive
    delete_run("dead", root=tmp_path)
    assert not (tmp_path / "dead").exists()


def test_live_running_run_cannot_be_deleted(tmp_path):
    d = _fake_run(tmp_path, "live", state="running", pid=os.getpid())
    with RunLock(d, purpose="test"):
        assert open_run("live", root=tmp_path).status()["state"] == "running"
        with pytest.raises(LockedError, match=rf"run folder .*live is in use by pid {os.getpid()}"):
            delete_run(
                "live",
                root=tmp_path,
            )
    assert (d / "status.json").exists()


def test_runs_module_does_not_import_torch():
    assert heavy_imports("core.runs, core.jobs") == []


def test_start_job_refuses_bad_config_before_creating_anything(tmp_path):
    from core.jobs import start_job

    with pytest.raises(ValueError, match=r"^baselines\.train\.lr: must be > 0"):
        start_job({"baselines": {"train": {"lr": -1}}}, run_id="bad", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        start_job(tmp_path / "missing.yaml", run_id="bad2", root=tmp_path)
    with pytest.raises(ValueError, match="not a plain name"):
        start_job({}, run_id="../escape", root=tmp_path)
    with pytest.raises(ValueError, match="from_step 'train'"):
        start_job({}, run_id="ok", root=tmp_path, from_step="train")
    missing = {
        "domains": {
            "synthetic": None,
            "list": [{"name": "c101", "source": "caltech101"}, {"name": "digits", "source": "digits"}],
        },
        "data_root": str(tmp_path / "no-data"),
    }
    with pytest.raises(ValueError, match=r"^domains: c101: dataset root .*no-data.* does not exist"):
        start_job(missing, run_id="nodata", root=tmp_path)
    assert list(tmp_path.iterdir()) == []
