"""The 🎯 Accuracy sweep tab of 🔗 Relationships: which selection setting trains the best
universal model, judged on the validation split, with or without a ground truth.

The sweep is a background job (``python -m core sweep RUN``, started by core.jobs.start_sweep);
this tab launches it, follows it (progress, ETA, the chart filling in), cancels and resumes it,
and draws its table: validation accuracy against each method's parameter, the best setting per
method (a button moves the slider there), and on synthetic runs how well F1 and EDR predicted
the accuracy."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from core import jobs
from core.importer import IMPORTED
from core.runs import STATE_ICONS, Run
from ui import data
from ui.common import matrix_kind, run_config, show_error
from ui.jobs import ACTIVE, cancel_button, format_eta, rerun_when_done
from ui.setting import Setting, apply_setting
from ui.urlstate import coerce

__all__ = [
    "ACTIVE",
    "EXPLANATION",
    "default_epochs",
    "blocker",
    "accuracy_at",
    "best_view",
    "correlation_text",
    "sweep_tab",
]

GRID_HELP = "coarse: parameter steps of 0.05; fine: steps of 0.01 (k_max: every integer in both)."
EXPLANATION = (
    "**What a sweep does.** For every setting of every selection method (each value of the "
    "parameter grid), the relationships are selected, the universal taxonomy is built, and a "
    "universal head is trained on the run's **cached training features** and scored on the "
    "**validation split**; the test split is never used to choose a setting. Settings that build "
    "an identical taxonomy are trained once. It runs in the background (`python -m core sweep RUN`): "
    "the chart fills in as rows arrive, and a cancelled sweep resumes keeping its finished rows."
)
TODO = (
    "A sweep needs the run's finished crossdomain step and its cached features; if another job "
    "works in the run, wait until it ends (🧪 Cross-domain)."
)


def default_epochs(run_cfg: dict) -> int:
    """The epochs of the run's universal recipe (its own, else the baselines'), checked."""
    train = (run_cfg.get("universal") or {}).get("train") or (run_cfg.get("baselines") or {}).get("train") or {}
    return coerce(train.get("epochs"), 30, lo=1, hi=10_000)


def blocker(domains: list[dict], run_cfg: dict | None = None) -> str | None:
    """Why a sweep (or a curated model) cannot run on a run with these domains (domains.json) and
    config, or None. Both train heads on the training split's cached frozen features and score on
    the validation split."""
    if ((run_cfg or {}).get("features") or {}).get("mode") == "finetune":
        return (
            "This run **fine-tunes** its models (`features.mode: finetune`): the sweep and the curated model train "
            "heads on cached frozen features, which such a run does not have."
        )
    if any(d.get("source") == IMPORTED for d in domains):
        return (
            "This run was imported from prediction files (`python -m core import`): it has **no images**, so no "
            "universal head can be trained on it (the sweep and the curated model train on cached image features)."
        )
    n_train = sum(int(d.get("n_train") or 0) for d in domains)
    n_val = sum(int(d.get("n_val") or 0) for d in domains)
    if n_train and n_val:
        return None
    return (
        f"A sweep needs the run's **cached features**: it trains on the training split and scores on the "
        f"validation split, and this run lists {n_train} training and {n_val} validation images (an "
        "image-free run, such as one drawn from the noise model). Sweep a run the pipeline made from images."
    )


def _value(v: object) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _same(setting: Setting, method: str, value: object) -> bool:
    v = _value(value)
    if setting.method != method:
        return False
    return v is None or (setting.value is not None and math.isclose(float(setting.value), v, abs_tol=1e-9))


def _label(method: str, param: object, value: object) -> str:
    v = _value(value)
    return method if v is None else f"{method} {param}={v:g}"


def accuracy_at(table: pd.DataFrame | None, setting: Setting) -> float | None:
    """The sweep's mean validation accuracy at ``setting`` (None: no such row yet)."""
    if table is None or table.empty:
        return None
    for m, v, acc in zip(table["method"], table["value"], table["val_acc_mean"]):
        if _same(setting, m, v) and not pd.isna(acc):
            return float(acc)
    return None


def with_decisions(run_dir: str, table: pd.DataFrame) -> pd.DataFrame | None:
    """``table`` (settings: method, value) with its precision and recall against the decisions of
    ✍️ Curation (core.curation.with_decision_scores), or None when no decision is in force."""
    from core.curation import with_decision_scores
    from ui.curation_data import curation_stamp, curation_state

    cstamp = curation_stamp(run_dir)
    state = curation_state(run_dir, cstamp) if cstamp else None
    if state is None or not state.applied:
        return None
    kind = matrix_kind(Run(run_dir))
    return with_decision_scores(table, data.load_matrices(run_dir, kind, data.matrices_stamp(run_dir)), state)


def best_view(best: pd.DataFrame, truth: bool) -> pd.DataFrame:
    """core.sweep.best_by_accuracy as a readable table (F1 and EDR only with a ground truth)."""
    domains = [c for c in best.columns if c.startswith("val_acc_") and c != "val_acc_mean"]
    out = pd.DataFrame(
        {
            "method": best["method"],
            "setting": [
                "—" if _value(v) is None else f"{p} = {_value(v):g}" for p, v in zip(best["param"], best["value"])
            ],
            "val. accuracy (mean)": best["val_acc_mean"].round(4),
            **{f"val. {c[len('val_acc_') :]}": best[c].round(4) for c in domains},
            "universal classes": best["n_universal"],
            "edges": best["n_edges"],
        }
    )
    if truth:
        out["F1"] = best["f1"].round(3)
        out["EDR"] = best["edr"].round(3)
    return out


def _verdict(rho: float, p: float, name: str, better: str) -> str:
    if p >= 0.05:
        return f"on this run {name} does not predict which setting trains the best universal model"
    if rho >= 0.5:
        return f"on this run {better} goes with a better universal model"
    if rho > 0:
        return f"on this run {better} goes only weakly with a better universal model"
    return f"on this run {better} goes with a *worse* universal model"


def correlation_text(corr: dict) -> str:
    """core.sweep.sweep_correlations in words, stating the number of settings and the p-values."""
    n = int(corr.get("n") or 0)
    lines = []
    for key, name, better in (("f1", "F1", "a higher F1"), ("neg_edr", "−EDR", "a lower EDR")):
        rho, p = corr.get(key, float("nan")), corr.get(f"{key}_p", float("nan"))
        if not (isinstance(rho, float) and math.isfinite(rho) and math.isfinite(p)):
            lines.append(f"{name}: no rank correlation (fewer than 3 settings, or all values equal).")
        else:
            verdict = _verdict(rho, p, name, better)
            lines.append(f"{name} and validation accuracy rank-correlate at ρ = {rho:+.2f} (p = {p:.2g}): {verdict}.")
    return (
        f"Across **{n}** distinct taxonomies (settings sharing one count once) with a ground-truth score "
        "and a validation accuracy: " + " ".join(lines)
    )


def _launch(run: Run, methods: list[str] | None, grid: str, epochs: int, fresh: bool = False) -> None:
    """Start (or resume) the sweep; an error is shown as one st.error, success reruns the page."""
    try:
        jobs.start_sweep(run.id, root=str(run.path.parent), methods=methods, grid=grid, epochs=epochs, fresh=fresh)
    except Exception as exc:  # noqa: BLE001 - shown to the user, with what to do
        show_error(exc, "Starting the sweep", TODO)
        return
    st.session_state[f"_sweep_args_{run.id}"] = {"methods": methods, "grid": grid, "epochs": epochs}
    st.rerun()


def _form(run: Run, blocked: str | None) -> None:
    """Methods, grid and epochs of a new sweep, and its Run button."""
    from core.sweep import GRIDS, sweep_settings

    methods = data.method_names()
    sizes = ", ".join(f"{g}: {len(sweep_settings(None, g))} settings" for g in GRIDS)
    with st.form("sw_form", border=True):
        c1, c2, c3 = st.columns([3, 1.3, 1])
        chosen = c1.multiselect("Methods", methods, default=methods, key="sw_methods")
        grid = c2.radio("Grid", GRIDS, horizontal=True, key="sw_grid", help=f"{GRID_HELP} All methods: {sizes}.")
        epochs = c3.number_input(
            "Epochs",
            1,
            10_000,
            value=default_epochs(run_config(run)),
            step=1,
            key="sw_epochs",
            help="Epochs of each universal head (default: the run's universal recipe). Other epochs than a "
            "previous sweep's need a new table.",
        )
        fresh = st.checkbox(
            "Start a new table",
            key="sw_fresh",
            help="Needed when the recipe (epochs) differs from the current table's; the current table is kept "
            "as sweep/sweep.previous.csv. Unticked, finished settings are kept and only new ones are trained.",
        )
        go = st.form_submit_button("▶️ Run sweep", type="primary", disabled=blocked is not None, key="sw_run")
    if go:
        if not chosen:
            st.warning("Pick at least one method.", icon="⚠️")
            return
        _launch(run, None if len(chosen) == len(methods) else list(chosen), grid, int(epochs), fresh)


def _resume_args(run: Run, table: pd.DataFrame | None) -> dict:
    """The last launch's arguments (this session), else: every method, the grid the table's
    values lie on, the epochs the finished rows were trained with."""
    args = st.session_state.get(f"_sweep_args_{run.id}")
    if isinstance(args, dict):
        return args
    fine = False
    if table is not None and not table.empty:
        vals = table.loc[table["param"].isin(["t", "p"]), "value"].dropna().astype(float)
        fine = bool(((vals * 20 - (vals * 20).round()).abs() > 1e-6).any())
    epochs = run.sweep_meta().get("epochs")
    epochs = coerce(epochs, default_epochs(run_config(run)), lo=1, hi=10_000)
    return {"methods": None, "grid": "fine" if fine else "coarse", "epochs": epochs}


def _log_tail(run: Run, n: int = 40) -> str:
    try:
        return "\n".join(run.sweep_log_path().read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _chart(run: Run, setting: Setting, stamp: float, key: str) -> None:
    fig = data.accuracy_figure(str(run.path), stamp, setting.method, setting.value)
    st.plotly_chart(fig, key=key)


def _live(run: Run, setting: Setting, every: float) -> None:
    """Progress of a running sweep with the ETA of the whole sweep, the chart filling in, and the
    Cancel button; the page reruns once the sweep ends."""
    rd = str(run.path)

    @st.fragment(run_every=every)
    def _panel() -> None:
        status = run.sweep_status() or {}
        state = status.get("state") or "pending"
        done, total = int(status.get("done") or 0), status.get("total")
        eta = format_eta(status.get("eta_s")) if total else "—"
        st.progress(
            min(1.0, done / total) if total else 0.0,
            text=f"{STATE_ICONS.get(state, '•')} **sweep {state}** · {done}/{total or '?'} distinct taxonomies "
            f"trained · ETA of the whole sweep {eta} · {status.get('message') or ''}",
        )
        stamp = data.sweep_stamp(rd)
        table = data.accuracy_sweep(rd, stamp)
        if table is None or table.empty:
            st.caption("The chart fills in as the first heads finish.")
        else:
            _chart(run, setting, stamp, "sw_chart_live")
            st.caption(f"{len(table)} settings so far.")
        rerun_when_done(f"_sweep_state_{run.id}", state)

    _panel()
    cancel_button(
        "⏹️ Cancel the sweep",
        key="sw_cancel",
        help="Stop it; finished rows are kept",
        cancel=lambda: jobs.cancel_sweep(run.id, root=str(run.path.parent)),
        doing="Cancelling the sweep",
    )


def _stopped(run: Run, status: dict, table: pd.DataFrame | None, blocked: str | None) -> None:
    """A failed or cancelled sweep: what happened, Resume, the log."""
    if status["state"] == "failed":
        st.error(f"The sweep stopped: {status.get('error') or 'unknown error'}\n\n👉 {TODO}", icon="🚨")
    else:
        st.warning("The sweep was cancelled; its finished rows are kept.", icon="⏹️")
    rows = 0 if table is None else len(table)
    if st.button(
        "▶️ Resume",
        key="sw_resume",
        disabled=blocked is not None,
        help=f"Start the sweep again: the {rows} finished rows are kept",
    ):
        _launch(run, **_resume_args(run, table))
    with st.expander("📜 Sweep log (last 40 lines)"):
        st.code(_log_tail(run) or "(empty)", language=None)


def _results(run: Run, setting: Setting, stamp: float, table: pd.DataFrame) -> None:
    """Chart, best setting per method (with buttons), correlations, download."""
    rd = str(run.path)
    truth = "f1" in table.columns and table["f1"].notna().any()
    _chart(run, setting, stamp, "sw_chart")
    acc = accuracy_at(table, setting)
    st.caption(
        f"Now: {setting.describe()} → "
        + (f"validation accuracy {acc:.3f}." if acc is not None else "not in the sweep (its grid has no such row).")
    )
    summary = data.accuracy_summary(rd, stamp)
    if summary is None:
        return
    best, corr = summary
    st.markdown("**Best by validation accuracy** (per method)")
    view = best_view(best, truth)
    decided = with_decisions(rd, best)
    if decided is not None:  # the decisions of ✍️ Curation score every setting too
        view["prec. (decisions)"] = decided["decisions_precision"].round(3)
        view["recall (decisions)"] = decided["decisions_recall"].round(3)
        table = with_decisions(rd, table)
    st.dataframe(view, hide_index=True, width="stretch")
    cols = st.columns(max(1, len(best)))
    for col, (m, p, v) in zip(cols, zip(best["method"], best["param"], best["value"])):
        col.button(
            f"Use {_label(m, p, v)}",
            key=f"sw_use_{m}",
            on_click=apply_setting,
            args=(m, _value(v)),
            disabled=_same(setting, m, v),
            help="Set the slider (and the URL) to this setting",
        )
    if truth:
        st.markdown(correlation_text(corr))
        top_f1 = table.loc[table["f1"].idxmax()]
        top_acc = table.loc[table["val_acc_mean"].idxmax()]
        st.caption(
            f"Choosing by F1 picks {_label(top_f1['method'], top_f1['param'], top_f1['value'])} (validation "
            f"accuracy {top_f1['val_acc_mean']:.3f}); the best validation accuracy is {top_acc['val_acc_mean']:.3f} "
            f"({_label(top_acc['method'], top_acc['param'], top_acc['value'])}). Settings sharing a taxonomy tie."
        )
    else:
        st.caption("No ground truth on this run: validation accuracy is the score that chooses a setting here.")
    st.download_button(
        "⬇️ sweep.csv", table.to_csv(index=False), file_name=f"{run.id}-sweep.csv", mime="text/csv", key="sw_csv"
    )


def sweep_tab(run: Run, setting: Setting, *, every: float = 1.0) -> None:
    """The whole tab: the form when the run has no sweep, the live panel while one runs, the
    results (and Resume after a cancel or a failure) once it has rows."""
    rd = str(run.path)
    status = run.sweep_status() or {}
    stamp = data.sweep_stamp(rd)
    table = data.accuracy_sweep(rd, stamp)
    has_rows = table is not None and not table.empty
    if status.get("state") in ACTIVE:
        _live(run, setting, every)
        return
    blocked = blocker(run.domains(), run_config(run))
    if status.get("state") in ("failed", "cancelled"):
        _stopped(run, status, table, blocked)
    if not has_rows:
        st.markdown(EXPLANATION)
        if blocked:
            st.warning(blocked, icon="⚠️")
        _form(run, blocked)
        return
    _results(run, setting, stamp, table)
    with st.expander("🔁 Sweep again (other methods, the fine grid, other epochs)"):
        st.markdown(EXPLANATION)
        _form(run, blocked)
