"""Background jobs: launch ``python -m core run`` (or ``sweep``) detached, poll it, cancel it.

The dashboard starts a run with :func:`start_job` (a sweep with :func:`start_sweep`) and polls
the run's status (``Run.sweep_status()``); the job outlives page reloads because it is its own
process (new session). Only the run's own process is ever signalled. No torch import here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.fsio import read_json
from core.runlock import lock_holder, process_identity, same_process
from core.runs import (
    STEPS,
    F,
    LockedError,
    Run,
    RunLock,
    append_log,
    create_run_dir,
    init_run_dir,
    read_status,
    runs_root,
    starting_job,
    validate_run_id,
    write_status,
)

__all__ = ["start_job", "cancel_job", "is_alive", "start_sweep", "cancel_sweep", "start_curated", "cancel_curated"]

_REPO = Path(__file__).resolve().parent.parent
_CHILDREN: dict[int, subprocess.Popen] = {}  # reaped on poll so finished jobs leave no zombie


def _validate(config: str | os.PathLike | dict) -> None:
    """Raise (ValueError/TypeError with the key path, FileNotFoundError) for a bad config or a
    dataset that is not where the config says."""
    from core.config import config_from_dict, load_config
    from core.domains import check_data

    cfg = config_from_dict(config) if isinstance(config, dict) else load_config(Path(config).expanduser())
    check_data(cfg)


def _config_to_file(config: str | os.PathLike | dict, run_dir: Path) -> Path:
    if isinstance(config, dict):
        return Run(run_dir).write_config(config, input_only=True)
    return Path(config).expanduser().resolve()


def _run_dir_for(base: Path, run_id: str | None, config: str | os.PathLike | dict) -> Path:
    """A new, unique run folder, or the existing run folder ``run_id`` (resume)."""
    if run_id is None:
        name = Path(config).stem if not isinstance(config, dict) else str(config.get("name", "run"))
        return create_run_dir(base, name)
    return init_run_dir(base / validate_run_id(run_id))


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
    starts nothing). An existing ``run_id`` resumes that run: refused (LockedError) while a
    process works in it. stdout/stderr go to the run's log.txt; the process id and its start
    time are written to status.json.
    """
    if config is None:
        raise ValueError(f"run {run_id!r} has no config to start from (it was stopped before writing one): "
                         "launch a new run instead")  # fmt: skip
    if from_step is not None and from_step not in STEPS:
        raise ValueError(f"from_step {from_step!r} is not a step; valid: {list(STEPS)}")
    base = Path(root) if root is not None else runs_root()
    if run_id is not None:
        validate_run_id(run_id)
    _validate(config)  # a bad config raises here, before any folder or process exists
    run_dir = _run_dir_for(base, run_id, config)
    with RunLock(run_dir, purpose="start", wait_s=0.5):
        busy = starting_job(run_dir)
        if busy:
            raise LockedError(f"run {run_dir.name!r}: {busy} is starting; wait for it or cancel it")
        config_path = _config_to_file(config, run_dir)
        cmd = [python or sys.executable, "-m", "core", "run", "--config", str(config_path), "--out", str(run_dir)]
        if from_step:
            cmd += ["--from", from_step]
        write_status(run_dir, state="pending", message="starting", error=None, pid=None, pid_identity=None)
        append_log(run_dir, "job: " + " ".join(cmd))
        proc = _launch(cmd, run_dir)
        write_status(run_dir, pid=proc.pid, pid_identity=process_identity(proc.pid))
    return run_dir.name


def _launch(cmd: list[str], run_dir: Path, log: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH", "")) if p)
    with open(log or Run(run_dir).log_path(), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=str(_REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def _run_process(run_dir: Path) -> tuple[int, str] | None:
    """(pid, identity) of the process provably working for this run: the holder of its lock,
    or the process a job started that has not taken the lock yet. None when there is none."""
    holder = lock_holder(run_dir)
    if holder and same_process(holder.get("pid"), holder.get("identity")):
        return int(holder["pid"]), holder["identity"]
    status = read_status(run_dir)
    if status["state"] in ("running", "pending") and same_process(status.get("pid"), status.get("pid_identity")):
        return int(status["pid"]), status["pid_identity"]
    return None


def _run_dir(run_id: str, root: str | os.PathLike | None) -> Path:
    run_dir = (Path(root) if root is not None else runs_root()) / validate_run_id(run_id)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {run_dir.parent}")
    return run_dir


def is_alive(run_id: str, *, root: str | os.PathLike | None = None) -> bool:
    """True if a process works for the run. A "running"/"pending" status whose process is gone
    is rewritten as state "failed" with error "interrupted ..." and False is returned."""
    _reap()
    run_dir = _run_dir(run_id, root)
    if _run_process(run_dir) is not None:
        return True
    effective = Run(run_dir).status()
    if effective["state"] == "failed" and read_status(run_dir)["state"] in ("running", "pending"):
        write_status(run_dir, state="failed", message="interrupted", error=effective["error"])
    return False


def _signal(pid: int, identity: str, sig: int) -> None:
    """Send ``sig`` to the run's process (and its process group when it leads one), but only
    if ``pid`` still names the process ``identity`` was taken from."""
    if not same_process(pid, identity):
        return
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(pid: int, identity: str, timeout: float) -> None:
    """SIGTERM the process, then SIGKILL it if it is still there after ``timeout`` s."""
    _signal(pid, identity, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and same_process(pid, identity):
        _reap()
        time.sleep(0.1)
    _signal(pid, identity, signal.SIGKILL)
    _reap()


def _stop_side_job(run_dir: Path, purpose: str, status: dict, timeout: float) -> None:
    """Stop a sweep or curated-model job: the holder of the run's lock when it took it for
    ``purpose`` (the job's own lock, never a launcher's "start ..."), else the process its
    ``status`` records while running or pending; either only while it is that same process."""
    holder = lock_holder(run_dir)
    if holder and holder.get("purpose") == purpose and same_process(holder.get("pid"), holder.get("identity")):
        _stop(int(holder["pid"]), holder["identity"], timeout)
    elif status.get("state") in ("running", "pending") and same_process(status.get("pid"), status.get("pid_identity")):
        _stop(int(status["pid"]), status["pid_identity"], timeout)


def start_sweep(
    run_id: str,
    *,
    root: str | os.PathLike | None = None,
    methods: list[str] | None = None,
    grid: str = "coarse",
    epochs: int | None = None,
    fresh: bool = False,
    python: str | None = None,
) -> str:
    """Launch ``python -m core sweep RUN ...`` detached (resumes a sweep's finished rows; with
    ``fresh`` a new table starts and the current one is set aside).

    Refused (ValueError) for a run that cannot be swept and (LockedError) while a process works
    in the run. Its output goes to ``RUN/sweep/log.txt``, its progress to the sweep status."""
    from core.sweep import check_sweep

    run_dir = _run_dir(run_id, root)
    check_sweep(run_dir, methods, grid, epochs)
    run = Run(run_dir)
    with RunLock(run_dir, purpose="start sweep", wait_s=0.5):
        busy = starting_job(run_dir)
        if busy:
            raise LockedError(f"run {run_id!r}: {busy} is starting; wait for it or cancel it")
        cmd = [python or sys.executable, "-m", "core", "sweep", str(run_dir), "--grid", grid]
        cmd += ["--methods", ",".join(methods)] if methods else []
        cmd += ["--epochs", str(int(epochs))] if epochs else []
        cmd += ["--fresh"] if fresh else []
        run.sweep_log_path().parent.mkdir(exist_ok=True)
        run.write_sweep_status(state="pending", done=0, total=None, eta_s=None, message="starting", error=None)
        proc = _launch(cmd, run_dir, log=run.sweep_log_path())
        run.write_sweep_status(pid=proc.pid, pid_identity=process_identity(proc.pid))
    return run_id


def cancel_sweep(run_id: str, *, root: str | os.PathLike | None = None, timeout: float = 10.0) -> dict:
    """Stop a running sweep (its finished rows stay); return the sweep's final status."""
    run_dir = _run_dir(run_id, root)
    run = Run(run_dir)
    status = run.sweep_status() or {}
    _stop_side_job(run_dir, "sweep", status, timeout)
    # the recorded state, not the effective one: a process killed before it could write
    # "cancelled" reads as "failed: interrupted", but the user asked for a cancel
    recorded = read_json(run.file(F.SWEEP_STATUS), default={}) or {}
    if recorded.get("state") in ("running", "pending"):
        return run.write_sweep_status(state="cancelled", message="cancelled by user", pid=None, pid_identity=None)
    return run.sweep_status() or {}


def _starting_curated(run: Run) -> str | None:
    """A curated-model job launched in the run whose process is alive (before it takes the lock)."""
    status = read_json(run.file(F.CURATED_STATUS), default={}) or {}
    if status.get("state") in ("running", "pending") and same_process(status.get("pid"), status.get("pid_identity")):
        return f"a curated-model job (pid {status['pid']})"
    return None


def start_curated(
    run_id: str,
    *,
    method: str,
    value: float | None,
    root: str | os.PathLike | None = None,
    device: str | None = None,
    python: str | None = None,
) -> str:
    """Launch ``python -m core curate RUN train --method M [--param V] [--device D]`` detached:
    train the universal model on the curated taxonomy of that setting (:mod:`core.curated`).

    Refused (ValueError) for a run it cannot train in and (LockedError) while a process works
    in the run. Its output goes to ``RUN/curated/log.txt``, its progress to the curated status."""
    from core.curated import check_curated

    run_dir = _run_dir(run_id, root)
    check_curated(run_dir, method, value)
    run = Run(run_dir)
    with RunLock(run_dir, purpose="start curated", wait_s=0.5):
        busy = starting_job(run_dir) or _starting_curated(run)
        if busy:
            raise LockedError(f"run {run_id!r}: {busy} is starting; wait for it or cancel it")
        cmd = [python or sys.executable, "-m", "core", "curate", str(run_dir), "train", "--method", method]
        cmd += ["--param", str(value)] if value is not None else []
        cmd += ["--device", str(device)] if device else []
        run.curated_log_path().parent.mkdir(exist_ok=True)
        run.write_curated_status(state="pending", progress=0.0, eta_s=None, message="starting", error=None,
                                 result=None, base={"method": method, "value": value})  # fmt: skip
        proc = _launch(cmd, run_dir, log=run.curated_log_path())
        run.write_curated_status(pid=proc.pid, pid_identity=process_identity(proc.pid))
    return run_id


def cancel_curated(run_id: str, *, root: str | os.PathLike | None = None, timeout: float = 10.0) -> dict:
    """Stop a curated-model job (the previous curated model stays); return its final status."""
    run_dir = _run_dir(run_id, root)
    run = Run(run_dir)
    status = read_json(run.file(F.CURATED_STATUS), default={}) or {}
    _stop_side_job(run_dir, "curated", status, timeout)
    # the recorded state: a process killed before it could write "cancelled" was still cancelled
    recorded = read_json(run.file(F.CURATED_STATUS), default={}) or {}
    if recorded.get("state") in ("running", "pending"):
        return run.write_curated_status(state="cancelled", message="cancelled by user", pid=None, pid_identity=None)
    return run.curated_status() or {}


def cancel_job(run_id: str, *, root: str | os.PathLike | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Stop a running job: SIGTERM, then SIGKILL after ``timeout`` s; return the final status.

    Only the run's own process is ever signalled (:func:`_run_process`): a PID left in
    status.json after a crash or reboot may name any process and is not trusted. The pipeline
    catches SIGTERM and writes state "cancelled" itself; if there is no process, or it does not
    stop in time, the status is set to "cancelled" here.
    """
    run_dir = _run_dir(run_id, root)
    target = _run_process(run_dir)
    if target is None and read_status(run_dir)["state"] not in ("running", "pending"):
        return read_status(run_dir)
    if target is not None:
        _stop(*target, timeout)
    status = read_status(run_dir)
    if status["state"] in ("running", "pending"):
        status = write_status(run_dir, state="cancelled", message="cancelled by user", pid=None, pid_identity=None)
        append_log(run_dir, "cancelled by user")
    return status
