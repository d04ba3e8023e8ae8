"""Relationships in and out of a run, with their provenance: SSSOM and CSV exports of the curated
edge set of one selection setting, CSV imports as decisions or as the run's ground truth.

**What is exported.** For a setting (a selection method and its parameter, on the matrices of
one kind, by default the run config's ``crossdomain.matrix``) the curated edge set
``(selected + accepted) - rejected`` (:func:`core.curation.curated_table`), one row per directed
edge ``a:i -> b:j``. Each edge's relation type comes from the decision that accepted it when the
researcher recorded one, else from the edge evidence of the run's count matrices
(:func:`core.evidence.edge_table`, both directions ``p_ab``, ``p_ba``), else (an edge that is no
candidate: ``p_ab`` and ``p_ba`` below ``core.evidence.MIN_P``) it is unknown.

**SSSOM/TSV** (:func:`sssom_table`, :func:`sssom_text`, :func:`write_sssom`; the Simple Standard
for Sharing Ontological Mappings): a YAML metadata block, every line prefixed with ``#``
(``curie_map`` first, with one prefix per domain; ``mapping_set_id``, ``license``,
``mapping_date``, ...), then a tab-separated table with the columns :data:`SSSOM_COLUMNS`.

- ``subject_id`` / ``object_id``: a CURIE ``PREFIX:LOCAL`` with the domain's prefix (its name
  made a valid prefix name) and as local part the class name percent-encoded (RFC 3986: all but
  ``A-Za-z0-9_.-~``), or the index form ``#i`` (encoded ``%23i``) where the name does not
  identify the class (:func:`core.curation.class_label`); decoding the local part and reading
  it with :func:`core.curation.parse_class` gives the class back.
- ``predicate_id`` (:data:`PREDICATES`), for the row ``subject a:i, object b:j``. core.evidence
  says *narrower* when ``a:i`` is a part of ``b:j`` (most of a:i's images read as b:j). In SKOS
  ``X skos:broadMatch Y`` states that Y is *broader* than X, so a narrower edge is written
  ``a:i skos:broadMatch b:j``, and a broader one (``b:j`` a part of ``a:i``) ``a:i
  skos:narrowMatch b:j``; equivalent is ``skos:exactMatch``, overlap and an unknown type
  ``skos:relatedMatch``.
- ``mapping_justification``: ``semapv:ManualMappingCuration`` for accepted and added edges (a
  person's judgement); for the setting's undecided edges ``semapv:InstanceBasedMatching``, SEMAPV's
  "matching process based on individual representations (instances)": the edge comes from how
  domain b's model classifies the *images* (instances) of class a:i, i.e. from shared
  instances, not from comparing names or a similarity score of the class descriptions, which is
  what ``semapv:SemanticSimilarityThresholdMatching`` describes.
- ``confidence``: 1.0 for a curated (accepted or added) edge, else the evidence's confidence in
  the relation type (empty when the edge is no candidate or the run has no count matrices).
- ``comment``: the setting (``method=value``, the matrix kind) and, for a decided edge, who
  decided it, when, and the note.

**CSV** (:func:`mapping_csv`): the columns :data:`CSV_COLUMNS`, one row per directed edge, the
class as its name or ``#i``. ``relation`` is the relation of that row's edge, the same one the
SSSOM predicate states (the decision's when the researcher recorded one, else the evidence's;
empty when unknown), ``direction`` what the curated edge *set* holds of the pair: ``a->b`` when
only this edge is in it, ``both`` when the reverse edge is too, so that the file imports back to
the same set (:func:`read_mapping_csv`). ``source`` is :func:`core.curation.curated_table`'s:
``selected`` (chosen by the setting, undecided), ``accepted`` (selected and accepted), ``added``
(in the set by a decision only: the setting did not select it); ``action`` is the deciding
decision's (``accept`` or ``add``, empty when undecided), so an ``added`` row with action
``accept`` is an edge accepted, e.g. as the reverse of a "both directions" accept, that the
setting did not select. The SSSOM ``comment`` says the same in words: "accepted by <author>",
"accepted by <author> (not selected by the setting)" or "added by <author>" (an ``add``).

**Imports** (:func:`read_mapping_csv`): a UTF-8 CSV with a header naming ``domain_a, class_a,
domain_b, class_b`` and optionally ``relation`` and ``direction`` (other columns are ignored).
Direction: with a ``direction`` cell, ``a->b`` gives ``a:i -> b:j`` only and ``both`` both
edges; without one (a file made by hand has no such column) the relation decides:
``narrower`` -> ``a:i -> b:j`` only, ``broader`` -> ``b:j -> a:i`` only, ``equivalent``,
``overlap`` or empty -> both. :func:`import_decisions` records the edges as one ``add``
decision (one undo takes it back), :func:`import_truth` writes the related pairs to the run's
``truth.csv``, which then scores every page, the selection step and the sweep
(:meth:`core.runs.Run.true_relationships`). Every bad file is one ValueError naming the file,
the line and the column.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from core.curation import (
    Decision,
    EdgeRef,
    class_in_domain,
    class_label,
    curated_edges,
    curated_table,
    decide,
    load_state,
    setting_edges,
)
from core.evidence import MIN_P, RELATIONS, edge_table
from core.fsio import write_text

__all__ = [
    "PREDICATES",
    "SSSOM_COLUMNS",
    "CSV_COLUMNS",
    "MANUAL",
    "AUTOMATIC",
    "MAX_BYTES",
    "MAX_ROWS",
    "default_setting",
    "setting_text",
    "sssom_table",
    "sssom_text",
    "write_sssom",
    "mapping_csv",
    "csv_text",
    "read_mapping_csv",
    "read_text_file",
    "import_decisions",
    "import_truth",
    "truth_text",
]

PREDICATES = {
    "equivalent": "skos:exactMatch",
    "narrower": "skos:broadMatch",  # a:i is a part of b:j: b:j is broader than a:i
    "broader": "skos:narrowMatch",  # b:j is a part of a:i: b:j is narrower than a:i
    "overlap": "skos:relatedMatch",
}
UNKNOWN_PREDICATE = "skos:relatedMatch"
MANUAL = "semapv:ManualMappingCuration"
AUTOMATIC = "semapv:InstanceBasedMatching"
UNSPECIFIED_LICENSE = "https://w3id.org/sssom/license/unspecified"
SSSOM_COLUMNS = ["subject_id", "subject_label", "predicate_id", "object_id", "object_label",
                 "mapping_justification", "confidence", "comment"]  # fmt: skip
CSV_COLUMNS = ["domain_a", "class_a", "domain_b", "class_b", "relation", "direction", "weight", "source", "action",
               "confidence", "p_ab", "p_ba", "author", "time", "note"]  # fmt: skip
DIRECTIONS = ("a->b", "both")  # the CSV's direction column: this edge only, or both edges of the pair
INVERSE = {"narrower": "broader", "broader": "narrower"}  # a relation seen from the reverse edge
REQUIRED = ("domain_a", "class_a", "domain_b", "class_b")
MAX_BYTES = 50 * 1024 * 1024  # an import file
MAX_ROWS = 1_000_000  # rows of an import file
BUILTIN_PREFIXES = ("owl", "rdf", "rdfs", "semapv", "skos", "sssom", "xsd", "linkml")
IRI_BASE = "https://unitax.invalid/runs/"  # .invalid (RFC 2606): local identifiers that never resolve
DIGITS = 6  # decimals of weights, shares and confidences in the exports


# ----------------------------------------------------------------------------- the setting


def default_setting(run) -> tuple[str, float | int | None]:
    """(method, value) of the run config's first selection method (its parameter, else the
    method's default); ``("mcfp", None)`` when the config names none."""
    from core.selection import METHODS

    methods = (run.config.get("selection") or {}).get("methods") if isinstance(run.config, dict) else None
    first = methods[0] if isinstance(methods, list) and methods and isinstance(methods[0], dict) else {}
    name = first.get("name")
    if name not in METHODS:
        return "mcfp", None
    spec = METHODS[name]
    if spec.param is None:
        return name, None
    params = first.get("params") if isinstance(first.get("params"), dict) else {}
    return name, params.get(spec.param, spec.default)


def setting_text(method: str, value: float | int | None) -> str:
    """``method=value`` (``method`` alone for a method without a parameter)."""
    return method if value is None else f"{method}={value:g}"


def _kind(run, kind: str | None) -> str:
    if kind is not None:
        return kind
    matrix = (run.config.get("crossdomain") or {}).get("matrix") if isinstance(run.config, dict) else None
    return matrix if isinstance(matrix, str) else "hard"


def _class_text(a: int, i: int, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> str:
    """The class part of :func:`core.curation.class_label` (``name`` or ``#i``); ``#i`` also for a
    name that reads back differently (empty, or with spaces around it)."""
    name = class_names[a][i]
    if not name or name != name.strip():
        return f"#{i}"
    return class_label(a, i, domain_names, class_names)[len(domain_names[a]) + 1 :]


def _image_counts(count_mats: dict) -> list[np.ndarray] | None:
    """Test images per class of every domain (row sums of its count matrices), or None."""
    out: dict[int, np.ndarray] = {}
    for (a, _b), C in count_mats.items():
        out.setdefault(a, np.rint(np.asarray(C, dtype=np.float64).sum(axis=1)).astype(np.int64))
    return [out[a] for a in sorted(out)] if out and sorted(out) == list(range(len(out))) else None


def _evidence(run, final: dict, counts: list[int]) -> dict[tuple[int, int, int, int], tuple]:
    """``{(a, i, b, j): (p_ab, p_ba, relation | None, confidence)}`` for every edge of ``final``
    (relation and confidence None when the edge is no candidate); {} without count matrices."""
    count_mats = run.matrices("count")
    images = _image_counts(count_mats)
    if images is None or [c.size for c in images] != list(counts):
        return {}
    table = edge_table(count_mats, images, selected=final)
    table = table[table["selected"]]
    out = {}
    for row in table.itertuples(index=False):
        candidate = row.p_ab >= MIN_P or row.p_ba >= MIN_P
        out[row.a, row.i, row.b, row.j] = (
            float(row.p_ab),
            float(row.p_ba),
            row.relation if candidate else None,
            float(row.confidence) if candidate else None,
        )
    return out


def _curated_rows(run, method: str | None, value, kind: str | None) -> tuple[pd.DataFrame, dict]:
    """core.curation.curated_table of the setting with each edge's evidence, its stated relation
    (decision > evidence > None), the deciding decision's ``action`` (None when undecided) and
    whether its reverse is in the set; plus the setting."""
    if method is None:
        method, value = default_setting(run)
    kind = _kind(run, kind)
    names, classes = run.domain_names(), run.class_names()
    if len(names) < 2:
        raise ValueError(f"run {run.id!r} has {len(names)} domain(s): its domains step has not finished")
    matrices = run.matrices(kind)
    if not matrices:
        raise ValueError(f"run {run.id!r} has no {kind} cross-domain matrices: run its crossdomain step first")
    selected = setting_edges(matrices, method, value)
    state = load_state(run)
    counts = [len(c) for c in classes]
    table = curated_table(selected, state, names, classes)
    evidence = _evidence(run, curated_edges(selected, state, counts), counts)
    keys = set(_keys(table))
    ev = [evidence.get((a, i, b, j), (np.nan, np.nan, None, None)) for a, i, b, j in _keys(table)]
    table["p_ab"] = [e[0] for e in ev]
    table["p_ba"] = [e[1] for e in ev]
    table["evidence_relation"] = [e[2] for e in ev]
    table["evidence_confidence"] = [np.nan if e[3] is None else e[3] for e in ev]
    table["stated"] = [d if isinstance(d, str) else e[2] for d, e in zip(table["relation"], ev)]
    table["two_way"] = [(b, j, a, i) in keys for a, i, b, j in _keys(table)]
    verdicts = state.verdicts
    table["action"] = [verdicts[e][1].action if e in verdicts else None for e in (EdgeRef(*k) for k in _keys(table))]
    table["class_text_a"] = [_class_text(a, i, names, classes) for a, i in zip(table["a"], table["i"])]
    table["class_text_b"] = [_class_text(b, j, names, classes) for b, j in zip(table["b"], table["j"])]
    info = {"method": method, "value": value, "kind": kind, "setting": setting_text(method, value)}
    return table, info


def _keys(table: pd.DataFrame) -> list[tuple[int, int, int, int]]:
    return [(int(a), int(i), int(b), int(j)) for a, i, b, j in zip(table["a"], table["i"], table["b"], table["j"])]


def _provenance(source: str, action: str | None, author: str | None) -> str:
    """Who put a decided edge in the set, in words: "added by X" for an ``add`` decision,
    "accepted by X" for an accept of a selected edge, "accepted by X (not selected by the
    setting)" for an accept of an edge the setting did not select (curated_table's ``added``,
    e.g. the reverse edge of a "both directions" accept)."""
    who = author or "unknown"
    if action == "add":
        return f"added by {who}"
    return f"accepted by {who}" + (" (not selected by the setting)" if source == "added" else "")


def _comment(row, info: dict) -> str:
    parts = [f"setting {info['setting']} ({info['kind']} matrices)"]
    if row.source != "selected":
        parts.append(f"{_provenance(row.source, row.action, row.author)} at {row.time or '?'}")
        if row.note:
            parts.append(f"note: {row.note}")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- SSSOM


def _prefixes(domain_names: Sequence[str]) -> list[str]:
    """One CURIE prefix (an XML NCName, not a built-in SSSOM prefix, unique) per domain."""
    out: list[str] = []
    for name in domain_names:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "domain"
        if not re.match(r"[A-Za-z_]", base):
            base = f"d_{base}"
        cand, n = base, 1
        while cand.lower() in BUILTIN_PREFIXES or cand in out:
            n += 1
            cand = f"{base}_{n}"
        out.append(cand)
    return out


def sssom_table(run, method: str | None, value: float | int | None, kind: str | None = None) -> pd.DataFrame:
    """The curated edge set of one setting as an SSSOM mapping table: columns
    :data:`SSSOM_COLUMNS`, one row per directed edge ``a:i -> b:j`` (subject a:i, object b:j),
    sorted by (a, i, b, j). ``method`` None: :func:`default_setting`; ``kind`` None: the run
    config's ``crossdomain.matrix``. The metadata block (a dict: ``curie_map``,
    ``mapping_set_id``, ``license``, ``mapping_date``, ...) is in ``df.attrs["sssom"]``;
    :func:`sssom_text` writes both. Direction of the SKOS predicates: see the module docstring
    (a narrower edge, a:i a part of b:j, is ``a:i skos:broadMatch b:j``)."""
    table, info = _curated_rows(run, method, value, kind)
    names = run.domain_names()
    prefixes = _prefixes(names)
    rows = []
    for row in table.itertuples(index=False):
        curated = row.source != "selected"
        rows.append(
            {
                "subject_id": f"{prefixes[row.a]}:{quote(row.class_text_a, safe='')}",
                "subject_label": row.class_a,
                "predicate_id": PREDICATES.get(row.stated, UNKNOWN_PREDICATE),
                "object_id": f"{prefixes[row.b]}:{quote(row.class_text_b, safe='')}",
                "object_label": row.class_b,
                "mapping_justification": MANUAL if curated else AUTOMATIC,
                "confidence": 1.0 if curated else _round(row.evidence_confidence),
                "comment": _comment(row, info),
            }
        )
    df = pd.DataFrame(rows, columns=SSSOM_COLUMNS)
    run_part = quote(run.id, safe="")
    df.attrs["sssom"] = {
        "curie_map": {p: f"{IRI_BASE}{run_part}/{quote(n, safe='')}/" for p, n in sorted(zip(prefixes, names))},
        "mapping_set_id": f"urn:uuid:{uuid.uuid4()}",
        "mapping_set_title": f"curated relationships of run {run.id}",
        "mapping_set_description": (
            f"The curated relationships (selected + accepted - rejected) of run {run.id} with the selection "
            f"setting {info['setting']} on its {info['kind']} cross-domain matrices; one row per directed "
            "relationship subject -> object (most of the subject's images are read as the object)."
        ),
        "license": UNSPECIFIED_LICENSE,
        "mapping_tool": "unitax",
        "mapping_date": datetime.now(timezone.utc).date().isoformat(),
        "comment": f"setting {info['setting']}, matrix {info['kind']}",
    }
    return df


def _round(x) -> float:
    return float("nan") if x is None or not np.isfinite(x) else round(float(x), DIGITS)


def sssom_text(df: pd.DataFrame) -> str:
    """SSSOM/TSV text of a :func:`sssom_table`: the metadata block (YAML, each line prefixed
    ``#``) then the table (tab-separated, values with a tab, newline or quote double-quoted)."""
    import yaml

    meta = df.attrs.get("sssom")
    if not isinstance(meta, dict) or "curie_map" not in meta:
        raise ValueError("the table has no SSSOM metadata (df.attrs['sssom']): make it with sssom_table")
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)
    block = "".join(f"#{line}\n" for line in head.splitlines())
    body = defuse(df).to_csv(sep="\t", index=False, lineterminator="\n", na_rep="")
    return block + body


def write_sssom(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`sssom_text` of ``df`` to ``path`` (atomically; it replaces the file)."""
    write_text(path, sssom_text(df))
    return Path(path)


# ----------------------------------------------------------------------------- CSV


def mapping_csv(run, method: str | None, value: float | int | None, kind: str | None = None) -> pd.DataFrame:
    """The curated edge set of one setting as a plain table, columns :data:`CSV_COLUMNS`, one row
    per directed edge ``a:i -> b:j`` sorted by (a, i, b, j): class as name or ``#i``,
    ``relation`` the edge's (the SSSOM predicate's: decision > evidence; empty when unknown),
    ``direction`` (``a->b``: only this edge is in the set, ``both``: its reverse is too; the
    file imports back to the same set), ``weight`` (accepted edges 1), ``source`` (selected /
    accepted / added, as :func:`core.curation.curated_table`), ``action`` (the deciding
    decision's: accept / add, empty when undecided), ``confidence`` (1.0 curated, else the
    evidence's), the evidence ``p_ab``, ``p_ba`` (empty without count matrices) and the
    decision's author, time and note."""
    table, _info = _curated_rows(run, method, value, kind)
    out = pd.DataFrame(
        {
            "domain_a": table["domain_a"],
            "class_a": table["class_text_a"],
            "domain_b": table["domain_b"],
            "class_b": table["class_text_b"],
            "relation": [s if isinstance(s, str) else "" for s in table["stated"]],
            "direction": [DIRECTIONS[1] if t else DIRECTIONS[0] for t in table["two_way"]],
            "weight": _num(table["weight"]),
            "source": table["source"],
            "action": table["action"],
            "confidence": [
                1.0 if s != "selected" else _round(c) for s, c in zip(table["source"], table["evidence_confidence"])
            ],
            "p_ab": _num(table["p_ab"]),
            "p_ba": _num(table["p_ba"]),
            "author": table["author"],
            "time": table["time"],
            "note": table["note"],
        },
        columns=CSV_COLUMNS,
    )
    return out


def _num(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col, errors="coerce").astype(np.float64).round(DIGITS)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with these


def defuse(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell that a spreadsheet would run as a formula (``=HYPERLINK(...)``,
    ``+1``, ``@SUM(...)``: class names and notes are user data) prefixed with ``'``, the
    spreadsheets' own "this is text" mark; :func:`read_mapping_csv` takes it off again."""
    return df.map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)


def csv_text(df: pd.DataFrame) -> str:
    """CSV text (UTF-8, ``\\n`` line ends, empty cells for missing values) of a table, formula
    cells defused (:func:`defuse`)."""
    return defuse(df).to_csv(index=False, lineterminator="\n", na_rep="")


# ----------------------------------------------------------------------------- import


def read_text_file(path: str | os.PathLike, max_bytes: int) -> str:
    """The text of a file to import (shared with core.importer); ValueError naming it (and the
    line) when it is missing, not a plain file, unreadable, over ``max_bytes``, binary (a NUL
    byte) or not UTF-8 (a BOM is allowed)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    if size > max_bytes:
        raise ValueError(f"{path}: {size} bytes is too large to import (at most {max_bytes / 2**20:g} MB)")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{path}: too large to import (at most {max_bytes / 2**20:g} MB)")
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise ValueError(f"{path}: line {line}: a binary file (NUL byte), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _domain(value: str, domain_names: Sequence[str]) -> int | None:
    if value in domain_names:
        return list(domain_names).index(value)
    folded = [a for a, n in enumerate(domain_names) if n.lower() == value.lower()]
    return folded[0] if len(folded) == 1 else None


def read_mapping_csv(
    path: str | os.PathLike, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]
) -> list[tuple[EdgeRef, str | None]]:
    """The relationships of a CSV file as directed edges, each with its relation *as seen from
    that edge* (a ``broader`` row ``a:i, b:j`` gives ``(b:j -> a:i, "narrower")``; None when the
    row states none), in file order without repeats.

    The file: UTF-8 (a BOM is allowed), at most :data:`MAX_BYTES` and :data:`MAX_ROWS` rows, a
    header naming ``domain_a, class_a, domain_b, class_b`` and optionally ``relation`` and
    ``direction`` (any order, any case; other columns ignored), blank lines skipped. A class is
    its name or ``#index`` (:func:`core.curation.parse_class`), a domain its name
    (case-insensitive when unique). Direction: a ``direction`` cell ``a->b`` gives a->b only,
    ``both`` a->b and b->a (the relation of b->a is the row's seen from b: narrower and broader
    swap); an empty cell or no ``direction`` column: ``narrower`` -> a->b, ``broader`` -> b->a,
    ``equivalent`` / ``overlap`` / empty -> both. An edge a row names itself wins over the same
    edge implied as the reverse of another row (the first such row wins). ValueError
    ``"<file>: line N, column C: <what>"`` for the first bad row.
    """
    path = Path(path)
    text = read_text_file(path, MAX_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: dict[str, int] | None = None
    out: dict[EdgeRef, tuple[str | None, bool]] = {}  # edge -> (relation, named by a row itself)
    start, n_rows = 1, 0
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                cols = [c.strip().lower() for c in row]
                for name in REQUIRED:
                    if name not in cols:
                        raise ValueError(
                            f"{path}: line {line}, column {name}: missing from the header (found "
                            f"{', '.join(repr(c) for c in cols[:8])}); the header must name "
                            f"{', '.join(REQUIRED)} and optionally relation and direction"
                        )
                header = {}
                for k, name in enumerate(cols):
                    header.setdefault(name, k)
                continue
            n_rows += 1
            if n_rows > MAX_ROWS:
                raise ValueError(f"{path}: line {line}: more than {MAX_ROWS} rows; split the file")
            for edge, relation, own in _row_edges(row, header, path, line, domain_names, class_names):
                if edge not in out or (own and not out[edge][1]):
                    out[edge] = (relation, own)
    except csv.Error as exc:
        raise ValueError(f"{path}: line {start}: not a readable CSV row ({exc})") from None
    if header is None:
        raise ValueError(f"{path}: line 1: empty file; the header must name {', '.join(REQUIRED)}")
    return [(edge, relation) for edge, (relation, _own) in out.items()]


def _row_edges(
    row: list[str],
    header: dict[str, int],
    path: Path,
    line: int,
    domain_names: Sequence[str],
    class_names: Sequence[Sequence[str]],
) -> list[tuple[EdgeRef, str | None, bool]]:
    """The edges of one row: ``(edge, relation seen from it, whether the row names it itself)``."""

    def cell(name: str) -> str:
        k = header[name]
        value = row[k].strip() if k < len(row) else ""
        if value[:1] == "'" and value[1:2] and value[1:].startswith(FORMULA_START):
            value = value[1:]  # defused on export
        if not value and name not in ("relation", "direction"):
            raise ValueError(f"{path}: line {line}, column {name}: empty")
        return value

    ends = []
    for dcol, ccol in (("domain_a", "class_a"), ("domain_b", "class_b")):
        a = _domain(cell(dcol), domain_names)
        if a is None:
            raise ValueError(
                f"{path}: line {line}, column {dcol}: unknown domain {cell(dcol)!r}; this run's domains are "
                f"{list(domain_names)}"
            )
        try:
            ends.append((a, class_in_domain(a, cell(ccol), domain_names, class_names)))
        except ValueError as exc:
            raise ValueError(f"{path}: line {line}, column {ccol}: {exc}") from None
    (a, i), (b, j) = ends
    if a == b:
        raise ValueError(
            f"{path}: line {line}, column domain_b: {domain_names[a]!r} is domain_a too; a relationship joins two "
            "domains"
        )
    relation = cell("relation").lower() if "relation" in header else ""
    if relation and relation not in RELATIONS:
        raise ValueError(
            f"{path}: line {line}, column relation: {relation!r} is not one of {', '.join(RELATIONS)} (or empty)"
        )
    direction = cell("direction").lower().replace(" ", "") if "direction" in header else ""
    if direction and direction not in DIRECTIONS:
        raise ValueError(
            f"{path}: line {line}, column direction: {direction!r} is not one of {', '.join(DIRECTIONS)} (or empty)"
        )
    edge, stated = EdgeRef(a, i, b, j), relation or None
    if direction == "a->b" or (not direction and relation == "narrower"):
        return [(edge, stated, True)]
    if not direction and relation == "broader":
        return [(edge.reverse(), "narrower", True)]
    return [(edge, stated, True), (edge.reverse(), INVERSE.get(relation, stated), False)]


def import_decisions(run, path: str | os.PathLike, *, author: str | None = None, note: str | None = None) -> Decision:
    """Record the relationships of a CSV file (:func:`read_mapping_csv`) as one ``add`` decision
    (one undo takes it back). Its relation is the file's when every edge has the same one, else
    None; ``note`` defaults to ``"imported from <file name>"``. ValueError for a bad or empty file."""
    edges = read_mapping_csv(path, run.domain_names(), run.class_names())
    if not edges:
        raise ValueError(f"{path}: no relationships to import (only a header)")
    relations = {r for _, r in edges}
    relation = relations.pop() if len(relations) == 1 else None
    note = f"imported from {Path(path).name}" if note is None else note
    return decide(run, "add", [e for e, _ in edges], note=note, author=author, relation=relation)


def truth_text(
    pairs: Sequence[tuple[int, int, int, int]], domain_names: Sequence[str], class_names: Sequence[Sequence[str]]
) -> str:
    """The CSV of related pairs ``(a, i, b, j)`` as ``truth.csv`` holds them (names, or ``#i``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(REQUIRED)
    for a, i, b, j in pairs:
        writer.writerow(
            [
                domain_names[a],
                _class_text(a, i, domain_names, class_names),
                domain_names[b],
                _class_text(b, j, domain_names, class_names),
            ]  # fmt: skip
        )
    return buf.getvalue()


def import_truth(run, path: str | os.PathLike) -> int:
    """Make the related pairs of a CSV file (:func:`read_mapping_csv`; direction and relation
    ignored: each pair holds both ways) the run's ground truth: ``truth.csv`` in the run
    (replacing an earlier import), one row per unordered pair ``(a, i, b, j)`` with ``a < b``,
    sorted. Returns the number of pairs; ValueError for a bad or empty file."""
    from core.runs import F

    names, classes = run.domain_names(), run.class_names()
    edges = read_mapping_csv(path, names, classes)
    pairs = sorted({(e.a, e.i, e.b, e.j) if e.a < e.b else (e.b, e.j, e.a, e.i) for e, _ in edges})
    if not pairs:
        raise ValueError(f"{path}: no relationships to import (only a header)")
    write_text(run.file(F.TRUTH), truth_text(pairs, names, classes))
    return len(pairs)
