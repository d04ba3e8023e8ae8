"""Bring your own predictions: a run folder from the cross-domain predictions of models trained
elsewhere (``python -m core import --predictions DIR [--truth FILE] --out RUN``; core/cli_import.py).

**The folder DIR** holds one CSV per domain, one row per evaluated (test) image of that domain,
each file in one of two layouts:

- *unitax*: the file is ``<domain>.csv``; a column ``true`` (the image's class in its own
  domain) and a column ``pred_<other>`` for every other domain (the class that domain's model
  predicted for the image). Columns named in :data:`IGNORED_COLUMNS` (``id``, ``image``, ...)
  may be there and are ignored, and so is a ``pred_<domain>`` of the file's own domain (its own
  model's predictions are no cross-domain evidence).
- *thesis*: the layout the thesis's code writes, under any file name (e.g.
  ``caltech256_3domain_A_predictions.csv``): the true class in a column ``domain_X`` (its files
  also spell it ``X`` or ``X_targets``) and the predictions of domain Y's model in a column
  ``predictions_Y_on_X``; the file's domain is X.

Optional ``<domain>.classes.txt`` (UTF-8, one class name per line: line 1 is class 0) names a
domain's classes. A cell names a class by its name or by its index (``3`` or ``#3``):

- with a classes file, a cell that is one of its names is that class (a name wins over an
  index: a file of names ``1, 2, 3`` reads ``3`` as the third class), else an index below the
  number of names;
- without one, either every cell of the domain (its ``true`` column and the ``pred_<domain>``
  columns of the other files) is an index, the classes are ``0 .. max`` (named ``"0"``, ``"1"``,
  ...), or every cell is a name, the classes are the sorted distinct names; a mix is refused.

**The run folder** (:func:`import_predictions`) is opened by the dashboard like any other:
``domains.json`` (source :data:`IMPORTED`, ``n_train = n_val = 0``, ``n_test`` the rows),
``crossdomain/matrices.npz`` (count; hard = the row-normalised counts; soft = hard, since no
probabilities were given) and ``predictions.npz`` (true and predicted classes per row, no image
items or confidences), ``truth.csv`` when ``--truth`` is given (:func:`core.mapping_io.import_truth`:
each row a related pair, both directions), then the pipeline's own ``selection`` and ``taxonomy``
steps (:mod:`core.steps`) for the configured methods (default :class:`core.config.SelectionConfig`).
``status.json`` says ``done`` with the steps up to ``taxonomy``; ``config.yaml`` describes the
import (the files, their layout, rows and hashes) with the ``crossdomain``, ``selection`` and
``evidence`` sections the pages read. It has no ``domains`` section: an imported run has no
images, so nothing can rebuild its domains, and the steps that need images (``features``,
``baselines``, ``universal``, ``results``, the accuracy sweep, the curated model) cannot run on
it (:func:`is_imported` lets a page say so). Its selection and taxonomy for any other setting are
computed live by the pages.

Every bad input is one ValueError ``"<file>: line N, column C: <what>"`` (file-level problems
name the file only): a missing ``true`` column, an unknown class name, an index out of range, a
``pred_X`` for a domain without a CSV, a domain missing a column, ragged rows, non-UTF-8 or
binary files, an empty file, a file over :data:`MAX_BYTES` or :data:`MAX_ROWS`, two files for
one domain, a bad classes file. Nothing is written before the whole input has been read.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import itertools
import os
import re
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import MAX_DOMAINS

__all__ = [
    "IMPORTED",
    "LAYOUTS",
    "IGNORED_COLUMNS",
    "MAX_BYTES",
    "MAX_ROWS",
    "MAX_CLASSES",
    "MAX_CELLS",
    "ImportedDomain",
    "Imported",
    "read_predictions",
    "count_matrices",
    "import_predictions",
    "is_imported",
]

IMPORTED = "imported"  # the source of every domain of an imported run (domains.json)
LAYOUTS = ("unitax", "thesis")
IGNORED_COLUMNS = ("id", "image", "path", "file", "filename", "item")
MAX_BYTES = 256 * 1024 * 1024  # one CSV
MAX_ROWS = 2_000_000  # rows of one CSV
MAX_CLASSES = 20_000  # classes of one domain
MAX_CELLS = 50_000_000  # sum of K_a * K_b over the ordered pairs (the matrices' size)
MAX_NAME = 200  # characters of a domain or class name
CLASSES_SUFFIX = ".classes.txt"

_INDEX = re.compile(r"#?([0-9]+)")
_THESIS_PRED = re.compile(r"predictions_(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class ImportedDomain:
    """One domain read from DIR: its classes and the true class of each of its ``N`` rows."""

    name: str
    class_names: tuple[str, ...]  # (K,)
    true: np.ndarray  # (N,) int64 in [0, K)
    file: Path  # its CSV
    layout: str  # one of LAYOUTS
    classes_from: str  # "<domain>.classes.txt", "indices" or "names"


@dataclass(frozen=True)
class Imported:
    """Every domain (sorted by name) and every foreign model's predictions on its rows."""

    domains: tuple[ImportedDomain, ...]
    pred: dict[tuple[int, int], np.ndarray]  # (a, b) -> (N_a,) int64: model b's class for each row of a
    notes: tuple[str, ...] = ()  # what was ignored, for the run's log

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.domains]

    @property
    def class_names(self) -> list[list[str]]:
        return [list(d.class_names) for d in self.domains]


# ----------------------------------------------------------------------------- reading files


def _read_text(path: Path, max_bytes: int | None = None) -> str:
    """The file as text (:func:`core.mapping_io.read_text_file`, default cap MAX_BYTES);
    ValueError naming the file (and the line) when it cannot be read, is too large, binary or
    not UTF-8."""
    from core.mapping_io import read_text_file

    return read_text_file(path, MAX_BYTES if max_bytes is None else max_bytes)


def _check_name(name: str, what: str, where: str) -> str:
    """``name`` when it is usable as a domain or class name; else ValueError ``where: what ...``."""
    if not name.strip():
        raise ValueError(f"{where}: an empty {what}")
    if len(name) > MAX_NAME:
        raise ValueError(f"{where}: {what} {name[:40]!r}... is longer than {MAX_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"{where}: {what} {name!r} holds a control character")
    return name


def _read_classes(path: Path) -> list[str]:
    """The class names of a ``<domain>.classes.txt``: one per line (surrounding spaces dropped,
    trailing blank lines allowed); ValueError naming the file and line for an empty line inside,
    a repeated name, a name that reads as an index (``#3``), or more than MAX_CLASSES."""
    lines = _read_text(path, 16 * 1024 * 1024).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: line 1: empty file; write one class name per line (line 1 is class 0)")
    if len(lines) > MAX_CLASSES:
        raise ValueError(f"{path}: line {MAX_CLASSES + 1}: more than {MAX_CLASSES} classes")
    seen: dict[str, int] = {}
    out = []
    for n, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            raise ValueError(f"{path}: line {n}: empty; every line names one class (line {n} is class {n - 1})")
        _check_name(name, "class name", f"{path}: line {n}")
        if name.startswith("#") and _INDEX.fullmatch(name):
            raise ValueError(f"{path}: line {n}: class name {name!r} reads as an index; rename the class")
        if name in seen:
            raise ValueError(f"{path}: line {n}: class name {name!r} repeats line {seen[name]}; class names are unique")
        seen[name] = n
        out.append(name)
    return out


@dataclass
class _Table:
    """One CSV of DIR, read: the header's meaning and the raw cells of the columns used."""

    path: Path
    layout: str
    domain: str
    true_col: str
    pred_cols: dict[str, str]  # the other domain as written in the header -> column name
    cells: dict[str, list[str]]  # column -> stripped cells, one per row
    lines: list[int]  # line of each row in the file
    header_line: int
    notes: list[str]


def _rows(path: Path, text: str) -> tuple[list[str], int, list[list[str]], list[int]]:
    """(header, its line, rows, the line each row starts on) of a CSV text; blank lines skipped;
    ValueError for an unreadable row, more than MAX_ROWS rows, or no header."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    read: list[list[str]] = []
    ends: list[int] = []  # the line each row ends on (only needed when a quoted cell may span lines)
    try:
        cap = MAX_ROWS + 2  # header + rows + one more: enough to refuse, never the whole of a huge file
        if '"' in text:
            for row in reader:
                read.append(row)
                ends.append(reader.line_num)
                if len(read) > cap + 1000:  # blank rows are skipped later: keep a margin, still bounded
                    break
        else:  # one row per line: row k starts on line k + 1
            read = list(itertools.islice(reader, cap + 1000))
    except csv.Error as exc:
        line = ends[-1] + 1 if ends else reader.line_num
        raise ValueError(f"{path}: line {line}: not a readable CSV row ({exc})") from None
    starts = [1] + [end + 1 for end in ends[:-1]] if ends else range(1, len(read) + 1)
    kept = [k for k, row in enumerate(read) if row and (len(row) > 1 or row[0].strip())]
    if not kept:
        raise ValueError(
            f"{path}: line 1: empty file; the header must name a column true and a column pred_<domain> per "
            "other domain (or the thesis's domain_X and predictions_Y_on_X)"
        )
    if len(kept) - 1 > MAX_ROWS:
        raise ValueError(f"{path}: line {starts[kept[MAX_ROWS + 1]]}: more than {MAX_ROWS} rows; split the evaluation")
    header = [c.strip() for c in read[kept[0]]]
    return header, starts[kept[0]], [read[k] for k in kept[1:]], [starts[k] for k in kept[1:]]


def _thesis_domain(path: Path, line: int, header: list[str]) -> tuple[str, str, dict[str, str]]:
    """(domain X, true column, {Y: column}) of a thesis-layout header: the true column is
    ``domain_X``, ``X`` or ``X_targets``, every other column ``predictions_Y_on_X``."""
    preds = [c for c in header if _THESIS_PRED.fullmatch(c)]
    others = [c for c in header if c not in preds and c.lower() not in IGNORED_COLUMNS]
    if len(others) != 1:
        what = "no column" if not others else f"{len(others)} columns ({', '.join(repr(c) for c in others[:4])})"
        raise ValueError(
            f"{path}: line {line}, column {others[1] if len(others) > 1 else 'domain_X'}: {what} besides the "
            "predictions_Y_on_X columns; the thesis's layout has one true-class column domain_X (or X, X_targets)"
        )
    true_col = others[0]
    low = true_col.lower()
    candidates = {true_col}
    if low.startswith("domain_"):
        candidates.add(true_col[len("domain_") :])
    if low.endswith("_targets"):
        candidates.add(true_col[: -len("_targets")])
    found = None
    for x in sorted(candidates, key=len):
        suffix = f"_on_{x}"
        if x and all(c.endswith(suffix) and len(c) > len("predictions_") + len(suffix) for c in preds):
            found = x
            break
    if found is None:
        bad = next((c for c in preds if not any(c.endswith(f"_on_{x}") for x in candidates)), preds[0])
        raise ValueError(
            f"{path}: line {line}, column {bad}: does not read as predictions_Y_on_X for the domain X of the "
            f"true-class column {true_col!r} (domain_X, X or X_targets)"
        )
    others_by_name = {c[len("predictions_") : -len(f"_on_{found}")]: c for c in preds}
    return found, true_col, others_by_name


def _read_table(path: Path) -> _Table:
    """Read one CSV of DIR (either layout); ValueError naming the file, line and column."""
    text = _read_text(path)
    header, hline, rows, lines = _rows(path, text)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValueError(f"{path}: line {hline}, column {dupes[0]}: appears twice in the header")
    empty = [k for k, c in enumerate(header) if not c]
    if empty:
        raise ValueError(f"{path}: line {hline}, column {empty[0] + 1}: the header names no column here")
    lower = [c.lower() for c in header]
    notes: list[str] = []
    if "true" in lower:
        layout, domain = "unitax", path.name[: -len(".csv")]
        _check_name(domain, "domain name", f"{path}")
        true_col = header[lower.index("true")]
        pred_cols = {}
        for c in header:
            if c == true_col or c.lower() in IGNORED_COLUMNS:
                continue
            if not c.lower().startswith("pred_") or len(c) == len("pred_"):
                raise ValueError(
                    f"{path}: line {hline}, column {c}: not a column of this layout; expected true, "
                    f"pred_<domain> and optionally {', '.join(IGNORED_COLUMNS)}"
                )
            pred_cols[c[len("pred_") :]] = c
    elif any(_THESIS_PRED.fullmatch(c) for c in header):
        layout = "thesis"
        domain, true_col, pred_cols = _thesis_domain(path, hline, header)
        _check_name(domain, "domain name", f"{path}: line {hline}, column {true_col}")
    else:
        raise ValueError(
            f"{path}: line {hline}, column true: missing from the header (found "
            f"{', '.join(repr(c) for c in header[:6])}); name the true class column true and the predictions "
            "pred_<domain> (or use the thesis's domain_X and predictions_Y_on_X)"
        )
    if ":" in domain:
        raise ValueError(f"{path}: domain name {domain!r} holds ':' (it separates domain and class); rename it")
    own = [y for y in pred_cols if y == domain]
    for y in own:
        notes.append(f"{path.name}: column {pred_cols.pop(y)} (domain {domain}'s own model) is not used")
    width = len(header)
    index = {c: k for k, c in enumerate(header)}
    used = [true_col, *pred_cols.values()]
    ragged = next((k for k, row in enumerate(rows) if len(row) != width), None)
    if ragged is not None:
        n = len(rows[ragged])
        col = header[n] if n < width else str(width + 1)
        raise ValueError(f"{path}: line {lines[ragged]}, column {col}: {n} cells, the header has {width} columns")
    cells: dict[str, list[str]] = {}
    for c in used:
        k = index[c]
        cells[c] = column = [row[k].strip() for row in rows]
        if "" in column:
            raise ValueError(f"{path}: line {lines[column.index('')]}, column {c}: empty")
    if not rows:
        raise ValueError(f"{path}: line {hline + 1}: no rows after the header; one row per evaluated image")
    return _Table(path, layout, domain, true_col, pred_cols, cells, lines, hline, notes)


# ----------------------------------------------------------------------------- classes


def _resolve_domain(written: str, names: Sequence[str]) -> int | None:
    """Index of the domain a header writes ``written`` (exactly, else case-insensitively when unique)."""
    if written in names:
        return list(names).index(written)
    folded = [a for a, n in enumerate(names) if n.lower() == written.lower()]
    return folded[0] if len(folded) == 1 else None


def _first(spots: list[tuple[_Table, str]], bad) -> tuple[Path, int, str, str]:
    """(file, line, column, cell) of the first cell (in file order) for which ``bad(cell)``."""
    for table, col in spots:
        for k, v in enumerate(table.cells[col]):
            if bad(v):
                return table.path, table.lines[k], col, v
    raise AssertionError("no bad cell")  # callers only ask when there is one


def _index_of(cell: str) -> int | None:
    """The class index a cell writes (``3`` or ``#3``), or None when it is no index."""
    m = _INDEX.fullmatch(cell)
    return int(m.group(1)) if m else None


def _classes(name: str, spots: list[tuple[_Table, str]], names_file: Path | None) -> tuple[list[str], str]:
    """(class names, where they came from) of one domain; see the module docstring."""
    if names_file is not None:
        names = _read_classes(names_file)
        if len(names) < 2:
            raise ValueError(f"{names_file}: line 1: one class; a domain needs at least 2 classes")
        return names, names_file.name
    distinct: set[str] = set()
    for table, col in spots:
        distinct.update(table.cells[col])
    indices = {v: _index_of(v) for v in distinct}
    if all(i is not None for i in indices.values()):
        top = max(indices.values())
        if top >= MAX_CLASSES:
            path, line, col, v = _first(spots, lambda v: indices[v] >= MAX_CLASSES)
            raise ValueError(
                f"{path}: line {line}, column {col}: class index {v} is out of range (at most {MAX_CLASSES} "
                f"classes per domain)"
            )
        if top < 1:
            raise ValueError(
                f"{spots[0][0].path}: domain {name!r}: every cell names class 0; a domain needs at least 2 classes "
                f"(list them in {name}{CLASSES_SUFFIX})"
            )
        return [str(i) for i in range(top + 1)], "indices"
    if any(i is not None for i in indices.values()):
        named = sorted(v for v, i in indices.items() if i is None)[0]
        path, line, col, v = _first(spots, lambda v: indices[v] is not None)
        raise ValueError(
            f"{path}: line {line}, column {col}: {v!r} reads as a class index of domain {name!r} but other cells "
            f"name its classes (e.g. {named!r}); write names only, indices only, or list the classes in "
            f"{name}{CLASSES_SUFFIX}"
        )
    bad = [v for v in distinct if len(v) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in v)]
    if bad:
        path, line, col, v = _first(spots, lambda v: v in bad)
        _check_name(v, "class name", f"{path}: line {line}, column {col}")
    if len(distinct) > MAX_CLASSES:
        raise ValueError(f"{spots[0][0].path}: domain {name!r}: {len(distinct)} class names, at most {MAX_CLASSES}")
    if len(distinct) < 2:
        raise ValueError(
            f"{spots[0][0].path}: domain {name!r}: every cell names class {next(iter(distinct))!r}; at least 2 "
            "classes are needed"
        )
    return sorted(distinct), "names"


def _codes(name: str, classes: list[str], source: str, table: _Table, col: str) -> np.ndarray:
    """The class index (N,) of every cell of one column; ValueError naming the first bad cell."""
    lookup = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    inverse, uniq = pd.factorize(np.asarray(table.cells[col], dtype=object))  # distinct cells, C speed
    code = np.empty(len(uniq), dtype=np.int64)
    for u, v in enumerate(uniq):  # a few distinct cells per column: resolve each once
        i = lookup.get(v)
        if i is None and source != "names":
            i = _index_of(v)
        code[u] = -1 if i is None else (i if i < k else -2)
    out = code[inverse]
    bad = np.flatnonzero(out < 0)
    if not bad.size:
        return out
    row = int(bad[0])
    v, where = table.cells[col][row], f"{table.path}: line {table.lines[row]}, column {col}"
    listed = f" (listed in {source})" if source.endswith(CLASSES_SUFFIX) else ""
    if out[row] == -2:
        raise ValueError(f"{where}: class index {v} is out of range: domain {name!r} has classes 0 to {k - 1}{listed}")
    close = difflib.get_close_matches(v, classes, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"{where}: unknown class name {v!r} of domain {name!r}{listed}{hint}")


# ----------------------------------------------------------------------------- the folder


def read_predictions(folder: str | os.PathLike, *, skip: str | os.PathLike | None = None) -> Imported:
    """Read DIR (module docstring): every ``*.csv`` (either layout; but ``skip``, e.g. the truth
    file kept next to them) and ``*.classes.txt``; other files and hidden ones are ignored.
    ValueError naming the file, line and column of the first problem; nothing is written."""
    folder = Path(folder)
    skipped = None if skip is None else os.path.realpath(skip)
    if not folder.is_dir():
        raise ValueError(
            f"{folder}: not a folder of prediction CSVs" if folder.exists() else f"{folder}: no such folder"
        )
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    csvs = [p for p in entries if p.name.lower().endswith(".csv") and os.path.realpath(p) != skipped]
    class_files = {p.name[: -len(CLASSES_SUFFIX)]: p for p in entries if p.name.endswith(CLASSES_SUFFIX)}
    if not csvs:
        raise ValueError(f"{folder}: no .csv files; put one CSV per domain there (<domain>.csv)")
    if len(csvs) > MAX_DOMAINS:
        raise ValueError(f"{folder}: {len(csvs)} CSV files, at most {MAX_DOMAINS} domains")
    tables = [_read_table(p) for p in csvs]
    by_key: dict[str, _Table] = {}
    for t in tables:
        other = by_key.get(t.domain.lower())
        if other is not None:
            raise ValueError(
                f"{t.path}: domain {t.domain!r} again: {other.path.name} is its file already (domain names are "
                "compared without case); keep one file per domain"
            )
        by_key[t.domain.lower()] = t
    tables.sort(key=lambda t: t.domain)
    names = [t.domain for t in tables]
    if len(names) < 2:
        raise ValueError(f"{folder}: only domain {names[0]!r} ({tables[0].path.name}); at least 2 domains are needed")
    names_files: dict[int, Path] = {}
    for stem, p in class_files.items():
        a = _resolve_domain(stem, names)
        if a is None:
            raise ValueError(f"{p}: no domain {stem!r}: no CSV in {folder} holds it (domains: {', '.join(names)})")
        if a in names_files:
            raise ValueError(f"{p}: a second classes file for domain {names[a]!r} (after {names_files[a].name})")
        names_files[a] = p
    # which column of which table holds each ordered pair's predictions
    cols: dict[tuple[int, int], str] = {}
    for a, t in enumerate(tables):
        for written, col in t.pred_cols.items():
            b = _resolve_domain(written, names)
            if b is None:
                raise ValueError(
                    f"{t.path}: line {t.header_line}, column {col}: no domain {written!r}: there is no CSV for it in "
                    f"{folder} (domains: {', '.join(names)})"
                )
            if (a, b) in cols:
                raise ValueError(
                    f"{t.path}: line {t.header_line}, column {col}: a second column for domain {names[b]!r}"
                )
            cols[a, b] = col
        missing = [names[b] for b in range(len(names)) if b != a and (a, b) not in cols]
        if missing:
            spell = f"pred_{missing[0]}" if t.layout == "unitax" else f"predictions_{missing[0]}_on_{t.domain}"
            raise ValueError(
                f"{t.path}: line {t.header_line}, column {spell}: missing; every domain's file needs the predictions "
                f"of every other domain's model (domains: {', '.join(names)})"
            )
    domains, codes = [], {}
    for a, t in enumerate(tables):
        spots = [(t, t.true_col)] + [(tables[x], cols[x, a]) for x in range(len(tables)) if x != a]
        classes, source = _classes(t.domain, spots, names_files.get(a))
        for table, col in spots:
            codes[table.domain, col] = _codes(t.domain, classes, source, table, col)
        domains.append(ImportedDomain(t.domain, tuple(classes), codes[t.domain, t.true_col], t.path, t.layout, source))
    cells = sum(len(domains[a].class_names) * len(domains[b].class_names) for a, b in cols)
    if cells > MAX_CELLS:
        raise ValueError(
            f"{folder}: the cross-domain matrices would hold {cells} cells (sum of K_a x K_b), at most {MAX_CELLS}"
        )
    pred = {(a, b): codes[tables[a].domain, col] for (a, b), col in sorted(cols.items())}
    notes = tuple(n for t in tables for n in t.notes)
    return Imported(tuple(domains), pred, notes)


def count_matrices(imported: Imported) -> dict[tuple[int, int], np.ndarray]:
    """``{(a, b): C_ab (K_a, K_b)}``: how many rows of true class a:i domain b's model called b:j."""
    from core.crossdomain import count_matrix

    k = [len(d.class_names) for d in imported.domains]
    return {
        (a, b): count_matrix(imported.domains[a].true, p, k[a], k[b]) for (a, b), p in sorted(imported.pred.items())
    }


# ----------------------------------------------------------------------------- the run folder


def is_imported(run) -> bool:
    """True when ``run`` (a core.runs.Run) was made by :func:`import_predictions`: it has no images."""
    return any(d.get("source") == IMPORTED for d in run.domains() if isinstance(d, dict))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _out_folder(out: str | os.PathLike | None, name: str) -> Path:
    """A new run folder: ``out`` when it does not exist or is empty (an empty marked one too),
    else ValueError; None: a new folder under the runs root."""
    from core.runlock import LOCK_NAME
    from core.runs import MARKER, create_run_dir, init_run_dir

    if out is None:
        return create_run_dir(None, name)
    path = Path(out)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ValueError(f"--out {out}: not a folder (a file or a link); choose a new or empty folder")
    if path.is_dir() and any(p.name not in (MARKER, LOCK_NAME) for p in path.iterdir()):
        raise ValueError(
            f"--out {out}: not empty; an import starts a run of its own: choose a new or empty folder"
            + ("" if (path / MARKER).exists() else f" (this one is no unitax run folder: no {MARKER} marker)")
        )
    return init_run_dir(path)


def _still_empty(path: Path) -> None:
    from core.runlock import LOCK_NAME
    from core.runs import MARKER

    if any(p.name not in (MARKER, LOCK_NAME) for p in path.iterdir()):
        raise ValueError(f"--out {path}: another import wrote into it meanwhile; choose a new or empty folder")


def _config(name: str, folder: Path, truth: Path | None, imported: Imported, selection) -> dict:
    """config.yaml of an imported run: what was imported, and the sections the pages read."""
    from core.config import CrossDomainConfig, EvidenceConfig, config_to_dict

    return {
        "name": name,
        "source": IMPORTED,
        "imported": {
            "predictions": str(folder.resolve()),
            "truth": None if truth is None else str(truth.resolve()),
            "domains": [
                {
                    "name": d.name,
                    "file": d.file.name,
                    "layout": d.layout,
                    "rows": int(d.true.size),
                    "classes": len(d.class_names),
                    "class_names_from": d.classes_from,
                    "sha256": _sha256(d.file),
                }
                for d in imported.domains
            ],
        },
        "crossdomain": config_to_dict(CrossDomainConfig()),
        "selection": config_to_dict(selection),
        "evidence": config_to_dict(EvidenceConfig()),
    }


def import_predictions(
    folder: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    truth: str | os.PathLike | None = None,
    methods: Sequence | None = None,
    name: str | None = None,
) -> Path:
    """Make a run folder from the prediction CSVs in ``folder`` (module docstring) and return it.

    ``out``: a new or empty folder (None: a new one under the runs root); ``truth``: a CSV of
    related class pairs (core.mapping_io.read_mapping_csv) made the run's ground truth;
    ``methods``: the core.config.MethodSpec list whose selection and taxonomy are written
    (default: core.config.SelectionConfig's). Every input is read and checked before the folder
    is touched (ValueError naming file, line and column); the run is locked while it is written.
    """
    from core.config import CrossDomainConfig, RunConfig, SelectionConfig, config_hash
    from core.context import RunContext
    from core.mapping_io import read_mapping_csv
    from core.runs import STEPS, Run, RunLock
    from core.steps import STEP_FUNCTIONS

    folder = Path(folder)
    imported = read_predictions(folder, skip=truth)
    truth_path = None if truth is None else Path(truth)
    if truth_path is not None and not read_mapping_csv(truth_path, imported.names, imported.class_names):
        raise ValueError(f"{truth_path}: no relationships (only a header)")
    selection = SelectionConfig() if methods is None else SelectionConfig(methods=tuple(methods))
    name = name or f"imported-{folder.resolve().name or 'predictions'}"
    cfg = RunConfig(name=name, crossdomain=CrossDomainConfig(), selection=selection)  # what the two steps read
    counts = count_matrices(imported)
    run = Run(_out_folder(out, name))
    with RunLock(run.path, purpose="import"):
        _still_empty(run.path)  # checked again under the lock: two imports into one folder, one wins
        config = _config(name, folder, truth_path, imported, selection)
        run.write_config(config)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        run.write_environment(
            {
                "created": now,
                "start_time": now,
                "python": sys.version.split()[0],
                "argv": sys.argv,
                "pid": os.getpid(),
                "hostname": socket.gethostname(),
                "source": IMPORTED,
            }
        )
        run.write_status(state="running", step="crossdomain", steps_done=[], progress=0.0, message="importing",
                         pid=None, pid_identity=None, error=None)  # fmt: skip
        try:
            _write(run, imported, counts, truth_path)
            done = list(STEPS[:4])
            hashes = {s: config_hash(config["imported"]) for s in done}
            run.write_step_hashes(hashes)
            ctx = RunContext(cfg=cfg, run=run)
            for step in ("selection", "taxonomy"):
                ctx.step = step
                STEP_FUNCTIONS[step](ctx)
                done.append(step)
                hashes[step] = config_hash([config["imported"], config["crossdomain"], config["selection"]])
                run.write_step_hashes(hashes)
        except BaseException as exc:
            run.write_status(state="failed", message="import failed", error=f"{type(exc).__name__}: {exc}", pid=None)
            raise
        message = "imported predictions: no images (features, baselines and the universal model need them)"
        run.write_status(state="done", step=None, steps_done=done, progress=1.0, eta_s=None, pid=None, message=message)
        run.log(f"import done: steps {', '.join(done)}")
    return run.path


def _write(run, imported: Imported, counts: dict, truth: Path | None) -> None:
    """domains.json, the cross-domain matrices and predictions, truth.csv; log lines."""
    from core.crossdomain import normalize_rows
    from core.mapping_io import import_truth

    run.write_domains(
        [
            {
                "name": d.name,
                "source": IMPORTED,
                "shift": "none",
                "class_names": list(d.class_names),
                "n_train": 0,
                "n_val": 0,
                "n_test": int(d.true.size),
            }
            for d in imported.domains
        ]
    )
    run.log(f"imported predictions from {imported.domains[0].file.parent}: no images, only the predicted classes")
    for d in imported.domains:
        run.log(f"domain {d.name}: {len(d.class_names)} classes ({d.classes_from}), {d.true.size} rows from "
                f"{d.file.name} ({d.layout} layout)")  # fmt: skip
    for note in imported.notes:
        run.log(note)
    hard = {ab: normalize_rows(c) for ab, c in counts.items()}
    true = {a: d.true for a, d in enumerate(imported.domains)}
    run.write_crossdomain({"count": counts, "hard": hard, "soft": hard}, true, {}, dict(imported.pred), {})
    run.log(f"cross-domain: {len(counts)} ordered pairs (soft = hard: no probabilities were imported)")
    if truth is not None:
        n = import_truth(run, truth)
        run.log(f"ground truth: {n} related class pairs from {truth}")
