"""The ``curate`` command: the researcher's decisions on relationships from a terminal.

    curate RUN accept|reject|add DOMAIN:CLASS DOMAIN:CLASS [--note TEXT] [--author NAME] [--both]
                                 [--relation equivalent|narrower|broader|overlap]
    curate RUN list                       the decisions in force, newest last, and skipped log lines
    curate RUN undo | redo
    curate RUN export --format sssom|csv [--method M --param V] [--matrix hard|soft|count]
                                         [--out FILE [--force]]
    curate RUN import FILE [--as decisions|truth] [--note TEXT] [--author NAME]
    curate RUN train [--method M --param V] [--device D]

A class is ``domain:class-name`` or ``domain:#index`` (core.curation.parse_class); an edge
``SOURCE TARGET`` is the relationship source -> target (``--both``: and target -> source). The
setting of ``export`` and ``train`` defaults to the run config's first selection method.
Exit codes: 0 done, 1 failed (or nothing to undo / redo), 2 usage error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import sys

from core.evidence import RELATIONS
from core.registry import DEVICES
from core.runs import MATRIX_KINDS

__all__ = ["register", "command"]

SHOWN_EDGES = 3  # edges of a bulk decision that ``list`` spells out


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``curate`` command (and its actions) to the parser's subparsers."""
    cur = subparsers.add_parser(
        "curate",
        help="accept, reject or add relationships; undo, list, export, import; train the curated model",
        description=__doc__.split("\n\n")[0],
    )
    cur.add_argument("run", help="run id or folder")
    acts = cur.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("accept", "the relationship SOURCE -> TARGET is right (kept whatever the setting)"),
        ("reject", "the relationship is wrong (removed whatever the setting)"),
        ("add", "a relationship no method selected is right"),
    ):
        p = acts.add_parser(action, help=text)
        p.add_argument("source", help="DOMAIN:CLASS (or DOMAIN:#index)")
        p.add_argument("target", help="DOMAIN:CLASS (or DOMAIN:#index)")
        p.add_argument("--both", action="store_true", help="also the reverse relationship TARGET -> SOURCE")
        p.add_argument("--relation", choices=RELATIONS, help="what SOURCE is to TARGET")
        _who(p)
    acts.add_parser("list", help="the decisions in force, newest last, and the log lines skipped")
    acts.add_parser("undo", help="take back the latest decision in force")
    acts.add_parser("redo", help="apply again the latest undone decision")
    ex = acts.add_parser("export", help="the curated relationships of a setting as SSSOM/TSV or CSV")
    ex.add_argument("--format", required=True, choices=("sssom", "csv"))
    _setting(ex)
    ex.add_argument("--matrix", choices=MATRIX_KINDS, help="cross-domain matrices (default: the run's)")
    ex.add_argument("--out", help="file to write (default: standard output)")
    ex.add_argument("--force", action="store_true", help="replace an existing --out file")
    im = acts.add_parser(
        "import", help="relationships from a CSV (domain_a,class_a,domain_b,class_b[,relation][,direction])"
    )
    im.add_argument("file", help="CSV file with a header")
    im.add_argument(
        "--as",
        dest="as_",
        choices=("decisions", "truth"),
        default="decisions",
        help="one 'add' decision (default), or the run's ground truth (replaces an earlier import)",
    )
    _who(im)
    tr = acts.add_parser("train", help="train the universal model of the curated taxonomy")
    _setting(tr)
    tr.add_argument("--device", choices=DEVICES, help="override the run's device")
    return cur


def _who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--note", help="why (kept with the decision)")
    p.add_argument("--author", help="who decides (default: $UNITAX_AUTHOR, else the user name)")


def _setting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="selection method (default: the run config's first)")
    p.add_argument("--param", help="the method's parameter value (default: the config's, else the method's)")


def _usage(message: str) -> Exception:
    from core.cli import UsageError  # lazily: core.cli imports this module

    return UsageError(message)


def command(args) -> int:
    """Run ``curate``; returns the exit code (usage errors raise core.cli.UsageError)."""
    from core.runs import open_run

    try:
        run = open_run(args.run)
    except (ValueError, FileNotFoundError) as exc:
        raise _usage(str(exc)) from None
    if len(run.domain_names()) < 2:
        raise _usage(f"run {run.id!r} has no domains yet (its domains step has not finished)")
    handler = {"list": _list, "undo": _step, "redo": _step, "export": _export, "import": _import, "train": _train}
    return handler.get(args.action, _decide)(run, args)


# ----------------------------------------------------------------------------- decisions


def _edge_text(e, names, classes) -> str:
    from core.curation import class_label

    return f"{class_label(e.a, e.i, names, classes)} -> {class_label(e.b, e.j, names, classes)}"


def _clean(text: str) -> str:
    """``text`` safe for one terminal line: control characters (line breaks, escape sequences,
    bells) shown as escapes, never acted on."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _summary(d, names, classes) -> str:
    """One line for a decision: action, edges (the first few), relation, note (control characters
    escaped: names and notes are user data)."""
    return _clean(_summary_text(d, names, classes))


def _summary_text(d, names, classes) -> str:
    edges = ", ".join(_edge_text(e, names, classes) for e in d.edges[:SHOWN_EDGES])
    if len(d.edges) > SHOWN_EDGES:
        edges += f", … (+{len(d.edges) - SHOWN_EDGES} more; {len(d.edges)} edges)"
    text = f"{d.action} {edges}"
    if d.relation:
        text += f" [{d.relation}]"
    if d.note:
        text += f"  # {d.note}"
    return text


def _decide(run, args) -> int:
    from core.curation import MAX_AUTHOR, MAX_NOTE, decide, parse_edge

    names, classes = run.domain_names(), run.class_names()
    try:
        edge = parse_edge(args.source, args.target, names, classes)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if args.both and args.relation in ("narrower", "broader"):
        raise _usage(
            f"--both with --relation {args.relation}: the reverse edge is the opposite relation; record the two "
            "directions as two decisions (SOURCE TARGET, then TARGET SOURCE with the other relation)"
        )
    if args.note is not None and len(args.note) > MAX_NOTE:
        raise _usage(f"--note has {len(args.note)} characters; at most {MAX_NOTE}")
    if args.author is not None and len(args.author.strip()) > MAX_AUTHOR:
        raise _usage(f"--author is longer than {MAX_AUTHOR} characters")
    edges = [edge, edge.reverse()] if args.both else [edge]
    d = decide(run, args.action, edges, note=args.note or "", author=args.author, relation=args.relation)
    print(f"{_summary(d, names, classes)}  (by {_clean(d.author)}, decision {d.id})")
    return 0


def _list(run, args) -> int:
    from core.curation import load_state

    state = load_state(run)
    names, classes = run.domain_names(), run.class_names()
    if not state.applied:
        print("no decisions in force")
    for d in state.applied:
        print(f"{_clean(d.time)}  {_clean(d.author)}  {_summary(d, names, classes)}")
    if state.undone:
        print(f"({len(state.undone)} undone decision(s) can be redone)")
    for p in state.problems:
        print(f"skipped: {_clean(p)}")
    return 0


def _step(run, args) -> int:
    from core.curation import redo, undo

    d = (undo if args.action == "undo" else redo)(run)
    if d is None:
        what = "no decision in force" if args.action == "undo" else "no undone decision (or a newer decision)"
        print(f"error: nothing to {args.action}: {what}", file=sys.stderr)
        return 1
    done = "undid" if args.action == "undo" else "redid"
    print(f"{done}: {_summary(d, run.domain_names(), run.class_names())}  (by {_clean(d.author)} at {d.time})")
    return 0


# ----------------------------------------------------------------------------- export, import, train


def _resolve_setting(run, args) -> tuple[str, float | int | None]:
    """(method, value) from --method/--param, else the run config's first selection method."""
    from core.mapping_io import default_setting
    from core.selection import METHODS

    method, value = default_setting(run)
    if args.method is not None:
        if args.method not in METHODS:
            raise _usage(f"--method {args.method!r} is not one of {list(METHODS)}")
        if args.method != method:
            method, value = args.method, METHODS[args.method].default
    spec = METHODS[method]
    if args.param is None:
        return method, value
    if spec.param is None:
        raise _usage(f"--param: method {method!r} takes no parameter")
    try:
        number = float(args.param)
    except ValueError:
        raise _usage(f"--param {args.param!r} is not a number") from None
    if isinstance(spec.default, int):
        if not number.is_integer():
            raise _usage(f"--param {args.param!r}: {spec.param} of {method!r} is a whole number")
        return method, int(number)
    return method, number


def _export(run, args) -> int:
    from core.fsio import CorruptFileError, write_text
    from core.mapping_io import csv_text, mapping_csv, sssom_table, sssom_text

    method, value = _resolve_setting(run, args)
    from core.runs import check_out_file

    try:
        out = check_out_file(args.out, force=args.force) if args.out is not None else None
    except ValueError as exc:
        raise _usage(str(exc)) from None
    try:
        if args.format == "sssom":
            df = sssom_table(run, method, value, args.matrix)
            text = sssom_text(df)
        else:
            df = mapping_csv(run, method, value, args.matrix)
            text = csv_text(df)
    except CorruptFileError:
        raise  # a damaged run file: exit code 1
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if out is None:
        sys.stdout.write(text)
        return 0
    write_text(out, text)
    print(f"wrote {len(df)} relationships ({args.format}) to {out}")
    return 0


def _import(run, args) -> int:
    from core.mapping_io import import_decisions, import_truth
    from core.runs import F

    if args.as_ == "truth":
        if args.note is not None or args.author is not None:
            raise _usage("--note and --author go with --as decisions; a ground truth records neither")
        existed = run.file(F.TRUTH).exists()
        try:
            n = import_truth(run, args.file)
        except ValueError as exc:
            raise _usage(str(exc)) from None
        again = " (it replaces the truth imported before)" if existed else ""
        print(f"ground truth: {n} related class pairs written to {run.file(F.TRUTH)}{again}")
        return 0
    try:
        d = import_decisions(run, args.file, author=args.author, note=args.note)
    except (ValueError, TypeError) as exc:
        raise _usage(str(exc)) from None
    print(f"imported {len(d.edges)} relationships as one 'add' decision {d.id} (by {d.author}); "
          f"'curate {args.run} undo' takes it back")  # fmt: skip
    return 0


def _train(run, args) -> int:
    from core.curated import curated_job  # lazily: it imports torch when training
    from core.fsio import CorruptFileError
    from core.runs import LockedError

    method, value = _resolve_setting(run, args)

    def progress(done: int, total: int, eta: float | None, message: str) -> None:
        print(f"[curated] {message}" + (f", about {eta:.0f}s left" if eta else ""), flush=True)

    try:
        status = curated_job(
            run.path,
            method=method,
            value=value,
            device=None if args.device in (None, "auto") else args.device,
            on_progress=progress,
        )
    except (LockedError, CorruptFileError):
        raise  # a runtime refusal: exit code 1
    except ValueError as exc:
        raise _usage(str(exc)) from None
    state = status.get("state")
    print(f"curated model of {run.path}: {state}" + (f" ({status['error']})" if status.get("error") else ""))
    return {"done": 0, "cancelled": 130}.get(state, 1)
