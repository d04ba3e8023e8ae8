"""Streamlit entry point: page config, navigation over pages/, the shared sidebar (run picker).

Start with ``bash scripts/app.sh`` (or ``.venv/bin/python -m streamlit run app.py``); the server
listens on localhost only (.streamlit/config.toml). Pages are thin: widgets, one cached call into
``core`` through ``ui``, drawing. Any error a page raises is shown as an ``st.error``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from ui.common import check_requested_run, run_picker, show_error

HERE = Path(__file__).resolve().parent

st.set_page_config(page_title="Unitax · universal taxonomy", page_icon="🧭", layout="wide")
if not os.environ.get("UNITAX_DEBUG"):  # belt and braces: pages already turn errors into st.error
    st.set_option("client.showErrorDetails", "none")

PAGES = {
    "Workflow": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/domains.py", title="Domains", icon="🗂️"),
        st.Page("pages/crossdomain.py", title="Cross-domain", icon="🧪"),
        st.Page("pages/relationships.py", title="Relationships", icon="🔗"),
        st.Page("pages/taxonomy.py", title="Taxonomy", icon="🌳"),
        st.Page("pages/curation.py", title="Curation", icon="✍️"),
        st.Page("pages/universal.py", title="Universal model", icon="🎯"),
    ],
    "Use and compare": [
        st.Page("pages/try_it.py", title="Try it", icon="🖼️"),
        st.Page("pages/runs.py", title="Runs", icon="📚"),
    ],
}

css = HERE / "assets" / "style.css"
if css.exists():
    st.html(f"<style>{css.read_text(encoding='utf-8')}</style>")

page = st.navigation(PAGES)
notice = st.container()  # main area, above the page
with st.sidebar:
    try:
        with notice:
            check_requested_run()  # a ?run= naming no run of the runs root: dropped, with a warning
        run_picker()
    except Exception as exc:  # noqa: BLE001 - a broken runs folder must not hide the pages
        show_error(exc, "Listing the runs", "Check the UNITAX_RUNS folder (or ./runs) is readable.")
    st.caption("🧭 Unitax — one classifier, many taxonomies. Works offline.")

try:
    page.run()
except Exception as exc:  # noqa: BLE001 - never show a traceback on the page
    show_error(exc, f"The page “{page.title}”", "Reload the page; if it persists, check the run's log.")
