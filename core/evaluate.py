"""``python -m core evaluate``: compare the selection methods on a synthetic world.

Samples a synthetic taxonomy, draws noisy cross-domain count matrices from it (or takes the
exact expected matrices), sweeps every method over its parameter grid, and prints the
thesis-style table: method, best parameter, EDR, precision, recall, F1. Writes the table and
the full sweep as CSV and JSON when ``--out`` is given. No images, no GPU.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from core.crossdomain import normalize_rows
from core.metrics import best_parameters, sweep
from core.synthetic import make_synthetic_taxonomy, sample_cross_counts


@dataclass(frozen=True)
class EvaluateConfig:
    """A synthetic evaluation; defaults give a small thesis-like world in well under a second."""

    n_concepts: int = 200  # atomic concepts in the world
    n_domains: int = 3  # the thesis's 3-domain variants
    concepts_mean: float = 80.0  # concepts drawn per domain
    concepts_var: float = 100.0  # its variance
    class_size_mean: float = 2.0  # concepts per class (>1 makes classes overlap across domains)
    class_size_var: float = 1.0
    images_per_class: int = 50  # simulated test images per class and foreign model
    noise: float = 0.3  # probability that a foreign model errs (gives thesis-like scores)
    confusion_alpha: float = 0.05  # errors go to few look-alike classes (small) or anywhere (large)
    expected: bool = False  # use the exact expected matrices instead of sampled counts
    uniform_remainder: bool = True  # with --expected: model unknown concepts as uniform mass
    seed: int = 42
    by: str = "f1"  # pick each method's best parameter by F1 (or edr)


def evaluate(cfg: EvaluateConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best-per-method table, full sweep table) for one synthetic evaluation."""
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
    table = sweep(mats, tax.true_relationships(), tax.class_counts)
    return best_parameters(table, by=cfg.by), table


def format_table(best: pd.DataFrame) -> str:
    """The thesis-style table as aligned text."""
    shown = best.assign(best=[f"{p}={v:g}" if p else "-" for p, v in zip(best["param"], best["value"])])
    return shown[["method", "best", "edr", "precision", "recall", "f1"]].to_string(
        index=False, float_format=lambda x: f"{x:.3f}"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = EvaluateConfig()
    for name, value in asdict(d).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif name == "by":
            p.add_argument(flag, choices=["f1", "edr"], default=value)
        else:
            p.add_argument(flag, type=type(value), default=value)
    p.add_argument("--out", type=Path, help="folder for best.csv, best.json, sweep.csv")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fields = {k: v for k, v in vars(args).items() if k != "out"}
    try:
        cfg = EvaluateConfig(**fields)
        best, table = evaluate(cfg)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(best))
    if args.out is not None:
        try:
            _write(args.out, cfg, best, table)
        except (ValueError, OSError) as exc:
            from core.fsio import os_error_message

            print(f"error: {os_error_message(exc) if isinstance(exc, OSError) else exc}", file=sys.stderr)
            return 2 if isinstance(exc, ValueError) else 1
        print(f"wrote {args.out / 'best.csv'}, {args.out / 'best.json'}, {args.out / 'sweep.csv'}")
    return 0


_OUT_MARKER = ".unitax-evaluate"


def _write(out: Path, cfg: EvaluateConfig, best: pd.DataFrame, table: pd.DataFrame) -> None:
    """Write the tables into ``out``: a new or empty folder, or one an earlier ``evaluate`` wrote
    (it holds the marker); never over files of the user's."""
    from core.fsio import write_json, write_text

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / _OUT_MARKER).is_file():
        raise ValueError(
            f"--out {out} is not empty and was not written by evaluate: refusing to overwrite files "
            "there; choose a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / _OUT_MARKER, {"tool": "unitax evaluate"})
    write_text(out / "best.csv", best.to_csv(index=False))
    write_text(out / "sweep.csv", table.to_csv(index=False))
    write_json(out / "best.json", {"config": asdict(cfg), "best": best.to_dict(orient="records")})
