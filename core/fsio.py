"""Atomic file writes and strict reads: a failed write never leaves a half-written file behind.

Every file the tool writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same folder, which replaces the target with ``os.replace`` only once it is complete. A
failure (disk full, a crash, a kill) leaves the previous file intact and removes the temporary
one. :func:`os_error_message` turns an ``OSError`` into the one line a user reads, e.g.
``no space left on device (runs/x/crossdomain/matrices.npz)``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "CorruptFileError",
    "atomic_write",
    "atomic_path",
    "write_json",
    "write_text",
    "write_npz",
    "read_json",
    "read_json_strict",
    "os_error_message",
    "read_npz",
    "open_plain",
]

TMP_PREFIX = ".unitax-tmp-"
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class CorruptFileError(ValueError):
    """A file of the tool exists but cannot be read (truncated, not JSON, wrong shape)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a writer that wants a path (``torch.save``,
    GraphML); when the block succeeds it replaces ``path``.

    Any exception inside the block removes the temporary file and leaves ``path`` as it was; an
    ``OSError`` is re-raised naming ``path`` (not the temporary file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run is as readable as any file the user writes
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", encoding: str | None = None, errors: str | None = None
) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing (``mode`` "wb" or "w"; ``encoding`` and
    ``errors`` for text); when the block succeeds it replaces ``path`` (same failure rules as
    :func:`atomic_path`)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode {mode!r} must be 'wb' or 'w'")
    with atomic_path(path) as tmp:
        text = mode == "w"
        with open(tmp, mode, encoding=encoding if text else None, errors=errors if text else None) as fh:
            yield fh


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically; a character UTF-8 cannot hold (an unpaired surrogate, as
    Python reads a non-UTF-8 byte of a folder name) is written as its backslash escape."""
    with atomic_write(path, "w", encoding="utf-8", errors="backslashreplace") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (numpy scalars/arrays, sets, tuples and paths allowed)."""
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True)
    write_text(path, text)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` of ``arrays`` atomically (no pickled objects)."""
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_json_strict(path: str | os.PathLike) -> Any:
    """Read JSON; FileNotFoundError when missing, :class:`CorruptFileError` naming the file
    when it exists but is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{os.fspath(path)} is corrupt: {exc}") from None


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """Read JSON, or ``default`` when the file is missing, unreadable or corrupt (for optional,
    informative files only; bookkeeping uses :func:`read_json_strict`)."""
    try:
        return read_json_strict(path)
    except (FileNotFoundError, CorruptFileError, OSError):
        return default


def open_plain(path: str | os.PathLike, flags: int, mode: int, what: str) -> int:
    """``os.open(path, flags, mode)`` (close-on-exec) for a file the tool appends to or locks in
    place: never through a symbolic link, and only a plain file. ValueError naming ``path`` and
    ``what`` it was to be (e.g. "the decision log") otherwise; other OSErrors pass through."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link
            raise ValueError(f"{os.fspath(path)} is a symbolic link: refusing to open it as {what}") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{os.fspath(path)} is not a plain file: refusing to use it as {what}")
    return fd


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: ``no space left on device (path)``, ``permission denied
    (path)``, else ``<strerror> (path)``."""
    names = {
        errno.ENOSPC: "no space left on device",
        errno.EACCES: "permission denied",
        errno.EROFS: "read-only file system",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENAMETOOLONG: "file name too long",
    }
    what = names.get(exc.errno or -1, (exc.strerror or str(exc)).lower())
    return f"{what} ({exc.filename})" if exc.filename else what


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (never unpickles); CorruptFileError naming a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CorruptFileError(f"{path} is unreadable ({exc or type(exc).__name__})") from None
