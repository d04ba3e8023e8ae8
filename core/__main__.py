"""Command line entry: ``python -m core <command> ...``.

Commands:
  evaluate   compare the selection methods on a synthetic taxonomy (no images needed)
  run        run the pipeline from a config (see ``python -m core run --help``)
  status     show a run's status
  list       list the runs
  predict    classify one image with a finished run's universal model
  sweep      validation accuracy of the universal model for every selection setting of a run
  curate     accept / reject / add relationships, undo / redo, list, export (SSSOM, CSV), import,
             train the universal model on the curated taxonomy
  report     write a run's self-contained HTML report
  import     make a run from your own models' cross-domain predictions (CSV files; no images)
"""

from __future__ import annotations

import sys

_PIPELINE_COMMANDS = {"run", "status", "list", "predict", "sweep", "curate", "report", "import"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "evaluate":
        from core.evaluate import main as evaluate_main

        return evaluate_main(rest)
    if command in _PIPELINE_COMMANDS:
        from core.cli import main as cli_main

        return cli_main(argv)
    print(
        f"unknown command {command!r}; expected one of: evaluate, {', '.join(sorted(_PIPELINE_COMMANDS))}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
