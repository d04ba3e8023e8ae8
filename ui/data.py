"""Cached loaders and computations. Every function takes the run folder as a string plus a file
time stamp, so a cache entry is reused on revisits and refreshed when the run writes new files.
All maths happens in ``core``; these functions only call it and keep the result."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from core.runs import F, Run, open_run

__all__ = [
    "ParamSpec",
    "param_spec",
    "method_names",
    "load_matrices",
    "load_truth",
    "truth_problem",
    "select_all",
    "scores",
    "pair_scores",
    "sweep_table",
    "best_table",
    "live_taxonomy",
    "saved_taxonomy",
    "domain_info",
    "image_counts",
    "indicators",
    "edge_evidence",
    "sweep_stamp",
    "accuracy_sweep",
    "accuracy_summary",
    "accuracy_figure",
]


def method_names() -> list[str]:
    """Selection method names, read from ``core.selection.METHODS`` (the single source)."""
    from core.selection import METHODS

    return list(METHODS)


class ParamSpec(NamedTuple):
    """A selection method's parameter as a slider offers it: its name, range, step and default,
    all read from ``core.selection.METHODS``."""

    name: str
    lo: float | int
    hi: float | int
    step: float | int
    default: float | int


def param_spec(method: str) -> ParamSpec | None:
    """The :class:`ParamSpec` of ``method``'s parameter, from ``core.selection.METHODS``; None
    for parameter-free methods."""
    from core.selection import METHODS

    spec = METHODS[method]
    if spec.param is None:
        return None
    low, high, step = spec.bounds
    return ParamSpec(spec.param, low, high, step, spec.default)


def method_label(method: str) -> str:
    """Readable name of a method ("Naive threshold") from core.selection.METHODS."""
    from core.selection import METHODS

    label = getattr(METHODS.get(method), "label", "")
    return f"{label} ({method})" if label else method


def _params(method: str, value: float | None) -> dict:
    spec = param_spec(method)
    if spec is None or value is None:
        return {}
    return {spec.name: type(spec.default)(value)}


@st.cache_data(show_spinner=False, max_entries=16)
def load_matrices(run_dir: str, kind: str, stamp: float) -> dict[tuple[int, int], np.ndarray]:
    """``{(a, b): P_ab (K_a, K_b)}`` of the run (kind hard|soft|count)."""
    return open_run(run_dir).matrices(kind)


@st.cache_data(show_spinner=False, max_entries=16)
def load_truth(run_dir: str, stamp: float) -> dict | None:
    """The run's ground truth (core.runs.Run.true_relationships: an imported truth.csv, else a
    synthetic world's): {"true": {(a,b): Edges of W_ab}, "class_counts": [...]}, or None. Kept
    sparse: every slider move scores against it."""
    from core.fsio import CorruptFileError

    run = open_run(run_dir)
    try:
        true = run.true_relationships()
    except CorruptFileError:  # an imported truth that no longer fits the classes: see truth_problem
        return None
    if true is None:
        return None
    from core.selection import Edges

    return {"true": {pair: Edges.from_dense(w) for pair, w in true.items()}, "class_counts": run.class_counts()}


def truth_problem(run_dir: str) -> str | None:
    """Why the run's imported ground truth (truth.csv) cannot be used, in one line; None when it
    can or there is none. The pages then score without it and say so."""
    from core.fsio import CorruptFileError

    try:
        open_run(run_dir).truth_pairs()
    except CorruptFileError as exc:
        return f"{exc}. Scores against it are off until it is imported again (✍️ Curation › Export / import)."
    return None


def domain_info(run_dir: str) -> tuple[list[str], list[list[str]]]:
    """(domain names, class names per domain) from domains.json (cheap, uncached)."""
    doms = open_run(run_dir).domains()
    return [d["name"] for d in doms], [list(d["class_names"]) for d in doms]


@st.cache_resource(show_spinner=False, max_entries=256)
def select_all(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> dict:
    """``{(a, b): Edges}`` (sparse W_ab) for every pair of the run's matrices with one setting."""
    from core.selection import select_edges

    ranked = _ranked(run_dir, kind, stamp)
    params = _params(method, value)
    return {pair: select_edges(r, method, **params) for pair, r in ranked.items()}


@st.cache_resource(show_spinner=False, max_entries=8)
def _ranked(run_dir: str, kind: str, stamp: float) -> dict:
    """core.selection.rank_rows of every matrix: the parameter-independent work, done once."""
    from core.selection import rank_rows

    return {pair: rank_rows(P) for pair, P in load_matrices(run_dir, kind, stamp).items()}


@st.cache_data(show_spinner=False, max_entries=256)
def scores(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> dict | None:
    """EDR / precision / recall / F1 of one setting against the ground truth (None: no truth)."""
    from core.metrics import relationship_scores

    truth = load_truth(run_dir, stamp)
    if truth is None:
        return None
    return relationship_scores(select_all(run_dir, kind, method, value, stamp), truth["true"], truth["class_counts"])


@st.cache_data(show_spinner=False, max_entries=64)
def pair_scores(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> pd.DataFrame | None:
    """Per-pair breakdown (one row per (a, b)) of one setting, or None without ground truth."""
    from core.metrics import per_pair_scores

    truth = load_truth(run_dir, stamp)
    if truth is None:
        return None
    pred = select_all(run_dir, kind, method, value, stamp)
    return per_pair_scores(pred, truth["true"], truth["class_counts"], domain_names=domain_info(run_dir)[0])


@st.cache_data(show_spinner=False, max_entries=8)
def sweep_table(run_dir: str, kind: str, stamp: float) -> pd.DataFrame | None:
    """Scores of every method over its parameter grid (core.metrics.sweep), or None."""
    from core.metrics import sweep

    truth = load_truth(run_dir, stamp)
    if truth is None:
        return None
    return sweep(_ranked(run_dir, kind, stamp), truth["true"], truth["class_counts"])  # ranked once


@st.cache_resource(show_spinner=False, max_entries=16)
def sweep_figure(run_dir: str, kind: str, stamp: float, metric: str):
    """The sweep curves of one metric (a plotly Figure, built once: building costs ~0.3 s)."""
    from ui.plots import sweep_curves

    return sweep_curves(sweep_table(run_dir, kind, stamp), metric)


@st.cache_data(show_spinner=False, max_entries=8)
def best_table(run_dir: str, kind: str, stamp: float, by: str = "edr", grid: str = "thesis") -> pd.DataFrame | None:
    """Each method at its best setting on this run (the thesis's per-run table): lowest EDR or
    highest F1 (``by``) on the ``grid`` of ``core.metrics.parameter_grid`` (thesis | fine)."""
    from core.metrics import best_parameters, parameter_grid, sweep

    if grid == "fine":
        df = sweep_table(run_dir, kind, stamp)
    else:
        truth = load_truth(run_dir, stamp)
        df = None if truth is None else sweep(
            _ranked(run_dir, kind, stamp), truth["true"], truth["class_counts"], grid=parameter_grid(grid)
        )  # fmt: skip
    return None if df is None else best_parameters(df, by=by)


@st.cache_resource(show_spinner=False, max_entries=32)
def live_taxonomy(run_dir: str, kind: str, method: str, value: float | None, stamp: float):
    """A UniversalTaxonomy built now from the run's matrices with one method setting."""
    from core.taxonomy import build_universal_taxonomy

    run = open_run(run_dir)
    doms = run.domains()
    pred = select_all(run_dir, kind, method, value, stamp)
    return build_universal_taxonomy(
        pred,
        [len(d["class_names"]) for d in doms],
        class_names=[list(d["class_names"]) for d in doms],
        domain_names=[d["name"] for d in doms],
    )


@st.cache_resource(show_spinner=False, max_entries=32)
def saved_taxonomy(run_dir: str, method: str, stamp: float):
    """The UniversalTaxonomy the pipeline saved under taxonomy/<method>/ (or None)."""
    return open_run(run_dir).taxonomy(method)


def matrices_stamp(run_dir: str) -> float:
    """Cache stamp of the cross-domain outputs (matrices + ground truth, synthetic or imported)."""
    run = Run(run_dir)
    return sum(run.stamp(rel) for rel in (F.MATRICES, F.GROUND_TRUTH, F.DOMAINS, F.TRUTH))


@st.cache_data(show_spinner=False, max_entries=256)
def edge_count(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> int:
    """Number of selected relationships over all pairs for one setting."""
    return int(sum(e.rows.size for e in select_all(run_dir, kind, method, value, stamp).values()))


def stamp_of(run_dir: str, rel: str) -> float:
    """Modification time of one file of the run (0 when missing); ``rel`` from core.runs.F."""
    return Run(run_dir).stamp(rel)


@st.cache_data(show_spinner=False, max_entries=8)
def load_predictions(run_dir: str, stamp: float) -> dict | None:
    """{"true": {a: (N_a,)}, "pred": {(a, b): (N_a,)}} hard cross-predictions, or None."""
    return open_run(run_dir).predictions()


@st.cache_data(show_spinner=False, max_entries=64)
def graph_data(run_dir: str, source: str, stamp: float, flt, _tax, class_names: list, domain_names: list):
    """ui.graph.graph_elements of one taxonomy (named by ``source``; ``_tax`` is not hashed)."""
    from ui.graph import graph_elements

    return graph_elements(_tax.mappings, _tax.names, class_names, domain_names, flt=flt)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_graph_html(nodes: list[dict], edges: list[dict], dark: bool) -> str:
    """ui.graph.graph_html, cached (the HTML embeds ~700 kB of vis-network)."""
    from ui.graph import graph_html

    return graph_html(nodes, edges, dark=dark)


@st.cache_resource(show_spinner=False, max_entries=4)
def run_domains(run_dir: str, stamp: float) -> list:
    """The run's domains rebuilt from its config (deterministic), for image previews."""
    from core.pipeline import run_domains as rebuild

    return rebuild(run_dir)


def test_images(run_dir: str, a: int, indices: tuple[int, ...]) -> list:
    """Test images of domain ``a`` at ``indices``; [] when the run's data cannot be re-opened
    here (real datasets moved away, a run without config) - the caller says so."""
    if not indices:
        return []
    try:
        split = run_domains(run_dir, stamp_of(run_dir, F.CONFIG))[a].splits["test"]
        return [_as_image(split.image(int(i))) for i in indices]
    except Exception:  # noqa: BLE001 - previews are optional; never break the page for them
        return []


def test_label(run_dir: str, a: int, index: int) -> int | None:
    """True class of test image ``index`` of domain ``a`` (None when the data cannot be opened)."""
    try:
        return int(run_domains(run_dir, stamp_of(run_dir, F.CONFIG))[a].labels["test"][index])
    except Exception:  # noqa: BLE001 - optional information
        return None


def _as_image(img):
    """A PIL image or an (H, W[, 3]) array as something st.image draws."""
    if hasattr(img, "convert"):
        return img.convert("RGB")
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255 if arr.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    return arr


# ----------------------------------------------------------------------------- tuning on real data


@st.cache_data(show_spinner=False, max_entries=8)
def image_counts(run_dir: str, stamp: float) -> list[np.ndarray]:
    """Test images per class ``[(K_a,) int64]`` of every domain: the row sums of its count
    matrices (the images of a:i that every foreign model saw)."""
    counts = load_matrices(run_dir, "count", stamp)
    if not counts:
        raise ValueError("the run has no count matrices: rerun its crossdomain step")
    out = {}
    for (a, _b), C in counts.items():
        out.setdefault(a, np.rint(np.asarray(C, dtype=np.float64).sum(axis=1)).astype(np.int64))
    return [out[a] for a in sorted(out)]


@st.cache_data(show_spinner=False, max_entries=256)
def indicators(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> dict:
    """core.evidence.label_free_indicators of one setting, with the live taxonomy's mappings:
    ``{"n_edges", "bidirectional_agreement", "split_share", "n_universal"}``."""
    from core.evidence import label_free_indicators

    tax = live_taxonomy(run_dir, kind, method, value, stamp)
    counts = [len(names) for names in domain_info(run_dir)[1]]
    return label_free_indicators(select_all(run_dir, kind, method, value, stamp), counts, tax.mappings)


@st.cache_data(show_spinner=False, max_entries=32)
def edge_evidence(run_dir: str, kind: str, method: str, value: float | None, stamp: float) -> pd.DataFrame:
    """core.evidence.edge_table of the run's count matrices, the edges of one setting marked
    (``selected``), with class and domain names."""
    from core.evidence import edge_table

    names, class_names = domain_info(run_dir)
    return edge_table(
        load_matrices(run_dir, "count", stamp),
        image_counts(run_dir, stamp),
        selected=select_all(run_dir, kind, method, value, stamp),
        class_names=class_names,
        domain_names=names,
    )


def sweep_stamp(run_dir: str) -> float:
    """Cache stamp of the accuracy sweep's table (it grows while a sweep runs)."""
    return Run(run_dir).stamp(F.SWEEP_CSV)


@st.cache_data(show_spinner=False, max_entries=16)
def accuracy_sweep(run_dir: str, stamp: float) -> pd.DataFrame | None:
    """The accuracy sweep's rows so far (core.sweep; one per selection setting), or None."""
    return open_run(run_dir).sweep_table()


@st.cache_data(show_spinner=False, max_entries=16)
def accuracy_summary(run_dir: str, stamp: float) -> tuple[pd.DataFrame, dict] | None:
    """(core.sweep.best_by_accuracy, core.sweep.sweep_correlations) of the sweep, or None."""
    from core.sweep import best_by_accuracy, sweep_correlations

    table = accuracy_sweep(run_dir, stamp)
    if table is None or table.empty:
        return None
    return best_by_accuracy(table), sweep_correlations(table)


@st.cache_resource(show_spinner=False, max_entries=32)
def accuracy_figure(run_dir: str, stamp: float, method: str, value: float | None):
    """ui.sweepplot.accuracy_curves of the sweep with the current setting marked (built once)."""
    from ui.sweepplot import accuracy_curves

    return accuracy_curves(accuracy_sweep(run_dir, stamp), current=(method, value))
