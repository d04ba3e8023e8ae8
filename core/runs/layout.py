"""The run folder's layout: every file name of a run, the steps, the states, the id rule.

This is the only module that spells a run's file names; everything else asks :class:`core.runs.Run`.

Layout (paths relative to the run folder; ``a``, ``b`` are domain indices, ``KEY`` a selection
method's folder key)::

    .unitax-run        marker written when the tool creates the folder: only a folder holding it
                       is ever cleared or deleted by the tool
    .lock              OS lock held by the process working in the folder (core.runlock)
    config.yaml        resolved config (all defaults filled in); config.input.yaml: a job's input
    environment.json   versions, device, seed, hostname, start time
    status.json        {"state", "step", "steps_done", "progress", "eta_s", "message", "pid",
                        "pid_identity", "updated", "error"}
    steps.json         config hash of every finished step (a changed hash reruns the step)
    log.txt            human-readable log lines; timings.json seconds per step;
    live_history.json  epochs so far of the model being trained
    domains.json       [{"name", "source", "shift", "class_names", "n_train", "n_val", "n_test"}]
    ground_truth.json  the synthetic taxonomy behind synthetic domains
    baselines/         domain_<a>.pt + metrics.json {name: {"test_acc", "val_acc", "history"}}; a model
                       file holds a head on cached features, or, when the run fine-tunes
                       (features.mode finetune), the whole network (backbone + head)
    crossdomain/       matrices.npz ("hard/a-b", "soft/a-b", "count/a-b"),
                       predictions.npz ("true/a", "item/a", "pred/a-b", "conf/a-b")
    taxonomy/KEY/      relationships.npz ("a-b"), selection.json, taxonomy.json, taxonomy.graphml,
                       mappings.csv, label_map.json
    universal/KEY/     model.pt, history.json, metrics.json {domain name: test_acc}
    results.json, results.csv, embedding.npz, test_correct.npz ("baseline/a", "universal/KEY/a":
                       which test images each model got right, for the accuracies' intervals)
    sweep/             sweep.csv (one row per selection setting: validation accuracy of its
                       universal head, taxonomy size, scores), meta.json, status.json, log.txt
    curation.jsonl     the researcher's decisions on edges (append-only, one JSON object a line;
                       core.curation): never removed by a rerun, only by deleting the run
    taxonomy/curated/, universal/curated/
                       the curated taxonomy (a setting's edges + accepted - rejected) and its
                       universal model, under the reserved method key ``curated``;
                       curated/status.json, curated/log.txt: that training job's bookkeeping
    evidence/names.npz class-name embeddings (a cache, keyed by the class names and the model)
    report.html        the run's self-contained report (``python -m core report``)
    truth.csv          related class pairs imported as the run's ground truth (domain_a, class_a,
                       domain_b, class_b; each row holds in both directions)
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from core.fsio import TMP_PREFIX
from core.runlock import LOCK_NAME

__all__ = [
    "STEPS",
    "STATES",
    "STATE_ICONS",
    "MATRIX_KINDS",
    "MARKER",
    "CURATED",
    "STEP_OUTPUTS",
    "F",
    "pair_key",
    "parse_pair_key",
    "runs_root",
    "validate_run_id",
    "new_run_id",
]

# Pipeline steps, in the order they run. Each later step reads what the earlier ones wrote.
STEPS: tuple[str, ...] = (
    "domains",
    "features",
    "baselines",
    "crossdomain",
    "selection",
    "taxonomy",
    "universal",
    "results",
)
# States a run's status.json can hold; "corrupt" is only ever reported, for a status that cannot be read.
STATES: tuple[str, ...] = ("pending", "running", "done", "failed", "cancelled")
STATE_ICONS: dict[str, str] = {
    "pending": "⏳",
    "running": "🏃",
    "done": "✅",
    "failed": "❌",
    "cancelled": "⏹️",
    "corrupt": "⚠️",
}
# Cross-domain matrices a run keeps: hard (share of hard predictions), soft (mean probability),
# count (raw counts of hard predictions).
MATRIX_KINDS: tuple[str, ...] = ("hard", "soft", "count")
MARKER = ".unitax-run"
CURATED = "curated"  # the method key of the curated taxonomy; no configured method may use it


class F:
    """Relative paths of a run's files (one name per file; methods for per-domain/per-method files)."""

    CONFIG = "config.yaml"
    CONFIG_INPUT = "config.input.yaml"
    ENVIRONMENT = "environment.json"
    STATUS = "status.json"
    STEP_HASHES = "steps.json"
    LOG = "log.txt"
    TIMINGS = "timings.json"
    LIVE_HISTORY = "live_history.json"
    DOMAINS = "domains.json"
    GROUND_TRUTH = "ground_truth.json"
    BASELINE_METRICS = "baselines/metrics.json"
    MATRICES = "crossdomain/matrices.npz"
    PREDICTIONS = "crossdomain/predictions.npz"
    RESULTS_JSON = "results.json"
    RESULTS_CSV = "results.csv"
    EMBEDDING = "embedding.npz"
    TEST_CORRECT = "test_correct.npz"
    SWEEP_CSV = "sweep/sweep.csv"
    SWEEP_PREVIOUS = "sweep/sweep.previous.csv"
    SWEEP_META = "sweep/meta.json"
    SWEEP_STATUS = "sweep/status.json"
    SWEEP_LOG = "sweep/log.txt"
    CURATION = "curation.jsonl"
    CURATED_STATUS = "curated/status.json"
    CURATED_LOG = "curated/log.txt"
    NAME_EMBEDDINGS = "evidence/names.npz"
    REPORT = "report.html"
    TRUTH = "truth.csv"
    TAXONOMY_FILES = (
        "relationships.npz",
        "selection.json",
        "taxonomy.json",
        "taxonomy.graphml",
        "mappings.csv",
        "label_map.json",
    )
    UNIVERSAL_FILES = ("model.pt", "history.json", "metrics.json")

    @staticmethod
    def baseline_model(a: int | str) -> str:
        return f"baselines/domain_{a}.pt"

    @staticmethod
    def taxonomy(key: str, name: str) -> str:
        if name not in F.TAXONOMY_FILES:
            raise ValueError(f"{name!r} is not a taxonomy file; valid: {list(F.TAXONOMY_FILES)}")
        return f"taxonomy/{key}/{name}"

    @staticmethod
    def universal(key: str, name: str) -> str:
        if name not in F.UNIVERSAL_FILES:
            raise ValueError(f"{name!r} is not a universal-model file; valid: {list(F.UNIVERSAL_FILES)}")
        return f"universal/{key}/{name}"


# The files each step writes (globs). Rerunning a step removes exactly these, nothing else; a
# resume checks that they still read back.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "domains": (F.DOMAINS, F.GROUND_TRUTH),
    "features": (),  # the feature cache lives outside the run folder
    "baselines": (F.baseline_model("*"), F.BASELINE_METRICS),
    # a sweep reads the matrices: it is stale (and removed) when they are made again
    "crossdomain": (
        F.MATRICES,
        F.PREDICTIONS,
        F.SWEEP_CSV,
        F.SWEEP_PREVIOUS,
        F.SWEEP_META,
        F.SWEEP_STATUS,
        F.SWEEP_LOG,
    ),
    "selection": tuple(F.taxonomy("*", n) for n in F.TAXONOMY_FILES[:2]),
    "taxonomy": tuple(F.taxonomy("*", n) for n in F.TAXONOMY_FILES[2:]),
    "universal": tuple(F.universal("*", n) for n in F.UNIVERSAL_FILES),
    "results": (F.RESULTS_JSON, F.RESULTS_CSV, F.EMBEDDING, F.TEST_CORRECT),
}
# Files a finished step must have left (each glob matches at least one file).
REQUIRED: dict[str, tuple[str, ...]] = {
    "domains": (F.DOMAINS,),
    "baselines": (F.BASELINE_METRICS, F.baseline_model("*")),
    "crossdomain": (F.MATRICES, F.PREDICTIONS),
    "selection": (F.taxonomy("*", "relationships.npz"),),
    "taxonomy": (F.taxonomy("*", "taxonomy.json"),),
    "universal": (F.universal("*", "model.pt"), F.universal("*", "metrics.json")),
    "results": (F.RESULTS_JSON,),
}
# Bookkeeping the tool writes besides the step outputs (removed only by delete_run).
BOOKKEEPING: tuple[str, ...] = (
    F.CONFIG,
    F.CONFIG_INPUT,
    F.ENVIRONMENT,
    F.STATUS,
    F.STEP_HASHES,
    F.LOG,
    F.TIMINGS,
    F.LIVE_HISTORY,
    F.CURATION,
    F.CURATED_STATUS,
    F.CURATED_LOG,
    F.NAME_EMBEDDINGS,
    F.REPORT,
    F.TRUTH,
    LOCK_NAME,
    f"{TMP_PREFIX}*",
    f"*/{TMP_PREFIX}*",
    f"*/*/{TMP_PREFIX}*",
)

RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def pair_key(a: int, b: int) -> str:
    """The key of the ordered domain pair (a, b) inside a run's ``.npz`` files: ``"a-b"``."""
    return f"{int(a)}-{int(b)}"


def parse_pair_key(key: str) -> tuple[int, int]:
    """Inverse of :func:`pair_key`: ``"0-2"`` -> ``(0, 2)``."""
    a, sep, b = key.partition("-")
    if not sep or not a.isdigit() or not b.isdigit():
        raise ValueError(f"{key!r} is not a domain pair key 'a-b'")
    return int(a), int(b)


def runs_root() -> Path:
    """Folder holding all runs: env ``UNITAX_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("UNITAX_RUNS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "runs"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a plain folder name (1-200 of ``[A-Za-z0-9_.-]``, not only
    dots); else ValueError."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, got {type(run_id).__name__}")
    if not RUN_ID.fullmatch(run_id) or set(run_id) == {"."}:
        raise ValueError(
            f"run id {run_id[:80]!r} is not a plain name: use at most 200 letters, digits, '_', '.', '-' "
            "(no path separators, not '.' or '..')"
        )
    return run_id


def new_run_id(name: str = "run") -> str:
    """An id ``YYYYmmdd-HHMMSS-<name>`` (name sanitised); ``create_run_dir`` makes it unique."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "run"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{clean}"
