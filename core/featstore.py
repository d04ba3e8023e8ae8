"""The on-disk feature store: one split's features as a memory-mapped ``.npy`` file, written in
chunks and read in batches, so that a domain of 1.28 M images never needs its features in RAM.

Layout of one entry (``<key>.npy`` + ``<key>.json`` in the feature cache)::

    <key>.npy   (N, D) float32 or float16, C order, a plain NumPy file (np.lib.format)
    <key>.json  {"format": 2, "key": key text, "n": N, "shape": [N, D], "dtype": "float16",
                 "crc32": crc32 of the data bytes in file order, "failed": [indices], "created": t}

Writing (:func:`open_writer`): the rows go, batch by batch, into a memory-mapped temporary file
next to the target (``write(start, rows)``; the crc32 is carried along while the rows arrive in
order, else computed in one streamed pass at commit); ``commit(key_text, failed)`` flushes it,
renames it over ``<key>.npy`` and writes the meta last (each by an atomic rename), so a crash
leaves either the previous entry or none: a ``.npy`` whose meta does not match is never trusted.
``abort()`` removes the temporary file.

Reading (:func:`open_features`): the meta must name the same key, N, shape and dtype, the ``.npy``
header must agree with it, the file size must be exactly header + data, and the crc32 of the data
must match; anything else (truncated, altered, foreign, other dtype, not a NumPy file) returns
None and the caller rebuilds. The checksum is streamed through a 16 MiB buffer with plain reads,
not through the map: verifying a 1.28 M x 1280 float16 entry (3.3 GB) costs one sequential read
(a few seconds), keeps the process's memory flat, and a damaged cache can never reach a model.
Only the read-back right after this process's own commit skips it (once, same inode, size and
mtime).
Old entries (format 1: float32, same checksum rule) are read as they are.

Small entries are loaded into RAM as float32 (what the engine always did, and bit-identical);
an entry larger than :data:`RAM_LIMIT` bytes (as float32) stays a read-only ``np.memmap`` of
the store's dtype, and the consumers read it a batch at a time (:class:`RowReader`, through
core.training). Never edit a cache file in place while a run reads it: the tool itself replaces
entries by rename, so a reader keeps its (old) file.

numpy only: importing this module does not import torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FORMAT",
    "STORE_DTYPES",
    "RAM_LIMIT",
    "default_ram_limit",
    "check_store_dtype",
    "FeatureWriter",
    "ArraySink",
    "open_writer",
    "open_features",
    "load_features",
    "scratch",
    "gather_rows",
    "is_mapped",
    "release",
    "RowReader",
]

FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1: float32 only, no "dtype" in the meta
STORE_DTYPES = ("float32", "float16")
CHUNK_BYTES = 16 << 20  # checksum and copy chunks: 16 MiB
# Entries up to this many bytes (as float32) are loaded into RAM; larger ones stay memory-mapped.
# None: $UNITAX_FEATURES_RAM_MB megabytes (default 1024; 0: always map), read when used (default_ram_limit()).
RAM_LIMIT: int | None = None
RAM_ENV = "UNITAX_FEATURES_RAM_MB"


def default_ram_limit() -> int:
    """Bytes (as float32) up to which a split's features are loaded into RAM: :data:`RAM_LIMIT`
    when set, else ``$UNITAX_FEATURES_RAM_MB`` megabytes (empty or unset: 1024)."""
    if RAM_LIMIT is not None:
        return int(RAM_LIMIT)
    raw = os.environ.get(RAM_ENV, "").strip()
    try:
        mb = 1024.0 if raw == "" else float(raw)
    except ValueError:
        mb = float("nan")
    if not (np.isfinite(mb) and 0 <= mb <= 1 << 40):
        raise ValueError(f"${RAM_ENV} must be a number of megabytes >= 0, got {raw!r}")
    return int(mb * (1 << 20))


_VERIFIED: dict[tuple, int] = {}  # (path, inode, size, mtime_ns) -> crc32 just committed here (used once)


def check_store_dtype(dtype: object) -> np.dtype:
    """``"float32"`` / ``"float16"`` (or the numpy dtype) -> np.dtype; ValueError otherwise."""
    try:
        name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:
        name = None
    if name not in STORE_DTYPES:
        raise ValueError(f"store dtype must be one of {list(STORE_DTYPES)}, got {dtype!r}")
    return np.dtype(name)


def _check_count(name: str, v: object, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _rows_per_chunk(dim: int, itemsize: int) -> int:
    return max(1, CHUNK_BYTES // max(1, dim * itemsize))


class ArraySink:
    """Where :func:`core.features.compute_features` puts each batch: ``write(start, rows (B, D))``
    into ``array`` (N, D) (in RAM or a map), cast to its dtype."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def write(self, start: int, rows: np.ndarray) -> None:
        self.array[start : start + len(rows)] = rows


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        k = os.pwrite(fd, data, offset)
        data, offset = data[k:], offset + k


class FeatureWriter(ArraySink):
    """One store entry being written: see :func:`open_writer`. Rows go to the temporary file
    with positional writes (``os.pwrite``), not through a map, so writing N rows dirties no
    (N, D) mapping in this process: its memory stays at one batch."""

    def __init__(self, path: Path, n: int, dim: int, dtype: np.dtype) -> None:
        self.path, self.n, self.dim, self.dtype = path, n, dim, dtype
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(name)
        try:  # the .npy header and the file's full (sparse) size
            header = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=dtype, shape=(n, dim))
            self.offset = int(header.offset)
            del header
            self._fd = os.open(self.tmp, os.O_RDWR)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # held while writing: marks this temporary file as alive
            _remove_stale(path, self.tmp)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self._crc: int | None = 0  # running crc32 while rows arrive in order; None: recompute at commit
        self._next = 0
        self.done = False

    @property
    def array(self) -> np.ndarray:
        """The (n, dim) entry being written, as a read-only map (rows not yet written are zero)."""
        if self.done:
            raise ValueError(f"feature writer for {self.path} is already committed or aborted")
        if self.n == 0:
            return np.zeros((0, self.dim), dtype=self.dtype)
        return np.memmap(self.tmp, dtype=self.dtype, mode="r", offset=self.offset, shape=(self.n, self.dim))

    def write(self, start: int, rows: np.ndarray) -> None:
        """Rows ``start .. start + B`` of the entry from ``rows`` (B, D) (cast to the store's dtype)."""
        if self.done:
            raise ValueError(f"feature writer for {self.path} is already committed or aborted")
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.dim or not 0 <= start <= self.n - len(rows):
            raise ValueError(
                f"rows {start}..{start + len(rows)} of shape {rows.shape} do not fit ({self.n}, {self.dim})"
            )
        data = np.ascontiguousarray(rows, dtype=self.dtype).view(np.uint8).reshape(-1).data
        _pwrite_all(self._fd, data, self.offset + start * self.dim * self.dtype.itemsize)
        if self._crc is not None and start == self._next:
            self._crc = zlib.crc32(data, self._crc)
            self._next += len(rows)
        else:
            self._crc = None

    def commit(self, key_text: str, failed: Sequence[int] | np.ndarray = ()) -> None:
        """fsync, rename the data over ``path``, then write the meta (atomically, last).
        ``failed`` (F,): indices of rows that hold no features (unreadable images)."""
        if self.done:
            raise ValueError(f"feature writer for {self.path} is already committed or aborted")
        failed = np.asarray(failed, dtype=np.int64).reshape(-1)
        if failed.size and (failed.min() < 0 or failed.max() >= self.n):
            self.abort()
            raise ValueError(f"failed indices must be in [0, {self.n}), got range [{failed.min()}, {failed.max()}]")
        try:
            os.fsync(self._fd)
            in_order = self._crc is not None and self._next == self.n
            crc = self._crc if in_order else _stream_crc(self.tmp, self.offset)
            os.close(self._fd)
            self._fd = -1
            os.replace(self.tmp, self.path)
            meta = {
                "format": FORMAT,
                "key": key_text,
                "n": self.n,
                "shape": [self.n, self.dim],
                "dtype": self.dtype.name,
                "crc32": crc,
                "failed": [int(i) for i in failed],
                "created": time.time(),
            }
            from core.fsio import write_json

            write_json(self.path.with_suffix(".json"), meta)
            st = self.path.stat()
            _VERIFIED[(str(self.path), st.st_ino, st.st_size, st.st_mtime_ns)] = crc
        except BaseException:
            self.abort()
            raise
        self.done = True

    def abort(self) -> None:
        """Drop the temporary file (the previous entry, if any, stays)."""
        self.done = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.tmp.unlink(missing_ok=True)


def _remove_stale(path: Path, mine: Path) -> None:
    """Delete this entry's temporary files left by writers that died (kill -9): those nobody holds
    locked. A live writer (another process writing the same entry) holds its lock, so it is kept."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if tmp == mine or tmp.is_symlink() or not tmp.is_file():
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink(missing_ok=True)
        except OSError:  # locked: a writer is alive
            pass
        finally:
            os.close(fd)


def open_writer(path: str | os.PathLike, n: int, dim: int, dtype: object = "float32") -> FeatureWriter:
    """A writer of an (n, dim) entry of ``dtype`` (float32 | float16) at ``path`` (``<key>.npy``):
    ``w.write(start, rows)`` any number of times, then ``w.commit(key_text, failed)`` or
    ``w.abort()``; ``w.array`` is a read-only (n, dim) map of the rows written so far. A folder
    (or anything but a file or a link) where the entry belongs is refused, named, before any work."""
    p = Path(path)
    if p.exists() and not p.is_file():
        raise ValueError(
            f"the feature cache entry {str(p)!r} is not a file (a folder?): remove it or set $UNITAX_CACHE"
        )
    return FeatureWriter(Path(path), _check_count("n", n, 0), _check_count("dim", dim, 1), check_store_dtype(dtype))


def _stream_crc(path: Path, offset: int, nbytes: int | None = None) -> int:
    """crc32 of ``nbytes`` bytes (default: to the end) of ``path`` from ``offset``, 16 MiB at a time."""
    crc, buf = 0, bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = nbytes
        while left is None or left > 0:
            k = fh.readinto(view if left is None or left >= len(buf) else view[:left])
            if not k:
                break
            crc = zlib.crc32(view[:k], crc)
            if left is not None:
                left -= k
    return crc


def _read_meta(path: Path, key_text: str, n: int) -> dict | None:
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if not isinstance(meta, dict) or meta.get("format") not in READABLE_FORMATS:
        return None
    if meta.get("key") != key_text or meta.get("n") != n or not isinstance(meta.get("crc32"), int):
        return None
    meta["dtype"] = meta.get("dtype", "float32") if meta["format"] >= 2 else "float32"
    shape = meta.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and shape[0] == n and all(isinstance(v, int) for v in shape)):
        return None
    return meta


def open_features(
    path: str | os.PathLike, key_text: str, n: int, *, dtype: object = None
) -> tuple[np.memmap, np.ndarray] | None:
    """``(features (n, D) read-only np.memmap of the store's dtype, failed (F,) int64)`` if the
    entry at ``path`` is complete, verified and written for ``key_text`` (and ``dtype`` when
    given); else None (the caller rebuilds it)."""
    path = Path(path)
    want = None if dtype is None else check_store_dtype(dtype)
    try:
        meta = _read_meta(path, key_text, n)
        if meta is None or meta["dtype"] not in STORE_DTYPES or (want is not None and meta["dtype"] != want.name):
            return None
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dt = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dt = np.lib.format.read_array_header_2_0(fh)
            else:
                return None
            offset = fh.tell()
            st = os.fstat(fh.fileno())
        if fortran or dt != np.dtype(meta["dtype"]) or tuple(shape) != tuple(meta["shape"]):
            return None
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if st.st_size != offset + nbytes:
            return None
        failed = np.asarray(meta.get("failed", []), dtype=np.int64)
        if failed.ndim != 1 or (failed.size and (failed.min() < 0 or failed.max() >= n)):
            return None
        stamp = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if _VERIFIED.pop(stamp, None) != meta["crc32"] and _stream_crc(path, offset, nbytes) != meta["crc32"]:
            return None
        if nbytes == 0:  # mmap cannot map zero bytes
            return np.zeros(shape, dtype=dt), failed
        feats = np.memmap(path, dtype=dt, mode="r", offset=offset, shape=tuple(shape))
        return feats, failed
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError, EOFError, SyntaxError):
        return None


def load_features(
    path: str | os.PathLike, key_text: str, n: int, *, dtype: object = None, ram_limit: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`open_features`, then in RAM as float32 when the entry is at most ``ram_limit``
    bytes as float32 (default :data:`RAM_LIMIT`), else the read-only map as it is."""
    hit = open_features(path, key_text, n, dtype=dtype)
    if hit is None:
        return None
    feats, failed = hit
    limit = default_ram_limit() if ram_limit is None else ram_limit
    if feats.size * 4 <= limit:
        out = np.empty(feats.shape, dtype=np.float32)
        for start, batch in _chunks(feats):
            out[start : start + len(batch)] = batch
        feats = out
    return feats, failed


def _chunks(X: np.ndarray, rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    step = rows or _rows_per_chunk(X.shape[1] if X.ndim == 2 else 1, 4)
    for start in range(0, len(X), step):
        yield start, X[start : start + step]


def _temp_map(shape: tuple[int, int], dtype: np.dtype, folder: str | os.PathLike | None) -> np.memmap:
    """A writable map of ``shape`` on an already-unlinked temporary file in ``folder`` (disk,
    not RAM: /tmp may be a tmpfs); the space is freed when the map is dropped."""
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder, prefix=".unitax-features-") as fh:
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes == 0:
            return np.zeros(shape, dtype=dtype)
        fh.truncate(nbytes)
        return np.memmap(fh, dtype=dtype, mode="r+", shape=shape)


def scratch(
    n: int,
    dim: int,
    *,
    dtype: object = "float32",
    folder: str | os.PathLike | None = None,
    ram_limit: int | None = None,
) -> np.ndarray:
    """A zeroed (n, dim) array: in RAM up to ``ram_limit`` bytes (default :data:`RAM_LIMIT`),
    else a map of an unlinked temporary file in ``folder``."""
    dt = check_store_dtype(dtype)
    n, dim = _check_count("n", n, 0), _check_count("dim", dim, 0)
    limit = default_ram_limit() if ram_limit is None else ram_limit
    if n * dim * dt.itemsize <= limit:
        return np.zeros((n, dim), dtype=dt)
    return _temp_map((n, dim), dt, folder)


def gather_rows(
    parts: Sequence[tuple[np.ndarray, np.ndarray | None]],
    *,
    folder: str | os.PathLike | None = None,
    ram_limit: int | None = None,
) -> np.ndarray:
    """``concatenate([X[index] for X, index in parts])`` (index None: every row) without
    holding more than a chunk of the inputs at once. (N, D): float32 in RAM when it fits in
    ``ram_limit`` bytes as float32, else a map of an unlinked temporary file in ``folder`` of
    the widest input dtype. Every X must be (n_i, D) with the same D."""
    if not parts:
        raise ValueError("gather_rows needs at least one (X, index) part")
    dims = {X.shape[1] for X, _ in parts}
    if len(dims) != 1 or any(X.ndim != 2 for X, _ in parts):
        raise ValueError(f"every part must be (n, D) with one D, got shapes {[X.shape for X, _ in parts]}")
    dim = dims.pop()
    sizes = [len(X) if idx is None else len(idx) for X, idx in parts]
    total = sum(sizes)
    limit = default_ram_limit() if ram_limit is None else ram_limit
    step = _rows_per_chunk(dim, 4)

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        pos = 0
        for (X, idx), size in zip(parts, sizes):
            for k, start in enumerate(range(0, size, step)):
                yield pos + start, X[start : start + step] if idx is None else X[np.asarray(idx[start : start + step])]
                if k % 64 == 63:
                    release(X)
            release(X)
            pos += size

    if total * dim * 4 <= limit:
        out = np.empty((total, dim), dtype=np.float32)
        for start, rows in chunks():
            out[start : start + len(rows)] = rows
        return out
    dt = np.result_type(*[X.dtype for X, _ in parts])
    dt = dt if dt.name in STORE_DTYPES else np.dtype(np.float32)
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    fh = tempfile.TemporaryFile(dir=folder, prefix=".unitax-features-")  # unlinked: freed with the map
    try:
        fh.truncate(total * dim * dt.itemsize)
        for start, rows in chunks():  # positional writes: no dirty (N, D) map in this process
            data = np.ascontiguousarray(rows, dtype=dt).view(np.uint8).reshape(-1).data
            _pwrite_all(fh.fileno(), data, start * dim * dt.itemsize)
        out = np.memmap(fh, dtype=dt, mode="r", shape=(total, dim))
    except BaseException:
        fh.close()
        raise
    out._unitax_file = fh  # kept open (and closed) with the map: RowReader reads through it
    return out


class RowReader:
    """Rows of a memory-mapped (N, D) C-order array ``X`` read with positional reads
    (``os.preadv``) from its file instead of through the map: a pass over the rows, in any
    order, leaves nothing of the file in this process's resident set (through a map, the
    kernel maps whole large folios around each row read). :meth:`of` returns None for an
    array this cannot read (in RAM, not row-contiguous, or a map of no reachable file)."""

    def __init__(self, X: np.ndarray, fd: int, pos: int, own: bool) -> None:
        self.X, self.fd, self.pos, self._own = X, fd, pos, own
        self.row_bytes = X.shape[1] * X.dtype.itemsize

    @classmethod
    def of(cls, X: object) -> RowReader | None:
        import mmap

        if not isinstance(X, np.ndarray) or X.ndim != 2 or not X.flags.c_contiguous or X.size == 0:
            return None
        root = X
        while not (isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap)):
            root = getattr(root, "base", None)
            if not isinstance(root, np.ndarray):
                return None
        pos = int(root.offset) + (X.ctypes.data - root.ctypes.data)
        fh = getattr(root, "_unitax_file", None)
        if fh is not None and not fh.closed:
            return cls(X, fh.fileno(), pos, own=False)
        if not isinstance(root.filename, (str, os.PathLike)):
            return None
        try:
            fd = os.open(root.filename, os.O_RDONLY)
        except OSError:
            return None
        if os.fstat(fd).st_ino != _map_inode(root):  # the file was replaced since it was mapped
            os.close(fd)
            return None
        return cls(X, fd, pos, own=True)

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``X[index]`` (B, D) of X's dtype, in ``index`` order (read in file order)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self.X)):
            raise IndexError(f"row index out of range [0, {len(self.X)})")
        out = np.empty((len(index), self.X.shape[1]), dtype=self.X.dtype)
        flat = out.view(np.uint8).reshape(len(index), self.row_bytes)
        rb, pos, fd = self.row_bytes, self.pos, self.fd
        for k in np.argsort(index, kind="stable").tolist():
            if os.preadv(fd, [flat[k]], pos + int(index[k]) * rb) != rb:
                raise OSError(f"short read of row {int(index[k])} from the feature file")
        return out

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``X[start:stop]`` (B, D) in one read."""
        start, stop = max(0, start), min(len(self.X), stop)
        out = np.empty((max(0, stop - start), self.X.shape[1]), dtype=self.X.dtype)
        if len(out):
            want = out.nbytes
            if os.preadv(self.fd, [out.view(np.uint8).reshape(-1)], self.pos + start * self.row_bytes) != want:
                raise OSError(f"short read of rows {start}..{stop} from the feature file")
        return out

    def close(self) -> None:
        if self._own and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __del__(self) -> None:
        self.close()


def _map_inode(root: np.memmap) -> int | None:
    """The inode of the file ``root`` maps, from /proc/self/maps (None when it cannot be told)."""
    start = root.ctypes.data - (root.offset % __import__("mmap").ALLOCATIONGRANULARITY)
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split()
                lo, hi = (int(v, 16) for v in parts[0].split("-"))
                if lo <= start < hi and len(parts) >= 5:
                    return int(parts[4])
    except (OSError, ValueError):
        return None
    return None


def release(X: object) -> None:
    """Drop the pages of the file map under ``X`` from this process's resident set (the data
    stays in the file and the page cache and is read again when touched): bounds the memory a
    pass over a mapped (N, D) array shows. Nothing for an array in RAM."""
    import mmap

    a = X
    for _ in range(32):
        m = getattr(a, "_mmap", None) if isinstance(a, np.memmap) else a if isinstance(a, mmap.mmap) else None
        if m is not None:
            with contextlib.suppress(ValueError, OSError, AttributeError):
                m.madvise(mmap.MADV_DONTNEED)
            return
        a = getattr(a, "base", None)
        if a is None:
            return


def is_mapped(X: object) -> bool:
    """True when ``X`` is an ndarray whose memory is (a view of) a file map: read it in batches."""
    import mmap

    a = X
    for _ in range(32):
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
        if a is None:
            return False
    return False
