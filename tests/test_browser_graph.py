"""Real-browser test of the clickable taxonomy graph (ui.graphpick): Debian's chromium opens the
🌳 Taxonomy page of a sample run, clicks a class node and then a mapping edge on the
vis-network canvas (positions from the network itself, through the test hook ``uxNetwork`` on
the graph's div), and sees Python's "selected: …" caption name them; the layout survives the
click; a search centres the graph on the matching class. Every request stays on localhost."""

from __future__ import annotations

import re
import time

import pytest

from tests.test_browser import SHOTS, local_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

# The graph's <div class="ux-graph"> inside the component's shadow root.
GRAPH = (
    "(() => { const h = document.querySelector('[data-testid=stBidiComponentIsolated]');"
    " return h && h.shadowRoot ? h.shadowRoot.querySelector('div.ux-graph') : null; })()"
)
READY = f"() => {{ const el = {GRAPH}; return !!el && el.dataset.ready === '1'; }}"

# Page coordinates of a node to click: the first domain class whose centre hits only itself.
NODE_POINT = f"""() => {{
  const el = {GRAPH}; const net = el.uxNetwork; el.scrollIntoView({{block: 'center'}});
  const box = el.querySelector('canvas').getBoundingClientRect();
  for (const [id, p] of Object.entries(net.getPositions())) {{
    if (id.startsWith('u:')) continue;
    const d = net.canvasToDOM(p);
    if (d.x < 10 || d.y < 10 || d.x > box.width - 10 || d.y > box.height - 10) continue;
    if (net.getNodeAt(d) === id) return {{id, x: box.left + d.x, y: box.top + d.y}};
  }}
  return null; }}"""

# Page coordinates of a mapping edge's midpoint that hits that edge and no node.
EDGE_POINT = f"""() => {{
  const el = {GRAPH}; const net = el.uxNetwork;
  const box = el.querySelector('canvas').getBoundingClientRect();
  const pos = net.getPositions(); const edges = net.body.data.edges;
  for (const e of edges.get()) {{
    if (e.kind !== 'mapping') continue;
    const a = pos[e.from], b = pos[e.to];
    const d = net.canvasToDOM({{x: (a.x + b.x) / 2, y: (a.y + b.y) / 2}});
    if (d.x < 10 || d.y < 10 || d.x > box.width - 10 || d.y > box.height - 10) continue;
    if (net.getNodeAt(d) === undefined && net.getEdgeAt(d) === e.id)
      return {{from: e.from, to: e.to, x: box.left + d.x, y: box.top + d.y}};
  }}
  return null; }}"""


@pytest.fixture(scope="module")
def graph_page(tmp_path_factory):
    """(page, base URL, external requests) on a fresh server with one sample run ``g``."""
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    runs = tmp_path_factory.mktemp("graph-runs")
    write_synthetic_run(runs, "g", make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3), noise=0.2, seed=1)
    with local_page(runs) as opened:
        yield opened


def _caption(page, text: str) -> None:
    page.get_by_test_id("stCaptionContainer").filter(has_text=text).first.wait_for()


def test_clicks_on_the_canvas_reach_python_and_a_search_centres(graph_page):
    page, base, external = graph_page
    t0 = time.monotonic()
    page.goto(base + "/taxonomy?run=g")
    page.wait_for_function(READY, timeout=60_000)
    page.get_by_text("Click a class, a universal class").wait_for()
    painted = page.evaluate(f"""() => {{ const c = {GRAPH}.querySelector('canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }}""")
    assert painted > 2000, f"the graph canvas looks empty ({painted} painted pixels)"

    # A class node: Python's caption names it (its tooltip headline, "domain · class i: name").
    node = page.evaluate(NODE_POINT)
    assert node, "no domain class node is visible on the canvas"
    head = page.evaluate(f"id => {GRAPH}.uxNetwork.body.data.nodes.get(id).title.split('\\n')[0]", node["id"])
    page.evaluate(f"() => {{ {GRAPH}.uxNetwork.__kept = true; }}")
    page.mouse.click(node["x"], node["y"])
    _caption(page, f"selected: {head}")
    assert page.evaluate(f"() => {GRAPH}.uxNetwork.__kept === true"), "the click rebuilt the network"
    assert page.evaluate(f"() => {GRAPH}.uxNetwork.getSelectedNodes()") == [node["id"]]

    # A mapping edge, clicked at its midpoint: "class → universal class (mapping)".
    edge = page.evaluate(EDGE_POINT)
    assert edge, "no mapping edge midpoint is clickable on the canvas"
    page.mouse.click(edge["x"], edge["y"])
    _caption(page, "(mapping)")
    shown = page.get_by_test_id("stCaptionContainer").filter(has_text="(mapping)").first.inner_text()
    assert re.search(r"selected: .+ → universal class U\d+: .+ \(mapping\)", shown), shown
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "10-graph-click.png"), full_page=True)

    # A search draws its matches and centres on the matching class (zoomed in, in the middle).
    name = head.split(": ", 1)[1]
    page.get_by_test_id("stTextInput").filter(has_text="Find a class").locator("input").fill(name)
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => {{ const el = {GRAPH}; return !!el && el.dataset.ready === '1' && !el.uxNetwork.__kept; }}",
        timeout=60_000,
    )
    page.wait_for_timeout(800)  # the focus animation (400 ms)
    centred = page.evaluate(f"""() => {{ const el = {GRAPH}; const net = el.uxNetwork;
        const box = el.querySelector('canvas').getBoundingClientRect();
        const id = net.getNodeAt({{x: box.width / 2, y: box.height / 2}});
        return {{id, title: id === undefined ? null : net.body.data.nodes.get(id).title, scale: net.getScale()}}; }}""")
    assert centred["title"] and centred["title"].split("\n")[0] == head, f"the match is not centred: {centred}"
    assert centred["scale"] >= 0.99, "centring zooms in to where labels are drawn"
    assert not page.get_by_test_id("stException").count(), "a traceback reached the page"
    assert external == [], f"requests left localhost: {external[:5]}"
    print(f"[browser-graph] {time.monotonic() - t0:.1f} s", flush=True)
