"""Run-folder bookkeeping: creating and recognising run folders, status, log, step outputs.

A folder is a run folder only if the tool created it (it holds the marker, a plain file). The
tool writes, clears and deletes only inside such folders, never through a symbolic link, and
only the files it writes itself (:data:`core.runs.layout.STEP_OUTPUTS`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import stat
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.fsio import CorruptFileError, read_json_strict, write_json
from core.runlock import lock_holder, process_identity, same_process
from core.runs.layout import MARKER, REQUIRED, STATES, STEP_OUTPUTS, STEPS, F, new_run_id, runs_root, validate_run_id

__all__ = [
    "CorruptRunError",
    "NotARunFolderError",
    "starting_job",
    "create_run_dir",
    "init_run_dir",
    "is_run_dir",
    "check_no_links",
    "resolve_run_dir",
    "read_status",
    "write_status",
    "effective_status",
    "append_log",
    "pid_alive",
    "clear_step_outputs",
    "check_step_outputs",
    "remove_empty_dirs",
]

_STATUS_KEYS = (
    "state",
    "step",
    "steps_done",
    "progress",
    "eta_s",
    "message",
    "pid",
    "pid_identity",
    "updated",
    "error",
)


class CorruptRunError(CorruptFileError):
    """The run's bookkeeping (status.json, steps.json) exists but cannot be read."""


class NotARunFolderError(ValueError):
    """A folder that the tool did not create (no marker) was given where a run folder is needed."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_marker(path: Path) -> None:
    write_json(path / MARKER, {"tool": "unitax", "created": _now()})


def is_run_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder the tool created: it holds the marker, a plain file (not a
    link) with the tool's content."""
    marker = Path(path) / MARKER
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode) or os.lstat(marker).st_size > 4096:
            return False
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("tool") == "unitax"


def create_run_dir(root: str | os.PathLike | None = None, name: str = "run") -> Path:
    """Create a new, empty run folder ``ROOT/<time>-<name>[-N]`` with its marker and return it.

    The folder is created exclusively, so two processes starting in the same second get two
    folders (the second gets a ``-2`` suffix, and so on)."""
    base = Path(root) if root is not None else runs_root()
    base.mkdir(parents=True, exist_ok=True)
    if is_run_dir(base):
        raise NotARunFolderError(f"the runs folder {base} is itself a run folder: choose another runs folder")
    stem = new_run_id(name)
    for n in range(1, 1000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _write_marker(path)
        return path
    raise ValueError(f"could not find a free run id for {stem!r} under {base}")


def init_run_dir(path: str | os.PathLike) -> Path:
    """Make ``path`` a run folder: create it (with the marker) if it does not exist, mark it if
    it is an empty folder, accept it if it is marked; refuse anything else
    (:class:`NotARunFolderError` naming the folder), so the tool never writes into, or later
    clears, a folder of the user's."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotARunFolderError(f"{path} is a file, not a run folder")
    if os.path.realpath(path) == os.path.realpath(runs_root()):
        raise NotARunFolderError(f"{path} is the runs folder itself, not a run folder: choose a folder inside it")
    if is_run_dir(path):
        check_no_links(path)
        return path
    if path.is_dir() and any(path.iterdir()):
        raise NotARunFolderError(
            f"{path} is not empty and is not a unitax run folder (no {MARKER} marker): refusing to write "
            "into it; choose a new or empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    _write_marker(path)
    return path


def check_no_links(run_dir: str | os.PathLike) -> None:
    """Refuse (:class:`NotARunFolderError`) a run folder holding a symbolic link: the tool never
    makes one, and writing or clearing through it could reach a user's files."""
    for top, dirs, files in os.walk(run_dir, followlinks=False):
        for name in dirs + files:
            if os.path.islink(os.path.join(top, name)):
                raise NotARunFolderError(
                    f"{os.path.join(top, name)} is a symbolic link: the run folder "
                    f"{run_dir} holds something the tool did not create; refusing to touch it"
                )


def resolve_run_dir(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Map a run id (validated) or an existing run folder path to its folder (command line only:
    the dashboard names runs by id). A value with a path separator is taken as a path."""
    text = os.fspath(run_id_or_path)
    if isinstance(run_id_or_path, Path) or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"run folder {text!r} does not exist")
        return path
    base = Path(root) if root is not None else runs_root()
    return base / validate_run_id(text)


# ---------------------------------------------------------------------------- status


def _default_status() -> dict:
    return {
        "state": "pending",
        "step": None,
        "steps_done": [],
        "progress": 0.0,
        "eta_s": None,
        "message": "",
        "pid": None,
        "pid_identity": None,
        "updated": None,
        "error": None,
    }


def read_status(run_dir: str | os.PathLike) -> dict:
    """The status dict of a run folder, with every key present ("pending" when there is none
    yet). A status.json that exists but is corrupt raises :class:`CorruptRunError`."""
    path = Path(run_dir) / F.STATUS
    try:
        status = read_json_strict(path)
    except FileNotFoundError:
        return _default_status()
    except CorruptFileError as exc:
        raise CorruptRunError(str(exc)) from None
    wrong = _status_problem(status)
    if wrong:
        raise CorruptRunError(f"{path} is corrupt: {wrong}")
    base = _default_status()
    base.update(status)
    return base


def _status_problem(status: Any) -> str | None:
    """What makes ``status`` not a status of this tool (None when it is one)."""
    if not isinstance(status, dict):
        return "not a mapping"
    steps = status.get("steps_done", [])
    if not isinstance(steps, list) or any(s not in STEPS for s in steps):
        return f"steps_done {str(steps)[:80]} is not a list of steps"
    if status.get("state") not in STATES or status.get("step") not in (None, *STEPS):
        return f"state {str(status.get('state'))[:40]!r} / step {str(status.get('step'))[:40]!r} unknown"
    for key, kinds in (("progress", (int, float)), ("eta_s", (int, float)), ("pid", (int,))):
        value = status.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < 0
        ):
            return f"{key} {str(value)[:40]} is not a finite number >= 0"
    for key in ("message", "error", "pid_identity", "updated"):
        if status.get(key) is not None and not isinstance(status.get(key), str):
            return f"{key} is not text"
    return None


def has_outputs(run_dir: str | os.PathLike) -> bool:
    """True if any step of the run left a file (the folder is more than a new job's)."""
    return any(_step_files(Path(run_dir), step) for step in STEPS)


def write_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge ``fields`` into ``status.json`` and write it atomically; return the new status.

    Keys: state (one of STATES), step, steps_done, progress (0..1), eta_s, message, pid,
    pid_identity, error. When the disk is full the file is rewritten in place (it reuses its own
    blocks), so a run can still say that it failed.
    """
    unknown = set(fields) - set(_STATUS_KEYS)
    if unknown:
        raise ValueError(f"unknown status field(s) {sorted(unknown)}; valid: {list(_STATUS_KEYS)}")
    if "state" in fields and fields["state"] not in STATES:
        raise ValueError(f"state {fields['state']!r} is not one of {STATES}")
    status = read_status(run_dir)
    status.update(fields)
    status["updated"] = _now()
    path = Path(run_dir) / F.STATUS
    try:
        write_json(path, status)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        with open(path, "r+", encoding="utf-8") as fh:
            fh.truncate(0)
            fh.write(json.dumps(status, default=str))
    return status


def corrupt_status(error: str) -> dict:
    """The status reported for a run whose bookkeeping cannot be read: state "corrupt"."""
    status = _default_status()
    status.update(state="corrupt", message="corrupt bookkeeping", error=error)
    return status


def append_log(run_dir: str | os.PathLike, line: str) -> None:
    """Append one time-stamped line to ``log.txt`` (best effort: a full disk loses the line,
    not the run)."""
    stamp = datetime.now().strftime("%H:%M:%S")
    try:
        with open(Path(run_dir) / F.LOG, "a", encoding="utf-8") as fh:
            fh.write(f"[{stamp}] {line.rstrip()}\n")
    except OSError:
        pass


def pid_alive(pid: int | None) -> bool:
    """True if process ``pid`` exists on this machine and is not a zombie."""
    return process_identity(pid) is not None


def effective_status(run_dir: Path, status: dict, hostname: str | None) -> dict:
    """A "running"/"pending" status whose process is gone is reported as failed (interrupted).

    The process is there while it holds the run's lock, or (before it took the lock) while the
    stored pid still names the process that was started (same start time)."""
    if status.get("state") not in ("running", "pending") or status.get("pid") is None:
        return status
    if hostname and hostname != socket.gethostname():
        return status  # another machine's process: cannot check
    if lock_holder(run_dir) is not None or same_process(status.get("pid"), status.get("pid_identity")):
        return status
    out = dict(status)
    out["state"] = "failed"
    out["error"] = out.get("error") or f"interrupted: process {status.get('pid')} is gone"
    out["message"] = "interrupted"
    return out


# ---------------------------------------------------------------------------- step outputs


def _own_file(run_dir: Path, path: Path) -> bool:
    """True if ``path`` is a plain file reached without any symbolic link below ``run_dir``."""
    rel = path.relative_to(run_dir)
    return os.path.realpath(path) == os.path.join(os.path.realpath(run_dir), rel) and path.is_file()


def _step_files(run_dir: Path, step: str) -> list[Path]:
    return sorted({p for pattern in STEP_OUTPUTS[step] for p in run_dir.glob(pattern) if _own_file(run_dir, p)})


def remove_empty_dirs(run_dir: str | os.PathLike) -> None:
    """Remove the empty folders below ``run_dir`` (never following links); keeps the rest."""
    for top, dirs, _ in os.walk(run_dir, topdown=False, followlinks=False):
        for name in dirs:
            try:
                os.rmdir(os.path.join(top, name))  # fails unless empty (or a link): a user's file keeps its folder
            except OSError:
                pass


def clear_step_outputs(run_dir: str | os.PathLike, steps: list[str] | tuple[str, ...]) -> list[Path]:
    """Remove the files that ``steps`` write (and folders left empty); return what was removed.

    Only in a marked run folder (:class:`NotARunFolderError` otherwise), never through a link;
    files the tool does not write are never touched."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise NotARunFolderError(f"{run_dir} is not a unitax run folder (no {MARKER} marker): refusing to clear it")
    check_no_links(run_dir)
    removed = []
    for step in steps:
        for path in _step_files(run_dir, step):
            path.unlink(missing_ok=True)
            removed.append(path)
    remove_empty_dirs(run_dir)
    return removed


def _check_file(path: Path) -> str | None:
    """None if ``path`` reads back, else what is wrong with it (cheap integrity checks)."""
    try:
        if path.suffix in (".npz", ".pt"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return f"damaged member {bad}" if bad else None
        if path.suffix == ".json":
            read_json_strict(path)
        elif path.stat().st_size == 0 and path.suffix in (".csv", ".graphml"):
            return "empty file"
    except (zipfile.BadZipFile, CorruptFileError, OSError, EOFError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def check_step_outputs(run_dir: str | os.PathLike, step: str) -> list[str]:
    """Problems with what a finished ``step`` left behind: missing or unreadable files, each as
    ``"<relative path>: <what is wrong>"``; empty when the step's outputs read back."""
    run_dir = Path(run_dir)
    problems = [f"{pattern}: missing" for pattern in REQUIRED.get(step, ()) if not any(run_dir.glob(pattern))]
    for path in _step_files(run_dir, step):
        wrong = _check_file(path)
        if wrong:
            problems.append(f"{path.relative_to(run_dir)}: {wrong}")
    return problems


def starting_job(run_dir: str | os.PathLike) -> str | None:
    """What is about to work in the run, before it holds the lock: "the run (pid N)", "a sweep
    (pid N)" or "a curated-model job (pid N)" when a launched job's process (pid and start time)
    is alive; None otherwise. Every launch and delete checks it, so two jobs never start on one
    folder."""
    run_dir = Path(run_dir)
    try:
        run_status = read_status(run_dir)
    except CorruptRunError:
        run_status = {}
    jobs = [("the run", run_status)]
    for what, rel in (("a sweep", F.SWEEP_STATUS), ("a curated-model job", F.CURATED_STATUS)):
        try:
            jobs.append((what, read_json_strict(run_dir / rel)))
        except (OSError, CorruptFileError):
            pass
    for what, status in jobs:
        if (
            isinstance(status, dict)
            and status.get("state") in ("running", "pending")
            and same_process(status.get("pid"), status.get("pid_identity"))
        ):
            return f"{what} (pid {status['pid']})"
    return None


def check_out_file(out: str | os.PathLike, *, force: bool = False, allow: tuple[Path, ...] = ()) -> Path:
    """A file a command may write its output to (an export, a report), or ValueError saying why
    not: an empty name, a folder, a link, a device or any other non-plain file, an existing file
    without ``force``, a missing parent folder, and anything inside a run folder (its files are
    the tool's: a log or a status overwritten there loses the run) unless it is one of ``allow``."""
    if not os.fspath(out).strip():
        raise ValueError("--out is empty; name a file")
    path = Path(out)
    if path.is_symlink():
        raise ValueError(f"--out {path} is a symbolic link; it is never written through")
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; name a file")
    if path.exists():
        if not path.is_file():
            raise ValueError(f"--out {path} is not a plain file (a device, a pipe, …); it is never replaced")
        if not force:
            raise ValueError(f"--out {path} exists; choose another name, or add --force to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--out {path}: the folder {parent} does not exist")
    resolved = parent.resolve() / path.name
    if resolved not in {p.resolve() for p in allow}:
        for folder in (resolved.parent, *resolved.parent.parents):
            if (folder / MARKER).is_file():
                raise ValueError(f"--out {path} is inside the run folder {folder}, whose files are the tool's; "
                                 "write it elsewhere")  # fmt: skip
    return path
