"""The run-folder lock and process identity: who may work in a run folder, and whom cancel may signal.

A process that works in a run folder holds an exclusive OS lock (``flock``) on ``RUN/.lock``
for as long as it works there. The kernel drops the lock when the process dies, however it
dies, so a stale lock cannot outlive its holder (unlike a PID file). The holder writes its
details into the file (pid, host, start time, command) so a refusal can name it.

A PID alone proves nothing: after a crash or a reboot it can belong to any process. A process
is identified by ``(pid, start time)`` (:func:`process_identity`); :func:`same_process` says
whether a stored identity still names the same, living process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from core.fsio import open_plain

__all__ = ["RunLock", "LockedError", "lock_holder", "process_identity", "same_process"]

LOCK_NAME = ".lock"


class LockedError(ValueError):
    """The run folder is locked by another process (the message names it)."""


def _open_lock(path: Path, flags: int) -> int:
    """Open the lock file without following a symbolic link; refuse anything but a plain file."""
    return open_plain(path, flags, 0o644, "the run's lock")


def process_identity(pid: int | None) -> str | None:
    """A string that names process ``pid`` for its whole life (its start time), or None when
    there is no such process. Linux reads ``/proc/PID/stat``; elsewhere ``ps -o lstart=``."""
    if not pid or int(pid) <= 0:
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # a zombie has finished: it is not "the run" any more
            return None
        return f"start:{fields[19]}"
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"lstart:{out}" if out else None


def same_process(pid: int | None, identity: str | None) -> bool:
    """True only if ``pid`` is alive and is the very process ``identity`` was taken from."""
    return bool(pid) and bool(identity) and process_identity(pid) == identity


def _holder_text(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / LOCK_NAME).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    cmd = " ".join(holder.get("argv") or [])[:200]
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" + (f" ({cmd})" if cmd else "")


def lock_holder(run_dir: str | os.PathLike) -> dict | None:
    """The holder's details (``pid, identity, host, since, argv``) if ``run_dir`` is locked by a
    living process, else None. Probing takes the lock for an instant when it is free."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except (OSError, ValueError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _holder_text(run_dir) or {"pid": None}
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """Exclusive lock on a run folder for the life of this object's holder (a context manager).

    ``RunLock(run_dir, purpose).acquire()`` raises :class:`LockedError` naming the holder when
    another process works in the folder; a probe by :func:`lock_holder` is waited out
    (``wait_s``).
    """

    def __init__(self, run_dir: str | os.PathLike, purpose: str = "run", wait_s: float = 2.0):
        self.run_dir = Path(run_dir)
        self.purpose = purpose
        self.wait_s = wait_s
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        path = self.run_dir / LOCK_NAME
        fd = _open_lock(path, os.O_RDWR | os.O_CREAT)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockedError(
                        f"run folder {self.run_dir} is in use by "
                        f"{_describe(_holder_text(self.run_dir))}; "
                        f"wait for it to finish or cancel it"
                    ) from None
                time.sleep(0.05)
        self._fd = fd
        holder = {
            "pid": os.getpid(),
            "identity": process_identity(os.getpid()),
            "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "purpose": self.purpose,
            "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
