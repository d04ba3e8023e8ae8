"""Background jobs: launch ``python -m core run`` detached, poll it, cancel it.

The dashboard starts a run with :func:`start_job` and polls ``open_run(run_id).status()``; the
job outlives page reloads because it is its own process (new session). No torch import here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.runs import (
    STEPS,
    Run,
    append_log,
    new_run_id,
    pid_alive,
    read_status,
    runs_root,
    validate_run_id,
    write_status,
)

__all__ = ["start_job", "cancel_job", "is_alive"]

_REPO = Path(__file__).resolve().parent.parent
_CHILDREN: dict[int, subprocess.Popen] = {}  # reaped on poll so finished jobs leave no zombie


def _validate(config: str | os.PathLike | dict) -> None:
    """Raise (ValueError/TypeError with the key path, FileNotFoundError) for a bad config or a
    dataset that is not where the config says."""
    from core.config import config_from_dict, load_config
    from core.pipeline import check_data

    cfg = config_from_dict(config) if isinstance(config, dict) else load_config(Path(config).expanduser())
    check_data(cfg)


def _config_to_file(config: str | os.PathLike | dict, run_dir: Path) -> Path:
    if isinstance(config, dict):
        import yaml

        path = run_dir / "config.input.yaml"
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)
        return path
    return Path(config).expanduser().resolve()


def start_job(
    config: str | os.PathLike | dict,
    *,
    run_id: str | None = None,
    root: str | os.PathLike | None = None,
    from_step: str | None = None,
    python: str | None = None,
) -> str:
    """Launch ``python -m core run --config CONFIG --out ROOT/RUN_ID`` detached; return run_id.

    ``config`` is a YAML path or a config dict (validated first: a bad config raises here and
    starts nothing). An existing ``run_id`` resumes that run. stdout/stderr go to the run's
    log.txt; the process id is written to status.json.
    """
    if from_step is not None and from_step not in STEPS:
        raise ValueError(f"from_step {from_step!r} is not a step; valid: {list(STEPS)}")
    base = Path(root) if root is not None else runs_root()
    if run_id is None:
        name = Path(config).stem if not isinstance(config, dict) else str(config.get("name", "run"))
        run_id = new_run_id(name)
    run_dir = base / validate_run_id(run_id)
    _validate(config)  # a bad config raises here, before any folder or process exists
    status = read_status(run_dir) if run_dir.exists() else None
    if status and status["state"] == "running" and pid_alive(status.get("pid")):
        raise ValueError(f"run {run_id!r} is already running (pid {status['pid']})")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = _config_to_file(config, run_dir)
    cmd = [python or sys.executable, "-m", "core", "run", "--config", str(config_path), "--out", str(run_dir)]
    if from_step:
        cmd += ["--from", from_step]
    write_status(run_dir, state="pending", message="starting", error=None, pid=None)
    append_log(run_dir, "job: " + " ".join(cmd))
    log = open(run_dir / "log.txt", "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        cmd,
        cwd=str(_REPO),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    log.close()
    _CHILDREN[proc.pid] = proc
    write_status(run_dir, pid=proc.pid)
    return run_id


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def is_alive(run_id: str, *, root: str | os.PathLike | None = None) -> bool:
    """True if the run's process is still running. A "running"/"pending" status whose process
    is gone is rewritten as state "failed" with error "interrupted ..." and False is returned."""
    _reap()
    run_dir = (Path(root) if root is not None else runs_root()) / validate_run_id(run_id)
    status = read_status(run_dir)
    pid = status.get("pid")
    if pid_alive(pid):
        return True
    if status["state"] in ("running", "pending") and pid is not None:
        effective = Run(run_dir).status()
        if effective["state"] == "failed":
            write_status(run_dir, state="failed", message="interrupted", error=effective["error"])
    return False


def cancel_job(run_id: str, *, root: str | os.PathLike | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send SIGTERM to a running job and wait up to ``timeout`` s; return the final status.

    The pipeline catches SIGTERM and writes state "cancelled" itself; if the process is already
    gone or does not stop in time, the status is set to "cancelled" here.
    """
    run_dir = (Path(root) if root is not None else runs_root()) / validate_run_id(run_id)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {run_dir.parent}")
    status = read_status(run_dir)
    pid = status.get("pid")
    if status["state"] not in ("running", "pending"):
        return status
    if pid_alive(pid):
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap()
            if not pid_alive(pid):
                break
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.2)
    _reap()
    status = read_status(run_dir)
    if status["state"] in ("running", "pending"):
        status = write_status(run_dir, state="cancelled", message="cancelled by user")
        append_log(run_dir, "cancelled by user")
    return status
