"""The curated model: train the universal model on the researcher's curated taxonomy of a finished run.

The **curated taxonomy** of a selection setting (a method and its parameter value) is its edge set
corrected by the run's decision log (:mod:`core.curation`): ``(selected + accepted) - rejected``.
:func:`curated_job` builds it, trains a universal head on it exactly as the universal step trains
a configured method's (same recipe, the run's cached features), scores it on the test split and
writes everything under the reserved method key ``curated`` (:data:`core.runs.CURATED`)::

    taxonomy/curated/   relationships.npz, selection.json (see curated_relationships), taxonomy files
    universal/curated/  model.pt, history.json, metrics.json
    curated/            status.json (state, progress, pid ...), log.txt

then rewrites the run's results (table, intervals, headline, embedding) so that ``curated`` stands
next to the configured methods (only when the run's results step has finished; otherwise the
results step includes it when it runs). A rerun of the run's selection, taxonomy or universal step
removes these outputs (they depend on the matrices and the recipe); the decision log stays.

The run folder is locked while the job works in it; SIGTERM/SIGINT end it as "cancelled".
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.config import RunConfig, config_from_dict
from core.context import RunContext
from core.runs import CURATED, F, Run, RunLock

__all__ = ["check_curated", "curated_relationships", "curated_job"]

Pairs = dict[tuple[int, int], np.ndarray]
Progress = Callable[[int, int, "float | None", str], None]


def _check_setting(method: str, value: float | None) -> float | int | None:
    """The setting's parameter value, checked (ValueError naming the bad method or value)."""
    from core.selection import METHODS, check_params

    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; valid: {', '.join(METHODS)}")
    param = METHODS[method].param
    if param is None:
        if value is not None:
            raise ValueError(f"method {method!r} takes no parameter, got value {value!r}")
        return None
    if value is None:
        raise ValueError(f"method {method!r} needs a value for its parameter {param!r}")
    return check_params(method, {param: value})[param]


def _truth(run: Run, cfg: RunConfig | None) -> Pairs | None:
    """The run's true relationships (synthetic or imported), or None when it has none."""
    if hasattr(run, "true_relationships"):
        return run.true_relationships()
    gt = run.ground_truth()
    return gt.true_relationships() if gt is not None and cfg is not None and not cfg.domains.list else None


def _clean(scores: dict | None) -> dict | None:
    return None if scores is None else {k: float(v) for k, v in scores.items()}


def curated_relationships(run: Run, method: str, value: float | None, kind: str | None = None) -> tuple[Pairs, dict]:
    """The curated relationships of one setting and what they are.

    Returns ``({(a, b): W_ab (K_a, K_b)} over every ordered pair of domains, info)`` with info
    ``{"method": "curated", "base": {"method", "param", "value", "matrix"}, "params": {},
    "matrix", "n_edges", "n_decisions", "n_accepted", "n_rejected", "scores" (edr, precision,
    recall, f1 against the run's truth; None without one), "curation" (core.curation.curation_scores
    of the base setting), "problems" (decision-log lines skipped)}``. ``kind`` is the matrix the
    setting selects from (default: the run config's ``crossdomain.matrix``). Needs no images.
    """
    from core.curation import curated_edges, curation_scores, load_state, setting_edges
    from core.metrics import relationship_scores
    from core.selection import METHODS

    value = _check_setting(method, value)
    cfg = config_from_dict(run.config) if run.config else None
    kind = kind or (cfg.crossdomain.matrix if cfg is not None else "hard")
    P = run.matrices(kind)
    if not P:
        raise ValueError(f"run {run.id!r} has no cross-domain matrices yet: run its crossdomain step first")
    base = setting_edges(P, method, value)
    state, counts = load_state(run), run.class_counts()
    W = curated_edges(base, state, counts)
    true = _truth(run, cfg)
    info = {
        "method": CURATED,
        "base": {"method": method, "param": METHODS[method].param, "value": value, "matrix": kind},
        "params": {},
        "matrix": kind,
        "n_edges": int(sum(int((w > 0).sum()) for w in W.values())),
        "n_decisions": len(state.applied),
        "n_accepted": len(state.accepted),
        "n_rejected": len(state.rejected),
        "scores": None if true is None else _clean(relationship_scores(W, true, counts)),
        "curation": curation_scores(base, state),
        "problems": list(state.problems),
    }
    return W, info


def check_curated(run_dir: str | os.PathLike, method: str, value: float | None) -> tuple[Run, RunConfig]:
    """Check that a curated model can be trained in this run (ValueError naming what is wrong):
    a run folder without links, a readable config unchanged since its finished steps ran, a
    finished crossdomain step, training images in every domain, a valid setting."""
    from core.sweep import check_head_job

    run, cfg = check_head_job(run_dir, "the curated model")
    _check_setting(method, value)
    return run, cfg


@dataclass
class _Context(RunContext):
    """The run context of the curated job: log lines go to the job's own log, never to the run's."""

    def log(self, message: str) -> None:
        self.run.curated_log(message)


def _units(cfg: RunConfig) -> int:
    """The job's work in units: the taxonomy, one per training epoch, the results."""
    return cfg.universal_train.epochs + 2


def _reporter(report: Callable[..., None], total: int):
    """A training progress callback: epoch e is unit 1 + e of ``total``."""

    def on_epoch(info) -> None:
        report(
            1 + info.epoch,
            total,
            info.eta_s,
            f"universal curated: epoch {info.epoch}/{info.epochs} loss {info.train_loss:.3f} "
            f"acc {info.train_acc:.3f} val {info.val_acc:.3f}",
        )

    return on_epoch


def _commit(run: Run, W: Pairs, info: dict, tax, res, metrics: dict[str, float], cfg: RunConfig) -> None:
    """Write the curated taxonomy and model. The previous model goes first, so that an
    interruption never leaves a model beside a taxonomy it was not trained on."""
    for name in reversed(F.UNIVERSAL_FILES):  # metrics first: step_results keys on it
        run.file(F.universal(CURATED, name)).unlink(missing_ok=True)
    run.write_selection(CURATED, W, info)
    run.write_taxonomy(CURATED, tax)
    run.write_model(
        run.universal_model_path(CURATED),
        res.model,
        method=CURATED,
        n_universal=len(tax.classes),
        universal_names=list(tax.names),
        domain_names=run.domain_names(),
        best_epoch=res.best_epoch,
        val_acc=res.best_val_acc,
        backbone=cfg.features.backbone,
        image_size=cfg.features.image_size,
    )
    run.write_universal(CURATED, res.history, metrics)


def _train_locked(run: Run, cfg: RunConfig, method: str, value, device, report) -> dict:
    """Build, train, evaluate and write the curated model, then the results; return a summary."""
    from core.context import train_universal_head, union
    from core.device import pick_device
    from core.taxonomy import build_universal_taxonomy
    from core.universal import evaluate_universal

    total = _units(cfg)
    report(0, total, None, "building the curated taxonomy")
    W, info = curated_relationships(run, method, value)
    names = run.domain_names()
    tax = build_universal_taxonomy(W, run.class_counts(), class_names=run.class_names(), domain_names=names)
    base = info["base"]
    run.curated_log(
        f"curated taxonomy of {method}" + (f" {base['param']}={value:g}" if value is not None else "")
        + f" ({info['matrix']} matrices): {info['n_edges']} edges after {info['n_decisions']} decision(s) "
        f"({info['n_accepted']} accepted, {info['n_rejected']} rejected edges), {len(tax.classes)} universal classes"
    )  # fmt: skip
    for line in info["problems"]:
        run.curated_log(f"warning: decision log {line}")
    dev = pick_device(device or (None if cfg.device == "auto" else cfg.device))
    ctx = _Context(cfg=cfg, run=run, device=dev, record=False)
    report(1, total, None, "reading the cached features")
    train, val, test = (union(ctx, s) for s in ("train", "val", "test"))
    mappings = tax.sparse_mappings
    t0 = time.perf_counter()
    res = train_universal_head(ctx, train, val, mappings, seed=cfg.seed, progress=_reporter(report, total))
    acc = evaluate_universal(res.model, *test, mappings, device=dev, inference=cfg.universal.inference)
    metrics = {names[a]: v for a, v in acc.items()}
    _commit(run, W, info, tax, res, metrics, cfg)
    mean = float(np.nanmean(list(metrics.values()))) if metrics else float("nan")
    run.curated_log(
        f"universal curated: U={len(tax.classes)} val {res.best_val_acc:.3f} (epoch {res.best_epoch}) test "
        + " ".join(f"{n}={v:.3f}" for n, v in metrics.items())
        + f", {time.perf_counter() - t0:.1f}s"
    )
    rewritten = run.has("results")
    if rewritten:
        from core.steps import step_results

        def results_progress(step: str, fraction: float, eta: float | None, message: str) -> None:
            if fraction >= 0:  # -1: a log line, already in the job's log
                report(total - 1, total, eta, f"results: {message}")

        report(total - 1, total, None, "rewriting the results")
        ctx.step, ctx.on_progress = "results", results_progress
        from core.signals import Cancelled

        try:
            step_results(ctx)
        except Cancelled:
            raise Cancelled(
                "cancelled while rewriting the results: the curated model is saved, but the results table does not "
                f"show it yet; rerun that step: python -m core run --config {run.file(F.CONFIG)} --out {run.path} "
                "--from results"
            ) from None
    else:
        run.curated_log("the run's results step has not finished: it will include the curated model when it runs")
    run.log(
        f"curated model trained (base setting {method}" + (f" {base['param']}={value:g}" if value is not None else "")
        + f", {info['n_decisions']} decision(s)): mean test accuracy {mean:.3f}"
        + ("; results rewritten" if rewritten else "")
    )  # fmt: skip
    report(total, total, 0.0, "curated model trained")
    return {
        "n_edges": info["n_edges"],
        "n_decisions": info["n_decisions"],
        "n_universal": len(tax.classes),
        "universal_mean": mean,
        "results_rewritten": rewritten,
    }


def curated_job(
    run_dir: str | os.PathLike,
    *,
    method: str,
    value: float | None,
    device: str | None = None,
    on_progress: Progress | None = None,
) -> dict:
    """Train the universal model on the curated taxonomy of setting (``method``, ``value``) of a
    finished run; return the final status (``RUN/curated/status.json``: "state" done | failed |
    cancelled, "error", "progress", "message", "base", and on success "result" with n_edges,
    n_decisions, n_universal, universal_mean, results_rewritten).

    ``on_progress(done, total, eta_s, message)`` is called as the work goes on (units: the
    taxonomy, one per training epoch (early stopping skips the rest), the results; the status
    keeps ``progress`` = done / total). Refusals raise
    before the status is touched: ValueError (:func:`check_curated`: no crossdomain step, an
    image-free run, a link in the folder, a changed config, a bad setting) and
    :class:`core.runs.LockedError` naming the process working in the run. Once started, a
    failure or a SIGTERM/SIGINT ends as state "failed" (with a one-line error) or "cancelled";
    the previous curated model is kept until the new one is trained.
    """
    from core.fsio import os_error_message
    from core.runlock import process_identity
    from core.signals import Cancelled, cancel_on_signals

    run, cfg = check_curated(run_dir, method, value)
    value = _check_setting(method, value)
    last = [0.0]

    def report(done: int, total: int, eta: float | None, message: str) -> None:
        now = time.monotonic()
        if now - last[0] > 0.25 or done in (0, total):  # status.json at most 4x/s
            last[0] = now
            run.write_curated_status(state="running", progress=round(min(done / total, 1.0), 4), eta_s=eta,
                                     message=message)  # fmt: skip
        if on_progress is not None:
            on_progress(done, total, eta, message)

    with RunLock(run.path, purpose="curated"), cancel_on_signals():
        run.file(F.CURATED_STATUS).parent.mkdir(exist_ok=True)
        run.write_curated_status(
            state="running",
            progress=0.0,
            eta_s=None,
            message="starting",
            error=None,
            result=None,
            base={"method": method, "value": value},
            pid=os.getpid(),
            pid_identity=process_identity(os.getpid()),
        )
        run.curated_log(f"curated job {os.getpid()}: base setting {method} {value if value is not None else ''}")
        try:
            result = _train_locked(run, cfg, method, value, device, report)
        except Cancelled as exc:
            run.curated_log(f"cancelled: {exc}")
            return run.write_curated_status(state="cancelled", message=str(exc), eta_s=None, pid=None,
                                            pid_identity=None)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the status must say what went wrong, in one line
            err = os_error_message(exc) if isinstance(exc, OSError) and exc.errno else f"{type(exc).__name__}: {exc}"
            run.curated_log("failed:\n" + traceback.format_exc())
            return run.write_curated_status(state="failed", message="failed", error=err, eta_s=None, pid=None,
                                            pid_identity=None)  # fmt: skip
        message = f"{result['n_universal']} universal classes, mean test accuracy {result['universal_mean']:.3f}"
        run.curated_log(f"done: {message}")
        return run.write_curated_status(state="done", progress=1.0, eta_s=0.0, message=message, result=result,
                                        pid=None, pid_identity=None)  # fmt: skip
