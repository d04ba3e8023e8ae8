"""``python -m core import --predictions DIR [--truth FILE] [--out RUN] [--method M[=V] ...] [--name N]``:
a run folder from the cross-domain predictions of models trained elsewhere (:mod:`core.importer`).

DIR holds one CSV per domain: ``<domain>.csv`` with the columns ``true`` and ``pred_<other>``
(a class name or index per cell; optional ``<domain>.classes.txt``, one class name per line),
or the thesis's files with ``domain_X`` and ``predictions_Y_on_X``. ``--truth`` is a CSV
``domain_a,class_a,domain_b,class_b`` of related class pairs (each row holds both ways), made
the run's ground truth. The run gets the selection and taxonomy of each ``--method`` (default:
mcfp and threshold=0.2); the dashboard computes every other setting live. An imported run has
no images: no features, baselines' accuracies, universal model, sweep or image previews.

Exit codes: 0 done, 2 a bad input or ``--out`` (one line naming the file, line and column),
1 any other failure (e.g. the folder is locked by another process).
"""

from __future__ import annotations

import argparse

__all__ = ["register", "command"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``import`` command to ``python -m core``'s subparsers."""
    imp = subparsers.add_parser(
        "import",
        help="make a run from your own models' cross-domain predictions (CSV files, no images)",
        description=__doc__.split("\n\n")[1].replace("``", ""),
    )
    imp.add_argument("--predictions", required=True, metavar="DIR", help="folder with one prediction CSV per domain")
    imp.add_argument("--truth", metavar="FILE", help="CSV domain_a,class_a,domain_b,class_b of related class pairs")
    imp.add_argument("--out", metavar="RUN", help="new or empty run folder (default: $UNITAX_RUNS/<time>-<name>)")
    imp.add_argument(
        "--method",
        action="append",
        metavar="M[=V]",
        help="a selection method whose relationships and taxonomy are saved, with its parameter "
        "(e.g. mcfp, threshold=0.2, density=0.5, hypothesis=4); repeat for more (default: mcfp, threshold=0.2)",
    )
    imp.add_argument("--name", help="the run's name (default: imported-<DIR's name>)")
    return imp


def _methods(texts: list[str] | None) -> list | None:
    """MethodSpecs from ``--method`` texts (None when none was given); ValueError for a bad one."""
    if not texts:
        return None
    from core.config import MethodSpec
    from core.selection import METHODS

    out = []
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if name not in METHODS:
            raise ValueError(f"--method {text!r}: unknown method {name!r}; valid: {', '.join(METHODS)}")
        spec = METHODS[name]
        if spec.param is None:
            if sep:
                raise ValueError(f"--method {text!r}: {name} takes no parameter")
            out.append(MethodSpec(name))
            continue
        if not sep:
            out.append(MethodSpec(name, {spec.param: spec.default}))
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--method {text!r}: {value!r} is not a number") from None
        try:
            out.append(MethodSpec(name, {spec.param: number}))
        except ValueError as exc:
            raise ValueError(f"--method {text!r}: {exc}") from None
    return out


def command(args) -> int:
    """Import (see the module docstring); print the run folder and what it holds."""
    from core.cli import UsageError
    from core.importer import import_predictions
    from core.runs import LockedError, Run

    try:
        methods = _methods(args.method)
        path = import_predictions(args.predictions, args.out, truth=args.truth, methods=methods, name=args.name)
    except LockedError:
        raise  # another process works in the folder: a runtime refusal, exit code 1
    except ValueError as exc:  # a bad input or --out: one line, exit code 2
        lines = str(exc).strip().splitlines()
        raise UsageError(lines[0] if lines else type(exc).__name__) from None
    run = Run(path)
    counts = run.class_counts()
    print(f"imported run {path}: {len(counts)} domains, {sum(counts)} classes, no images")
    for key in run.methods():
        info = run.selection(key) or {}
        scores = info.get("scores")
        text = " ".join(f"{k}={v:.3f}" for k, v in scores.items()) if scores else "(no ground truth)"
        n_universal = len(run.taxonomy(key).classes)
        print(f"  {key}: {info.get('n_edges', 0)} relationships, {n_universal} universal classes, {text}")
    return 0
