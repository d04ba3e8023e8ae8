"""``python -m core report RUN [--out FILE] [--method KEY] [--force]``: write a run's
self-contained HTML report (:mod:`core.report`) and print where it went.

Without ``--out`` the report is the run folder's ``report.html`` (core.runs.F.REPORT: a file
the tool owns, replaced on every call); ``--out`` never replaces an existing file unless
``--force`` is given. Every write is atomic (core.fsio).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "command"]


def register(subparsers) -> None:
    """Add the ``report`` command to ``python -m core``'s subparsers."""
    rp = subparsers.add_parser(
        "report",
        help="write a run's report: one self-contained HTML file (works offline, prints well)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rp.add_argument("run", help="run id or folder")
    rp.add_argument("--out", help="file to write (default: report.html in the run folder)")
    rp.add_argument("--method", help="method key whose taxonomy and decisions are detailed (default: the run's best)")
    rp.add_argument("--force", action="store_true", help="replace an existing --out file")


def _target(run, out: str | None, force: bool) -> Path:
    """Where the report goes; UsageError (one line) when that place is refused."""
    from core.cli import UsageError
    from core.runs import MARKER, F, is_run_dir

    if out is None:
        if not is_run_dir(run.path):
            raise UsageError(
                f"{run.path} was not created by unitax (no {MARKER} marker): write the report elsewhere with --out FILE"
            )
        return run.file(F.REPORT)
    from core.runs import check_out_file

    try:
        return check_out_file(out, force=force, allow=(run.file(F.REPORT),))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def command(args) -> int:
    """Build the report of ``args.run`` and write it (see the module docstring); print its path."""
    from core.cli import UsageError
    from core.fsio import write_text
    from core.report import build_report, chosen_method
    from core.runs import open_run

    try:
        run = open_run(args.run)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    if args.method is not None:
        try:
            chosen_method(run, args.method)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    path = _target(run, args.out, args.force)
    text = build_report(run, method=args.method)
    write_text(path, text)
    print(path)
    return 0
