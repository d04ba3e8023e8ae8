"""The headless pipeline's driver: config -> run folder, one step at a time, resumable.

Steps (``core.runs.STEPS``, in order; each is a function in :mod:`core.steps`)::

    domains      build the domains (synthetic over a base source, or real ones)
    features     backbone features of every image (disk cache, one backbone pass per image)
    baselines    one head per domain (same recipe as the universal model)
    crossdomain  every baseline on every other domain's test features: matrices P_ab
    selection    relationships W_ab per selection method (+ scores against a ground truth)
    taxonomy     universal taxonomy per method
    universal    one universal head per method on the union of the domains
    results      the results table and a 2-D embedding

A finished step is reused when the config sections it depends on are unchanged and its files
still read back; ``from_step`` reruns that step and all later ones. The run folder is locked
while the pipeline works in it. SIGTERM/SIGINT end the run with state "cancelled", an
exception with "failed" + the error; finished steps are kept.

Under torchrun (``$WORLD_SIZE`` > 1, :mod:`core.distributed`) every rank calls
:func:`run_pipeline`: rank 0 runs the pipeline as above and alone writes the run folder; the
other ranks share its backbone passes (the features step; under fine-tuning every network's
training and prediction passes, until the last step) and return once released.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from core.config import RunConfig, config_from_dict, config_hash, config_to_dict, load_config
from core.context import BACKBONE_COUNTER, RunContext
from core.fsio import os_error_message
from core.runlock import process_identity
from core.runs import STEPS, F, Run, RunLock, check_step_outputs, clear_step_outputs, init_run_dir, read_status
from core.signals import Cancelled, cancel_on_signals
from core.steps import STEP_FUNCTIONS

__all__ = [
    "Cancelled",
    "run_pipeline",
    "plan_steps",
    "step_dependencies",
    "run_domains",
    "STEP_FUNCTIONS",
    "BACKBONE_COUNTER",
]


# Config sections each step depends on (cumulative: a step also depends on all earlier ones).
_STEP_SECTIONS: dict[str, tuple[str, ...]] = {
    "domains": ("seed", "data_root", "domains"),
    "features": ("features",),
    "baselines": ("baselines",),
    "crossdomain": (),
    "selection": ("crossdomain", "selection"),
    "taxonomy": (),
    "universal": ("universal",),
    "results": ("embedding", "evaluation"),
}


def _uses_shifts(cfg: RunConfig) -> bool:
    d = cfg.domains
    synthetic = d.synthetic is not None and any(s != "none" for s in d.synthetic.shifts)
    return synthetic or any(x.shift != "none" for x in d.list)


def step_dependencies(cfg: RunConfig) -> dict[str, str]:
    """Cumulative config hash per step: a step is stale when its hash changed. A run with shifted
    domains also depends on the version of the shift definitions (core.imagesets.SHIFT_VERSION):
    when the tool's shifts change pixels, such a run's domains are not what they were."""
    from core.imagesets import SHIFT_VERSION

    out, acc = {}, []
    for step in STEPS:
        acc += [getattr(cfg, s) for s in _STEP_SECTIONS[step]]
        if step == "domains" and _uses_shifts(cfg):
            acc.append({"shift_version": SHIFT_VERSION})
        out[step] = config_hash(acc)
    return out


def run_domains(run_dir: str | os.PathLike) -> list:
    """Rebuild a run's domains from its config (deterministic: same images, same labels).

    ``run_domains(run.path)[a].splits["test"].image(i)`` is the image behind row ``i`` of the
    run's ``predictions()["item"][a]`` (uint8 (H, W, 3)).
    """
    from core.domains import domains_from_config

    run = Run(run_dir)
    if not run.config:
        raise FileNotFoundError(f"{os.fspath(run_dir)!r} has no readable config.yaml")
    return domains_from_config(config_from_dict(run.config))


def _check_range(from_step: str | None, until_step: str | None) -> None:
    for name, value in (("from_step", from_step), ("until_step", until_step)):
        if value is not None and value not in STEPS:
            raise ValueError(f"{name} {value!r} is not a step; valid: {list(STEPS)}")
    if from_step and until_step and STEPS.index(from_step) > STEPS.index(until_step):
        raise ValueError(f"--from {from_step} comes after --until {until_step}: that range holds no step")


def plan_steps(
    run_dir: str | os.PathLike, cfg: RunConfig, from_step: str | None = None, until_step: str | None = None
) -> tuple[list[str], list[str], list[str]]:
    """(steps to reuse, steps to run, warnings) for running ``cfg`` in ``run_dir``.

    A step is reused only if it and every earlier step finished with the same config and its
    outputs still read back (a truncated file makes that step run again, with a warning naming
    the file). ``from_step`` reruns that step and all later ones; ``until_step`` stops after that
    step. Raises ValueError for a contradictory range and :class:`core.runs.CorruptRunError`
    when the bookkeeping cannot be read (it is never taken for "nothing done").
    """
    _check_range(from_step, until_step)
    run = Run(run_dir)
    done, old, new = read_status(run.path)["steps_done"], run.step_hashes(), step_dependencies(cfg)
    _check_bookkeeping(run)
    keep, warnings = [], []
    for step in STEPS:
        if step == from_step or step not in done or old.get(step) != new[step]:
            break
        problems = check_step_outputs(run.path, step)
        if problems:
            warnings.append(f"step {step} runs again: " + "; ".join(problems))
            break
        keep.append(step)
    todo = [s for s in STEPS if s not in keep]
    if until_step is not None:
        todo = [s for s in todo if STEPS.index(s) <= STEPS.index(until_step)]
    return keep, todo, warnings


def _check_bookkeeping(run: Run) -> None:
    """A run folder whose record of finished steps is gone while its outputs are there is
    corrupt: resuming would take it for "nothing done" and redo (and clear) everything."""
    from core.runs import CorruptRunError, F
    from core.runs.folder import has_outputs

    for rel in (F.STATUS, F.STEP_HASHES):
        if not run.file(rel).exists() and has_outputs(run.path):
            raise CorruptRunError(
                f"{run.file(rel)} is missing but the run folder holds step outputs; "
                "restore it, or start a new run folder"
            )


def _error_text(exc: BaseException) -> str:
    """The one line a user reads about a failed step."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_error_message(exc)
    return f"{type(exc).__name__}: {exc}"


def _environment(cfg: RunConfig, device) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("numpy", "torch", "torchvision", "timm", "scikit-learn", "pandas", "networkx", "scipy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "device": str(device),
        "seed": cfg.seed,
        "protocol": cfg.features.mode,  # frozen (cached features) | finetune (backbone + head end to end)
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "start_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }
    dist = sys.modules.get("core.distributed")
    if dist is not None and dist.world_size() > 1:
        env["world_size"] = dist.world_size()  # torchrun ranks that shared the backbone passes
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if device is not None and str(device).startswith("cuda"):
            env["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - environment is informative only
        pass
    return env


def _resolve(config: RunConfig | dict | str | os.PathLike) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def _prepare(run: Run, cfg: RunConfig, device, keep: list[str]) -> dict[str, str]:
    """Write the resolved config and environment, forget the steps that rerun; return the hashes
    of the kept steps (the locked run folder's bookkeeping before the first step)."""
    run.write_config(config_to_dict(cfg))
    env = _environment(cfg, device)
    old_env = run.environment()
    env["created"] = old_env.get("created") or old_env.get("start_time") or env["start_time"]
    run.write_environment(env)
    hashes = step_dependencies(cfg)
    stored = {s: hashes[s] for s in keep}
    run.write_status(steps_done=list(keep))  # first: a crash after it never claims a cleared step
    run.write_step_hashes(stored)
    clear_step_outputs(run.path, [s for s in STEPS if s not in keep])  # later steps depend on the rerun ones
    return stored


# Under torchrun the other ranks take part in these steps only (the backbone passes of the features
# step; they build the domains meanwhile); they are released before any other step. Fine-tuning
# runs keep them to the end: every step's networks are trained and run by all ranks.
_SHARED_STEPS = ("domains", "features")


def _launcher_hint() -> str:
    """Under torchrun a SIGTERM may be the launcher stopping every rank because another one failed."""
    dist = sys.modules.get("core.distributed")
    if dist is None or dist.world_size() <= 1:
        return ""
    return " (under torchrun: a scancel/Ctrl-C, or the launcher stopping every rank after one failed; see its output)"


def _release_other_ranks() -> None:
    """Under torchrun: tell the other ranks that no more backbone passes come (no-op otherwise)."""
    dist = sys.modules.get("core.distributed")
    if dist is not None:
        dist.release()


def _run_steps(ctx: RunContext, keep: list[str], todo: list[str], stored: dict[str, str]) -> list[str]:
    """Run ``todo`` in order, recording each finished step; return every step done."""
    run, pid = ctx.run, os.getpid()
    hashes, timings, done = step_dependencies(ctx.cfg), ctx.run.timings(), list(keep)
    for step in todo:
        if step not in _SHARED_STEPS and not ctx.cfg.finetune:
            _release_other_ranks()
        ctx.step = step
        run.write_status(
            state="running",
            pid=pid,
            pid_identity=process_identity(pid),
            step=step,
            progress=0.0,
            eta_s=None,
            message=f"{step}...",
        )
        t0 = time.perf_counter()
        STEP_FUNCTIONS[step](ctx)
        timings[step] = round(time.perf_counter() - t0, 3)
        run.write_timings(timings)
        done.append(step)
        stored[step] = hashes[step]
        run.write_step_hashes(stored)
        run.write_status(steps_done=list(done), progress=1.0, eta_s=0.0, message=f"{step} done")
        run.log(f"step {step} done in {timings[step]:.1f}s")
        if ctx.on_progress is not None:
            ctx.on_progress(step, 1.0, 0.0, f"{step} done")
    return done


def _execute(ctx: RunContext, keep: list[str], todo: list[str], warnings: list[str]) -> dict:
    """Run the planned steps in the locked folder; the final status (never raises for a step)."""
    run = ctx.run
    with cancel_on_signals():
        try:
            ctx.step = "plan"
            for line in warnings:
                ctx.log(f"warning: {line}")
            stored = _prepare(run, ctx.cfg, ctx.device, keep)
            run.write_status(
                state="running",
                step=todo[0],
                progress=0.0,
                eta_s=None,
                message="starting",
                pid=os.getpid(),
                pid_identity=process_identity(os.getpid()),
                error=None,
            )
            run.log(
                f"run {run.id}: config {ctx.cfg.name!r}, device {ctx.device}, reusing {keep or 'nothing'}, "
                f"running {todo}"
            )
            done = _run_steps(ctx, keep, todo, stored)
        except Cancelled as exc:
            run.log(f"cancelled: {exc}{_launcher_hint()}")
            return run.write_status(
                state="cancelled",
                message=f"cancelled during {ctx.step or 'start'}{_launcher_hint()}",
                eta_s=None,
                pid=None,
                pid_identity=None,
                error=None,
            )
        except Exception as exc:  # noqa: BLE001 - any crash must leave "failed" + the error
            run.log("failed:\n" + traceback.format_exc())
            return run.write_status(
                state="failed",
                message=f"failed during {ctx.step or 'start'}",
                eta_s=None,
                pid=None,
                pid_identity=None,
                error=_error_text(exc),
            )
    state = "done" if len(done) == len(STEPS) else "pending"
    msg = "done" if state == "done" else f"stopped after {done[-1] if done else 'nothing'}"
    return run.write_status(state=state, step=None, message=msg, eta_s=None, pid=None, pid_identity=None)


def _refuse_imported(run_dir: str | os.PathLike) -> None:
    """An imported run (predictions without images) is never a pipeline's folder: a run there
    would clear the imported matrices. ValueError naming it."""
    from core.importer import is_imported

    if Path(run_dir).is_dir() and (Path(run_dir) / F.DOMAINS).is_file() and is_imported(Run(run_dir)):
        raise ValueError(
            f"{run_dir} holds predictions imported with `python -m core import` (no images): there is nothing to "
            "run there; its relationships, taxonomy and curation are on the dashboard"
        )


def run_pipeline(
    config: RunConfig | dict | str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    from_step: str | None = None,
    until_step: str | None = None,
    on_progress: Callable[[str, float, float | None, str], None] | None = None,
) -> dict:
    """Run (or resume) the pipeline into ``run_dir``; return the final status dict.

    ``from_step`` reruns that step and all later ones; ``until_step`` stops after that step.
    ``on_progress(step, fraction, eta_s, message)`` is called often (fraction -1 = log line).

    Refusals raise before anything in the folder changes: a bad step range (ValueError), a
    folder that is not empty and not a run folder (:class:`core.runs.NotARunFolderError`), a run
    folder another process works in (:class:`core.runs.LockedError`), corrupt bookkeeping
    (:class:`core.runs.CorruptRunError`). Once started it never raises for a failing step: the
    status says "failed" with the error (or "cancelled"). When there is nothing to run, nothing
    is touched.

    Under torchrun with more than one rank, rank 0 does all of the above (its log lines on
    ``on_progress`` carry ``[rank 0/W]``); every other rank only shares the feature extraction and
    returns ``{"state": "released", "rank": r, "world_size": W, "splits": k}`` (k = requests it
    served: splits of the features step, and under ``features.mode: finetune`` the trainings,
    networks and prediction parts) without touching ``run_dir``.
    """
    cfg = _resolve(config)
    _check_range(from_step, until_step)
    from core import distributed

    if distributed.launched():
        return _run_ranks(cfg, run_dir, from_step, until_step, on_progress)
    return _run_main(cfg, run_dir, from_step, until_step, on_progress)


def _run_ranks(cfg: RunConfig, run_dir, from_step, until_step, on_progress) -> dict:
    """run_pipeline under torchrun: join the group, rank 0 runs the pipeline while the others
    serve its backbone passes (feature extraction; fine-tuning and its predictions); every rank
    leaves the group at the end."""
    from core import distributed as dist
    from core.device import pick_device  # imports torch

    device = dist.init(pick_device(None if cfg.device == "auto" else cfg.device))
    try:
        if not dist.is_main():
            splits = dist.serve(cfg, device)
            return {"state": "released", "rank": dist.rank(), "world_size": dist.world_size(), "splits": splits}

        def tagged(step: str, fraction: float, eta_s: float | None, message: str) -> None:
            on_progress(step, fraction, eta_s, dist.tag() + message if fraction < 0 else message)

        with dist.sharding():
            return _run_main(cfg, run_dir, from_step, until_step, tagged if on_progress else None, device=device)
    finally:
        dist.finish()


def _settle(run: Run, exc: BaseException) -> dict | None:
    """After ``exc`` escaped a started run (a second signal while the final status was written:
    torchrun's agent stops every rank at once), record it as cancelled or failed if the status
    still says this process is running; signals wait meanwhile. The status written, or None."""
    import signal

    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        status = read_status(run.path)
        if status.get("state") != "running" or status.get("pid") != os.getpid():
            return None
        state = "cancelled" if isinstance(exc, (Cancelled, KeyboardInterrupt)) else "failed"
        return run.write_status(
            state=state,
            message=f"{state} during {status.get('step') or 'start'}",
            eta_s=None,
            pid=None,
            pid_identity=None,
            error=None if state == "cancelled" else _error_text(exc),
        )
    except Exception:  # noqa: BLE001 - the original error is what the caller reports
        return None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _run_main(cfg: RunConfig, run_dir, from_step, until_step, on_progress, *, device=None) -> dict:
    """The pipeline in this process (rank 0 under torchrun); see run_pipeline."""
    _refuse_imported(run_dir)
    run = Run(init_run_dir(run_dir))
    started = False
    try:
        with RunLock(run.path, purpose="run"), cancel_on_signals():
            try:  # planning and choosing the device (it loads torch) take seconds: a SIGTERM is a cancel
                keep, todo, warnings = plan_steps(run.path, cfg, from_step, until_step)
                if not todo:
                    run.log(f"nothing to run: {keep or 'no step'} done, range ends at {until_step}")
                    return read_status(run.path)
                from core.device import pick_device

                if device is None:
                    device = pick_device(None if cfg.device == "auto" else cfg.device)
            except Cancelled as exc:
                run.log(f"cancelled before the first step: {exc}")
                return run.write_status(state="cancelled", message="cancelled before the first step", pid=None,
                                        pid_identity=None)  # fmt: skip
            started = True
            ctx = RunContext(cfg=cfg, run=run, device=device, on_progress=on_progress)
            return _execute(ctx, keep, todo, warnings)
    except BaseException as exc:
        settled = _settle(run, exc) if started else None
        if settled is not None and isinstance(exc, Cancelled):
            return settled
        raise
