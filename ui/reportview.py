"""The run's report as a download (core.report): the HTML is built when the button is clicked,
once per version of the run's files (a cached function keyed on their modification times)."""

from __future__ import annotations

import html

import streamlit as st

from core.runs import Run, open_run

__all__ = ["report_download", "report_stamps"]


def report_stamps(run: Run) -> tuple[tuple[str, float], ...]:
    """``((file, modification time), ...)`` of every file the report reads (core.report.report_inputs;
    0 for a missing one): the report's cache key. A few ``stat`` calls, cheap on every rerun."""
    from core.report import report_inputs

    return tuple((rel, run.stamp(rel)) for rel in report_inputs(run))


@st.cache_data(show_spinner=False, max_entries=8)
def _report_html(run_dir: str, stamps: tuple[tuple[str, float], ...]) -> str:
    """core.report.build_report of the run (``stamps`` only keys the cache)."""
    from core.report import build_report

    return build_report(open_run(run_dir))


def _build(run_dir: str, run_id: str, stamps: tuple[tuple[str, float], ...]) -> str:
    """The report; when it cannot be built, a page that says why (never a traceback: this runs on
    Streamlit's download thread, after the page was drawn)."""
    try:
        return _report_html(run_dir, stamps)
    except Exception as exc:  # noqa: BLE001 - the download must always deliver a readable page
        print(f"report of {run_dir} failed: {type(exc).__name__}: {exc}", flush=True)
        reason = html.escape(f"{type(exc).__name__}: {exc}")
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Unitax report: '
            f"{html.escape(run_id)}</title></head><body><h1>The report of run {html.escape(run_id)} could not be "
            f"built</h1><p>{reason}</p><p>Try <code>python -m core report {html.escape(run_id)}</code> for the "
            "same message on the command line.</p></body></html>"
        )


def report_download(run: Run, *, key: str = "report") -> None:
    """A download button for ``run``'s self-contained HTML report (``RUN-report.html``), built on
    click (not on every rerun) and kept until one of the run's files changes. ``key`` tells two
    buttons of one page apart (the widget key is ``<key>_<run id>``)."""
    rd, stamps = str(run.path), report_stamps(run)
    st.download_button(
        "⬇️ Report (HTML)",
        data=lambda: _build(rd, run.id, stamps),
        file_name=f"{run.id}-report.html",
        mime="text/html",
        key=f"{key}_{run.id}",
        on_click="ignore",
        help="One self-contained HTML file: the run's settings, results, selection, sweep, taxonomy and "
        "decisions, figures included. Opens offline in any browser and prints well.",
    )
