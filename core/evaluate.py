"""``python -m core evaluate``: choose each selection method's parameter against a ground truth.

Two sources of cross-domain matrices:

- ``--runs RUN [RUN ...]``: finished runs that have a ground truth (a synthetic world's
  ``ground_truth.json`` or an imported ``truth.csv``: ``Run.true_relationships()``). Every
  method is swept over the grid on every run, and the selection table of the thesis is printed:
  per run each method's best setting, and over all runs each method's single setting that is
  best on average, with the mean EDR, precision and recall, the mean of the runs' F1
  (``f1_mean``: what the thesis's table reports) and the F1 of the mean precision and recall
  (``f1_of_mean``: what its slides report). A run without a ground truth is refused.
- without ``--runs``: ONE simulated world (``core.synthetic``: counts sampled from its noise
  model, or its exact expected matrices). A quick look at the methods in well under a second;
  it is not the thesis's experiment, which scored four variants built from trained models.

``--select-by edr`` (the thesis's choice: lowest EDR) or ``f1`` (highest F1); ties, equal to 12
decimals, go to the smallest parameter value (as the thesis's per-variant search over its ascending
grid; its averaged table scans the values as an unordered set, so its ties are not resolved that way).
``--grid thesis`` (threshold 0..1 and density 0.05..1 in steps of 0.05, k_max 1..9) or ``fine``
(each method's own sweep grid); ``core.metrics.parameter_grid`` says what each value means here.
``--out DIR`` writes the tables as CSV and JSON. No images, no GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from core.crossdomain import normalize_rows
from core.metrics import GRIDS, SELECT_BY, best_on_average, best_parameters, best_per_run, parameter_grid, sweep
from core.synthetic import make_synthetic_taxonomy, sample_cross_counts

__all__ = [
    "EvaluateConfig",
    "evaluate",
    "RunsEvaluation",
    "run_sweep",
    "evaluate_runs",
    "format_table",
    "format_runs",
    "main",
]

MATRIX_CHOICES = ("hard", "soft")  # row-normalised matrices a selection method reads


@dataclass(frozen=True)
class EvaluateConfig:
    """One simulated world; the defaults give a small world in well under a second."""

    n_concepts: int = 200  # atomic concepts in the world
    n_domains: int = 3
    concepts_mean: float = 80.0  # concepts drawn per domain
    concepts_var: float = 100.0  # its variance
    class_size_mean: float = 2.0  # concepts per class (>1 makes classes overlap across domains)
    class_size_var: float = 1.0
    images_per_class: int = 50  # simulated test images per class and foreign model
    noise: float = 0.3  # probability that a foreign model errs
    confusion_alpha: float = 0.05  # errors go to few look-alike classes (small) or anywhere (large)
    expected: bool = False  # use the exact expected matrices instead of sampled counts
    uniform_remainder: bool = True  # with --expected: model unknown concepts as uniform mass
    seed: int = 42
    select_by: str = "edr"  # each method's best setting: lowest EDR (edr) or highest F1 (f1)
    grid: str = "thesis"  # the parameter grid: thesis or fine (core.metrics.parameter_grid)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def evaluate(cfg: EvaluateConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best setting per method, full sweep) on one simulated world."""
    _check_choice("select_by", cfg.select_by, SELECT_BY)
    grid = parameter_grid(cfg.grid)
    tax = make_synthetic_taxonomy(
        cfg.n_concepts,
        cfg.n_domains,
        cfg.concepts_mean,
        cfg.concepts_var,
        cfg.class_size_mean,
        cfg.class_size_var,
        seed=cfg.seed,
    )
    if cfg.expected:
        mats = tax.expected_matrices(uniform_remainder=cfg.uniform_remainder)
    else:
        counts = sample_cross_counts(
            tax,
            images_per_class=cfg.images_per_class,
            noise=cfg.noise,
            confusion_alpha=cfg.confusion_alpha,
            seed=cfg.seed,
        )
        mats = {k: normalize_rows(c) for k, c in counts.items()}
    table = sweep(mats, tax.true_relationships(), tax.class_counts, grid=grid)
    return best_parameters(table, by=cfg.select_by), table


# ---------------------------------------------------------------------------- runs


class RunsEvaluation(NamedTuple):
    """What ``evaluate_runs`` found: ``per_run`` (run, method, param, value, scores), ``average``
    (``core.metrics.best_on_average``), ``sweep`` (every setting on every run, with a run column)
    and ``runs`` ({label: run folder})."""

    per_run: pd.DataFrame
    average: pd.DataFrame
    sweep: pd.DataFrame
    runs: dict[str, str]


def run_sweep(run, *, grid: str = "thesis", matrix: str = "hard", label: str | None = None) -> pd.DataFrame:
    """The ``core.metrics.sweep`` table of one run (a ``core.runs.Run``) against its ground truth.

    Raises ValueError naming the run when it has no ground truth or no cross-domain matrices.
    """
    _check_choice("matrix", matrix, MATRIX_CHOICES)
    name = label or run.path.name
    true = run.true_relationships()
    if true is None:
        raise ValueError(
            f"run {name!r} has no ground truth (neither a synthetic world's ground_truth.json nor an "
            "imported truth.csv): evaluate needs one"
        )
    mats = run.matrices(matrix)
    if not mats:
        raise ValueError(f"run {name!r} has no {matrix} cross-domain matrices: its crossdomain step has not finished")
    return sweep(mats, true, run.class_counts(), grid=parameter_grid(grid))


def _labels(runs: Sequence) -> list[str]:
    """Folder names, or the full paths where two runs share a name."""
    names = [r.path.name for r in runs]
    return [str(r.path) if names.count(n) > 1 else n for r, n in zip(runs, names)]


def evaluate_runs(
    runs: Sequence[str | os.PathLike],
    *,
    select_by: str = "edr",
    grid: str = "thesis",
    matrix: str = "hard",
    root: str | os.PathLike | None = None,
) -> RunsEvaluation:
    """The thesis's selection table over ``runs`` (run ids under ``root`` / $UNITAX_RUNS, or
    run folder paths): every run swept on the same grid, then ``best_per_run`` and
    ``best_on_average`` by ``select_by``."""
    from core.runs import open_run

    _check_choice("select_by", select_by, SELECT_BY)
    _check_choice("grid", grid, GRIDS)
    if not runs:
        raise ValueError("give at least one run")
    opened = []
    for r in runs:
        try:
            opened.append(open_run(r, root))
        except FileNotFoundError as exc:
            raise ValueError(str(exc).strip("'\"")) from None
    real = [r.path.resolve() for r in opened]
    if len(set(real)) < len(real):  # the same folder by two spellings or a link
        raise ValueError(f"a run is given twice: {', '.join(str(p) for p in real if real.count(p) > 1)}")
    labels = _labels(opened)
    if len(set(labels)) < len(labels):
        raise ValueError(f"a run is given twice: {', '.join(labels)}")
    tables = {lab: run_sweep(run, grid=grid, matrix=matrix, label=lab) for lab, run in zip(labels, opened)}
    stacked = pd.concat([t.assign(run=lab) for lab, t in tables.items()], ignore_index=True)
    return RunsEvaluation(
        best_per_run(tables, by=select_by),
        best_on_average(tables, by=select_by),
        stacked[["run", *[c for c in stacked.columns if c != "run"]]],
        {lab: str(run.path) for lab, run in zip(labels, opened)},
    )


# ---------------------------------------------------------------------------- text


def _setting(param: str, value: float) -> str:
    """``t=0.15``, ``k_max=3 (thesis 4)``, or ``-`` for a method without a parameter."""
    if not param or value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if param == "k_max":
        return f"k_max={int(value)} (thesis {int(value) + 1})"
    return f"{param}={value:g}"


def _fmt(df: pd.DataFrame, cols: list[str]) -> str:
    shown = df.assign(setting=[_setting(p, v) for p, v in zip(df["param"], df["value"])])
    return shown[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}")


def format_table(best: pd.DataFrame) -> str:
    """One world's (or run's) best setting per method as aligned text."""
    return _fmt(best, ["method", "setting", "edr", "precision", "recall", "f1"])


def _by_text(select_by: str) -> str:
    return "lowest EDR" if select_by == "edr" else "highest F1"


def format_runs(res: RunsEvaluation, *, select_by: str, grid: str) -> str:
    """The thesis's two tables as text: per run, then the setting best on average."""
    by = _by_text(select_by)
    parts = [f"Best setting per run ({by}, {grid} grid):"]
    parts.append(_fmt(res.per_run, ["run", "method", "setting", "edr", "precision", "recall", "f1"]))
    avg_by = "mean EDR" if select_by == "edr" else "mean F1"
    parts.append(f"\nOne setting per method over {len(res.runs)} run(s), best by {avg_by}:")
    parts.append(
        _fmt(res.average, ["method", "setting", "edr", "precision", "recall", "f1_mean", "f1_of_mean"])
        + "\n(f1_mean = mean of the runs' F1; f1_of_mean = F1 of the mean precision and recall)"
    )
    return "\n".join(parts)


def _world_title(cfg: EvaluateConfig) -> str:
    source = "exact expected matrices" if cfg.expected else f"sampled counts, noise {cfg.noise:g}"
    return (
        f"One simulated world (seed {cfg.seed}, {cfg.n_domains} domains, {source}): each method's best "
        f"setting by {_by_text(cfg.select_by)} on the {cfg.grid} grid. Not the thesis's experiment; "
        "for its table give finished runs with --runs."
    )


# ---------------------------------------------------------------------------- command line

_WORLD_FIELDS = [k for k in asdict(EvaluateConfig()) if k not in ("select_by", "grid")]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core evaluate",
        description="Choose each selection method's parameter against a ground truth: on finished runs "
        "(--runs), the thesis's selection table; without --runs, on one simulated world.",
        epilog="Without --runs, the remaining options describe the simulated world.",
    )
    d = EvaluateConfig()
    p.add_argument("--runs", nargs="+", metavar="RUN", help="run ids (under $UNITAX_RUNS) or run folders")
    p.add_argument(
        "--select-by", "--by", dest="select_by", choices=SELECT_BY, default=d.select_by,
        help="each method's best setting: lowest EDR or highest F1 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--grid", choices=GRIDS, default=d.grid, help="parameter grid (default: %(default)s)")
    p.add_argument(
        "--matrix", choices=MATRIX_CHOICES, default="hard",
        help="with --runs: which cross-domain matrices to select from (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, help="folder for the tables (CSV and JSON)")
    world = p.add_argument_group("simulated world (without --runs)")
    for name in _WORLD_FIELDS:  # default SUPPRESS: only what was given reaches the namespace
        value = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        help_ = f"default: {value}"
        if isinstance(value, bool):
            world.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            world.add_argument(flag, type=type(value), default=argparse.SUPPRESS, help=help_)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    world = {k: v for k, v in vars(args).items() if k in _WORLD_FIELDS}
    try:
        if args.runs:
            if world:
                flags = ", ".join("--" + k.replace("_", "-") for k in world)
                verb = "applies" if len(world) == 1 else "apply"
                raise ValueError(f"{flags} {verb} to the simulated world, not to --runs")
            res = evaluate_runs(args.runs, select_by=args.select_by, grid=args.grid, matrix=args.matrix)
            print(format_runs(res, select_by=args.select_by, grid=args.grid))
            written = (
                _write_runs(args.out, res, select_by=args.select_by, grid=args.grid, matrix=args.matrix)
                if args.out is not None
                else []
            )
        else:
            cfg = EvaluateConfig(**world, select_by=args.select_by, grid=args.grid)
            best, table = evaluate(cfg)
            print(_world_title(cfg))
            print(format_table(best))
            written = _write_world(args.out, cfg, best, table) if args.out is not None else []
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from core.fsio import os_error_message

        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    if written:
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


# ---------------------------------------------------------------------------- files

_OUT_MARKER = ".unitax-evaluate"


def _prepare_out(out: Path) -> None:
    """``out``: a new or empty folder, or one an earlier ``evaluate`` wrote (it holds the
    marker); never a folder of the user's files."""
    from core.fsio import write_json

    if out.is_symlink():
        raise ValueError(f"--out {out} is a symbolic link; nothing is written through one")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / _OUT_MARKER).is_file():
        raise ValueError(
            f"--out {out} is not empty and was not written by evaluate: refusing to overwrite files "
            "there; choose a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / _OUT_MARKER, {"tool": "unitax evaluate"})


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts with NaN as None (strict JSON)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]


def _grid_json(grid: str) -> dict:
    return {m: [float(v) for v in values] for m, values in parameter_grid(grid).items()}


def _write_world(out: Path, cfg: EvaluateConfig, best: pd.DataFrame, table: pd.DataFrame) -> list[Path]:
    from core.fsio import write_json, write_text

    _prepare_out(out)
    write_text(out / "best.csv", best.to_csv(index=False))
    write_text(out / "sweep.csv", table.to_csv(index=False))
    write_json(
        out / "best.json",
        {
            "what": _world_title(cfg),
            "config": asdict(cfg),
            "grid_values": _grid_json(cfg.grid),
            "best": _records(best),
        },
    )
    return [out / "best.csv", out / "best.json", out / "sweep.csv"]


def _write_runs(out: Path, res: RunsEvaluation, *, select_by: str, grid: str, matrix: str) -> list[Path]:
    from core.fsio import write_json, write_text

    _prepare_out(out)
    write_text(out / "best_per_run.csv", res.per_run.to_csv(index=False))
    write_text(out / "best_on_average.csv", res.average.to_csv(index=False))
    write_text(out / "sweep.csv", res.sweep.to_csv(index=False))
    write_json(
        out / "evaluate.json",
        {
            "what": "the thesis's selection table: per run each method's best setting, and each "
            "method's one setting best on average over the runs",
            "select_by": select_by,
            "ties": "equal to 12 decimals: the smallest parameter value",
            "grid": grid,
            "grid_values": _grid_json(grid),
            "matrix": matrix,
            "runs": res.runs,
            "best_per_run": _records(res.per_run),
            "best_on_average": _records(res.average),
        },
    )
    return [out / n for n in ("best_per_run.csv", "best_on_average.csv", "sweep.csv", "evaluate.json")]
