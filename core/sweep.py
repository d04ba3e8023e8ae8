"""Universal-accuracy sweep: for every selection setting, how good is the universal model it gives?

For each method and each value of its parameter grid: select relationships from the run's
cross-domain matrices, build the universal taxonomy, train a universal head on the run's cached
training features, and score it on the VALIDATION split (the test split is never used to choose
a setting). Settings whose taxonomy is identical to one already trained (same mappings) reuse
its row. Heads are trained several at a time (:mod:`core.multihead`).

Writes ``RUN/sweep/sweep.csv`` (one row per setting, rewritten after every batch, so a
dashboard fills in as rows arrive), ``meta.json`` (what the rows were trained with: a resume
keeps rows only when it matches) and ``status.json`` (progress, ETA). The run folder is locked
while a sweep works in it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import RunConfig, config_from_dict, config_hash
from core.runs import Run, RunLock
from core.selection import METHODS, check_params, rank_rows, select_edges
from core.sweep_summary import best_by_accuracy, sweep_correlations

__all__ = [
    "GRIDS",
    "Setting",
    "sweep_grid",
    "sweep_settings",
    "check_sweep",
    "run_sweep",
    "sweep_job",
    "best_by_accuracy",
    "sweep_correlations",
    "SWEEP_COLUMNS",
]

GRIDS = ("coarse", "fine")
# Columns every sweep table has; one ``val_acc_<domain>`` column per domain follows val_acc_mean.
SWEEP_COLUMNS = (
    "method",
    "param",
    "value",
    "n_edges",
    "n_universal",
    "val_acc_mean",
    "train_s",
    "same_as",
    "edr",
    "precision",
    "recall",
    "f1",
)
_STEP = {"coarse": 0.05, "fine": 0.01}


@dataclass(frozen=True)
class Setting:
    """One point of the sweep: a method and its parameter value (None for parameter-free ones)."""

    method: str
    value: float | None

    @property
    def param(self) -> str | None:
        return METHODS[self.method].param

    @property
    def params(self) -> dict:
        return {} if self.param is None else {self.param: self.value}

    @property
    def label(self) -> str:
        return self.method if self.param is None else f"{self.method} {self.param}={self.value:g}"


def sweep_grid(method: str, grid: str = "coarse") -> list[float | None]:
    """The parameter values a sweep tries for ``method``: steps of 0.05 (coarse) or 0.01 (fine)
    over the method's range for fractions, every integer for ``k_max``; [None] when the method
    has no parameter."""
    if grid not in GRIDS:
        raise ValueError(f"grid {grid!r} is not one of {list(GRIDS)}")
    check_params(method, {})
    spec = METHODS[method]
    if spec.param is None:
        return [None]
    lo, hi, step = spec.bounds
    if isinstance(spec.default, int):
        return [int(v) for v in range(int(lo), int(hi) + 1)]
    step = _STEP[grid]
    first = max(lo, step)
    values = np.round(np.arange(first, hi + step / 2, step), 4)
    return [float(v) for v in values if lo <= v <= hi]


def sweep_settings(methods: list[str] | None = None, grid: str = "coarse") -> list[Setting]:
    """Every (method, value) a sweep of ``methods`` (default: all) tries, in method order."""
    methods = list(METHODS) if not methods else methods
    for m in methods:
        check_params(m, {})
    return [Setting(m, v) for m in methods for v in sweep_grid(m, grid)]


def _signature(mappings: list[np.ndarray]) -> str:
    """Identifies a taxonomy by its mappings: equal signatures train the same universal head."""
    h = hashlib.sha1()
    for M in mappings:
        arr = np.ascontiguousarray(np.round(np.asarray(M, dtype=np.float64), 9))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


@dataclass
class _Planned:
    setting: Setting
    n_edges: int
    n_universal: int
    signature: str
    mappings: list[np.ndarray]
    scores: dict | None


def _plan(run: Run, cfg: RunConfig, settings: list[Setting]) -> list[_Planned]:
    """Select and build the taxonomy of every setting (fast: no training)."""
    from core.metrics import relationship_scores
    from core.taxonomy import build_universal_taxonomy

    ranked = {ab: rank_rows(P) for ab, P in run.matrices(cfg.crossdomain.matrix).items()}
    if not ranked:
        raise ValueError(f"run {run.id!r} has no cross-domain matrices yet: run its crossdomain step first")
    counts = run.class_counts()
    true = run.true_relationships()  # an imported truth, else the synthetic world's
    out = []
    for s in settings:
        W = {ab: select_edges(r, s.method, **s.params) for ab, r in ranked.items()}
        tax = build_universal_taxonomy(W, counts)
        scores = None if true is None else {k: float(v) for k, v in relationship_scores(W, true, counts).items()}
        mappings = [np.asarray(M) for M in tax.mappings]
        out.append(
            _Planned(
                s, int(sum(e.rows.size for e in W.values())), len(tax.classes), _signature(mappings), mappings, scores
            )
        )
    return out


def _meta(cfg: RunConfig, epochs: int) -> dict:
    """What a sweep row depends on besides the matrices (a rerun of the crossdomain step removes
    the sweep): the matrix kind, the universal recipe, the epochs, the seed."""
    return {
        "matrix": cfg.crossdomain.matrix,
        "universal": config_hash([cfg.universal, cfg.universal_train]),
        "epochs": int(epochs),
        "seed": cfg.seed,
    }


def _row(p: _Planned, names: list[str], score, train_s: float, same_as: str | None) -> dict:
    row = {
        "method": p.setting.method,
        "param": p.setting.param or "",
        "value": p.setting.value,
        "n_edges": p.n_edges,
        "n_universal": p.n_universal,
        "val_acc_mean": float(np.nanmean(score.val_acc_by_domain)) if score.val_acc_by_domain else float("nan"),
    }
    row.update({f"val_acc_{n}": v for n, v in zip(names, score.val_acc_by_domain)})
    row.update({"train_s": round(train_s, 3), "same_as": same_as or ""})
    row.update(p.scores or {"edr": np.nan, "precision": np.nan, "recall": np.nan, "f1": np.nan})
    return row


def _done_keys(table: pd.DataFrame | None) -> set[tuple[str, float | None]]:
    if table is None or table.empty:
        return set()
    return {(m, None if pd.isna(v) else float(v)) for m, v in zip(table["method"], table["value"])}


class _Data:
    """The run's training and validation features (from the feature cache; no test split)."""

    def __init__(self, run: Run, cfg: RunConfig, device):
        from core.context import RunContext, union

        ctx = RunContext(cfg=cfg, run=run, device=device, record=False)  # the run's own status stays as it is
        self.train, self.val = union(ctx, "train"), union(ctx, "val")
        if not len(self.val[0]):
            raise ValueError(f"run {run.id!r} has no validation images: a sweep scores settings on them")


SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def check_head_job(
    run_dir, job: str, steps: tuple[str, ...] | None = None, splits: tuple[str, ...] = ("train",)
) -> tuple[Run, RunConfig]:
    """The checks shared by the jobs that train universal heads on a finished run's cached frozen
    features (the sweep, the curated model): ``job`` names it in the messages; every domain needs
    images in ``splits``; the config must be unchanged for ``steps`` (default: every finished
    step). ValueError naming what is wrong."""
    from core.importer import is_imported
    from core.pipeline import step_dependencies
    from core.runs import check_no_links, is_run_dir, read_status

    run = Run(run_dir)
    if not is_run_dir(run.path):
        raise ValueError(f"{run.path} is not a unitax run folder (no marker): refusing to run {job} in it")
    check_no_links(run.path)  # the job writes into the run folder: never through a link
    if is_imported(run):
        raise ValueError(f"run {run.id!r} was imported from predictions: it has no images to train {job} on")
    if not run.config:
        raise ValueError(f"run {run.id!r} has no readable config.yaml: nothing to train {job} on")
    if not run.has("crossdomain"):
        raise ValueError(f"run {run.id!r} has no finished crossdomain step: nothing to train {job} on yet")
    try:
        domains = run.domains()
    except (RecursionError, OSError, ValueError) as exc:
        raise ValueError(f"run {run.id!r}: its domains.json is unreadable ({type(exc).__name__})") from None
    if not isinstance(domains, list):
        domains = []

    def has_images(d: object, split: str) -> bool:
        n = d.get(f"n_{split}") if isinstance(d, dict) else None
        return isinstance(n, int) and not isinstance(n, bool) and n > 0

    missing = [
        d.get("name") if isinstance(d, dict) else d for d in domains if not all(has_images(d, x) for x in splits)
    ]
    if missing or not domains:
        raise ValueError(
            f"run {run.id!r} has no {' or '.join(SPLIT_WORDS[x] for x in splits)} images in domain(s) {missing}: "
            f"{job} trains on the run's "
            "image features, and an image-free run has none"
        )
    cfg = config_from_dict(run.config)
    if cfg.features.mode == "finetune":
        raise ValueError(
            f"run {run.id!r} fine-tunes its models (features.mode: finetune): {job} trains heads on frozen "
            "features, which this run does not have"
        )
    stored, current = run.step_hashes(), step_dependencies(cfg)
    for step in steps if steps is not None else read_status(run.path)["steps_done"]:
        if stored.get(step) != current.get(step):
            raise ValueError(
                f"run {run.id!r}: its config (or the tool's shift definitions) changed since its {step} step "
                "ran; resume the run first"
            )
    return run, cfg


def check_sweep(
    run_dir, methods=None, grid="coarse", epochs=None, batch=8
) -> tuple[Run, RunConfig, list[Setting], int]:
    """Check that a run can be swept with these arguments (ValueError naming what is wrong)."""
    run, cfg = check_head_job(run_dir, "a sweep", steps=("crossdomain",), splits=("train", "val"))
    epochs = cfg.universal_train.epochs if epochs is None else int(epochs)
    if not 1 <= epochs <= 10_000 or not 1 <= batch <= 256:
        raise ValueError(f"epochs must be in [1, 10000] and batch in [1, 256], got {epochs} and {batch}")
    return run, cfg, sweep_settings(methods, grid), epochs


def run_sweep(
    run_dir: str | os.PathLike,
    *,
    methods: list[str] | None = None,
    grid: str = "coarse",
    epochs: int | None = None,
    batch: int = 8,
    device: str | None = None,
    on_progress: Callable[[int, int, float | None, str], None] | None = None,
    fresh: bool = False,
) -> pd.DataFrame:
    """Sweep the selection settings of a finished run; return the sweep table (also on disk).

    ``epochs`` overrides the universal recipe's epochs; ``batch`` heads train together.
    ``on_progress(done, total, eta_s, message)`` after every batch. A resumed sweep keeps the
    rows trained with the same recipe; a sweep with another recipe (epochs, head, seed) is
    refused unless ``fresh``, which sets the old table aside as ``sweep/sweep.previous.csv``.
    Raises ValueError/LockedError before any work when the run cannot be swept.
    """
    run, cfg, settings, epochs = check_sweep(run_dir, methods, grid, epochs, batch)
    with RunLock(run.path, purpose="sweep"):
        old = _previous_rows(run, _meta(cfg, epochs), fresh)
        return _sweep_locked(run, cfg, settings, epochs, batch, device, on_progress, old)


def _sweep_locked(run: Run, cfg: RunConfig, settings, epochs, batch, device, on_progress, old) -> pd.DataFrame:
    """The sweep in a locked run, keeping the rows of ``old`` (the previous table of the same
    recipe, or None)."""
    from core.device import pick_device

    run.write_sweep_meta(_meta(cfg, epochs))
    kept = [] if old is None else old.to_dict(orient="records")
    done = _done_keys(old)
    planned = [p for p in _plan(run, cfg, settings) if (p.setting.method, p.setting.value) not in done]
    names, todo = run.domain_names(), _unique(planned)
    trained: dict[str, tuple] = {}  # taxonomy signature -> (score, label of the setting trained, seconds)
    dev = pick_device(device or (None if cfg.device == "auto" else cfg.device))
    data = _Data(run, cfg, dev) if todo else None
    t_start = time.perf_counter()
    table = _table(kept, names)
    if not todo:
        run.write_sweep_table(table)
    for start in range(0, len(todo), batch):
        group = todo[start : start + batch]
        scores, seconds = _train_group(data, group, cfg, epochs, dev)
        trained.update({p.signature: (sc, p.setting.label, seconds / len(group)) for p, sc in zip(group, scores)})
        table = _table(kept + _rows(planned, trained, names), names)
        run.write_sweep_table(table)
        n_done = start + len(group)
        eta = (time.perf_counter() - t_start) / n_done * (len(todo) - n_done)
        if on_progress is not None:
            on_progress(n_done, len(todo), eta, f"{n_done}/{len(todo)} distinct taxonomies trained")
    return table


def _previous_rows(run: Run, meta: dict, fresh: bool) -> pd.DataFrame | None:
    """The sweep rows a new sweep keeps: those of the same recipe. Another recipe is refused
    (its rows would be lost) unless ``fresh``, which sets the old table aside. A damaged table or
    meta.json raises CorruptFileError naming it."""
    table, old = run.sweep_table(), run.sweep_meta()
    if table is None:
        return None
    if fresh:
        aside = run.set_sweep_aside()
        print(f"the earlier sweep table is kept as {aside}", flush=True)
        return None
    if old != meta:
        changed = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        raise ValueError(
            f"run {run.id!r} already has a sweep trained with another recipe ({', '.join(changed)} differ): "
            "start a new table with --fresh (the current one is kept as sweep/sweep.previous.csv)"
        )
    return table


def _unique(planned: list[_Planned]) -> list[_Planned]:
    """One setting per distinct taxonomy, in order."""
    seen, out = set(), []
    for p in planned:
        if p.signature not in seen:
            seen.add(p.signature)
            out.append(p)
    return out


def _train_group(data: _Data, group: list[_Planned], cfg: RunConfig, epochs: int, device):
    from dataclasses import replace

    from core.multihead import train_heads

    t0 = time.perf_counter()
    scores = train_heads(
        data.train,
        data.val,
        [p.mappings for p in group],
        head=cfg.universal.head,
        config=replace(
            cfg.universal_train, epochs=epochs, warmup_epochs=min(cfg.universal_train.warmup_epochs, epochs - 1)
        ),
        loss=cfg.universal.loss,
        label_smoothing=cfg.universal.label_smoothing,
        seed=cfg.seed,
        device=device,
    )
    return scores, time.perf_counter() - t0


def _rows(planned: list[_Planned], trained: dict[str, tuple], names: list[str]) -> list[dict]:
    """Rows of every setting whose taxonomy has been trained; a setting sharing the taxonomy of
    another names it in ``same_as`` (and took no training time)."""
    out = []
    for p in planned:
        if p.signature in trained:
            score, label, seconds = trained[p.signature]
            own = label == p.setting.label
            out.append(_row(p, names, score, seconds if own else 0.0, None if own else label))
    return out


def _table(rows: list[dict], names: list[str]) -> pd.DataFrame:
    cols = list(SWEEP_COLUMNS[:6]) + [f"val_acc_{n}" for n in names] + list(SWEEP_COLUMNS[6:])
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = np.nan
    order = {m: i for i, m in enumerate(METHODS)}
    df = df.drop_duplicates(subset=["method", "value"], keep="last")
    df = df.sort_values(
        by=["method", "value"],
        key=lambda s: s.map(order) if s.name == "method" else s,
        na_position="first",
        kind="stable",
    )
    return df[cols].reset_index(drop=True)


def sweep_job(
    run_dir: str | os.PathLike,
    *,
    methods: list[str] | None = None,
    grid: str = "coarse",
    epochs: int | None = None,
    batch: int = 8,
    device: str | None = None,
    on_progress: Callable[[int, int, float | None, str], None] | None = None,
    fresh: bool = False,
) -> dict:
    """:func:`run_sweep` with its status kept in ``RUN/sweep/status.json`` (state, done, total,
    ETA, pid) for the dashboard; returns the final status. Refusals (a run that cannot be
    swept, a locked run) raise before the status is touched; once started, a failure or a
    SIGTERM ends as state "failed" or "cancelled" with a one-line error."""
    from core.fsio import os_error_message
    from core.runlock import process_identity
    from core.signals import Cancelled, cancel_on_signals

    run, cfg, settings, epochs = check_sweep(run_dir, methods, grid, epochs, batch)

    def progress(done: int, total: int, eta: float | None, message: str) -> None:
        run.write_sweep_status(state="running", done=done, total=total, eta_s=eta, message=message)
        if on_progress is not None:
            on_progress(done, total, eta, message)

    with RunLock(run.path, purpose="sweep"), cancel_on_signals():
        old = _previous_rows(run, _meta(cfg, epochs), fresh)  # a refusal comes before any status
        run.write_sweep_status(
            state="running",
            done=0,
            total=None,
            eta_s=None,
            message="starting",
            error=None,
            pid=os.getpid(),
            pid_identity=process_identity(os.getpid()),
        )
        try:
            table = _sweep_locked(run, cfg, settings, epochs, batch, device, progress, old)
        except Cancelled as exc:
            return run.write_sweep_status(state="cancelled", message=str(exc), pid=None, pid_identity=None)
        except Exception as exc:  # noqa: BLE001 - the status must say what went wrong, in one line
            err = os_error_message(exc) if isinstance(exc, OSError) and exc.errno else f"{type(exc).__name__}: {exc}"
            return run.write_sweep_status(state="failed", message="failed", error=err, pid=None, pid_identity=None)
        return run.write_sweep_status(
            state="done", message=f"{len(table)} settings", eta_s=0.0, pid=None, pid_identity=None
        )
