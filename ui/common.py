"""Shared page plumbing: the current run (sidebar picker + URL), error display, small guards."""

from __future__ import annotations

import contextlib
import os
import re
import traceback
import zlib
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from core.importer import is_imported
from core.runs import (
    STATE_ICONS,
    STEPS,
    F,
    NotARunFolderError,
    Run,
    is_run_dir,
    list_runs,
    open_run,
    run_in_root,
    runs_root,
)
from ui.urlstate import shown

__all__ = [
    "REPO",
    "RUN_KEY",
    "ensure_navigation",
    "runs_list",
    "run_config",
    "matrix_kind",
    "run_folder",
    "shown",
    "check_requested_run",
    "run_picker",
    "select_run",
    "current_run",
    "require_run",
    "no_images_note",
    "show_error",
    "locked_text",
    "guard",
    "stamp",
]

REPO = Path(__file__).resolve().parent.parent
PICKER_GENERATION = "_run_picker_generation"
RUN_KEY = "run_id"  # session_state key of the current run (its URL query parameter is ``run``)
MAX_RUN_ID = 200  # longer "run ids" are refused before touching the file system


def run_folder(run_id: object, root: str | os.PathLike | None = None) -> Path:
    """The folder of the run named ``run_id`` inside the runs root (default :func:`runs_root`);
    ValueError saying why otherwise. For values from the URL or the session: only a plain run id
    (core.runs.validate_run_id) of an existing run folder whose real location (symlinks
    resolved) lies inside the root passes (core.runs.run_in_root); never a path, '..', NUL bytes
    or an overlong string."""
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("it is not a run name")
    if len(run_id) > MAX_RUN_ID:
        raise ValueError(f"the name is longer than {MAX_RUN_ID} characters")
    try:
        path = run_in_root(run_id, root)
    except NotARunFolderError:
        raise ValueError("it leads outside the runs folder") from None
    except (TypeError, ValueError):
        raise ValueError("a run is named by letters, digits, '_', '.', '-' only, not by a path") from None
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise ValueError("there is no such run") from None
    if not (is_run_dir(path) or (path / F.STATUS).is_file() or (path / F.CONFIG).is_file()):
        raise ValueError("there is no such run")
    return path


def _inside(run_id: str) -> bool:
    try:
        run_folder(run_id)
    except ValueError:
        return False
    return True


def _signature(root: Path) -> tuple:
    """Cheap fingerprint of the runs folder: names and modification times of the files that
    list_runs reads (status, config, results, environment)."""
    if not root.is_dir():
        return ()
    sig = []
    for p in sorted(root.iterdir()):
        if p.is_dir():
            sig.append((p.name, *(stamp(p / f) for f in (F.STATUS, F.CONFIG, F.RESULTS_JSON, F.ENVIRONMENT))))
    return tuple(sig)


@st.cache_data(show_spinner=False, max_entries=8)
def _list_runs(root: str, signature: tuple) -> list:
    return list_runs(root)


def runs_list() -> list:
    """core.runs.list_runs, cached until a run folder changes (a rerun costs a few stat calls).
    A running job is still checked live: its pid may have died without touching the files.
    A folder that only links to a place outside the runs root is left out."""
    root = runs_root()
    infos = _list_runs(str(root), _signature(root))
    if any(i.state in ("running", "pending") for i in infos):
        infos = list_runs(root)
    return [i for i in infos if _inside(i.id)]


@st.cache_data(show_spinner=False, max_entries=64)
def _config(path: str, stamp_: float) -> dict:
    return open_run(path).config


def run_config(run: Run) -> dict:
    """The run's resolved config (YAML parsed once per file version)."""
    return _config(str(run.path), run.stamp(F.CONFIG))


def matrix_kind(run: Run) -> str:
    """Which P_ab matrices the run's cross-domain step made its choice from (hard|soft)."""
    return (run_config(run).get("crossdomain") or {}).get("matrix", "hard")


def ensure_navigation() -> None:
    """Call first in every page. Streamlit runs a ``pages/`` script on its own (its legacy
    multipage mode: no sidebar, no page config) when the very first request after a server start
    is a deep link such as a shared ``/relationships?method=...`` URL, because app.py's
    st.navigation has not run yet. Then switch the process to st.navigation and rerun through
    app.py; the URL, query parameters included, is kept."""
    if st.session_state.get("_nav_checked"):  # only a session's first run can be affected (and
        return  # AppTest, which resets the mode on every run)
    st.session_state["_nav_checked"] = True
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _requested() -> object:
    """The run the session, else the URL, names (not checked)."""
    return st.session_state.get(RUN_KEY) or st.query_params.get("run")


def check_requested_run() -> None:
    """Vet the run the session or the URL (``?run=``) names before anything opens it: a value
    that is not one of the runs listed under the runs root is dropped from both, with a warning
    naming it. Call once per rerun, in the main area, before :func:`run_picker`."""
    wanted = _requested()
    if not wanted:
        return
    ids = [i.id for i in runs_list()]
    if isinstance(wanted, str) and wanted in ids:
        return
    try:
        run_folder(wanted)
        why = "there is no such run"
    except ValueError as exc:
        why = str(exc)
    st.session_state.pop(RUN_KEY, None)
    st.query_params.pop("run", None)
    instead = f"showing run `{ids[0]}` instead" if ids else "no run is open"
    st.warning(f"Run ‘{shown(wanted)}’ is not a run in {shown(str(runs_root()), 200)} ({why}); {instead}.", icon="⚠️")


def run_picker() -> str | None:
    """Sidebar selectbox over the run folders; keeps the choice in session state and the URL."""
    infos = runs_list()
    ids = [i.id for i in infos]
    wanted = _requested()
    if not isinstance(wanted, str) or wanted not in ids:  # only a listed run, never a path
        wanted = ids[0] if ids else None
    st.session_state[RUN_KEY] = wanted
    if not ids:
        st.sidebar.caption(f"📂 No runs yet under `{runs_root()}`")
        return None
    labels = {i.id: f"{STATE_ICONS.get(i.state, '•')} {i.id}" for i in infos}
    # The widget's key changes whenever code picks the run (select_run): a fresh widget starts at
    # ``wanted``, instead of the browser sending back the old choice and undoing the switch.
    # It also changes with the runs' states, so the icons in the list stay current.
    states = zlib.crc32("|".join(labels[i] for i in ids).encode())
    key = f"_run_picker_{st.session_state.get(PICKER_GENERATION, 0)}_{states}"
    choice = st.sidebar.selectbox("Current run", ids, index=ids.index(wanted), format_func=labels.get, key=key)
    st.session_state[RUN_KEY] = choice
    st.query_params["run"] = choice
    return choice


def select_run(run_id: str | None) -> None:
    """Make ``run_id`` the current run from code (after a launch, say), sidebar included;
    None falls back to the newest run (after a delete)."""
    st.session_state[PICKER_GENERATION] = st.session_state.get(PICKER_GENERATION, 0) + 1
    if run_id is None or not _inside(run_id):
        st.session_state.pop(RUN_KEY, None)
        st.query_params.pop("run", None)
    else:
        st.session_state[RUN_KEY] = run_id
        st.query_params["run"] = run_id


def current_run() -> Run | None:
    """The run chosen in the sidebar (or via ``?run=``), else the newest run, else None. Only a
    run inside the runs root is ever opened (see :func:`run_folder`)."""
    try:
        return open_run(run_folder(_requested()))
    except (FileNotFoundError, ValueError):
        pass
    infos = runs_list()
    try:
        return open_run(run_folder(infos[0].id)) if infos else None
    except (FileNotFoundError, ValueError):
        return None


def require_run(step: str | None = None) -> Run:
    """The current run, or stop the page with a hint; with ``step``, also require that step done."""
    run = current_run()
    if run is None:
        st.info("📭 No run yet. Start one from **🏠 Home** (“Run the demo”) or **🧪 Cross-domain**.")
        st.stop()
    if step is not None and step in STEPS and not run.has(step):
        if is_imported(run):  # its image steps never run: say so, not "not finished yet"
            st.info(no_images_note(run, f"its **{step}** step cannot run: it needs the images"))
            st.stop()
        state = run.status()
        st.info(
            f"⏳ Run `{run.id}` has not finished the **{step}** step yet "
            f"(state: {state['state']}, step: {state.get('step') or '—'}). "
            "Follow it on **🧪 Cross-domain** or pick another run in the sidebar."
        )
        st.stop()
    return run


def no_images_note(run: Run, what: str) -> str:
    """The plain sentence a page shows for a run imported from prediction files (core.importer),
    which has no images: ``what`` says what that rules out."""
    return (
        f"🖼️ Run `{run.id}` was imported from prediction files (`python -m core import`): it has **no images**, "
        f"so {what}. Its 🔗 Relationships, 🌳 Taxonomy and ✍️ Curation work from the imported predictions."
    )


def show_error(exc: BaseException, what: str, todo: str) -> None:
    """Show ``exc`` as an ``st.error`` with what failed and what to do; the traceback goes to the
    server log only (set ``UNITAX_DEBUG=1`` to also show it in an expander)."""
    st.error(f"**{what} failed:** {type(exc).__name__}: {exc}\n\n👉 {todo}", icon="🚨")
    detail = "".join(traceback.format_exception(exc))
    print(detail, flush=True)
    if os.environ.get("UNITAX_DEBUG"):
        with st.expander("Details"):
            st.code(detail)


_PID = re.compile(r"\bpid (\d+)")
_SINCE = re.compile(r"\bsince (\S+?)[;,)]?(?:\s|$)")


def locked_text(run_id: str, exc: BaseException) -> str:
    """One friendly line for a core.runs.LockedError about run ``run_id``: who works on it (pid
    and start time, read from the exception's message) and what to do, without the folder's
    path or the holder's command line."""
    message = str(exc)
    pid, since = _PID.search(message), _SINCE.search(message)
    who = f"pid {pid.group(1)}" if pid else ""
    if since:
        who += (" " if who else "") + f"since {since.group(1).replace('T', ' ')}"
    holder = f" ({who})" if who else ""
    return f"Run {shown(run_id)} is being worked on by another process{holder}; cancel it first."


@contextlib.contextmanager
def guard(what: str, todo: str = "Check the inputs, or the run's log on 🧪 Cross-domain.") -> Iterator[None]:
    """Context manager: any Exception inside is shown with :func:`show_error`, then the page stops."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        show_error(exc, what, todo)
        st.stop()


def stamp(path: Path) -> float:
    """Modification time of ``path`` (0 when missing): part of cache keys so new files reload."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
