"""Real-browser test: Debian's chromium driven by Playwright through the main flow with the tiny
config: launch it from the page, wait for completion, move a slider and see the metrics change,
see the taxonomy graph drawn, retrain the universal model and see the results table. Screenshots
go to test-output/screenshots/. Every request must stay on localhost (the app works offline)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL = {"localhost", "127.0.0.1", "::1", ""}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(runs: Path):
    """Start the dashboard on a free localhost port; return (process, base URL, log file)."""
    if shutil.which("chromium") is None:
        message = "chromium is missing: apt-get install chromium (scripts/test.sh does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    port = _free_port()
    env = dict(os.environ, UNITAX_RUNS=str(runs), PYTHONUNBUFFERED="1")
    log_path = runs.parent / f"streamlit-{port}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "localhost",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.5)
    _stop(proc)
    pytest.fail("the streamlit server did not start: " + log_path.read_text()[-2000:])


@contextlib.contextmanager
def local_page(runs: Path, *, height: int = 1000):
    """(page, base URL, external requests): chromium on a fresh dashboard serving ``runs``; every
    request that would leave localhost is aborted and recorded."""
    from playwright.sync_api import sync_playwright

    proc, base = _start_server(runs)
    external: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": height})

            def _guard(route):
                url = route.request.url
                if url.startswith(("data:", "blob:", "about:")) or (urlparse(url).hostname or "") in LOCAL:
                    return route.continue_()
                external.append(url)
                return route.abort()

            context.route("**/*", _guard)
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page, base, external
            browser.close()
    finally:
        _stop(proc)


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on a free localhost port, runs under a temporary folder."""
    runs = tmp_path_factory.mktemp("browser-runs")
    proc, base = _start_server(runs)
    yield {"base": base, "runs": runs}
    _stop(proc)


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})

        def _guard(route):
            url = route.request.url
            host = urlparse(url).hostname or ""
            if url.startswith(("data:", "blob:", "about:")) or host in LOCAL:
                return route.continue_()
            external.append(url)
            return route.abort()

        context.route("**/*", _guard)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page, external
        browser.close()


T0 = time.monotonic()


def _shot(page, name: str) -> None:
    """Screenshot once the app has finished running (no 'Running…' status widget)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    print(f"[browser] {name} at {time.monotonic() - T0:.0f} s", flush=True)


def _nav(page, title: str, heading: str | None = None) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=re.compile(heading or title.split()[0], re.I)).first.wait_for()


def _metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def _wait_done(page, runs: Path, timeout: float = 600, ignore: tuple[str, ...] = ("r-older",)) -> str:
    from core.runs import list_runs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [i for i in list_runs(runs) if i.id not in ignore]
        if infos and infos[0].state in ("done", "failed", "cancelled"):
            return infos[0].id
        time.sleep(1)
    pytest.fail("the run did not finish in time")


def test_main_flow(server, browser_page):
    global T0
    T0 = time.monotonic()
    page, external = browser_page
    base, runs = server["base"], server["runs"]
    # An older run is the current one when the page opens: after the launch below, the page
    # must follow the new run and stay on it (the sidebar's old choice must not win).
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    write_synthetic_run(runs, "r-older", make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3), methods=("mcfp",))
    page.goto(base)
    page.get_by_role("heading", name=re.compile("Unitax")).wait_for()
    _shot(page, "01-home")

    # Launch the tiny config from the Cross-domain page and wait for it.
    _nav(page, "Cross-domain")
    page.get_by_text("Launch a run").click()  # folded while another run is the current one
    box = page.get_by_test_id("stSelectbox").filter(has_text="Config").first
    box.click()
    page.get_by_role("option", name=re.compile(r"tiny$")).click()
    page.get_by_role("button", name="Launch in the background").click()
    run_id = _wait_done(page, runs)
    from core.runs import open_run

    status = open_run(runs / run_id).status()
    assert status["state"] == "done", f"run failed: {status.get('error')}\n{open_run(runs / run_id).log_tail(30)}"
    page.get_by_text("Prediction matrices P_ab").wait_for(timeout=30_000)  # the panel reran the page
    page.wait_for_timeout(2000)  # a few more polls: the page must stay on the launched run
    assert f"run={run_id}" in page.url, page.url
    picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    shown = picker.inner_text() + " ".join(i.input_value() for i in picker.locator("input").all())
    assert run_id in shown and "✅" in shown, shown  # and its icon says it is done
    page.locator(".js-plotly-plot").first.wait_for()
    _shot(page, "02-crossdomain")

    # Relationships: move the threshold slider with the keyboard, the metrics follow.
    _nav(page, "Relationships")
    page.get_by_test_id("stSelectbox").filter(has_text="Method").first.click()
    page.get_by_role("option", name=re.compile(r"\(threshold\)")).click()
    slider = page.get_by_role("slider").first
    slider.wait_for()
    before = _metric(page, "Edges selected")
    slider.focus()
    slider.press("End")  # t = 1.0: only rows predicted entirely as one class keep an edge
    page.wait_for_function(
        "b => [...document.querySelectorAll('[data-testid=stMetric]')].some("
        "m => m.innerText.includes('Edges selected') && !m.innerText.includes(b))",
        arg=before,
        timeout=30_000,
    )
    assert _metric(page, "Edges selected") != before
    assert "t=1.0" in page.url  # the setting is shareable through the URL
    # For the screenshot: click a quarter along the track (t ~ 0.25) and open the sweep curves.
    track = page.get_by_test_id("stSlider").first.bounding_box()
    thumb = slider.bounding_box()
    page.mouse.click(track["x"] + 0.25 * track["width"], thumb["y"] + thumb["height"] / 2)
    page.wait_for_function("() => !location.href.includes('t=1.0')", timeout=30_000)
    page.get_by_role("tab", name=re.compile("Sweep")).click()
    page.locator(".js-plotly-plot").first.wait_for()
    _shot(page, "03-relationships")

    # Taxonomy: the vis-network canvas is drawn and not blank.
    _nav(page, "Taxonomy")
    from tests.test_browser_graph import GRAPH, READY

    page.wait_for_function(READY, timeout=60_000)
    painted = page.evaluate(f"""() => {{ const c = {GRAPH}.querySelector('canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) {{ if (d[i + 3] > 0) n++; }}
        return n; }}""")
    assert painted > 200, f"the graph canvas looks empty ({painted} painted pixels)"
    _shot(page, "04-taxonomy")

    # Universal model: retrain in the background, then the results table is shown.
    _nav(page, "Universal model")
    page.get_by_text("Train for other selection methods").click()
    page.get_by_role("button", name="Train in the background").click()
    time.sleep(2)
    _wait_done(page, runs)
    assert open_run(runs / run_id).status()["state"] == "done"
    page.reload()
    page.get_by_text("Baseline vs universal").wait_for(timeout=60_000)
    page.get_by_test_id("stDataFrame").first.wait_for()
    _shot(page, "05-universal")

    # Try it: classify one of the run's test images.
    _nav(page, "Try it")
    page.get_by_text("A test image").click()
    page.get_by_role("button", name=re.compile("Classify")).click()
    page.get_by_text(re.compile("Universal top-")).wait_for(timeout=120_000)
    _shot(page, "06-try-it")

    _nav(page, "Runs")
    page.get_by_test_id("stDataFrame").first.wait_for()
    _shot(page, "07-runs")
    _nav(page, "Home", heading="Unitax")
    page.get_by_role("heading", name="Current run").wait_for()
    _shot(page, "08-home-with-run")
    assert not page.get_by_test_id("stException").count(), "a traceback reached the page"
    assert external == [], f"requests left localhost: {external[:5]}"


def test_shared_link_opens_the_full_app(tmp_path, browser_page):
    """A shared /relationships?... link as the very first request of a fresh server still gets
    the full app (navigation, sidebar) and the shared slider setting."""
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    runs = tmp_path / "runs"
    write_synthetic_run(runs, "shared", make_synthetic_taxonomy(12, 3, 8, 2, 1.5, 0.5, seed=0))
    proc, base = _start_server(runs)
    try:
        page, external = browser_page
        external.clear()
        page.goto(base + "/relationships?method=density&p=0.5")
        page.get_by_role("heading", name=re.compile("Relationships")).wait_for()
        page.get_by_test_id("stSidebarNav").get_by_text("Universal model", exact=True).wait_for()
        page.get_by_text("Current run").first.wait_for()
        assert "0.50" in page.get_by_test_id("stSlider").first.inner_text()
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')")
        assert "method=density" in page.url and "p=0.5" in page.url  # the page rewrites the URL from its widgets
        assert external == []
    finally:
        _stop(proc)


def test_accuracy_sweep_tab_draws_its_chart(tmp_path, browser_page):
    """🔗 Relationships on a run with an accuracy sweep: the 🎯 tab draws validation accuracy per
    setting (plotly, offline) with the best setting per method."""
    from core.runs import Run
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run
    from tests.test_app_tuning import plausible_sweep

    runs = tmp_path / "runs"
    path = write_synthetic_run(runs, "swept", make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3))
    Run(path).write_sweep_table(plausible_sweep(path))
    proc, base = _start_server(runs)
    try:
        page, external = browser_page
        external.clear()
        page.goto(base + "/relationships?run=swept&method=density&p=0.5")
        page.get_by_role("heading", name=re.compile("Relationships")).wait_for()
        page.get_by_role("tab", name=re.compile("Accuracy sweep")).click()
        page.get_by_text("Best by validation accuracy").wait_for()
        chart = page.locator(".js-plotly-plot").first
        chart.wait_for()
        assert chart.locator(".scatterlayer .trace").count() >= 6, "the accuracy curves were not drawn"
        assert chart.get_by_text("universal classes").count(), "no second axis for the universal classes"
        _shot(page, "09-accuracy-sweep")
        assert not page.get_by_test_id("stException").count(), "a traceback reached the page"
        assert external == []
    finally:
        _stop(proc)
