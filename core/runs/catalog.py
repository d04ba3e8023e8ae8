"""The runs root as a catalogue: open a run, list the runs, delete one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.runlock import LOCK_NAME, LockedError, RunLock
from core.runs.folder import (
    NotARunFolderError,
    check_no_links,
    clear_step_outputs,
    is_run_dir,
    remove_empty_dirs,
    resolve_run_dir,
    starting_job,
)
from core.runs.layout import BOOKKEEPING, MARKER, RUN_ID, STEPS, F, runs_root, validate_run_id
from core.runs.run import Run

__all__ = ["RunInfo", "run_info", "open_run", "list_runs", "delete_run", "run_in_root"]


@dataclass(frozen=True)
class RunInfo:
    """One line of the run history (what ``list_runs`` returns)."""

    id: str
    path: Path
    created: str | None
    state: str
    step: str | None
    config_name: str | None
    headline: dict = field(default_factory=dict)  # e.g. {"baseline_mean": .., "universal_mean/mcfp": ..}
    message: str = ""


def run_info(run: Run) -> RunInfo:
    """One line of the run history for ``run``."""
    status = run.status()
    cfg = run.config
    if status["state"] == "corrupt":
        return RunInfo(
            id=run.id,
            path=run.path,
            created=None,
            state="corrupt",
            step=None,
            config_name=cfg.get("name"),
            message=status["error"],
        )
    env = run.environment()
    res = run.results_json()
    return RunInfo(
        id=run.id,
        path=run.path,
        created=env.get("created") or env.get("start_time") or status.get("updated"),
        state=status.get("state", "pending"),
        step=status.get("step"),
        config_name=cfg.get("name"),
        headline=dict(res.get("headline", {})) if isinstance(res, dict) else {},
        message=status.get("message") or "",
    )


def open_run(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Open an existing run by id (under ``root``) or by folder path (command line)."""
    path = resolve_run_dir(run_id_or_path, root)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {os.fspath(run_id_or_path)!r} under {path.parent}")
    if not (is_run_dir(path) or (path / F.STATUS).exists()):
        raise NotARunFolderError(f"{path} is not a unitax run folder")
    return Run(path)


def run_in_root(run_id: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of run ``run_id`` inside the runs root, refusing ids that are not plain names
    and folders whose real location is outside the root (a symbolic link out)."""
    base = Path(root) if root is not None else runs_root()
    path = base / validate_run_id(run_id)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {base}")
    real_base = os.path.realpath(base)
    if os.path.dirname(os.path.realpath(path)) != real_base:
        raise NotARunFolderError(f"run {run_id!r} points outside {base}")
    return path


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """All runs under ``root`` (default :func:`runs_root`), newest first; links that lead out
    of the root are left out."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
    infos = []
    for path in base.iterdir():
        if not RUN_ID.fullmatch(path.name):
            continue
        try:
            path = run_in_root(path.name, base)
        except (ValueError, FileNotFoundError):
            continue
        if is_run_dir(path) or (path / F.STATUS).exists() or (path / F.CONFIG).exists():
            infos.append(run_info(Run(path)))
    return sorted(infos, key=lambda i: (i.created or "", i.id), reverse=True)


def delete_run(run_id: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Delete a run: the files the tool wrote there, and the folder once it is empty.

    Refuses path-like ids, folders without the marker or holding a link, and runs a living
    process works in (:class:`LockedError` naming it). Files the tool did not write are kept
    and returned (an empty list: the folder is gone)."""
    path = run_in_root(run_id, root)
    if not is_run_dir(path):
        raise NotARunFolderError(f"{path} is not a unitax run folder (no {MARKER} marker): refusing to delete it")
    check_no_links(path)
    with RunLock(path, purpose="delete", wait_s=0.5):
        busy = starting_job(path)
        if busy:
            raise LockedError(f"run {run_id!r}: {busy} is starting; cancel it first")
        clear_step_outputs(path, STEPS)
        for pattern in BOOKKEEPING:
            for p in path.glob(pattern):
                if p.is_file() and p.name != LOCK_NAME:
                    p.unlink(missing_ok=True)
    (path / LOCK_NAME).unlink(missing_ok=True)
    kept = sorted(Path(top) / f for top, _, files in os.walk(path) for f in files if f != MARKER)
    if kept:
        return kept
    (path / MARKER).unlink(missing_ok=True)
    remove_empty_dirs(path)
    path.rmdir()
    return []
