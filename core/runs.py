"""Run folders: the on-disk record of one pipeline run, its bookkeeping, and a reader for it.

A run is a folder ``<runs_root()>/<run_id>/`` written by :mod:`core.pipeline` and read by the
dashboard and the CLI. This module owns the folder's layout; it never imports torch, so listing
runs stays cheap.

Layout::

    .unitax-run        marker written when the tool creates the folder: only a folder holding it
                       is ever cleared or deleted by the tool
    .lock              OS lock held by the process working in the folder (core.runlock)
    config.yaml        resolved config (all defaults filled in)
    environment.json   versions, device, seed, hostname, start time
    status.json        {"state", "step", "steps_done", "progress", "eta_s", "message", "pid",
                        "pid_identity", "updated", "error"}
    steps.json         config hash of every finished step (a changed hash reruns the step)
    log.txt            human-readable log lines
    domains.json       [{"name", "source", "shift", "class_names", "n_train", "n_val", "n_test"}]
    ground_truth.json  SyntheticTaxonomy.to_dict() (synthetic domains only)
    baselines/         domain_<a>.pt + metrics.json {name: {"test_acc", "val_acc", "history"}}
    crossdomain/       matrices.npz ("hard/{a}-{b}", "soft/{a}-{b}", "count/{a}-{b}"),
                       predictions.npz ("true/{a}", "item/{a}", "pred/{a}-{b}", "conf/{a}-{b}")
    taxonomy/<key>/    relationships.npz, selection.json, taxonomy.json, taxonomy.graphml,
                       mappings.csv, label_map.json
    universal/<key>/   model.pt, history.json, metrics.json {domain name: test_acc}
    results.json, results.csv, embedding.npz

Every file is written atomically (:mod:`core.fsio`); bookkeeping that cannot be read is
reported as corrupt (:class:`CorruptRunError`), never taken for "nothing done".
"""

from __future__ import annotations

import errno
import os
import re
import socket
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core.fsio import TMP_PREFIX, CorruptFileError, read_json, read_json_strict, write_json, write_text
from core.runlock import LOCK_NAME, LockedError, RunLock, lock_holder, process_identity, same_process

__all__ = [
    "STEPS",
    "STATES",
    "MARKER",
    "STEP_OUTPUTS",
    "CorruptRunError",
    "LockedError",
    "NotARunFolderError",
    "RunLock",
    "RunInfo",
    "Run",
    "runs_root",
    "validate_run_id",
    "new_run_id",
    "create_run_dir",
    "init_run_dir",
    "is_run_dir",
    "resolve_run_dir",
    "write_status",
    "read_status",
    "write_json",
    "read_json",
    "append_log",
    "pid_alive",
    "clear_step_outputs",
    "pair_key",
    "parse_pair_key",
    "check_step_outputs",
    "list_runs",
    "open_run",
    "delete_run",
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
STATES: tuple[str, ...] = ("pending", "running", "done", "failed", "cancelled")
MARKER = ".unitax-run"

# The files each step writes (globs relative to the run folder). Rerunning a step removes
# exactly these, nothing else; a resume checks that they can still be read.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "domains": ("domains.json", "ground_truth.json"),
    "features": (),  # the feature cache lives outside the run folder
    "baselines": ("baselines/domain_*.pt", "baselines/metrics.json"),
    "crossdomain": ("crossdomain/matrices.npz", "crossdomain/predictions.npz"),
    "selection": ("taxonomy/*/relationships.npz", "taxonomy/*/selection.json"),
    "taxonomy": ("taxonomy/*/taxonomy.json", "taxonomy/*/taxonomy.graphml", "taxonomy/*/mappings.csv",
                 "taxonomy/*/label_map.json"),
    "universal": ("universal/*/model.pt", "universal/*/history.json", "universal/*/metrics.json"),
    "results": ("results.json", "results.csv", "embedding.npz"),
}
# Files a finished step must have left (checked on resume; globs must match at least one file).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "domains": ("domains.json",),
    "baselines": ("baselines/metrics.json", "baselines/domain_*.pt"),
    "crossdomain": ("crossdomain/matrices.npz", "crossdomain/predictions.npz"),
    "selection": ("taxonomy/*/relationships.npz",),
    "taxonomy": ("taxonomy/*/taxonomy.json",),
    "universal": ("universal/*/model.pt", "universal/*/metrics.json"),
    "results": ("results.json",),
}
# Bookkeeping the tool writes besides the step outputs (removed by delete_run only).
_BOOKKEEPING = ("config.yaml", "config.input.yaml", "environment.json", "status.json", "steps.json", "log.txt",
                "timings.json", "live_history.json", LOCK_NAME, f"{TMP_PREFIX}*", f"*/{TMP_PREFIX}*",
                f"*/*/{TMP_PREFIX}*")

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_STATUS_KEYS = ("state", "step", "steps_done", "progress", "eta_s", "message", "pid", "pid_identity", "updated",
                "error")


class CorruptRunError(CorruptFileError):
    """The run's bookkeeping (status.json, steps.json) exists but cannot be read."""


class NotARunFolderError(ValueError):
    """A folder that the tool did not create (no marker) was given where a run folder is needed."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def runs_root() -> Path:
    """Folder holding all runs: env ``UNITAX_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("UNITAX_RUNS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "runs"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a plain folder name ``[A-Za-z0-9_.-]+`` (at most 200
    characters); else ValueError."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, got {type(run_id).__name__}")
    if not _RUN_ID.match(run_id) or set(run_id) == {"."} or len(run_id) > 200:
        raise ValueError(
            f"run id {run_id[:80]!r} is not a plain name: use at most 200 letters, digits, '_', '.', '-' "
            "(no path separators, not '.' or '..')"
        )
    return run_id


def new_run_id(name: str = "run") -> str:
    """An id ``YYYYmmdd-HHMMSS-<name>`` (name sanitised); :func:`create_run_dir` makes it unique."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:80] or "run"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{clean}"


def create_run_dir(root: str | os.PathLike | None = None, name: str = "run") -> Path:
    """Create a new, empty run folder ``ROOT/<time>-<name>[-N]`` with its marker and return it.

    The folder is created exclusively, so two processes starting in the same second get two
    folders (the second gets a ``-2`` suffix, and so on)."""
    base = Path(root) if root is not None else runs_root()
    base.mkdir(parents=True, exist_ok=True)
    stem = new_run_id(name)
    for n in range(1, 1000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _write_marker(path)
        return path
    raise ValueError(f"could not find a free run id for {stem!r} under {base}")


def _write_marker(path: Path) -> None:
    write_json(path / MARKER, {"tool": "unitax", "created": _now()})


def is_run_dir(path: str | os.PathLike) -> bool:
    """True if ``path`` is a folder the tool created (it holds the marker)."""
    return (Path(path) / MARKER).is_file()


def init_run_dir(path: str | os.PathLike) -> Path:
    """Make ``path`` a run folder: create it (with the marker) if it does not exist, mark it if
    it is an empty folder, accept it if it is marked; refuse anything else
    (:class:`NotARunFolderError` naming the folder), so the tool never writes into, or later
    clears, a folder of the user's."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotARunFolderError(f"{path} is a file, not a run folder")
    if is_run_dir(path):
        return path
    if path.is_dir() and any(path.iterdir()):
        raise NotARunFolderError(
            f"{path} is not empty and is not a unitax run folder (no {MARKER} marker): refusing to write "
            "into it; choose a new or empty folder")
    path.mkdir(parents=True, exist_ok=True)
    _write_marker(path)
    return path


def resolve_run_dir(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Map a run id (validated) or an existing run folder path to its folder (command line only:
    the dashboard names runs by id).

    A value containing a path separator is taken as a path; anything else must be a valid run
    id under ``root`` (default :func:`runs_root`).
    """
    text = os.fspath(run_id_or_path)
    if isinstance(run_id_or_path, Path) or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"run folder {text!r} does not exist")
        return path
    base = Path(root) if root is not None else runs_root()
    return base / validate_run_id(text)


# ---------------------------------------------------------------------------- status


def _default_status() -> dict:
    return {"state": "pending", "step": None, "steps_done": [], "progress": 0.0, "eta_s": None, "message": "",
            "pid": None, "pid_identity": None, "updated": None, "error": None}


def read_status(run_dir: str | os.PathLike) -> dict:
    """The status dict of a run folder, with every key present ("pending" when there is none
    yet). A status.json that exists but is corrupt raises :class:`CorruptRunError`."""
    path = Path(run_dir) / "status.json"
    try:
        status = read_json_strict(path)
    except FileNotFoundError:
        return _default_status()
    except CorruptFileError as exc:
        raise CorruptRunError(str(exc)) from None
    steps = status.get("steps_done") if isinstance(status, dict) else None
    if not isinstance(status, dict) or not isinstance(steps, list) or any(s not in STEPS for s in steps) \
            or status.get("state") not in STATES:
        raise CorruptRunError(f"{path} is corrupt: not a status of this tool")
    base = _default_status()
    base.update(status)
    return base


def write_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge ``fields`` into ``status.json`` and write it atomically; return the new status.

    Keys: state (one of STATES), step, steps_done, progress (0..1), eta_s, message, pid,
    pid_identity, error. When the disk is full the file is rewritten in place (it only ever
    shrinks or grows by a few bytes), so a run can still say that it failed.
    """
    unknown = set(fields) - set(_STATUS_KEYS)
    if unknown:
        raise ValueError(f"unknown status field(s) {sorted(unknown)}; valid: {list(_STATUS_KEYS)}")
    if "state" in fields and fields["state"] not in STATES:
        raise ValueError(f"state {fields['state']!r} is not one of {STATES}")
    status = read_status(run_dir)
    status.update(fields)
    status["updated"] = _now()
    path = Path(run_dir) / "status.json"
    try:
        write_json(path, status)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        import json

        with open(path, "r+", encoding="utf-8") as fh:  # reuse the file's own blocks
            fh.truncate(0)
            fh.write(json.dumps(status, default=str))
    return status


def append_log(run_dir: str | os.PathLike, line: str) -> None:
    """Append one time-stamped line to ``log.txt`` (best effort: a full disk loses the line,
    not the run)."""
    stamp = datetime.now().strftime("%H:%M:%S")
    try:
        with open(Path(run_dir) / "log.txt", "a", encoding="utf-8") as fh:
            fh.write(f"[{stamp}] {line.rstrip()}\n")
    except OSError:
        pass


def pid_alive(pid: int | None) -> bool:
    """True if process ``pid`` exists on this machine and is not a zombie."""
    return process_identity(pid) is not None


def _effective_status(run_dir: Path, status: dict, environment: dict | None) -> dict:
    """A "running"/"pending" status whose process is gone is reported as failed (interrupted).

    The process is there while it holds the run's lock, or (before it took the lock) while the
    stored pid still names the process that was started."""
    if status.get("state") not in ("running", "pending"):
        return status
    host = (environment or {}).get("hostname")
    if host and host != socket.gethostname():
        return status  # another machine's process: cannot check
    if status.get("pid") is None or lock_holder(run_dir) is not None:
        return status
    if same_process(status.get("pid"), status.get("pid_identity")):
        return status
    out = dict(status)
    out["state"] = "failed"
    out["error"] = out.get("error") or f"interrupted: process {status.get('pid')} is gone"
    out["message"] = "interrupted"
    return out


# ---------------------------------------------------------------------------- step outputs


def _step_files(run_dir: Path, step: str) -> list[Path]:
    return sorted({p for pattern in STEP_OUTPUTS[step] for p in run_dir.glob(pattern) if p.is_file()})


def _remove_empty_dirs(run_dir: Path) -> None:
    for sub in sorted((p for p in run_dir.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()  # only succeeds when empty: files of the user's keep their folders
        except OSError:
            pass


def clear_step_outputs(run_dir: str | os.PathLike, steps: list[str] | tuple[str, ...]) -> list[Path]:
    """Remove the files that ``steps`` write (and folders left empty); return what was removed.

    Only in a marked run folder (:class:`NotARunFolderError` otherwise); files the tool did not
    write are never touched."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise NotARunFolderError(f"{run_dir} is not a unitax run folder (no {MARKER} marker): refusing to clear it")
    removed = []
    for step in steps:
        for path in _step_files(run_dir, step):
            path.unlink(missing_ok=True)
            removed.append(path)
    _remove_empty_dirs(run_dir)
    return removed


def _check_file(path: Path) -> str | None:
    """None if ``path`` reads back, else what is wrong with it (cheap integrity checks)."""
    try:
        if path.suffix in (".npz", ".pt"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            return f"damaged member {bad}" if bad else None
        if path.suffix == ".json":
            read_json_strict(path)
        elif path.stat().st_size == 0 and path.suffix in (".csv", ".graphml"):
            return "empty file"
    except (zipfile.BadZipFile, CorruptFileError, OSError, EOFError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def check_step_outputs(run_dir: str | os.PathLike, step: str) -> list[str]:
    """Problems with what a finished ``step`` left behind: missing or unreadable files, each as
    ``"<relative path>: <what is wrong>"``; empty when the step's outputs read back."""
    run_dir = Path(run_dir)
    problems = [f"{pattern}: missing" for pattern in _REQUIRED.get(step, ()) if not any(run_dir.glob(pattern))]
    for path in _step_files(run_dir, step):
        wrong = _check_file(path)
        if wrong:
            problems.append(f"{path.relative_to(run_dir)}: {wrong}")
    return problems


@dataclass(frozen=True)
class RunInfo:
    """One line of the run history (what :func:`list_runs` returns)."""

    id: str
    path: Path
    created: str | None
    state: str
    step: str | None
    config_name: str | None
    headline: dict = field(default_factory=dict)  # e.g. {"baseline_mean": .., "universal_mean/mcfp": ..}
    message: str = ""


class Run:
    """Read access to one run folder. Every accessor re-reads the files (runs change while read)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.id = self.path.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def config(self) -> dict:
        """The resolved config as a plain dict ({} when not written yet)."""
        import yaml

        try:
            with open(self.path / "config.yaml", encoding="utf-8") as fh:
                return yaml.safe_load(fh) or {}
        except (FileNotFoundError, OSError, yaml.YAMLError):
            return {}

    def environment(self) -> dict:
        return read_json(self.path / "environment.json", default={}) or {}

    def status(self) -> dict:
        """Current status; a running status whose process died is reported as failed, a corrupt
        status.json as state "corrupt" with the reason in "error"."""
        try:
            status = read_status(self.path)
        except CorruptRunError as exc:
            status = _default_status()
            status.update(state="corrupt", message="corrupt bookkeeping", error=str(exc))
            return status
        return _effective_status(self.path, status, self.environment())

    def has(self, step: str) -> bool:
        """True if ``step`` (one of STEPS) finished in this run."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; valid: {list(STEPS)}")
        return step in read_status(self.path)["steps_done"]

    def domains(self) -> list[dict]:
        return read_json(self.path / "domains.json", default=[]) or []

    def domain_names(self) -> list[str]:
        return [d["name"] for d in self.domains()]

    def class_counts(self) -> list[int]:
        return [len(d["class_names"]) for d in self.domains()]

    def matrices(self, kind: str = "hard") -> dict[tuple[int, int], np.ndarray]:
        """Cross-domain matrices ``{(a, b): P_ab (K_a, K_b)}``; kind in hard|soft|count."""
        if kind not in ("hard", "soft", "count"):
            raise ValueError(f"kind {kind!r} must be 'hard', 'soft' or 'count'")
        return _npz_pairs(self.path / "crossdomain" / "matrices.npz", kind)

    def predictions(self) -> dict | None:
        """``{"true": {a: (N_a,)}, "item": {a: (N_a,)}, "pred": {(a, b): (N_a,)}, "conf": {(a, b): (N_a,)}}``
        or None. ``item[a][n]`` is the index in domain a's test split of row n (unreadable
        images are left out); ``conf`` is model b's top softmax probability."""
        path = self.path / "crossdomain" / "predictions.npz"
        if not path.exists():
            return None
        return {"true": _npz_items(path, "true"), "item": _npz_items(path, "item"),
                "pred": _npz_pairs(path, "pred"), "conf": _npz_pairs(path, "conf")}

    def relationships(self, key: str) -> dict[tuple[int, int], np.ndarray]:
        """The selected relationships ``{(a, b): W_ab (K_a, K_b)}`` of method folder ``key``."""
        return _npz_pairs(self.path / "taxonomy" / key / "relationships.npz", "")

    def ground_truth(self):
        """The SyntheticTaxonomy behind synthetic domains, or None for real data."""
        data = read_json(self.path / "ground_truth.json")
        if data is None:
            return None
        from core.synthetic import SyntheticTaxonomy

        return SyntheticTaxonomy.from_dict(data)

    def methods(self) -> list[str]:
        """Selection methods that have a taxonomy in this run (folder names under taxonomy/)."""
        base = self.path / "taxonomy"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "taxonomy.json").exists())

    def selection(self, method: str) -> dict | None:
        return read_json(self.path / "taxonomy" / method / "selection.json")

    def taxonomy(self, method: str):
        """The UniversalTaxonomy built with ``method`` (a folder under taxonomy/), or None."""
        path = self.path / "taxonomy" / method / "taxonomy.json"
        if not path.exists():
            return None
        from core.taxonomy import UniversalTaxonomy

        return UniversalTaxonomy.from_json(path.read_text(encoding="utf-8"))

    def baseline_metrics(self) -> dict | None:
        return read_json(self.path / "baselines" / "metrics.json")

    def universal_metrics(self, method: str) -> dict | None:
        return read_json(self.path / "universal" / method / "metrics.json")

    def results(self):
        """The thesis table as a DataFrame (one row per domain plus "mean"), or None."""
        path = self.path / "results.csv"
        if not path.exists():
            return None
        import pandas as pd

        return pd.read_csv(path)

    def results_json(self) -> dict | None:
        return read_json(self.path / "results.json")

    def history(self, method: str):
        """Per-epoch training history of the universal model for ``method`` as a DataFrame.

        ``method="baseline/<domain name>"`` gives a baseline's history instead.
        """
        import pandas as pd

        if method.startswith("baseline/"):
            metrics = self.baseline_metrics() or {}
            entry = metrics.get(method.split("/", 1)[1])
            return pd.DataFrame(entry["history"]) if entry and entry.get("history") else None
        hist = read_json(self.path / "universal" / method / "history.json")
        return pd.DataFrame(hist) if hist else None

    def embedding(self) -> dict | None:
        """``{"xy": (N, 2), "domain": (N,), "label": (N,), "item": (N,) test index in its domain,
        "universal_pred": (N,), "method": str, "algorithm": "tsne"|"pca"}`` or None."""
        path = self.path / "embedding.npz"
        if not path.exists():
            return None
        out = _load_npz(path)
        for key in ("method", "algorithm"):
            if key in out:
                out[key] = str(out[key])
        return out

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of log.txt ("" when there is none)."""
        try:
            with open(self.path / "log.txt", encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except (FileNotFoundError, OSError):
            return ""
        return "".join(lines[-n:]) if n > 0 else ""

    def info(self) -> RunInfo:
        status = self.status()
        if status["state"] == "corrupt":
            return RunInfo(id=self.id, path=self.path, created=None, state="corrupt", step=None,
                           config_name=(self.config or {}).get("name") if isinstance(self.config, dict) else None,
                           message=status["error"])
        env = self.environment()
        cfg = self.config
        res = self.results_json() or {}
        return RunInfo(
            id=self.id,
            path=self.path,
            created=env.get("created") or env.get("start_time") or status.get("updated"),
            state=status.get("state", "pending"),
            step=status.get("step"),
            config_name=cfg.get("name") if isinstance(cfg, dict) else None,
            headline=dict(res.get("headline", {})),
            message=status.get("message") or "",
        )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (never unpickles); CorruptFileError naming a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CorruptFileError(f"{path} is unreadable ({exc or type(exc).__name__})") from None


def pair_key(a: int, b: int) -> str:
    """The key of the ordered domain pair (a, b) inside the run's ``.npz`` files: ``"a-b"``."""
    return f"{int(a)}-{int(b)}"


def parse_pair_key(key: str) -> tuple[int, int]:
    """Inverse of :func:`pair_key`."""
    a, _, b = key.partition("-")
    return int(a), int(b)


def _npz_pairs(path: Path, prefix: str) -> dict[tuple[int, int], np.ndarray]:
    """Arrays keyed ``"<prefix>/a-b"`` (or plain ``"a-b"`` when prefix is "") as ``{(a, b): array}``."""
    if not path.exists():
        return {}
    out = {}
    for key, arr in _load_npz(path).items():
        head, _, pair = key.rpartition("/")
        if head == prefix and "-" in pair:
            out[parse_pair_key(pair)] = arr
    return dict(sorted(out.items()))


def _npz_items(path: Path, prefix: str) -> dict[int, np.ndarray]:
    """Arrays keyed ``"<prefix>/a"`` as ``{a: array}``."""
    if not path.exists():
        return {}
    return {int(k.split("/")[1]): v for k, v in _load_npz(path).items() if k.startswith(prefix + "/")}


def open_run(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Open an existing run by id (under ``root``) or by folder path."""
    path = resolve_run_dir(run_id_or_path, root)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {os.fspath(run_id_or_path)!r} under {path.parent}")
    if not (is_run_dir(path) or (path / "status.json").exists()):
        raise NotARunFolderError(f"{path} is not a unitax run folder")
    return Run(path)


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """All runs under ``root`` (default :func:`runs_root`), newest first."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
    infos = []
    for path in base.iterdir():
        if path.is_dir() and _RUN_ID.match(path.name) and (
            is_run_dir(path) or (path / "status.json").exists() or (path / "config.yaml").exists()
        ):
            infos.append(Run(path).info())
    return sorted(infos, key=lambda i: (i.created or "", i.id), reverse=True)


def delete_run(run_id: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Delete a run: the files the tool wrote there, and the folder once it is empty.

    Refuses path-like ids, folders without the marker, and runs locked by a living process
    (:class:`LockedError` naming it). Files the tool did not write are kept; they are returned
    (empty list: the folder is gone)."""
    path = (Path(root) if root is not None else runs_root()) / validate_run_id(run_id)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {path.parent}")
    if not is_run_dir(path):
        raise NotARunFolderError(f"{path} is not a unitax run folder (no {MARKER} marker): refusing to delete it")
    with RunLock(path, purpose="delete", wait_s=0.5):
        status = Run(path).status()
        if status["state"] in ("running", "pending") and same_process(status.get("pid"), status.get("pid_identity")):
            raise LockedError(f"run {run_id!r} is starting (pid {status['pid']}); cancel it first")
        clear_step_outputs(path, STEPS)
        for pattern in _BOOKKEEPING:
            for p in path.glob(pattern):
                if p.is_file() and p.name != LOCK_NAME:
                    p.unlink(missing_ok=True)
    kept = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in (LOCK_NAME, MARKER))
    (path / LOCK_NAME).unlink(missing_ok=True)
    if kept:
        return kept
    (path / MARKER).unlink(missing_ok=True)
    _remove_empty_dirs(path)
    path.rmdir()
    return []
