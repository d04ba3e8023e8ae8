"""Deleting a run from 📚 Runs: confirm, delete what the tool wrote, and say what was kept.

core.runs.delete_run never deletes a file the tool did not write: it returns those files and
keeps the folder for them. The page says so after its rerun (the note waits in the session)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.runs import LockedError, NotARunFolderError, delete_run, runs_root
from ui.common import RUN_KEY, guard, locked_text, select_run, show_error, shown

__all__ = ["MAX_KEPT_SHOWN", "kept_warning", "delete_section"]

KEPT_KEY = "_runs_kept"  # session: (run id, [kept file, ...]) of the last delete, shown once
MAX_KEPT_SHOWN = 10
FOREIGN_HINT = "This folder was not made by unitax, so it is left alone; remove it by hand if you mean to."


def kept_warning(run_id: str, kept: list[str]) -> None:
    """Warn that ``run_id``'s folder was kept for the files listed (the first few)."""
    lines = "\n".join(f"- {shown(f, 200)}" for f in kept[:MAX_KEPT_SHOWN])
    more = f"\n- … and {len(kept) - MAX_KEPT_SHOWN} more" if len(kept) > MAX_KEPT_SHOWN else ""
    st.warning(
        f"Deleted what unitax wrote in run `{shown(run_id)}`, but kept its folder for {len(kept)} "
        f"file(s) that unitax did not write:\n{lines}{more}",
        icon="⚠️",
    )


def _relative(path: Path, run_id: str) -> str:
    try:
        return str(path.relative_to(runs_root() / run_id))
    except ValueError:
        return str(path)


def _delete(victim: str) -> None:
    """Delete ``victim``; a lock or a foreign folder is shown as an error, anything else by guard."""
    with guard("Deleting the run", "Cancel it first if it is still running."):
        try:
            kept = delete_run(victim)
        except LockedError as exc:  # one line: who works on it, and to cancel it first
            st.error(locked_text(victim, exc), icon="🔒")
            return
        except NotARunFolderError as exc:
            show_error(exc, "Deleting the run", FOREIGN_HINT)
            return
    if st.session_state.get(RUN_KEY) == victim:
        select_run(None)
    if kept:
        st.session_state[KEPT_KEY] = (victim, [_relative(p, victim) for p in kept])
    else:
        st.toast(f"Deleted {victim}", icon="🗑️")
    st.rerun()


def delete_section(ids: list[str]) -> None:
    """Pick a run, confirm, delete; then the note about kept files, if any."""
    last = st.session_state.pop(KEPT_KEY, None)
    if isinstance(last, tuple) and len(last) == 2:
        kept_warning(*last)
    victim = st.selectbox("Run to delete", ids, index=None, key="runs_victim", placeholder="choose a run")
    sure = st.checkbox("I understand the run's outputs are removed for good", key="runs_sure")
    if st.button("🗑️ Delete", disabled=not (victim and sure), key="runs_delete"):
        _delete(victim)
