"""Command line for runs: ``python -m core run|status|list|predict|sweep|curate|report ...``.

    run --config X.yaml [--out runs/ID] [--from STEP] [--until STEP] [--data-root DIR] [--device D]
        [--seeds N]
    status RUN               RUN = a run id under $UNITAX_RUNS or a run folder path
    list [--root DIR]
    predict RUN IMAGE [--method M] [--top-k K]
    sweep RUN [--methods M,M] [--grid coarse|fine] [--epochs N] [--batch N]
    curate RUN accept|reject|add DOMAIN:CLASS DOMAIN:CLASS [--note T] [--author A] [--both] [--relation R]
    curate RUN list|undo|redo
    curate RUN export --format sssom|csv [--method M --param V] [--matrix K] [--out FILE [--force]]
    curate RUN import FILE [--as decisions|truth]
    curate RUN train [--method M --param V] [--device D]      (core/cli_curate.py)
    report RUN [--out FILE] [--method KEY] [--force]           the run's HTML report (core/cli_report.py)
    import --predictions DIR [--truth FILE] [--out RUN] [--method M[=V]]   a run from your own
                                                predictions, no images (core/cli_import.py)

On a terminal ``run`` shows tqdm progress bars (rate and ETA); otherwise it prints log lines.
Exit codes: 0 done, 1 failed, 2 usage/config error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path

from core import cli_curate, cli_import, cli_report
from core.registry import BACKBONES, DEVICES, SHIFTS, SOURCES, SYNTHETIC_BASES
from core.runs import STEPS

__all__ = ["main", "build_parser", "ProgressBars"]


def _config_names_help() -> str:
    """The names a config may use, for ``run --help``: read from core.registry and core.selection."""
    from core.selection import METHODS

    backbones = ", ".join(f"{n} ({i.note})" if i.offline else n for n, i in BACKBONES.items())
    methods = ", ".join(f"{n} ({m.param}=)" if m.param else n for n, m in METHODS.items())
    rows = [
        ("shift", ", ".join(f"{n} ({d})" for n, d in SHIFTS.items())),
        ("source", ", ".join(SOURCES)),
        ("synthetic base", ", ".join(SYNTHETIC_BASES)),
        ("features.backbone", f"{backbones}, or any timm / torchvision model name"),
        ("selection method", methods),
    ]
    lines = [textwrap.fill(text, 100, initial_indent=f"  {key:<18} ", subsequent_indent=" " * 21) for key, text in rows]
    return "names a config may use:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="universal taxonomy runs")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run or resume the pipeline from a config",
        epilog=_config_names_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, help="YAML config (see assets/configs/)")
    run.add_argument("--out", help="run folder (default: $UNITAX_RUNS/<time>-<config name>)")
    run.add_argument("--from", dest="from_step", choices=STEPS, help="rerun from this step on")
    run.add_argument("--until", dest="until_step", choices=STEPS, help="stop after this step")
    run.add_argument("--data-root", help="override the config's data_root (folder with the datasets)")
    run.add_argument("--device", choices=DEVICES, help="override the config's device")
    run.add_argument(
        "--seeds", type=int, help="train every baseline and universal head with this many seeds (mean and spread)"
    )
    run.add_argument("--no-progress", action="store_true", help="plain log lines instead of bars")
    st = sub.add_parser("status", help="show a run's status")
    st.add_argument("run", help="run id or folder")
    st.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="list runs, newest first")
    ls.add_argument("--root", help="runs root (default $UNITAX_RUNS or <repo>/runs)")
    pr = sub.add_parser("predict", help="classify one image with a finished run")
    pr.add_argument("run", help="run id or folder")
    pr.add_argument("image", help="image file")
    pr.add_argument("--method", help="selection method folder (default: the first)")
    pr.add_argument("--top-k", type=int, default=5)
    sw = sub.add_parser("sweep", help="validation accuracy of the universal model for every selection setting")
    sw.add_argument("run", help="run id or folder (its crossdomain step finished)")
    sw.add_argument("--methods", help="comma-separated selection methods (default: all)")
    sw.add_argument(
        "--grid",
        choices=("coarse", "fine"),
        default="coarse",
        help="parameter steps of 0.05 (coarse) or 0.01 (fine); every k_max",
    )
    sw.add_argument("--epochs", type=int, help="epochs per universal head (default: the run's recipe)")
    sw.add_argument("--batch", type=int, default=8, help="universal heads trained together")
    sw.add_argument("--device", choices=DEVICES, help="override the run's device")
    sw.add_argument("--fresh", action="store_true", help="start a new table (the current one is set aside)")
    cli_curate.register(sub)
    cli_report.register(sub)
    cli_import.register(sub)
    return parser


class ProgressBars:
    """tqdm bars: one per step, updated from the pipeline's progress callback."""

    def __init__(self, use_bars: bool):
        self.use_bars = use_bars
        self.bar = None
        self.step = None

    def __call__(self, step: str, fraction: float, eta_s, message: str) -> None:
        if fraction < 0:  # a log line
            if self.use_bars and self.bar is not None:
                self.bar.write(message, file=sys.stderr)
            else:
                print(f"[{step}] {message}", flush=True)
            return
        if not self.use_bars:
            return
        from tqdm import tqdm

        if step != self.step:
            self.close()
            self.step = step
            # remaining = tqdm's ETA from the progress rate; the message carries the work rate
            # (images/s while extracting features, samples/s while training heads)
            width = shutil.get_terminal_size((100, 20)).columns
            self.bar = tqdm(
                total=1000,
                desc=f"{step:<11}",
                file=sys.stderr,
                ncols=width if width > 0 else 100,
                bar_format="{desc} {percentage:3.0f}%|{bar:30}| {elapsed}<{remaining} {postfix}",
            )
        target = int(round(min(max(fraction, 0.0), 1.0) * 1000))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if message:
            self.bar.set_postfix_str(message[:60], refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _load(args):
    """The config of ``run`` with the command line's overrides; ValueError/OSError when bad."""
    import dataclasses

    from core.config import load_config
    from core.domains import check_data

    cfg = load_config(args.config)
    if args.data_root:
        cfg = dataclasses.replace(cfg, data_root=args.data_root)
    if args.device:
        cfg = dataclasses.replace(cfg, device=args.device)
    if args.seeds is not None:
        cfg = dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, seeds=args.seeds))
    check_data(cfg)  # a missing dataset is refused before any run folder exists
    return cfg


def _cmd_run(args) -> int:
    from core.pipeline import run_pipeline
    from core.runs import MARKER, STEPS, create_run_dir, is_run_dir

    if args.from_step and args.until_step and STEPS.index(args.from_step) > STEPS.index(args.until_step):
        raise UsageError(f"--from {args.from_step} comes after --until {args.until_step}: that range holds no step")
    try:
        cfg = _load(args)
    except (ValueError, TypeError, OSError) as exc:
        raise UsageError(f"config error: {_one_line(exc)}") from None
    if _other_rank():  # under torchrun, ranks > 0 only share rank 0's feature extraction
        status = run_pipeline(cfg, args.out or ".", from_step=args.from_step, until_step=args.until_step)
        return 0 if status.get("state") == "released" else 1
    out = Path(args.out) if args.out else create_run_dir(None, cfg.name)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run folder")
    if out.exists() and not is_run_dir(out) and any(out.iterdir()):
        raise UsageError(
            f"--out {out} is not empty and is not a unitax run folder (no {MARKER} marker): "
            "choose a new or empty folder"
        )
    bars = ProgressBars(sys.stderr.isatty() and not args.no_progress)
    # Under a job, stdout is the run's log.txt, which the pipeline already writes: stay quiet.
    quiet = not sys.stdout.isatty() and _is_run_log(out)
    try:
        status = run_pipeline(
            cfg, out, from_step=args.from_step, until_step=args.until_step, on_progress=None if quiet else bars
        )
    finally:
        bars.close()
    print(f"run {out}: {status['state']}" + (f" ({status['error']})" if status.get("error") else ""))
    if status["state"] == "done":
        _print_results(out)
    return {"done": 0, "pending": 0, "cancelled": 130}.get(status["state"], 1)


def _other_rank() -> bool:
    """True in a torchrun rank other than 0 (core.distributed; torch is imported only then)."""
    import os

    if "WORLD_SIZE" not in os.environ:
        return False
    from core import distributed

    launch = distributed.launch_env()
    return launch is not None and launch.rank != 0


def _is_run_log(out: Path) -> bool:
    try:
        from core.runs import Run

        return Path("/proc/self/fd/1").resolve() == Run(out).log_path().resolve()
    except OSError:
        return False


def _print_results(run) -> None:
    from core.runs import open_run

    opened = open_run(run)
    df = opened.results()
    if df is not None:
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = opened.results_json() or {}
    _print_differences(summary.get("intervals"))
    _print_seeds(summary.get("seeds"))
    from core.results import inference_lines

    for line in inference_lines(summary.get("inference")):
        print(line)


def _print_differences(intervals: dict | None) -> None:
    """Universal minus baselines, mean over domains, with the verdict (see core.results)."""
    for col, per in ((intervals or {}).get("vs_baseline") or {}).items():
        d = per.get("mean") or {}
        if d:
            verdict = "within noise" if d.get("within_noise") else "beyond noise"
            print(f"{col} - baseline (mean): {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] {verdict}")


def _print_seeds(seeds: dict | None) -> None:
    """Mean over domains of each model's test accuracy, as mean ± standard deviation over seeds."""
    import numpy as np

    for col, per in (seeds or {}).items():
        per_seed = np.mean([np.asarray(v, dtype=float) for v in per.values()], axis=0)
        if per_seed.size > 1:
            spread = per_seed.std(ddof=1)
            print(f"{col} over {per_seed.size} seeds (mean of domains): {per_seed.mean():.3f} ± {spread:.3f}")


def _cmd_status(args) -> int:
    from core.runs import open_run

    try:
        run = open_run(args.run)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    status = run.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"run      {run.path}")
    print(f"state    {status['state']}   step {status.get('step')}   progress {status.get('progress', 0):.0%}")
    print(f"done     {', '.join(status.get('steps_done', [])) or '-'}")
    mode = (run.config.get("features") or {}).get("mode", "frozen")
    finetune = mode == "finetune"
    print(f"protocol {'fine-tuning (backbone + head end to end)' if finetune else 'frozen features (heads only)'}")
    if status.get("eta_s"):
        print(f"eta      {status['eta_s']:.0f}s")
    print(f"message  {status.get('message', '')}")
    if status.get("error"):
        print(f"error    {status['error']}")
    if status["state"] == "done":
        _print_results(run.path)
    return 1 if status["state"] == "corrupt" else 0


def _cmd_list(args) -> int:
    from core.runs import list_runs

    if args.root is not None and not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root} is not a folder of runs")
    infos = list_runs(args.root)
    if not infos:
        print("no runs")
        return 0
    print(f"{'id':<40} {'state':<10} {'config':<16} headline")
    for i in infos:
        head = " ".join(f"{k}={v:.3f}" for k, v in i.headline.items() if isinstance(v, (int, float)))
        print(f"{i.id:<40} {i.state:<10} {str(i.config_name):<16} {head}")
    return 0


def _cmd_predict(args) -> int:
    from core.inference import predict_image

    try:
        result = predict_image(args.run, args.image, method=args.method, top_k=args.top_k)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    print(f"universal ({result['method']}):")
    for name, p in result["universal"]:
        print(f"  {p:6.3f}  {name}")
    for dom, top in result["domains"].items():
        print(f"{dom}:")
        for name, p in top:
            print(f"  {p:6.3f}  {name}")
    return 0


class UsageError(ValueError):
    """A bad command line or config: one line on stderr, exit code 2."""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        from core.fsio import os_error_message

        return os_error_message(exc)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _cmd_sweep(args) -> int:
    from core.fsio import CorruptFileError
    from core.runs import LockedError, open_run
    from core.sweep import best_by_accuracy, sweep_correlations, sweep_job

    try:
        run = open_run(args.run)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods is not None else None
    if methods is not None and not methods:
        raise UsageError(f"--methods {args.methods!r} names no method")

    def progress(done: int, total: int, eta: float | None, message: str) -> None:
        print(f"[sweep] {message}" + (f", about {eta:.0f}s left" if eta else ""), flush=True)

    try:
        status = sweep_job(
            run.path,
            methods=methods,
            grid=args.grid,
            epochs=args.epochs,
            batch=args.batch,
            device=None if args.device in (None, "auto") else args.device,
            on_progress=progress,
            fresh=args.fresh,
        )
    except (LockedError, CorruptFileError):
        raise  # a runtime refusal: exit code 1
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"sweep {run.path}: {status['state']}" + (f" ({status['error']})" if status.get("error") else ""))
    table = run.sweep_table()
    if table is not None and len(table):
        best = best_by_accuracy(table)[["method", "param", "value", "n_universal", "val_acc_mean", "f1"]]
        best = _with_decisions(run, best)
        best = best.fillna({"param": "-"}).astype({"value": object}).fillna({"value": "-"})
        print(best.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
        corr = sweep_correlations(table)
        if corr["n"]:
            print(
                f"Spearman over {corr['n']} distinct taxonomies: F1 vs validation accuracy {corr['f1']:+.2f} "
                f"(p = {corr['f1_p']:.2g}), -EDR vs validation accuracy {corr['neg_edr']:+.2f} "
                f"(p = {corr['neg_edr_p']:.2g})"
            )
    return {"done": 0, "cancelled": 130}.get(status["state"], 1)


def _with_decisions(run, table):
    """``table`` (settings) with precision and recall against the run's curation decisions, when any."""
    from core.curation import load_state, with_decision_scores

    state = load_state(run)
    if not state.applied:
        return table
    kind = (run.config.get("crossdomain") or {}).get("matrix", "hard")
    out = with_decision_scores(table, run.matrices(kind), state)
    return out.rename(columns={"decisions_precision": "prec_decisions", "decisions_recall": "recall_decisions"}).drop(
        columns=["decisions_judged"]
    )


def _dispatch(args) -> int:
    commands = {"run": _cmd_run, "status": _cmd_status, "list": _cmd_list, "predict": _cmd_predict, "sweep": _cmd_sweep,
                "curate": cli_curate.command, "report": cli_report.command,
                "import": cli_import.command}  # fmt: skip
    return commands[args.command](args)


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``argv`` without the program name, starting with the command.

    Never shows a traceback: a usage or config error is one line and exit code 2, any other
    error one line and exit code 1, Ctrl-C exit code 130, a closed output pipe (``| head``)
    ends quietly."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: one line, never a traceback
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
