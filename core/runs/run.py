"""The :class:`Run` type: typed readers and writers of one run folder.

Readers re-read the files on every call (a run changes while the dashboard reads it) and turn
a damaged file into a ValueError naming it. Writers are atomic (:mod:`core.fsio`). Torch is
imported only by the model readers and writers.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from core.fsio import (
    CorruptFileError,
    atomic_path,
    read_json,
    read_json_strict,
    read_npz,
    write_json,
    write_npz,
    write_text,
)
from core.runs.folder import CorruptRunError, append_log, corrupt_status, effective_status, read_status, write_status
from core.runs.layout import MATRIX_KINDS, STATES, STEPS, F, pair_key, parse_pair_key
from core.runs.run_results import ResultsMixin

__all__ = ["Run"]

Pairs = dict[tuple[int, int], np.ndarray]


class Run(ResultsMixin):
    """One run folder: read what the steps wrote, write what a step produces (the universal
    model's metrics, the results, the embedding: :class:`core.runs.run_results.ResultsMixin`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.id = self.path.name

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def file(self, rel: str) -> Path:
        """Absolute path of a file named in :class:`core.runs.layout.F`."""
        return self.path / rel

    def stamp(self, rel: str) -> float:
        """Modification time of a run file (0.0 when missing): a cache key for readers."""
        try:
            return (self.path / rel).stat().st_mtime
        except OSError:
            return 0.0

    # ------------------------------------------------------------------ bookkeeping

    @property
    def config(self) -> dict:
        """The resolved config as a plain dict ({} when not written yet or unreadable)."""
        import yaml

        try:
            with open(self.path / F.CONFIG, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def config_file(self) -> Path | None:
        """The config this run was started from: the resolved one, else a job's input."""
        for rel in (F.CONFIG, F.CONFIG_INPUT):
            if (self.path / rel).is_file():
                return self.path / rel
        return None

    def environment(self) -> dict:
        env = read_json(self.path / F.ENVIRONMENT, default={})
        return env if isinstance(env, dict) else {}

    def status(self) -> dict:
        """Current status; a running status whose process died is reported as failed, a corrupt
        status.json as state "corrupt" with the reason in "error"."""
        try:
            status = read_status(self.path)
        except CorruptRunError as exc:
            return corrupt_status(str(exc))
        return effective_status(self.path, status, self.environment().get("hostname"))

    def has(self, step: str) -> bool:
        """True if ``step`` (one of STEPS) finished in this run."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; valid: {list(STEPS)}")
        return step in read_status(self.path)["steps_done"]

    def step_hashes(self) -> dict[str, str]:
        """Config hash of every finished step; CorruptRunError when steps.json is damaged."""
        try:
            hashes = read_json_strict(self.path / F.STEP_HASHES)
        except FileNotFoundError:
            return {}
        except CorruptFileError as exc:
            raise CorruptRunError(str(exc)) from None
        if not isinstance(hashes, dict):
            raise CorruptRunError(f"{self.path / F.STEP_HASHES} is corrupt: not a mapping of steps")
        return hashes

    def write_step_hashes(self, hashes: dict[str, str]) -> None:
        write_json(self.path / F.STEP_HASHES, hashes)

    def write_config(self, config: dict, *, input_only: bool = False) -> Path:
        """Write the resolved config (or, for a job, the config it was given) as YAML."""
        import yaml

        path = self.path / (F.CONFIG_INPUT if input_only else F.CONFIG)
        write_text(path, yaml.safe_dump(config, sort_keys=False))
        return path

    def write_environment(self, env: dict) -> None:
        write_json(self.path / F.ENVIRONMENT, env)

    def timings(self) -> dict[str, float]:
        t = read_json(self.path / F.TIMINGS, default={})
        return t if isinstance(t, dict) else {}

    def write_timings(self, timings: dict[str, float]) -> None:
        write_json(self.path / F.TIMINGS, timings)

    def log(self, line: str) -> None:
        append_log(self.path, line)

    def log_path(self) -> Path:
        return self.path / F.LOG

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of log.txt ("" when there is none)."""
        try:
            with open(self.path / F.LOG, encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except OSError:
            return ""
        return "".join(lines[-n:]) if n > 0 else ""

    def write_status(self, **fields: Any) -> dict:
        return write_status(self.path, **fields)

    def live_history(self) -> dict | None:
        """``{"label": str, "epochs": [{epoch, train_loss, train_acc, val_loss, val_acc}]}`` of the
        model being trained, or None."""
        return read_json(self.path / F.LIVE_HISTORY)

    def write_live_history(self, label: str, epochs: list[dict]) -> None:
        write_json(self.path / F.LIVE_HISTORY, {"label": label, "epochs": epochs})

    # ------------------------------------------------------------------ domains

    def domains(self) -> list[dict]:
        """``[{"name", "source", "shift", "class_names", "n_train", "n_val", "n_test"}]``."""
        d = read_json(self.path / F.DOMAINS, default=[])
        return d if isinstance(d, list) else []

    def write_domains(self, info: list[dict]) -> None:
        write_json(self.path / F.DOMAINS, info)

    def domain_names(self) -> list[str]:
        return [d["name"] for d in self.domains()]

    def class_names(self) -> list[list[str]]:
        return [list(d["class_names"]) for d in self.domains()]

    def class_counts(self) -> list[int]:
        return [len(d["class_names"]) for d in self.domains()]

    def ground_truth(self):
        """The SyntheticTaxonomy behind synthetic domains, or None for real data."""
        data = read_json(self.path / F.GROUND_TRUTH)
        if data is None:
            return None
        from core.synthetic import SyntheticTaxonomy

        return SyntheticTaxonomy.from_dict(data)

    def write_ground_truth(self, truth) -> None:
        """Write the synthetic taxonomy (``None`` removes a stale one: real domains have none)."""
        if truth is None:
            (self.path / F.GROUND_TRUTH).unlink(missing_ok=True)
        else:
            write_json(self.path / F.GROUND_TRUTH, truth.to_dict())

    def truth_pairs(self) -> list[tuple[int, int, int, int]] | None:
        """The related class pairs imported as ground truth (``truth.csv``, core.mapping_io.import_truth):
        sorted ``(a, i, b, j)`` with ``a < b``, each holding both ways; None when none was imported;
        CorruptFileError naming the file (and line) when it no longer reads against the domains."""
        path = self.path / F.TRUTH
        if not path.exists():
            return None
        from core.mapping_io import read_mapping_csv

        try:
            edges = read_mapping_csv(path, self.domain_names(), self.class_names())
        except ValueError as exc:
            raise CorruptFileError(f"the imported ground truth is unreadable: {exc}") from None
        return sorted({(e.a, e.i, e.b, e.j) if e.a < e.b else (e.b, e.j, e.a, e.i) for e, _ in edges})

    def true_relationships(self) -> Pairs | None:
        """The ground truth every score uses: ``{(a, b): W_ab (K_a, K_b)}`` over every ordered pair.
        The imported truth when there is one (each pair both ways, weight 1), else the synthetic
        world's when every domain is synthetic (the config lists no real domains), else None."""
        pairs = self.truth_pairs()
        if pairs is not None:
            k = self.class_counts()
            out = {(a, b): np.zeros((k[a], k[b])) for a in range(len(k)) for b in range(len(k)) if a != b}
            for a, i, b, j in pairs:
                out[a, b][i, j] = out[b, a][j, i] = 1.0
            return out
        gt = self.ground_truth()
        domains = self.config.get("domains")
        if gt is None or (isinstance(domains, dict) and domains.get("list")):
            return None
        return gt.true_relationships()

    # ------------------------------------------------------------------ models

    def baseline_model_path(self, a: int) -> Path:
        return self.path / F.baseline_model(a)

    def universal_model_path(self, key: str) -> Path:
        return self.path / F.universal(key, "model.pt")

    def write_model(self, path: Path, model, **metadata: Any) -> None:
        """Save a head (``core.heads.save_model``) atomically at ``path`` (one of the two above)."""
        from core.heads import save_model

        with atomic_path(path) as tmp:
            save_model(tmp, model, **metadata)

    def load_model(self, path: Path):
        """(model in eval mode, metadata) from a model file of this run."""
        from core.heads import load_model

        return load_model(path)

    def baseline_metrics(self) -> dict | None:
        return read_json(self.path / F.BASELINE_METRICS)

    def write_baseline_metrics(self, metrics: dict) -> None:
        write_json(self.path / F.BASELINE_METRICS, metrics)

    # ------------------------------------------------------------------ cross-domain

    def matrices(self, kind: str = "hard") -> Pairs:
        """Cross-domain matrices ``{(a, b): P_ab (K_a, K_b)}``; kind in hard|soft|count."""
        if kind not in MATRIX_KINDS:
            raise ValueError(f"kind {kind!r} must be one of {list(MATRIX_KINDS)}")
        return _npz_pairs(self.path / F.MATRICES, kind)

    def predictions(self) -> dict | None:
        """``{"true": {a: (N_a,)}, "item": {a: (N_a,)}, "pred": {(a, b): (N_a,)}, "conf": {(a, b): (N_a,)}}``
        or None. ``item[a][n]`` is the index in domain a's test split of row n (unreadable
        images are left out); ``conf`` is model b's top softmax probability."""
        path = self.path / F.PREDICTIONS
        if not path.exists():
            return None
        return {
            "true": _npz_items(path, "true"),
            "item": _npz_items(path, "item"),
            "pred": _npz_pairs(path, "pred"),
            "conf": _npz_pairs(path, "conf"),
        }

    def write_crossdomain(
        self,
        matrices: dict[str, Pairs],
        true: dict[int, np.ndarray],
        item: dict[int, np.ndarray],
        pred: Pairs,
        conf: Pairs,
    ) -> None:
        """Write the matrices (``{kind: {(a, b): P_ab}}``, dense arrays or scipy.sparse) and the
        per-image predictions. A matrix that is mostly zeros (count and hard matrices of many
        classes) is stored in CSR form (:func:`pack_matrix`); :meth:`matrices` reads both forms."""
        packed: dict[str, np.ndarray] = {}
        for kind, pairs in matrices.items():
            for ab, m in pairs.items():
                packed.update(pack_matrix(f"{kind}/{pair_key(*ab)}", m))
        write_npz(self.path / F.MATRICES, packed)
        arrays = {f"true/{a}": v for a, v in true.items()}
        arrays.update({f"item/{a}": v for a, v in item.items()})
        arrays.update({f"pred/{pair_key(*ab)}": v for ab, v in pred.items()})
        arrays.update({f"conf/{pair_key(*ab)}": v for ab, v in conf.items()})
        write_npz(self.path / F.PREDICTIONS, arrays)

    # ------------------------------------------------------------------ selection and taxonomy

    def methods(self) -> list[str]:
        """Method keys (folders under taxonomy/) that have a taxonomy in this run."""
        base = self.path / "taxonomy"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (self.path / F.taxonomy(p.name, "taxonomy.json")).exists())

    def methods_with_model(self) -> list[str]:
        """Method keys whose universal model was trained."""
        return [m for m in self.methods() if self.universal_model_path(m).exists()]

    def relationships(self, key: str) -> Pairs:
        """The selected relationships ``{(a, b): W_ab (K_a, K_b)}`` of method ``key``."""
        return _npz_pairs(self.path / F.taxonomy(key, "relationships.npz"), "")

    def selection(self, key: str) -> dict | None:
        """``{"method", "params", "matrix", "n_edges", "scores"}`` of method ``key``."""
        return read_json(self.path / F.taxonomy(key, "selection.json"))

    def write_selection(self, key: str, relationships: Pairs, info: dict) -> None:
        """W_ab per pair (dense or scipy.sparse; mostly-zero ones stored in CSR form) and the setting's info."""
        packed: dict[str, np.ndarray] = {}
        for ab, w in relationships.items():
            packed.update(pack_matrix(pair_key(*ab), w))
        write_npz(self.path / F.taxonomy(key, "relationships.npz"), packed)
        write_json(self.path / F.taxonomy(key, "selection.json"), info)

    def taxonomy(self, key: str):
        """The UniversalTaxonomy built with method ``key``, or None."""
        path = self.path / F.taxonomy(key, "taxonomy.json")
        if not path.exists():
            return None
        from core.taxonomy import UniversalTaxonomy

        try:
            return UniversalTaxonomy.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{path} is unreadable ({exc})") from None

    def write_taxonomy(self, key: str, tax) -> None:
        """The taxonomy as JSON, GraphML, a CSV mapping table and a ``label_map`` JSON."""
        write_text(self.path / F.taxonomy(key, "taxonomy.json"), tax.to_json())
        with atomic_path(self.path / F.taxonomy(key, "taxonomy.graphml")) as tmp:
            tax.to_graphml(tmp)
        from core.mapping_io import defuse  # formula cells (class names are user data) opened as text

        write_text(self.path / F.taxonomy(key, "mappings.csv"), defuse(tax.mapping_table()).to_csv(index=False))
        write_json(self.path / F.taxonomy(key, "label_map.json"), tax.label_map())

    # ------------------------------------------------------------------ accuracy sweep

    def sweep_table(self):
        """The sweep's rows so far as a DataFrame (one per selection setting), or None."""
        path = self.path / F.SWEEP_CSV
        if not path.exists():
            return None
        import pandas as pd

        try:
            table = pd.read_csv(path)
        except (ValueError, OSError) as exc:
            raise CorruptFileError(f"{path} is unreadable ({exc})") from None
        missing = {"method", "value", "n_universal", "val_acc_mean"} - set(table.columns)
        if missing:
            raise CorruptFileError(f"{path} is not a sweep table: no column(s) {sorted(missing)}")
        return table

    def write_sweep_table(self, table) -> None:
        write_text(self.path / F.SWEEP_CSV, table.to_csv(index=False))

    def sweep_meta(self) -> dict:
        """What the sweep's rows were trained with (config hashes); {} when none."""
        try:
            meta = read_json_strict(self.path / F.SWEEP_META)
        except FileNotFoundError:
            return {}
        if not isinstance(meta, dict):
            raise CorruptFileError(f"{self.path / F.SWEEP_META} is corrupt: not a mapping")
        return meta

    def write_sweep_meta(self, meta: dict) -> None:
        write_json(self.path / F.SWEEP_META, meta)

    def sweep_status(self) -> dict | None:
        """``{"state", "done", "total", "eta_s", "message", "pid", "pid_identity", "error"}`` of
        the last sweep (a running one whose process is gone reads as failed), or None."""
        return self._job_status(F.SWEEP_STATUS)

    def write_sweep_status(self, **fields: Any) -> dict:
        return self._write_job_status(F.SWEEP_STATUS, fields)

    def _job_status(self, name: str) -> dict | None:
        """The status file ``name`` of a job beside the pipeline (the sweep, the curated model),
        read as its state is in effect (a running job whose process is gone reads as failed);
        None when missing, unreadable or without a known state."""
        status = read_json(self.path / name)
        if not isinstance(status, dict) or status.get("state") not in STATES:
            return None
        return effective_status(self.path, status, self.environment().get("hostname"))

    def _write_job_status(self, name: str, fields: dict[str, Any]) -> dict:
        """Merge ``fields`` into the job's status file ``name`` (an unreadable one starts empty)."""
        status = read_json(self.path / name, default={})
        status = {**(status if isinstance(status, dict) else {}), **fields}
        write_json(self.path / name, status)
        return status

    def set_sweep_aside(self) -> Path | None:
        """Move the sweep table to ``sweep/sweep.previous.csv`` (replacing an older one) before a
        new table starts; return where it went (None when there was none)."""
        path = self.path / F.SWEEP_CSV
        if not path.exists():
            return None
        aside = self.path / F.SWEEP_PREVIOUS
        os.replace(path, aside)
        return aside

    def sweep_log_path(self) -> Path:
        return self.path / F.SWEEP_LOG

    # ------------------------------------------------------------------ curated model (core.curated)

    def curated_status(self) -> dict | None:
        """``{"state", "progress", "eta_s", "message", "error", "pid", "pid_identity", "base", ...}``
        of the last curated-model job (a running one whose process is gone reads as failed), or None."""
        return self._job_status(F.CURATED_STATUS)

    def write_curated_status(self, **fields: Any) -> dict:
        return self._write_job_status(F.CURATED_STATUS, fields)

    def curated_log_path(self) -> Path:
        return self.path / F.CURATED_LOG

    def curated_log(self, line: str) -> None:
        """Append one time-stamped line to the curated job's log (best effort, like :meth:`log`)."""
        from datetime import datetime

        try:
            (self.path / F.CURATED_LOG).parent.mkdir(exist_ok=True)
            with open(self.path / F.CURATED_LOG, "a", encoding="utf-8") as fh:
                fh.write(f"[{datetime.now().strftime('%H:%M:%S')}] {line.rstrip()}\n")
        except OSError:
            pass

    def has_curated_model(self) -> bool:
        """True when the curated taxonomy and its trained universal model (model, metrics) are written."""
        from core.runs.layout import CURATED

        files = (F.taxonomy(CURATED, "taxonomy.json"), F.universal(CURATED, "model.pt"),
                 F.universal(CURATED, "metrics.json"))  # fmt: skip
        return all((self.path / rel).is_file() for rel in files)


CSR = "@csr"  # "<kind>/<a-b>@csr/<part>": the CSR parts of a mostly-zero matrix (pack_matrix)
_CSR_PARTS = ("data", "indices", "indptr", "shape")
_MAX_DENSE = 1 << 31  # entries of a matrix read back dense (16 GB as float64): a larger shape is damage


def pack_matrix(key: str, m: Any) -> dict[str, np.ndarray]:
    """``{key: m}`` for a dense matrix, or its CSR parts ``{key@csr/data|indices|indptr|shape}``
    when ``m`` is scipy.sparse or a 2-D array with under a third of its entries non-zero (the CSR
    form then takes less room: 12 bytes per non-zero against 8 per entry)."""
    import scipy.sparse as sp

    from core.crossdomain import compact

    csr = compact(m)
    if not sp.issparse(csr):
        return {key: csr}
    csr.sum_duplicates()
    return {
        f"{key}{CSR}/data": csr.data,
        f"{key}{CSR}/indices": csr.indices.astype(np.int32, copy=False),
        f"{key}{CSR}/indptr": csr.indptr.astype(np.int64, copy=False),
        f"{key}{CSR}/shape": np.asarray(csr.shape, dtype=np.int64),
    }


def _unpack_matrix(parts: dict[str, np.ndarray], where: str) -> np.ndarray:
    """The dense (K_a, K_b) array of :func:`pack_matrix`'s CSR parts; CorruptFileError if they do not fit."""
    import scipy.sparse as sp

    try:
        shape = tuple(int(v) for v in parts["shape"])
        if len(shape) != 2 or min(shape) < 0 or shape[0] * shape[1] > _MAX_DENSE:
            raise ValueError(f"shape {shape}")
        m = sp.csr_array((parts["data"], parts["indices"], parts["indptr"]), shape=shape)
        m.check_format(full_check=True)
        return m.toarray()
    except (KeyError, ValueError, TypeError, IndexError, OverflowError, MemoryError) as exc:
        raise CorruptFileError(f"{where}: a damaged sparse matrix ({exc})") from None


def _prefix_of(key: str) -> str:
    """ "count" of "count/0-1" and of "count/0-1@csr/data"; "" of "0-1" and "0-1@csr/data"."""
    head = key.rpartition("/")[0]
    if head.endswith(CSR):
        head = head[: -len(CSR)].rpartition("/")[0]
    return head


def _npz_pairs(path: Path, prefix: str) -> Pairs:
    """Arrays keyed ``"<prefix>/a-b"`` (or plain ``"a-b"`` when prefix is "") as ``{(a, b): array}``;
    matrices stored in CSR form (:func:`pack_matrix`) come back dense. Only that prefix is read."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = {k: npz[k] for k in npz.files if _prefix_of(k) == prefix}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CorruptFileError(f"{path} is unreadable ({exc or type(exc).__name__})") from None
    out, sparse = {}, {}
    for key, arr in found.items():
        head, _, last = key.rpartition("/")
        if head.endswith(CSR):
            head, part = head[: -len(CSR)], last
            if part in _CSR_PARTS:
                sparse.setdefault(head, {})[part] = arr
            continue
        if head == prefix:
            out[last] = arr
    for head, parts in sparse.items():
        out[head.rpartition("/")[2]] = _unpack_matrix(parts, f"{path} {head}")
    try:
        pairs = {parse_pair_key(pair): arr for pair, arr in out.items()}
    except ValueError as exc:
        raise CorruptFileError(f"{path}: {exc}") from None
    return dict(sorted(pairs.items()))


def _npz_items(path: Path, prefix: str) -> dict[int, np.ndarray]:
    """Arrays keyed ``"<prefix>/a"`` as ``{a: array}``."""
    if not path.exists():
        return {}
    return {int(k.split("/")[1]): v for k, v in read_npz(path).items() if k.startswith(prefix + "/")}
