"""Unpickling that cannot run code: plain containers and numpy arrays only.

    safe_unpickle(path, *, encoding="bytes") -> object     a pickle file from a user's folder
    safe_loads(data, *, source="<bytes>", encoding="bytes") -> object

A pickle names the functions that rebuild its objects ("globals"); a hostile file names
``os.system`` and runs it while loading. The unpickler here resolves only a fixed table of
globals: builtin containers and scalars, and numpy's array, dtype and scalar helpers (the module
names of numpy 1.x and 2.x, as written by Python 2 and Python 3 picklers). Any other global is
refused with a ValueError naming the file and the global, before anything is called. Dicts,
lists, tuples, str, bytes, numbers, booleans and None need no global at all.

A malformed pickle (truncated, not a pickle, wrong arguments to an allowed helper) also gives a
ValueError naming the file; a missing file gives the usual OSError.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ALLOWED_GLOBALS", "safe_loads", "safe_unpickle"]

_LATIN1 = ("latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1")


def _latin1_encode(text: object, encoding: object = "utf-8", errors: object = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``: Python 3 pickles bytes at protocol < 3 as
    ``_codecs.encode(text, "latin1")``; only that use is allowed (no other codec is looked up)."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _LATIN1:
        raise ValueError(f"_codecs.encode is allowed only as (str, 'latin1'), got encoding {encoding!r}")
    if errors != "strict":
        raise ValueError(f"_codecs.encode is allowed only with errors='strict', got {errors!r}")
    return text.encode("latin1")


def _numpy_helpers() -> dict[str, Any]:
    """numpy's pickle helpers, from ``numpy._core`` (numpy 2, and 1.26's alias) or ``numpy.core``."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy < 1.26
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    helpers = {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar}
    frombuffer = getattr(numeric, "_frombuffer", None)  # protocol-5 pickles of arrays
    if frombuffer is not None:
        helpers["_frombuffer"] = frombuffer
    return helpers


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) as written in a pickle -> the object it stands for."""
    table: dict[tuple[str, str], Any] = {}
    builtin = {
        t.__name__: t for t in (dict, list, tuple, set, frozenset, bytes, bytearray, str, int, float, complex, bool)
    }
    for module in ("builtins", "__builtin__"):  # Python 3 / Python 2 (and protocol-2) names
        table.update({(module, name): obj for name, obj in builtin.items()})
    table[("_codecs", "encode")] = _latin1_encode
    helpers = _numpy_helpers()
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = helpers["_reconstruct"]
        table[(f"{package}.multiarray", "scalar")] = helpers["scalar"]
        if "_frombuffer" in helpers:
            table[(f"{package}.numeric", "_frombuffer")] = helpers["_frombuffer"]
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _allowed_globals()


class _Refused(ValueError):
    """A global or persistent id outside ALLOWED_GLOBALS: the message names the file and the global."""


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose globals come from ALLOWED_GLOBALS only; nothing is imported."""

    def __init__(self, file: io.BufferedIOBase, *, source: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        """The allowed object for ``module.name``; ValueError naming the file for anything else."""
        obj = ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise _Refused(
                f"{self.source}: refusing to unpickle {module}.{name}: only plain containers "
                f"and numpy arrays are allowed"
            )
        return obj

    def persistent_load(self, pid: object) -> Any:
        """Persistent ids point outside the file: never resolved."""
        raise _Refused(
            f"{self.source}: refusing to unpickle a persistent id {pid!r}: only plain containers "
            f"and numpy arrays are allowed"
        )


# What a malformed pickle raises while loading (numpy helpers called with wrong arguments, ...).
_MALFORMED = (
    pickle.UnpicklingError,
    EOFError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    OverflowError,
    RecursionError,
    MemoryError,
)


def _check_encoding(encoding: object) -> str:
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str such as 'bytes' or 'latin1', got {encoding!r}")
    return encoding


def _load(file: io.BufferedIOBase, source: str, encoding: str) -> object:
    try:
        return _RestrictedUnpickler(file, source=source, encoding=encoding).load()
    except _Refused:
        raise  # already one line naming the file and the global
    except (ValueError, *_MALFORMED) as err:
        raise ValueError(f"{source}: not a readable pickle: {type(err).__name__}: {err}") from err


def safe_loads(data: bytes | bytearray | memoryview, *, source: str = "<bytes>", encoding: str = "bytes") -> object:
    """Unpickle ``data`` allowing only plain containers and numpy arrays (see the module docstring).

    ``source`` names the data in error messages; ``encoding`` decodes Python 2 ``str`` objects
    ("bytes" keeps them as bytes, as torchvision's CIFAR reader does).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _load(io.BytesIO(bytes(data)), str(source), _check_encoding(encoding))


def safe_unpickle(path: str | os.PathLike, *, encoding: str = "bytes") -> object:
    """Unpickle the file at ``path`` allowing only plain containers and numpy arrays.

    Raises ValueError naming the file for a refused global or a malformed pickle, OSError when
    the file cannot be opened.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    encoding = _check_encoding(encoding)
    with open(path, "rb") as fh:
        return _load(fh, os.fspath(path), encoding)
