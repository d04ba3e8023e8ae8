"""Attacks on run folders and the command line, and what the tool does about them.

Each test is one thing a careless or hostile user does; its name and docstring say the outcome.
The pipeline's steps are replaced by fast fakes that write each step's outputs, so the driver's
bookkeeping (marker, lock, step plan, atomic writes, status) is exercised in milliseconds.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from core import cli, fsio, pipeline
from core.jobs import cancel_job, start_job
from core.runlock import process_identity
from core.runs import (
    MARKER,
    STEPS,
    CorruptRunError,
    LockedError,
    NotARunFolderError,
    Run,
    RunLock,
    clear_step_outputs,
    create_run_dir,
    delete_run,
    init_run_dir,
    read_status,
    write_status,
)

REPO = Path(__file__).resolve().parent.parent
TINY = yaml.safe_load((REPO / "assets" / "configs" / "tiny.yaml").read_text())


def _fake_pt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data.pkl", b"weights")


_FAKE_OUTPUTS = {
    "domains": lambda d: fsio.write_json(d / "domains.json", [{"name": "a", "class_names": ["x", "y"]}]),
    "features": lambda d: None,
    "baselines": lambda d: (
        _fake_pt(d / "baselines" / "domain_0.pt"),
        fsio.write_json(d / "baselines" / "metrics.json", {}),
    ),
    "crossdomain": lambda d: (
        fsio.write_npz(d / "crossdomain" / "matrices.npz", {"hard/0-1": [[1.0]]}),
        fsio.write_npz(d / "crossdomain" / "predictions.npz", {"true/0": [0]}),
    ),
    "selection": lambda d: fsio.write_npz(d / "taxonomy" / "mcfp" / "relationships.npz", {"0-1": [[1.0]]}),
    "taxonomy": lambda d: fsio.write_json(d / "taxonomy" / "mcfp" / "taxonomy.json", {}),
    "universal": lambda d: (
        _fake_pt(d / "universal" / "mcfp" / "model.pt"),
        fsio.write_json(d / "universal" / "mcfp" / "metrics.json", {}),
    ),
    "results": lambda d: fsio.write_json(d / "results.json", {"headline": {}}),
}


@pytest.fixture
def fake_steps(monkeypatch):
    """Replace every step by a fake that writes the step's files; returns the list of steps run."""
    ran: list[str] = []
    for step in STEPS:

        def fake(ctx, step=step):
            ran.append(step)
            _FAKE_OUTPUTS[step](ctx.run.path)

        monkeypatch.setitem(pipeline.STEP_FUNCTIONS, step, fake)
    return ran


def _hold_lock(run: Path, **popen) -> subprocess.Popen:
    """Another process that takes the run's lock, says "locked" and sleeps."""
    code = (
        f"import sys, time; sys.path.insert(0, {str(REPO)!r})\n"
        "from core.runs import RunLock\n"
        f"lock = RunLock({str(run)!r}).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **popen)


def _tree(folder: Path) -> dict[str, int]:
    """Every file (but the lock, which each locker rewrites) with its modification time."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# ---------------------------------------------------------------------------- data loss


def test_run_into_a_folder_of_the_users_is_refused_and_touches_nothing(tmp_path, capsys):
    """`run --out DIR` on a non-empty folder the tool did not create: refused, exit 2, files kept."""
    mine = tmp_path / "mine"
    (mine / "taxonomy").mkdir(parents=True)
    (mine / "taxonomy" / "notes.txt").write_text("my notes")
    (mine / "results.csv").write_text("a,b\n1,2\n")
    before = _tree(mine)
    code = cli.main(["run", "--config", str(REPO / "assets/configs/tiny.yaml"), "--out", str(mine)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "is not a unitax run folder" in err and str(mine) in err
    assert _tree(mine) == before


def test_rerun_removes_only_the_steps_own_files(tmp_path, fake_steps):
    """A rerun from a step removes that step's outputs and later ones, never a user's file."""
    run = tmp_path / "r"
    assert pipeline.run_pipeline(TINY, run)["state"] == "done"
    (run / "taxonomy" / "notes.txt").write_text("mine")
    (run / "results.csv.bak").write_text("mine")
    fake_steps.clear()
    assert pipeline.run_pipeline(TINY, run, from_step="selection")["state"] == "done"
    assert fake_steps == ["selection", "taxonomy", "universal", "results"]
    assert (run / "taxonomy" / "notes.txt").read_text() == "mine"
    assert (run / "results.csv.bak").read_text() == "mine"


def test_clearing_needs_the_marker(tmp_path):
    """clear_step_outputs refuses a folder without the marker, whatever it holds."""
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(NotARunFolderError, match="no .unitax-run marker"):
        clear_step_outputs(tmp_path, ["results"])
    assert (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    "args", [["--from", "universal", "--until", "domains"], ["--from", "results", "--until", "selection"]]
)
def test_contradictory_step_range_is_refused_before_anything_is_touched(tmp_path, fake_steps, capsys, args):
    """`--from universal --until domains` on a finished run: exit 2, every file as it was."""
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    before, ran = _tree(run), list(fake_steps)
    code = cli.main(["run", "--config", str(REPO / "assets/configs/tiny.yaml"), "--out", str(run), *args])
    assert code == 2 and "that range holds no step" in capsys.readouterr().err
    assert _tree(run) == before and fake_steps == ran
    with pytest.raises(ValueError, match="comes after"):
        pipeline.run_pipeline(TINY, run, from_step=args[1], until_step=args[3])
    assert _tree(run) == before


def test_an_empty_range_runs_nothing_and_clears_nothing(tmp_path, fake_steps):
    """`--until taxonomy` on a finished run has nothing to do: no file changes."""
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    before = _tree(run)
    status = pipeline.run_pipeline(TINY, run, until_step="taxonomy")
    assert status["state"] == "done"
    assert {k: v for k, v in _tree(run).items() if k != "log.txt"} == {
        k: v for k, v in before.items() if k != "log.txt"
    }


@pytest.mark.slow
def test_second_process_in_a_locked_run_is_refused_with_the_holders_details(tmp_path, fake_steps):
    """A run folder locked by a living process: run, resume, delete are refused naming it."""
    run = init_run_dir(tmp_path / "runs" / "busy")
    holder = _hold_lock(run)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=rf"in use by pid {holder.pid} on .* since"):
            pipeline.run_pipeline(TINY, run)
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            start_job(TINY, run_id="busy", root=tmp_path / "runs")
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            delete_run("busy", root=tmp_path / "runs")
        assert fake_steps == []
    finally:
        holder.kill()
        holder.wait()
    # the lock died with its holder: no stale lock file blocks the next run
    assert pipeline.run_pipeline(TINY, run)["state"] == "done"


def test_two_runs_started_in_the_same_second_get_different_folders(tmp_path):
    """Run ids collide by the second; the folder is created exclusively, so the second is -2."""
    first, second = create_run_dir(tmp_path, "demo"), create_run_dir(tmp_path, "demo")
    assert first != second and first.is_dir() and second.is_dir()
    assert (first / MARKER).is_file() and (second / MARKER).is_file()


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    """Disk full while replacing a file: the old file stays, no temporary file is left, the
    error names the file."""
    target = tmp_path / "results.json"
    fsio.write_json(target, {"old": 1})

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsio.os, "replace", full)
    with pytest.raises(OSError) as info:
        fsio.write_json(target, {"new": 2})
    assert fsio.os_error_message(info.value) == f"no space left on device ({target})"
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    with pytest.raises(TypeError, match="cannot write object"):  # a failure while serialising
        fsio.write_json(target, {"x": object()})
    assert json.loads(target.read_text()) == {"old": 1}


def test_disk_full_mid_run_fails_the_run_with_one_line(tmp_path, fake_steps, monkeypatch):
    """A step that hits a full disk: status "failed: no space left on device (path)", the
    earlier steps kept, no temporary files."""
    run = tmp_path / "r"
    bad = run / "crossdomain" / "matrices.npz"

    def full_disk(ctx):
        with fsio.atomic_write(bad) as fh:
            fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(pipeline.STEP_FUNCTIONS, "crossdomain", full_disk)
    status = pipeline.run_pipeline(TINY, run)
    assert status["state"] == "failed"
    assert status["error"] == f"no space left on device ({bad})"
    assert status["steps_done"] == ["domains", "features", "baselines"]
    assert not list(run.rglob(f"{fsio.TMP_PREFIX}*")) and not bad.exists()


def test_status_can_still_be_written_when_the_disk_is_full(tmp_path, monkeypatch):
    """write_status falls back to rewriting status.json in place when no new file fits."""
    write_status(tmp_path, state="running", step="baselines")

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("core.runs.folder.write_json", full)
    write_status(tmp_path, state="failed", error="no space left on device (x)")
    assert read_status(tmp_path)["state"] == "failed"


@pytest.mark.parametrize("content", ["", '{"state": "done", "steps_', "[1, 2]", '{"state": "odd"}', "\x00\x01binary"])
def test_corrupt_status_is_reported_as_corrupt_and_resume_touches_nothing(tmp_path, fake_steps, content, capsys):
    """A truncated status.json: the run reads as "corrupt" (never "nothing done"), a resume is
    refused naming the file, and no output is cleared."""
    run = tmp_path / "runs" / "r"
    pipeline.run_pipeline(TINY, run)
    (run / "status.json").write_text(content)
    before = _tree(run)
    status = Run(run).status()
    assert status["state"] == "corrupt" and "status.json is corrupt" in status["error"]
    with pytest.raises(CorruptRunError, match=r"status\.json is corrupt"):
        pipeline.run_pipeline(TINY, run)
    assert _tree(run) == before
    assert cli.main(["status", str(run)]) == 1
    assert "corrupt" in capsys.readouterr().out
    code = cli.main(["run", "--config", str(REPO / "assets/configs/tiny.yaml"), "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "status.json is corrupt" in err


def test_corrupt_steps_json_is_refused_too(tmp_path, fake_steps):
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    (run / "steps.json").write_text('{"domains": ')
    with pytest.raises(CorruptRunError, match=r"steps\.json is corrupt"):
        pipeline.run_pipeline(TINY, run)


@pytest.mark.parametrize(
    "victim, step",
    [
        ("crossdomain/matrices.npz", "crossdomain"),
        ("baselines/domain_0.pt", "baselines"),
        ("taxonomy/mcfp/taxonomy.json", "taxonomy"),
    ],
)
def test_truncated_output_names_the_file_and_resume_redoes_its_step(tmp_path, fake_steps, victim, step):
    """A truncated model or matrix: the resume says which file, and redoes that step on."""
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    data = (run / victim).read_bytes()
    (run / victim).write_bytes(data[: len(data) // 2])
    keep, todo, warnings = pipeline.plan_steps(run, pipeline.config_from_dict(TINY))
    assert todo[0] == step and len(warnings) == 1 and victim in warnings[0]
    fake_steps.clear()
    assert pipeline.run_pipeline(TINY, run)["state"] == "done"
    assert fake_steps == list(STEPS[STEPS.index(step) :])
    assert victim in (run / "log.txt").read_text()


def test_reading_a_truncated_matrix_names_the_file(tmp_path, fake_steps):
    """The dashboard's reader: a damaged matrices.npz is a ValueError naming it, not a zip trace."""
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    path = run / "crossdomain" / "matrices.npz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"matrices\.npz is unreadable"):
        Run(run).matrices("hard")


def test_delete_keeps_files_the_tool_did_not_write(tmp_path, fake_steps):
    """Deleting a run removes the tool's files; a user's file in it survives, and is reported."""
    run = tmp_path / "runs" / "r"
    pipeline.run_pipeline(TINY, run)
    (run / "taxonomy" / "mcfp" / "my-notes.md").write_text("keep me")
    kept = delete_run("r", root=tmp_path / "runs")
    assert kept == [run / "taxonomy" / "mcfp" / "my-notes.md"]
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) == [
        MARKER,
        "taxonomy/mcfp/my-notes.md",
    ]
    (run / "taxonomy" / "mcfp" / "my-notes.md").unlink()
    assert delete_run("r", root=tmp_path / "runs") == [] and not run.exists()
    (tmp_path / "runs" / "plain").mkdir()
    with pytest.raises(NotARunFolderError, match="refusing to delete"):
        delete_run("plain", root=tmp_path / "runs")


# ---------------------------------------------------------------------------- security


@pytest.mark.slow
def test_cancel_never_signals_a_stranger_behind_a_stale_pid(tmp_path):
    """status.json names a PID that now belongs to another process (after a crash or reboot):
    cancel marks the run cancelled and leaves that process alone."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run = init_run_dir(tmp_path / "stale")
        write_status(run, state="running", step="baselines", pid=stranger.pid, pid_identity="start:-1")
        status = cancel_job("stale", root=tmp_path, timeout=1.0)
        assert status["state"] == "cancelled"
        assert stranger.poll() is None  # still running: never signalled
        write_status(run, state="running", pid=stranger.pid, pid_identity=None)  # an old status without identity
        cancel_job("stale", root=tmp_path, timeout=1.0)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.slow
def test_cancel_stops_the_locks_holder(tmp_path):
    """The process that holds the run's lock is provably the run's own: cancel stops it."""
    run = init_run_dir(tmp_path / "mine")
    holder = _hold_lock(run, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        write_status(run, state="running", pid=12345678, pid_identity="start:-1")  # a lie in status.json
        assert cancel_job("mine", root=tmp_path, timeout=5.0)["state"] == "cancelled"
        assert holder.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_process_identity_changes_with_the_process():
    """(pid, start time) names one process: a finished process has no identity."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ident = process_identity(proc.pid)
        assert ident is not None and ident.startswith(("start:", "lstart:"))
        assert ident != process_identity(os.getpid())
    finally:
        proc.kill()
        proc.wait()
    assert process_identity(proc.pid) is None


# ---------------------------------------------------------------------------- command line


def _cli(tmp_path, *args, stdin=None):
    env = dict(os.environ, UNITAX_RUNS=str(tmp_path / "runs"), PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


@pytest.mark.parametrize(
    "attack, expect",
    [
        ("config is a folder", "config error"),
        ("config is binary", "config error"),
        ("config name too long", "config error"),
        ("out is a file", "is a file, not a run folder"),
        ("status of a plain folder", "is not a unitax run folder"),
        ("status of a missing run", "no run"),
    ],
)
@pytest.mark.slow
def test_cli_refusals_are_one_line_with_exit_2(tmp_path, attack, expect):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "plain").mkdir()
    tiny = str(REPO / "assets/configs/tiny.yaml")
    args = {
        "config is a folder": ["run", "--config", str(tmp_path)],
        "config is binary": ["run", "--config", str(binary)],
        "config name too long": ["run", "--config", str(tmp_path / ("x" * 300 + ".yaml"))],
        "out is a file": ["run", "--config", tiny, "--out", str(afile)],
        "status of a plain folder": ["status", str(tmp_path / "plain")],
        "status of a missing run": ["status", "nope"],
    }[attack]
    out = _cli(tmp_path, *args)
    assert out.returncode == 2, out
    assert out.stderr.count("\n") == 1 and expect in out.stderr and "Traceback" not in out.stderr


def test_cli_unwritable_runs_folder_is_one_line_with_exit_1(tmp_path, monkeypatch, capsys):
    """The runs folder cannot be written (read-only, a file in the way): one line, exit 1."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("UNITAX_RUNS", str(blocker / "runs"))
    code = cli.main(["run", "--config", str(REPO / "assets/configs/tiny.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "runs" in err

    def denied(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path / "ro"))
    monkeypatch.setattr(Path, "mkdir", denied)
    code = cli.main(["run", "--config", str(REPO / "assets/configs/tiny.yaml")])
    assert code == 1 and capsys.readouterr().err == f"error: permission denied ({tmp_path / 'ro'})\n"


@pytest.mark.slow
def test_cli_list_into_a_closed_pipe_ends_quietly(tmp_path):
    """`python -m core list | head`: no traceback when the reader goes away."""
    for i in range(300):
        d = init_run_dir(tmp_path / "runs" / f"run-{i:03d}")
        write_status(d, state="done", steps_done=list(STEPS))
    env = dict(os.environ, UNITAX_RUNS=str(tmp_path / "runs"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env
    )
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 1) and "Traceback" not in err and "Exception" not in err


def test_status_of_a_run_being_started_elsewhere_reads_running(tmp_path):
    """A run whose lock is held reads as running even with no pid in status.json."""
    run = init_run_dir(tmp_path / "x")
    write_status(run, state="running", pid=1, pid_identity="start:-1")
    with RunLock(run):
        assert Run(run).status()["state"] == "running"
    assert Run(run).status()["state"] == "failed"


# ---------------------------------------------------------------------------- links, markers, odd values


@pytest.mark.parametrize("link", ["universal", "taxonomy", "baselines", "log.txt", ".lock"])
def test_a_link_inside_a_run_folder_is_refused_and_its_target_untouched(tmp_path, fake_steps, link):
    """A run folder with a symbolic link in it (to a folder or file of the user's): reruns and
    deletes are refused before anything is written, cleared or truncated."""
    run = tmp_path / "runs" / "r"
    pipeline.run_pipeline(TINY, run)
    user = tmp_path / "user"
    (user / "v1").mkdir(parents=True)
    (user / "v1" / "model.pt").write_text("3 days of GPU")
    (user / "notes.txt").write_text("secret")
    target = run / link
    if target.is_dir():
        for p in sorted(target.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        target.rmdir()
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(user if link in ("universal", "taxonomy", "baselines") else user / "notes.txt")
    with pytest.raises((NotARunFolderError, ValueError), match="symbolic link"):
        pipeline.run_pipeline(TINY, run, from_step="baselines")
    with pytest.raises((NotARunFolderError, ValueError), match="symbolic link"):
        delete_run("r", root=tmp_path / "runs")
    assert (user / "v1" / "model.pt").read_text() == "3 days of GPU"
    assert (user / "notes.txt").read_text() == "secret"
    assert sorted(p.name for p in user.rglob("*")) == ["model.pt", "notes.txt", "v1"]


@pytest.mark.parametrize("marker", ["hi", '{"tool": "other"}', "link"])
def test_a_hand_made_or_linked_marker_is_not_proof(tmp_path, marker, capsys):
    """A `.unitax-run` the tool did not write (other content, a link) does not make a user's
    folder a run folder: nothing in it is touched."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text("mine")
    if marker == "link":
        (tmp_path / "elsewhere").write_text('{"tool": "unitax"}')
        (mine / MARKER).symlink_to(tmp_path / "elsewhere")
    else:
        (mine / MARKER).write_text(marker)
    with pytest.raises(NotARunFolderError, match="not a unitax run folder"):
        init_run_dir(mine)
    assert (mine / "results.json").read_text() == "mine"


def test_the_runs_folder_itself_is_never_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    with pytest.raises(NotARunFolderError, match="runs folder itself"):
        init_run_dir(tmp_path / "runs")


@pytest.mark.parametrize(
    "status",
    [
        '{"state": "running", "steps_done": [], "pid": 1e400}',
        '{"state": "done", "steps_done": [], "progress": null, "eta_s": "soon"}',
        '{"state": "done", "steps_done": [], "progress": "x"}',
        '{"state": "done", "steps_done": [], "message": 5}',
    ],
)
def test_a_status_with_values_of_the_wrong_type_is_corrupt_and_the_list_goes_on(tmp_path, status, capsys):
    """Valid JSON with nonsense values: that run reads as corrupt, every other run still lists."""
    good = init_run_dir(tmp_path / "runs" / "good")
    write_status(good, state="done", steps_done=list(STEPS))
    bad = init_run_dir(tmp_path / "runs" / "bad")
    (bad / "status.json").write_text(status)
    (bad / "results.json").write_text('{"headline": [1]}')
    from core.runs import list_runs

    states = {i.id: i.state for i in list_runs(tmp_path / "runs")}
    assert states == {"good": "done", "bad": "corrupt"}
    assert cli.main(["status", str(bad)]) == 1 and "corrupt" in capsys.readouterr().out


def test_a_deleted_status_with_outputs_left_is_corrupt_not_a_fresh_start(tmp_path, fake_steps):
    """status.json deleted by hand: the resume refuses instead of clearing every output."""
    run = tmp_path / "r"
    pipeline.run_pipeline(TINY, run)
    (run / "status.json").unlink()
    before = _tree(run)
    with pytest.raises(CorruptRunError, match=r"status\.json is missing"):
        pipeline.run_pipeline(TINY, run)
    assert _tree(run) == before


def test_open_plain_refuses_a_link_and_what_is_not_a_plain_file_and_opens_no_target(tmp_path):
    """fsio.open_plain (the decision log, the run's lock): never through a link, only a plain file."""
    target = tmp_path / "users_file"
    target.write_text("theirs")
    (tmp_path / "link").symlink_to(target)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
    with pytest.raises(ValueError, match=r"link is a symbolic link: refusing to open it as the decision log"):
        fsio.open_plain(tmp_path / "link", flags, 0o666, "the decision log")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match=r"fifo is not a plain file: refusing to use it as the run's lock"):
        fsio.open_plain(tmp_path / "fifo", os.O_RDWR, 0o644, "the run's lock")
    with pytest.raises(FileNotFoundError):
        fsio.open_plain(tmp_path / "missing", os.O_RDWR, 0o644, "the run's lock")
    assert target.read_text() == "theirs"
    fd = fsio.open_plain(tmp_path / "log", flags, 0o666, "the decision log")
    try:
        os.write(fd, b"line\n")
        assert os.get_inheritable(fd) is False  # close-on-exec
    finally:
        os.close(fd)
    assert (tmp_path / "log").read_text() == "line\n"


def test_files_are_readable_like_any_file_the_user_writes(tmp_path):
    """Atomic writes keep the usual permissions (umask), not mkstemp's private 0600."""
    fsio.write_json(tmp_path / "x.json", {})
    mode = (tmp_path / "x.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_evaluate_never_overwrites_a_users_files(tmp_path, capsys):
    """`evaluate --out DIR` into a folder of the user's: refused in one line; a file: refused."""
    from core.evaluate import main as evaluate_main

    (tmp_path / "best.csv").write_text("my thesis numbers")
    assert evaluate_main(["--n-concepts", "30", "--out", str(tmp_path)]) == 2
    assert "not empty and was not written by evaluate" in capsys.readouterr().err
    assert (tmp_path / "best.csv").read_text() == "my thesis numbers"
    assert evaluate_main(["--n-concepts", "30", "--out", str(tmp_path / "best.csv")]) == 2
    out = tmp_path / "fresh"
    assert evaluate_main(["--n-concepts", "30", "--out", str(out)]) == 0
    assert evaluate_main(["--n-concepts", "30", "--out", str(out)]) == 0  # its own folder: rewritten


def test_predict_with_a_truncated_model_names_the_file(tmp_path):
    """A damaged model file is one line naming it, not torch's unpickling story."""
    from core.heads import load_model

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"model\.pt.* is unreadable"):
        load_model(bad)


def test_a_run_and_a_sweep_never_start_on_one_folder(tmp_path):
    """Two tabs: a sweep launched (its process alive, not yet holding the lock) refuses a resume
    and a delete; a launched run refuses a sweep the same way."""
    run = init_run_dir(tmp_path / "runs" / "r")
    starter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        Run(run).write_sweep_status(state="pending", pid=starter.pid, pid_identity=process_identity(starter.pid))
        with pytest.raises(LockedError, match=rf"a sweep \(pid {starter.pid}\) is starting"):
            start_job(TINY, run_id="r", root=tmp_path / "runs")
        with pytest.raises(LockedError, match="a sweep"):
            delete_run("r", root=tmp_path / "runs")
        Run(run).write_sweep_status(state="cancelled", pid=None, pid_identity=None)
        write_status(run, state="pending", pid=starter.pid, pid_identity=process_identity(starter.pid))
        from core.runs import starting_job

        assert starting_job(run) == f"the run (pid {starter.pid})"
    finally:
        starter.kill()
        starter.wait()
    assert starting_job(run) is None  # a dead process starts nothing


@pytest.mark.slow
def test_sigterm_while_a_run_starts_reads_cancelled(tmp_path):
    """SIGTERM in the seconds before the first step (planning, loading torch): cancelled, exit
    130, never a folder stuck at "pending"."""
    out = tmp_path / "r"
    env = dict(os.environ, UNITAX_RUNS=str(tmp_path), UNITAX_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "core", "run", "--config", str(REPO / "assets/configs/tiny.yaml"),
                             "--out", str(out), "--no-progress"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    for _ in range(600):  # until it holds the run's lock
        if (out / ".lock").exists() and (out / ".lock").stat().st_size:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    assert Run(out).status()["state"] == "cancelled"


def test_a_run_without_a_config_cannot_be_resumed_and_says_why(tmp_path, capsys):
    init_run_dir(tmp_path / "runs" / "bare")
    with pytest.raises(ValueError, match="has no config to start from"):
        start_job(None, run_id="bare", root=tmp_path / "runs")
    (tmp_path / "afile").write_text("x")
    assert cli.main(["list", "--root", str(tmp_path / "afile")]) == 2
    assert "is not a folder of runs" in capsys.readouterr().err


def test_an_export_or_report_never_replaces_a_device_a_pipe_or_a_run_folders_own_files(tmp_path):
    from core.runs import F, check_out_file, init_run_dir

    run = init_run_dir(tmp_path / "run")
    (run / F.CURATION).write_text("{}\n")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a plain file"):
        check_out_file("/dev/null", force=True)
    with pytest.raises(ValueError, match="not a plain file"):
        check_out_file(fifo, force=True)
    with pytest.raises(ValueError, match="inside the run folder"):
        check_out_file(run / F.CURATION, force=True)
    (run / "sub").mkdir()
    with pytest.raises(ValueError, match="inside the run folder"):
        check_out_file(run / "sub" / ".." / "new.csv")  # a new file anywhere in it, however spelled
    with pytest.raises(ValueError, match="does not exist"):
        check_out_file(tmp_path / "nowhere" / "x.csv")
    with pytest.raises(ValueError, match="is empty"):
        check_out_file("")
    assert check_out_file(run / F.REPORT, allow=(run / F.REPORT,)) == run / F.REPORT  # the run's own report
    mine = tmp_path / "mine.csv"
    mine.write_text("keep")
    with pytest.raises(ValueError, match="add --force"):
        check_out_file(mine)
    assert check_out_file(mine, force=True) == mine and mine.read_text() == "keep"  # checked, not written
