"""Run folders: the on-disk record of one pipeline run, and a reader for it.

A run is a folder ``<runs_root()>/<run_id>/`` written by :mod:`core.pipeline` and read by the
dashboard and the CLI. This module only reads and writes plain files (JSON, YAML, NPZ, CSV); it
never imports torch, so listing runs stays cheap.

Layout (see DESIGN.md section 6)::

    config.yaml        resolved config (all defaults filled in)
    environment.json   versions, device, seed, hostname, start time
    status.json        {"state", "step", "steps_done", "progress", "eta_s", "message", "pid",
                        "updated", "error"}; written atomically (tmp file + os.replace)
    log.txt            human-readable log lines
    domains.json       [{"name", "source", "shift", "class_names", "n_train", "n_val", "n_test"}]
    ground_truth.json  SyntheticTaxonomy.to_dict() (synthetic domains only)
    baselines/         domain_<a>.pt + metrics.json {name: {"test_acc", "val_acc", "history"}}
    crossdomain/       matrices.npz ("hard/{a}-{b}", "soft/{a}-{b}", "count/{a}-{b}"),
                       predictions.npz ("true/{a}", "pred/{a}-{b}")
    taxonomy/<method>/ taxonomy.json, taxonomy.graphml, mappings.csv, label_map.json, selection.json
    universal/<method>/ model.pt, history.json, metrics.json {domain name: test_acc}
    results.json, results.csv, embedding.npz
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "STEPS",
    "STATES",
    "RunInfo",
    "Run",
    "runs_root",
    "validate_run_id",
    "new_run_id",
    "resolve_run_dir",
    "write_status",
    "read_status",
    "write_json",
    "read_json",
    "append_log",
    "pid_alive",
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

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_STATUS_KEYS = ("state", "step", "steps_done", "progress", "eta_s", "message", "pid", "updated", "error")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def runs_root() -> Path:
    """Folder holding all runs: env ``UNITAX_RUNS``, else ``<repo>/runs``."""
    env = os.environ.get("UNITAX_RUNS")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "runs"


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a plain folder name ``[A-Za-z0-9_.-]+``; else ValueError."""
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, got {type(run_id).__name__}")
    if not _RUN_ID.match(run_id) or run_id in (".", "..") or set(run_id) == {"."}:
        raise ValueError(
            f"run id {run_id!r} is not a plain name: use letters, digits, '_', '.', '-' only "
            "(no path separators, not '.' or '..')"
        )
    return run_id


def new_run_id(name: str = "run") -> str:
    """A fresh id ``YYYYmmdd-HHMMSS-<name>`` (name sanitised to the allowed characters)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{clean}"


def resolve_run_dir(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Map a run id (validated) or an existing run folder path to its folder.

    A value containing a path separator, or naming an existing directory, is taken as a path;
    anything else must be a valid run id under ``root`` (default :func:`runs_root`).
    """
    text = os.fspath(run_id_or_path)
    if isinstance(run_id_or_path, Path) or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"run folder {text!r} does not exist")
        return path
    base = Path(root) if root is not None else runs_root()
    return base / validate_run_id(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (temporary file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """Read JSON, or return ``default`` when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return default


def read_status(run_dir: str | os.PathLike) -> dict:
    """The status dict of a run folder, with every contract key present."""
    status = read_json(Path(run_dir) / "status.json", default={}) or {}
    base = {
        "state": "pending",
        "step": None,
        "steps_done": [],
        "progress": 0.0,
        "eta_s": None,
        "message": "",
        "pid": None,
        "updated": None,
        "error": None,
    }
    base.update(status)
    return base


def write_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge ``fields`` into ``status.json`` and write it atomically; return the new status.

    Keys: state (one of STATES), step, steps_done, progress (0..1), eta_s, message, pid, error.
    """
    unknown = set(fields) - set(_STATUS_KEYS)
    if unknown:
        raise ValueError(f"unknown status field(s) {sorted(unknown)}; valid: {list(_STATUS_KEYS)}")
    if "state" in fields and fields["state"] not in STATES:
        raise ValueError(f"state {fields['state']!r} is not one of {STATES}")
    status = read_status(run_dir)
    status.update(fields)
    status["updated"] = _now()
    write_json(Path(run_dir) / "status.json", status)
    return status


def append_log(run_dir: str | os.PathLike, line: str) -> None:
    """Append one time-stamped line to ``log.txt``."""
    stamp = datetime.now().strftime("%H:%M:%S")
    with open(Path(run_dir) / "log.txt", "a", encoding="utf-8") as fh:
        fh.write(f"[{stamp}] {line.rstrip()}\n")


def pid_alive(pid: int | None) -> bool:
    """True if process ``pid`` exists on this machine and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    try:  # a finished child that nobody reaped is still "there": check for zombies on Linux
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _effective_status(status: dict, environment: dict | None) -> dict:
    """A "running"/"pending" status whose process is gone is reported as failed (interrupted)."""
    if status.get("state") not in ("running", "pending") or status.get("pid") is None:
        return status
    host = (environment or {}).get("hostname")
    if host and host != socket.gethostname():
        return status  # another machine's process: cannot check
    if pid_alive(status.get("pid")):
        return status
    out = dict(status)
    out["state"] = "failed"
    out["error"] = out.get("error") or f"interrupted: process {status.get('pid')} is gone"
    out["message"] = "interrupted"
    return out


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
        """Current status; a running status whose process died is reported as failed."""
        return _effective_status(read_status(self.path), self.environment())

    def has(self, step: str) -> bool:
        """True if ``step`` (one of STEPS) finished in this run."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; valid: {list(STEPS)}")
        return step in read_status(self.path).get("steps_done", [])

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
        with np.load(path) as npz:
            true = {int(k.split("/")[1]): npz[k] for k in npz.files if k.startswith("true/")}
            item = {int(k.split("/")[1]): npz[k] for k in npz.files if k.startswith("item/")}
            pred = _npz_pairs(path, "pred", npz=npz)
            conf = _npz_pairs(path, "conf", npz=npz)
        return {"true": true, "item": item, "pred": pred, "conf": conf}

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
        with np.load(path) as npz:
            out = {k: npz[k] for k in npz.files}
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


def _npz_pairs(path: Path, prefix: str, npz=None) -> dict[tuple[int, int], np.ndarray]:
    if npz is None:
        if not path.exists():
            return {}
        with np.load(path) as handle:
            return _npz_pairs(path, prefix, npz=handle)
    out = {}
    for key in npz.files:
        head, _, pair = key.partition("/")
        if head == prefix and "-" in pair:
            a, b = pair.split("-")
            out[(int(a), int(b))] = npz[key]
    return dict(sorted(out.items()))


def open_run(run_id_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Run:
    """Open an existing run by id (under ``root``) or by folder path."""
    path = resolve_run_dir(run_id_or_path, root)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {os.fspath(run_id_or_path)!r} under {path.parent}")
    return Run(path)


def list_runs(root: str | os.PathLike | None = None) -> list[RunInfo]:
    """All runs under ``root`` (default :func:`runs_root`), newest first."""
    base = Path(root) if root is not None else runs_root()
    if not base.is_dir():
        return []
    infos = []
    for path in base.iterdir():
        if path.is_dir() and _RUN_ID.match(path.name) and (
            (path / "status.json").exists() or (path / "config.yaml").exists()
        ):
            infos.append(Run(path).info())
    return sorted(infos, key=lambda i: (i.created or "", i.id), reverse=True)


def delete_run(run_id: str, root: str | os.PathLike | None = None) -> None:
    """Delete a run folder (refuses path-like ids and runs whose process is still alive)."""
    path = (Path(root) if root is not None else runs_root()) / validate_run_id(run_id)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} under {path.parent}")
    status = Run(path).status()
    if status["state"] == "running" and pid_alive(status.get("pid")):
        raise ValueError(f"run {run_id!r} is still running (pid {status['pid']}); cancel it first")
    shutil.rmtree(path)
