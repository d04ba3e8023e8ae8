"""Curation: the researcher's decisions on relationships, kept as an append-only log in the run.

A decision is about directed relationships ``a:i -> b:j`` (:class:`EdgeRef`; ``a``, ``b`` domain
indices, ``i``, ``j`` class indices), the same edges the selection methods produce:

- ``accept``: the edge is right: it is kept whatever the setting (weight 1, see below);
- ``reject``: the edge is wrong: it is removed whatever the setting;
- ``add``: an edge no method selected is right (an ``accept`` the researcher typed in);

plus ``undo`` (of the latest decision still in force) and ``redo`` (of the latest undone one). One
decision may cover many edges (a bulk action); undo takes it back whole. The latest decision on
an edge wins. For any selection setting the **curated edge set** is
``(selected + accepted) - rejected`` (:func:`curated_edges`); the accepted edges carry weight 1 (a
researcher's word is certain, so in a chain the rule engine keeps it over a lighter one), the
other selected edges keep their weights.

**The log** (``curation.jsonl`` in the run, :data:`core.runs.F.CURATION`) holds one JSON object a
line: ``{"v": 1, "id", "action", "edges": [{"a": domain name, "i", "class_a", "b", "j", "class_b"}],
"relation", "time", "author", "note"}``, and ``{"v", "id", "action": "undo"|"redo", "target",
"time", "author"}``. Lines are only ever appended, each with one ``write`` under an exclusive
``flock`` of the log, so two browser tabs and a terminal writing at once lose nothing; an undo
reads the log and appends under the same lock. A line cut short by a crash is skipped (and the
next append starts on a fresh line); a line naming a class the run no longer has is skipped and
reported, so a log survives a rerun that renamed classes.

**Corrections as ground truth.** Among a setting's selected edges, the judged ones are those
accepted or rejected: precision = accepted / judged, and recall = selected accepted / all
accepted (:func:`curation_scores`).

**Class names.** On the command line a class is ``domain:class-name`` or ``domain:#index`` (the
index form is required when a domain has two classes of that name): :func:`parse_class`,
:func:`class_label`.
"""

from __future__ import annotations

import difflib
import fcntl
import getpass
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from core.evidence import RELATIONS
from core.fsio import open_plain
from core.selection import Edges

__all__ = [
    "ACTIONS",
    "EdgeRef",
    "Decision",
    "CurationState",
    "class_label",
    "parse_class",
    "class_in_domain",
    "parse_edge",
    "read_records",
    "replay",
    "load_state",
    "decide",
    "undo",
    "redo",
    "StaleError",
    "setting_edges",
    "selected_set",
    "curated_edge_set",
    "curated_edges",
    "curation_scores",
    "curated_table",
    "review_table",
    "with_decision_scores",
]

Pair = tuple[int, int]
ACTIONS = ("accept", "reject", "add")  # decisions on edges; "undo" and "redo" act on decisions
VERDICT = {"accept": "accept", "add": "accept", "reject": "reject"}
VERSION = 1
MAX_EDGES = 200_000  # edges in one decision (a bulk action)
MAX_NOTE = 2_000  # characters of a note
MAX_AUTHOR = 100  # characters of an author name
MAX_LINE = 32 << 20  # bytes of one log line (a bulk decision of MAX_EDGES edges stays below it)
CURATED_WEIGHT = 1.0  # weight of an accepted edge in the curated edge set


@dataclass(frozen=True, order=True)
class EdgeRef:
    """A directed relationship ``a:i -> b:j`` between classes of two different domains."""

    a: int
    i: int
    b: int
    j: int

    def reverse(self) -> EdgeRef:
        """The edge ``b:j -> a:i``."""
        return EdgeRef(self.b, self.j, self.a, self.i)


@dataclass(frozen=True)
class Decision:
    """One line of the log: ``action`` on ``edges`` (accept/reject/add), or on the decision
    ``target`` (undo/redo, ``edges`` empty)."""

    id: str
    action: str
    edges: tuple[EdgeRef, ...] = ()
    time: str = ""
    author: str = ""
    note: str = ""
    relation: str | None = None
    target: str | None = None


@dataclass
class CurationState:
    """The log replayed: the decisions in force (oldest first: the undo stack), the undone ones
    (the redo stack, the latest undo last), each edge's verdict and what was skipped, and why."""

    applied: list[Decision] = field(default_factory=list)
    undone: list[Decision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_undone: int = 0  # decisions taken back and not redone, including those a new decision made unredoable

    @property
    def verdicts(self) -> dict[EdgeRef, tuple[str, Decision]]:
        """Each decided edge: ("accept" | "reject", the decision in force that decided it)."""
        out: dict[EdgeRef, tuple[str, Decision]] = {}
        for d in self.applied:
            for e in d.edges:
                out[e] = (VERDICT[d.action], d)
        return out

    @property
    def accepted(self) -> set[EdgeRef]:
        return {e for e, (v, _) in self.verdicts.items() if v == "accept"}

    @property
    def rejected(self) -> set[EdgeRef]:
        return {e for e, (v, _) in self.verdicts.items() if v == "reject"}

    def verdict(self, edge: EdgeRef) -> str | None:
        """ "accept", "reject" or None (undecided)."""
        hit = self.verdicts.get(edge)
        return hit[0] if hit else None


# ----------------------------------------------------------------------------- class names


def class_label(a: int, i: int, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> str:
    """``domain:class-name``, or ``domain:#i`` when the name does not identify the class (two
    classes of the domain share it, it reads as an index ``#n``, it is empty or has spaces at
    either end)."""
    names = class_names[a]
    name = names[i]
    if (
        sum(n == name for n in names) > 1
        or (name.startswith("#") and name[1:].isdigit())
        or not name.strip()
        or name != name.strip()
    ):
        return f"{domain_names[a]}:#{i}"
    return f"{domain_names[a]}:{name}"


def _domain_of(text: str, domain_names: Sequence[str]) -> tuple[int, str]:
    hits = [(a, n) for a, n in enumerate(domain_names) if text.startswith(n + ":")]
    if not hits:
        hits = [(a, n) for a, n in enumerate(domain_names) if text.lower().startswith(n.lower() + ":")]
    if not hits:
        raise ValueError(f"class {text!r}: no domain of this run prefixes it; write DOMAIN:CLASS with DOMAIN one of "
                         f"{list(domain_names)}")  # fmt: skip
    a, name = max(hits, key=lambda h: len(h[1]))  # the longest domain name that fits
    return a, text[len(name) + 1 :]


def parse_class(text: str, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> tuple[int, int]:
    """``"domain:class-name"`` or ``"domain:#index"`` -> (a, i). The class name matches exactly,
    else case-insensitively when that is unique. ValueError naming the text, with the close
    matches, when it names no class or two."""
    if not isinstance(text, str):
        raise TypeError(f"a class is written DOMAIN:CLASS, got {type(text).__name__}")
    a, rest = _domain_of(text.strip(), domain_names)
    return a, class_in_domain(a, rest, domain_names, class_names, shown=text)


def class_in_domain(
    a: int, name: str, domain_names: Sequence[str], class_names: Sequence[Sequence[str]], *, shown: str | None = None
) -> int:
    """The index of class ``name`` (a name or ``#index``) in domain ``a`` (the rules of
    :func:`parse_class`, the domain already known: a file's domain column needs no parsing)."""
    text = f"{domain_names[a]}:{name}" if shown is None else shown
    names = list(class_names[a])
    if name.startswith("#") and name[1:].isascii() and name[1:].isdigit() and len(name) <= 12:
        i = int(name[1:])
        if not 0 <= i < len(names):
            raise ValueError(f"class {text!r}: domain {domain_names[a]!r} has classes #0 to #{len(names) - 1}")
        return i
    exact = [i for i, n in enumerate(names) if n == name]
    if not exact:
        exact = [i for i, n in enumerate(names) if n.lower() == name.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise ValueError(
            f"class {text!r} is ambiguous in domain {domain_names[a]!r}: "
            f"write {domain_names[a]}:#i with i one of {exact}"
        )
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"class {text!r}: domain {domain_names[a]!r} has no class {name!r}{hint}")


def parse_edge(source: str, target: str, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> EdgeRef:
    """The edge ``source -> target`` from two class texts (:func:`parse_class`); ValueError when
    both are in the same domain."""
    a, i = parse_class(source, domain_names, class_names)
    b, j = parse_class(target, domain_names, class_names)
    if a == b:
        raise ValueError(f"{source!r} and {target!r} are in the same domain; a relationship joins two domains")
    return EdgeRef(a, i, b, j)


# ----------------------------------------------------------------------------- the log file


def _log_path(run_dir: str | os.PathLike) -> Path:
    from core.runs import F

    return Path(run_dir) / F.CURATION


def _open(path: Path, *, create: bool) -> int:
    """The log opened for appending (never through a link), checked to be a plain file."""
    return open_plain(path, os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0), 0o666, "the decision log")


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[list[dict], list[str]]:
    records, problems = [], []
    lines = raw.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            problems.append(f"line {n}: {len(line):,} bytes, more than any decision holds, skipped")
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):
            cut = n == len(lines)  # the last line, without its newline: a write cut short
            problems.append(f"line {n}: {'cut short' if cut else 'not a JSON object'}, skipped")
            continue
        rec["_line"] = n
        records.append(rec)
    return records, problems


def read_records(run_dir: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """The log's records in order (each with its line number as ``_line``) and the lines that
    could not be read (a missing log: no records)."""
    path = _log_path(run_dir)
    if not path.exists() and not path.is_symlink():
        return [], []
    fd = _open(path, create=False)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return _parse(_read_all(fd))
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- replay


def _edge_from(rec: object, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> EdgeRef:
    if not isinstance(rec, dict):
        raise ValueError("an edge is not an object")
    ends = []
    for d, c, name in (("a", "i", "class_a"), ("b", "j", "class_b")):
        dom, idx, cname = rec.get(d), rec.get(c), rec.get(name)
        if dom not in domain_names:
            raise ValueError(f"domain {dom!r} is not in this run")
        a = list(domain_names).index(dom)
        names = class_names[a]
        if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(names) and names[idx] == cname:
            ends.append((a, idx))
            continue
        same = [i for i, n in enumerate(names) if n == cname]
        if len(same) != 1:
            raise ValueError(f"class {dom}:{cname!r} (#{idx}) is not in this run")
        ends.append((a, same[0]))
    (a, i), (b, j) = ends
    if a == b:
        raise ValueError("both ends are in one domain")
    return EdgeRef(a, i, b, j)


def _decision(rec: dict, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> Decision:
    action = rec.get("action")
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError("no id")
    limits = {"time": 40, "author": MAX_AUTHOR, "note": MAX_NOTE}  # a hand-edited log cannot swell the pages
    text = {k: rec[k][:cap] if isinstance(rec.get(k), str) else "" for k, cap in limits.items()}
    if action in ("undo", "redo"):
        if not isinstance(rec.get("target"), str):
            raise ValueError(f"{action} without a target")
        return Decision(rid, action, target=rec["target"], **text)
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    edges = rec.get("edges")
    if not isinstance(edges, list) or not edges:
        raise ValueError("no edges")
    relation = rec.get("relation") if rec.get("relation") in RELATIONS else None
    return Decision(
        rid, action, tuple(_edge_from(e, domain_names, class_names) for e in edges), relation=relation, **text
    )


def replay(records: Iterable[dict], domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> CurationState:
    """Apply the records in order. A record that cannot be read, names a class the run does not
    have, or undoes / redoes anything but the latest decision (two tabs undoing at once) is
    skipped and listed in ``problems``."""
    state = CurationState()
    for rec in records:
        where = f"line {rec.get('_line', '?')}"
        try:
            d = _decision(rec, domain_names, class_names)
        except ValueError as exc:
            state.problems.append(f"{where}: {exc}, skipped")
            continue
        if d.action == "undo":
            if state.applied and state.applied[-1].id == d.target:
                state.undone.append(state.applied.pop())
                state.n_undone += 1
            else:
                state.problems.append(f"{where}: undo of a decision that is not the latest, skipped")
        elif d.action == "redo":
            if state.undone and state.undone[-1].id == d.target:
                state.applied.append(state.undone.pop())
                state.n_undone -= 1
            else:
                state.problems.append(f"{where}: redo of a decision that is not the latest undone, skipped")
        else:
            state.applied.append(d)
            state.undone.clear()
    return state


def load_state(run) -> CurationState:
    """The run's decision log replayed against its domains (a :class:`core.runs.Run`)."""
    records, problems = read_records(run.path)
    state = replay(records, run.domain_names(), run.class_names())
    state.problems[:0] = problems
    return state


# ----------------------------------------------------------------------------- writing


def _author(author: str | None) -> str:
    if author is None or not str(author).strip():
        author = os.environ.get("UNITAX_AUTHOR")
        if not author:
            try:
                author = getpass.getuser()
            except Exception:  # noqa: BLE001 - no user name in this environment
                author = "unknown"
    author = str(author).strip()
    if len(author) > MAX_AUTHOR:
        raise ValueError(f"author {author[:40]!r}… is longer than {MAX_AUTHOR} characters")
    return author


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _append(run_dir: str | os.PathLike, make_record) -> dict | None:
    """Under the log's exclusive lock: ``make_record(state_records)`` -> record (or None: write
    nothing), appended as one line. Returns the record written."""
    path = _log_path(run_dir)
    fd = _open(path, create=True)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = _read_all(fd)
        rec = make_record(raw)
        if rec is None:
            return None
        line = json.dumps(rec, separators=(",", ":")) + "\n"  # ASCII: any name (even unpaired surrogates) fits
        if raw and not raw.endswith(b"\n"):
            line = "\n" + line  # the previous write was cut short: start a fresh line
        data = line.encode()
        written = os.write(fd, data)
        while written < len(data):  # a short write (full disk) raises on the next call
            written += os.write(fd, data[written:])
        os.fsync(fd)
        return rec
    finally:
        os.close(fd)


def _edge_record(e: EdgeRef, domain_names: Sequence[str], class_names: Sequence[Sequence[str]]) -> dict:
    for d, c in ((e.a, e.i), (e.b, e.j)):
        if not (0 <= d < len(domain_names) and 0 <= c < len(class_names[d])):
            raise ValueError(f"edge {e}: domain {d} class {c} is not in this run")
    if e.a == e.b:
        raise ValueError(f"edge {e}: both ends are in domain {domain_names[e.a]!r}")
    return {
        "a": domain_names[e.a],
        "i": e.i,
        "class_a": class_names[e.a][e.i],
        "b": domain_names[e.b],
        "j": e.j,
        "class_b": class_names[e.b][e.j],
    }


def decide(
    run,
    action: str,
    edges: Iterable[EdgeRef],
    *,
    note: str = "",
    author: str | None = None,
    relation: str | None = None,
) -> Decision:
    """Append one decision (``accept``, ``reject`` or ``add``) on ``edges`` to the run's log and
    return it. ``relation`` (one of core.evidence.RELATIONS) records what the researcher says
    the edge is. ValueError for an unknown action or relation, no edges, or an edge outside the
    run's domains."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {list(ACTIONS)}")
    if relation is not None and relation not in RELATIONS:
        raise ValueError(f"relation {relation!r} is not one of {list(RELATIONS)}")
    if not isinstance(note, str):
        raise TypeError(f"note must be text, got {type(note).__name__}")
    if len(note) > MAX_NOTE:
        raise ValueError(f"the note has {len(note)} characters; at most {MAX_NOTE}")
    edges = list(dict.fromkeys(edges))
    if not edges:
        raise ValueError(f"{action}: no edges")
    if len(edges) > MAX_EDGES:
        raise ValueError(f"{action}: {len(edges)} edges in one decision; at most {MAX_EDGES}")
    names, classes = run.domain_names(), run.class_names()
    rec = {
        "v": VERSION,
        "id": uuid.uuid4().hex[:16],
        "action": action,
        "edges": [_edge_record(e, names, classes) for e in edges],
        "relation": relation,
        "time": _now(),
        "author": _author(author),
        "note": note,
    }
    _append(run.path, lambda raw: rec)
    return Decision(rec["id"], action, tuple(edges), rec["time"], rec["author"], note, relation)


class StaleError(ValueError):
    """An undo / redo aimed at a decision that is no longer the latest (another tab or a terminal
    decided since the page was drawn)."""


def _step(run, action: str, author: str | None, expected: str | None = None) -> Decision | None:
    names, classes = run.domain_names(), run.class_names()
    who = _author(author)
    found: list[Decision] = []

    def make(raw: bytes) -> dict | None:
        state = replay(_parse(raw)[0], names, classes)
        stack = state.applied if action == "undo" else state.undone
        if expected is not None and (not stack or stack[-1].id != expected):
            latest = f"{stack[-1].action} by {stack[-1].author} at {stack[-1].time}" if stack else "nothing"
            raise StaleError(f"nothing was {action}ne: the latest decision to {action} is now {latest}, not the one "
                             "shown (another tab or a terminal changed the log); look again and retry")  # fmt: skip
        if not stack:
            return None
        found.append(stack[-1])
        return {"v": VERSION, "id": uuid.uuid4().hex[:16], "action": action, "target": stack[-1].id,
                "time": _now(), "author": who}  # fmt: skip

    _append(run.path, make)
    return found[0] if found else None


def undo(run, *, author: str | None = None, expected: str | None = None) -> Decision | None:
    """Take back the latest decision in force; returns it (None: nothing to undo). With
    ``expected`` (a decision id: the one a page showed), :class:`StaleError` unless that is still
    the latest, so a stale tab never undoes someone else's decision."""
    return _step(run, "undo", author, expected)


def redo(run, *, author: str | None = None, expected: str | None = None) -> Decision | None:
    """Apply again the latest undone decision (only until a new decision is made); returns it.
    ``expected`` as for :func:`undo`."""
    return _step(run, "redo", author, expected)


# ----------------------------------------------------------------------------- edge sets


def setting_edges(matrices: Mapping[Pair, object], method: str, value: float | None) -> dict[Pair, Edges]:
    """The edges one selection setting picks: ``{(a, b): Edges}`` for ``{(a, b): P_ab}`` (or
    core.selection.RankedRows), ``method`` a name of core.selection.METHODS, ``value`` its
    parameter (None for methods without one)."""
    from core.selection import METHODS, check_params, select_edges

    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {list(METHODS)}")
    param = METHODS[method].param
    if param is not None and value is None:
        raise ValueError(f"method {method!r} needs a value for {param!r}")
    if param is not None and isinstance(METHODS[method].default, int) and float(value).is_integer():
        value = int(value)  # k_max 4.0 (a table's float column) -> 4
    params = check_params(method, {param: value} if param is not None else {})
    return {pair: select_edges(P, method, **params) for pair, P in matrices.items()}


def selected_set(selected: Mapping[Pair, Edges | np.ndarray]) -> set[EdgeRef]:
    """Every edge of ``{(a, b): Edges or W_ab (K_a, K_b)}`` as an :class:`EdgeRef`."""
    out: set[EdgeRef] = set()
    for (a, b), w in selected.items():
        e = w if isinstance(w, Edges) else Edges.from_dense(np.asarray(w))
        out.update(EdgeRef(int(a), int(i), int(b), int(j)) for i, j in zip(e.rows.tolist(), e.cols.tolist()))
    return out


def curated_edge_set(
    selected: Mapping[Pair, Edges | np.ndarray], state: CurationState, class_counts: Sequence[int]
) -> dict[Pair, Edges]:
    """``(selected + accepted) - rejected`` as sparse :class:`Edges` over every ordered pair of
    domains (a taxonomy of 1,000-class domains never needs dense matrices): the accepted edges
    weigh 1, the other selected edges keep their weights."""
    n = len(class_counts)
    by_pair: dict[Pair, dict[tuple[int, int], float]] = {}
    for (a, b), w in selected.items():
        e = w if isinstance(w, Edges) else Edges.from_dense(np.asarray(w, dtype=np.float64))
        by_pair[int(a), int(b)] = dict(zip(zip(e.rows.tolist(), e.cols.tolist()), e.weights.tolist()))
    for e, (verdict, _) in state.verdicts.items():
        if e.a >= n or e.b >= n:
            continue
        cell = by_pair.setdefault((e.a, e.b), {})
        if verdict == "accept":
            cell[e.i, e.j] = CURATED_WEIGHT
        else:
            cell.pop((e.i, e.j), None)
    out = {}
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            cells = sorted(by_pair.get((a, b), {}).items())
            rows = np.array([k[0] for k, _ in cells], dtype=np.int64)
            cols = np.array([k[1] for k, _ in cells], dtype=np.int64)
            weights = np.array([v for _, v in cells], dtype=np.float64)
            out[a, b] = Edges(rows, cols, weights, (int(class_counts[a]), int(class_counts[b])))
    return out


def curated_edges(
    selected: Mapping[Pair, Edges | np.ndarray], state: CurationState, class_counts: Sequence[int]
) -> dict[Pair, np.ndarray]:
    """:func:`curated_edge_set` as dense weight matrices ``{(a, b): W_ab (K_a, K_b)}``."""
    return {pair: e.dense() for pair, e in curated_edge_set(selected, state, class_counts).items()}


def curation_scores(selected: Mapping[Pair, Edges | np.ndarray], state: CurationState) -> dict[str, float | int]:
    """The decisions as ground truth for one setting's ``selected`` edges: ``precision`` =
    selected-and-accepted / selected-and-judged, ``recall`` = selected-and-accepted / accepted,
    ``f1``, and the counts behind them (NaN where nothing was judged / accepted)."""
    sel = selected_set(selected)
    acc, rej = state.accepted, state.rejected
    tp, fp = len(sel & acc), len(sel & rej)
    judged = tp + fp
    precision = tp / judged if judged else float("nan")
    recall = tp / len(acc) if acc else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_judged": judged,
        "n_selected": len(sel),
        "n_accepted": len(acc),
        "n_rejected": len(rej),
        "n_decisions": len(state.applied),
    }


TABLE_COLUMNS = ["a", "i", "b", "j", "domain_a", "class_a", "domain_b", "class_b", "weight", "source",
                 "relation", "author", "time", "note"]  # fmt: skip


def curated_table(
    selected: Mapping[Pair, Edges | np.ndarray],
    state: CurationState,
    domain_names: Sequence[str],
    class_names: Sequence[Sequence[str]],
) -> pd.DataFrame:
    """One row per edge of the curated set, sorted by (a, i, b, j): names, weight, ``source``
    (``selected``: chosen by the setting, undecided; ``accepted``: selected and accepted;
    ``added``: accepted though the setting did not select it) and, for decided edges, the
    decision's relation, author, time and note."""
    counts = [len(c) for c in class_names]
    final = curated_edge_set(selected, state, counts)
    sel, verdicts = selected_set(selected), state.verdicts
    rows = []
    for (a, b), edges in sorted(final.items()):
        for i, j, weight in zip(edges.rows.tolist(), edges.cols.tolist(), edges.weights.tolist()):
            e = EdgeRef(a, i, b, j)
            d = verdicts.get(e, (None, None))[1]
            source = "selected" if d is None else ("accepted" if e in sel else "added")
            rows.append(
                [
                    a,
                    int(i),
                    b,
                    int(j),
                    domain_names[a],
                    class_names[a][i],
                    domain_names[b],
                    class_names[b][j],
                    weight,
                    source,
                    d.relation if d else None,
                    d.author if d else None,
                    d.time if d else None,
                    d.note if d else None,
                ]  # fmt: skip
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def review_table(
    edges: pd.DataFrame,
    state: CurationState,
    domain_names: Sequence[str] | None = None,
    class_names: Sequence[Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The edge evidence of one setting with the decisions on it, for review.

    edges: core.evidence.edge_table with ``selected`` (and optionally the name columns).
    Adds ``decision`` ("accept" / "reject" / None), ``curated`` (the edge is in the curated set:
    selected or accepted, and not rejected), ``note`` and ``author`` of the deciding decision.
    A decided edge that is not a row (no image of either class went to the other) is appended
    with zero evidence, its relation the decision's (else "overlap"), confidence 0 (and names
    when ``domain_names`` and ``class_names`` are given)."""
    verdicts = state.verdicts
    df = edges.copy()
    have = set(zip(*(df[c].astype(int).tolist() for c in ("a", "i", "b", "j")))) if len(df) else set()
    extra = [e for e in verdicts if (e.a, e.i, e.b, e.j) not in have]
    if extra:
        add = pd.DataFrame(
            {
                "a": [e.a for e in extra],
                "i": [e.i for e in extra],
                "b": [e.b for e in extra],
                "j": [e.j for e in extra],
                "p_ab": 0.0,
                "p_ba": 0.0,
                "n_ab": 0,
                "n_ba": 0,
                "relation": [verdicts[e][1].relation or "overlap" for e in extra],
                "confidence": 0.0,
                "selected": False,
            }
        )
        if domain_names is not None and class_names is not None:
            add["domain_a"] = [domain_names[e.a] for e in extra]
            add["class_a"] = [class_names[e.a][e.i] for e in extra]
            add["domain_b"] = [domain_names[e.b] for e in extra]
            add["class_b"] = [class_names[e.b][e.j] for e in extra]
        df = pd.concat([df, add], ignore_index=True) if len(df) else add
    keys = [EdgeRef(int(a), int(i), int(b), int(j)) for a, i, b, j in zip(df["a"], df["i"], df["b"], df["j"])]
    hit = [verdicts.get(k) for k in keys]
    df["decision"] = [h[0] if h else None for h in hit]
    df["curated"] = [(h[0] == "accept") if h else bool(s) for h, s in zip(hit, df["selected"])]
    df["note"] = [h[1].note if h else "" for h in hit]
    df["author"] = [h[1].author if h else "" for h in hit]
    return df


def with_decision_scores(table: pd.DataFrame, matrices: Mapping[Pair, object], state: CurationState) -> pd.DataFrame:
    """A table of settings (columns ``method`` and ``value``, e.g. an accuracy sweep) with each
    setting scored against the decisions: ``decisions_precision``, ``decisions_recall`` and
    ``decisions_judged`` (:func:`curation_scores`). The matrices are ranked once for all rows."""
    from core.selection import rank_rows

    ranked = {pair: rank_rows(P) for pair, P in matrices.items()}
    out = table.copy()
    scores = []
    for method, value in zip(out["method"], out["value"]):
        v = None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
        scores.append(curation_scores(setting_edges(ranked, str(method), v), state))
    out["decisions_precision"] = [s["precision"] for s in scores]
    out["decisions_recall"] = [s["recall"] for s in scores]
    out["decisions_judged"] = [s["n_judged"] for s in scores]
    return out
