"""Job widgets: a polling status panel (progress per step, ETA, log tail, cancel / resume), the
launch helper, and the two pieces the sweep's and the curated model's panels share
(:func:`rerun_when_done`, :func:`cancel_button`). The job itself is a detached
``python -m core run`` process (core.jobs), so it survives page reloads and browser restarts;
the panel only reads status.json every second."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.jobs import cancel_job, is_alive, start_job
from core.runs import STATE_ICONS, STEPS, LockedError, open_run
from ui.common import locked_text, select_run, show_error

__all__ = [
    "ACTIVE",
    "overall_progress",
    "launch",
    "job_panel",
    "status_text",
    "step_chain",
    "format_eta",
    "rerun_when_done",
    "cancel_button",
]

ACTIVE = ("running", "pending")  # states of a run whose process works (or is about to)


def overall_progress(status: dict) -> float:
    """Fraction 0..1 of the whole pipeline: finished steps plus the current step's progress."""
    done = len([s for s in status.get("steps_done") or [] if s in STEPS])
    if status.get("state") == "done":
        return 1.0
    part = float(status.get("progress") or 0.0) if status.get("step") not in (status.get("steps_done") or []) else 0.0
    return min(1.0, (done + min(max(part, 0.0), 1.0)) / len(STEPS))


def format_eta(eta_s: float | None) -> str:
    """'1 min 05 s' style text for an ETA in seconds ('—' when unknown)."""
    if eta_s is None or eta_s < 0:
        return "—"
    m, s = divmod(int(round(eta_s)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def launch(config, *, run_id: str | None = None, from_step: str | None = None) -> str | None:
    """Start a background run and make it the current run; errors are shown, None returned."""
    try:
        new_id = start_job(config, run_id=run_id, from_step=from_step)
    except LockedError as exc:  # a resume of a run another process works on: one line
        st.error(locked_text(run_id or "", exc), icon="🔒")
        return None
    except Exception as exc:  # noqa: BLE001 - shown to the user, with what to do
        show_error(exc, "Launching the run", "Fix the config (🗂️ Domains checks it) and launch again.")
        return None
    select_run(new_id)
    return new_id


def job_panel(run_id: str, *, every: float = 1.0, live_curves: bool = False) -> None:
    """Live status of one run, refreshed every ``every`` seconds while it runs, then its Cancel or
    Resume button. With ``live_curves``, the epochs reported in the status are collected and
    drawn as they come."""

    @st.fragment(run_every=every)
    def _panel() -> None:
        _status_view(run_id, live_curves)

    _panel()
    _buttons(run_id)


def status_text(status: dict, alive: bool) -> str:
    """The progress bar's text: state, step i/n, the step's ETA (while ``alive``), the message;
    a finished run says "all n steps done"."""
    state, done = status["state"], status.get("steps_done") or []
    if state == "done" and set(STEPS) <= set(done):
        return f"{STATE_ICONS['done']} **done** · all {len(STEPS)} steps done"
    eta = f" · ETA of this step {format_eta(status.get('eta_s'))}" if alive else ""
    return (
        f"{STATE_ICONS.get(state, '•')} **{state}** · step {min(len(done) + 1, len(STEPS))}/{len(STEPS)}: "
        f"{status.get('step') or '—'}{eta} · {status.get('message') or ''}"
    )


def step_chain(status: dict) -> str:
    """The pipeline's steps in order, marked done (✅), current (▶️) or still to do (◻️)."""
    done, step = status.get("steps_done") or [], status.get("step") or "—"
    return " → ".join(f"✅ {s}" if s in done else (f"▶️ **{s}**" if s == step else f"◻️ {s}") for s in STEPS)


def _status_view(run_id: str, live_curves: bool) -> None:
    """One poll of the run: progress bar, steps, live curves, error and log."""
    alive = is_alive(run_id)
    run = open_run(run_id)
    status = run.status()
    st.progress(overall_progress(status), text=status_text(status, alive))
    st.caption(step_chain(status))
    if live_curves and alive:
        _live_curve(run_id)
    if status.get("error"):
        st.error(
            f"The run stopped: {status['error']}\n\n👉 Read the log below, fix the config, then resume.", icon="🚨"
        )
    with st.expander("📜 Log (last 40 lines)", expanded=alive):
        st.code(run.log_tail(40) or "(empty)", language=None)
    _rerun_when_finished(run_id, status["state"])


def _rerun_when_finished(run_id: str, state: str) -> None:
    """Rerun the whole page when an active run changes state: from pending to running, so the
    sidebar's run picker (outside this fragment) shows its current icon, and once it leaves
    running/pending, so its results are drawn."""
    prev = st.session_state.get(f"_job_state_{run_id}")
    st.session_state[f"_job_state_{run_id}"] = state
    if prev in ACTIVE and state != prev:
        st.rerun(scope="app")


def rerun_when_done(key: str, state: str) -> None:
    """Rerun the whole page once a background job (a sweep, the curated model) leaves
    running/pending, so its results are drawn; ``key`` names the session-state slot that keeps
    the job's last state."""
    prev = st.session_state.get(key)
    st.session_state[key] = state
    if prev in ACTIVE and state not in ACTIVE:
        st.rerun(scope="app")


def cancel_button(label: str, *, key: str, help: str, cancel: Callable[[], object], doing: str) -> None:
    """A button that stops a background job with ``cancel()``, then reruns the page; an error is
    shown as ``doing`` failing (the process may already be gone)."""
    if st.button(label, key=key, help=help):
        try:
            cancel()
        except Exception as exc:  # noqa: BLE001 - shown to the user, with what to do
            show_error(exc, doing, "The process may already be gone; reload the page.")
            return
        st.rerun()


def _buttons(run_id: str) -> None:
    """Cancel for a running run, Resume for a failed or cancelled one."""
    status = open_run(run_id).status()
    c1 = st.columns([1, 1, 3])[0]
    if status["state"] in ACTIVE:
        if c1.button("⏹️ Cancel", key=f"cancel_{run_id}"):
            try:
                cancel_job(run_id)
            except Exception as exc:  # noqa: BLE001
                show_error(exc, "Cancelling", "The process may already be gone; reload the page.")
            st.rerun()
    elif status["state"] in ("failed", "cancelled"):
        if c1.button("▶️ Resume", key=f"resume_{run_id}", help="Continue from the first unfinished step"):
            nxt = next((s for s in STEPS if s not in (status.get("steps_done") or [])), None)
            if launch(open_run(run_id).config_file(), run_id=run_id, from_step=nxt):
                st.rerun()


def _live_curve(run_id: str) -> None:
    """The curves of the model being trained, from the run's live_history.json (one row per
    finished epoch, written by the pipeline)."""
    live = open_run(run_id).live_history()
    if live and live.get("epochs"):
        rows = live["epochs"]
        st.caption(f"📈 live: {live['label']} (epoch {rows[-1]['epoch']})")
        st.line_chart({k: [r[k] for r in rows] for k in ("train_loss", "train_acc", "val_acc")}, height=200)
