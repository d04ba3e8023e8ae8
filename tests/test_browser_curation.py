"""Real-browser test of ✍️ Curation: Debian's chromium ticks a row of the review table, rejects it
(both directions), and sees the decision land in the run's log, the headline numbers change, the
curated taxonomy on the 🕸️ Graph tab follow it (drawn, with the universal classes core computes
for the curated edges), and undo bring everything back. Every request stays on localhost."""

from __future__ import annotations

import re

import pytest

from tests.test_browser import SHOTS, local_page
from tests.test_browser_graph import READY

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def curation_page(tmp_path_factory):
    """(page, base URL, run, external requests) on a fresh server with one sample run ``c``."""
    from core.runs import Run
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    runs = tmp_path_factory.mktemp("curation-runs")
    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    run = Run(write_synthetic_run(runs, "c", tax, noise=0.2, seed=1))
    with local_page(runs, height=1100) as (page, base, external):
        yield page, base, run, external


def _metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def _wait_metric(page, label: str, value: str) -> None:
    page.wait_for_function(
        """([label, value]) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m =>
            m.innerText.includes(label)
            && m.querySelector('[data-testid=stMetricValue]').innerText.trim() === value)""",
        arg=[label, value],
        timeout=30_000,
    )


def test_reject_a_row_then_the_numbers_and_the_graph_follow_and_undo_restores(curation_page):
    from core import curation as C
    from core.taxonomy import build_universal_taxonomy

    page, base, run, external = curation_page
    page.goto(base + "/curation?run=c&method=mcfp")
    page.get_by_text("Tick rows (left edge) to act on them").wait_for(timeout=60_000)
    assert _metric(page, "Decisions in force") == "0"

    # Tick the first row: the row-marker column at the grid's left edge, the first row under the header.
    grid = page.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    reject = page.get_by_role("button", name=re.compile(r"Reject \(2\)"))
    reject.wait_for()  # one row, both directions
    reject.click()
    _wait_metric(page, "Decisions in force", "1")
    state = C.load_state(run)
    assert len(state.rejected) == 2 and not state.accepted
    assert _metric(page, "Precision vs. decisions") == "0.000"  # the judged selected edge was rejected
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "11-curation-review.png"), full_page=True)

    # The 🕸️ Graph tab draws the curated taxonomy: the universal classes of the curated edge set.
    selected = C.setting_edges(run.matrices("hard"), "mcfp", None)
    counts = run.class_counts()
    curated = build_universal_taxonomy(C.curated_edge_set(selected, state, counts), counts)
    page.get_by_role("tab", name=re.compile("Graph")).click()
    page.wait_for_function(READY, timeout=60_000)
    page.get_by_text(f"The curated taxonomy: {len(curated.classes)} universal classes").wait_for()
    page.screenshot(path=str(SHOTS / "12-curation-graph.png"), full_page=True)

    # Undo brings the numbers back, and the log says why (an undo line, nothing rewritten).
    page.get_by_role("button", name=re.compile("Undo")).click()
    _wait_metric(page, "Decisions in force", "0")
    assert not C.load_state(run).applied
    assert [r["action"] for r in C.read_records(run.path)[0]] == ["reject", "undo"]
    assert not external, f"requests left localhost: {external[:3]}"
