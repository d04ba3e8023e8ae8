"""AppTest checks of what a first walk through the dashboard found: the launcher's default config,
Try it's stale tables and per-domain scores, the taxonomy's default method, caption, relationship
edges and edges CSV, and the small texts of the job panel and the Runs page."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.runs import open_run  # noqa: E402
from core.synthetic import make_synthetic_taxonomy  # noqa: E402
from tests.conftest import page_opener  # noqa: E402
from tests.sample_run import write_synthetic_run  # noqa: E402

pytestmark = pytest.mark.slow  # AppTest renders the pages: excluded from the quick loop (-m "not slow")

APP = str(Path(__file__).resolve().parent.parent / "app.py")
METHODS = ("mcfp", "mcfp_binary", "threshold")  # run.methods() lists them in this order


def _set_headline(run_dir: Path, best: str) -> None:
    """Make ``best`` the method with the best mean universal test accuracy of the run."""
    path = run_dir / "results.json"
    summary = json.loads(path.read_text())
    for m in METHODS:
        summary["headline"][f"universal_mean/{m}"] = 0.9 if m == best else 0.5
    path.write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished noise-model run with three methods, threshold the best, t = 0.45 in its config."""
    root = tmp_path_factory.mktemp("runs")
    tax = make_synthetic_taxonomy(40, 3, 16, 4, 1.8, 1.0, seed=5)
    run_dir = write_synthetic_run(root, "r-fix", tax, noise=0.2, seed=1, methods=METHODS)
    run = open_run(run_dir)
    cfg = run.config
    cfg["selection"]["methods"] = [
        {"name": m, "params": {"t": 0.45} if m == "threshold" else {}, "label": m} for m in METHODS
    ]
    run.write_config(cfg)
    _set_headline(run_dir, "threshold")
    return root


@pytest.fixture
def open_page(runs, monkeypatch):
    return page_opener(runs, monkeypatch)


def _navigate(at: AppTest, page: str) -> None:
    for k in [k for k in at.query_params if k != "run"]:
        del at.query_params[k]
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]


# ----------------------------------------------------------------------------- 🧪 launcher


def test_launcher_opens_on_the_demo_and_marks_configs_whose_data_is_missing(open_page):
    from core.config import load_config
    from core.domains import check_data
    from ui.common import REPO
    from ui.launchers import MISSING_MARK

    at = open_page("crossdomain")
    box = at.selectbox(key="cd_config")
    assert box.value == "📦 demo", "the README's default, not the alphabetically first config"
    missing = []
    for path in sorted((REPO / "assets" / "configs").glob("*.yaml")):
        try:
            check_data(load_config(path))
        except ValueError:
            missing.append(path.stem)
    assert missing, "the shipped real-dataset configs need datasets this machine lacks"
    for option in box.options:
        assert (MISSING_MARK in option) == (option.split(" — ")[0][2:] in missing), option
    box.set_value(f"📦 {missing[0]}").run()
    assert at.button(key="cd_launch").disabled
    assert any("cannot run here" in w.value for w in at.warning)


# ----------------------------------------------------------------------------- 🖼️ Try it


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def with_models(runs, monkeypatch):
    """Empty model.pt files (their presence lists the methods) and a fake core.inference whose
    predict_image gives every class of the run a fixed score."""
    run = open_run(runs / "r-fix")
    files = [run.universal_model_path(m) for m in METHODS]
    for f in files:
        f.write_bytes(b"")
    doms = run.domains()
    calls = []

    def predict_image(run_dir, image, *, method=None, top_k=5, device=None):
        calls.append((method, top_k))
        tax = run.taxonomy(method)
        uni = [(n, 1.0 / len(tax.names)) for n in tax.names][:top_k]
        per = {d["name"]: [(c, 0.25 / len(d["class_names"])) for c in d["class_names"]][:top_k] for d in doms}
        return {"universal": uni, "domains": per, "method": method}

    fake = types.ModuleType("core.inference")
    fake.predict_image = predict_image
    monkeypatch.setitem(sys.modules, "core.inference", fake)
    yield calls
    for f in files:
        f.unlink()


def test_try_it_opens_on_the_best_model_and_a_new_upload_clears_the_old_tables(open_page, with_models):
    at = open_page("try_it")
    assert at.selectbox(key="try_method").value == "threshold", "the run's best method, not the first"
    at.get("file_uploader")[0].set_value(("red.png", _png(), "image/png")).run()
    at.button(key="try_go").click().run()
    assert not at.exception and not at.error
    assert len(at.dataframe) == 4, "universal top-k + one table per domain"
    at.get("file_uploader")[0].set_value(("broken.png", b"not an image", "image/png")).run()
    assert any("not an image that can be read" in e.value for e in at.error)
    assert not at.dataframe, "the previous image's tables are gone: they are not this upload's result"


def test_try_it_explains_the_per_domain_scores_and_shows_their_sums(open_page, runs, with_models):
    import re

    at = open_page("try_it")
    at.get("file_uploader")[0].set_value(("red.png", _png(), "image/png")).run()
    at.button(key="try_go").click().run()
    headings = [m.value for m in at.markdown]
    assert not [h for h in headings if re.fullmatch(r"\*\*\w+\*\* model", h)], "no domain model is involved"
    assert any("d_a = M_a p" in h for h in headings)
    captions = [c.value for c in at.caption]
    assert any("do not sum to 1" in c and "M_a" in c for c in captions)
    for d in open_run(runs / "r-fix").domains():
        want = f"sum over {d['name']}'s {len(d['class_names'])} classes: **0.250**"
        assert want in captions, (want, captions)
    assert with_models[-1][1] >= max(len(d["class_names"]) for d in open_run(runs / "r-fix").domains())
    assert len(at.dataframe[1].value) == 5, "top k = 5 rows per domain, the sum over all classes"


# ----------------------------------------------------------------------------- 🌳 Taxonomy


def test_taxonomy_opens_on_the_best_method_and_explains_its_size(open_page):
    at = open_page("taxonomy")
    assert at.selectbox(key="tax_source").value == "saved: threshold", "the best method, not the first"
    caption = " ".join(c.value for c in at.caption)
    assert "rule 4" in caption and "U{A, B}" in caption and "U{B}" in caption


def test_taxonomy_live_setting_is_the_one_relationships_shows_untouched(open_page):
    at = open_page("relationships")
    at.selectbox(key="rel_method").set_value("threshold").run()
    shown = at.slider(key="rel_threshold_t").value
    assert shown == pytest.approx(0.45), "the run's own value of t"
    _navigate(at, "taxonomy")
    live = next(o for o in at.selectbox(key="tax_source").options if o.startswith("live"))
    assert live == f"live: threshold (t={shown}) from 🔗 Relationships"


def test_taxonomy_graph_edges_carry_their_relation_and_evidence(open_page):
    from core.evidence import RELATIONS

    at = open_page("taxonomy")
    at.selectbox(key="tax_focus").set_value("").run()  # the whole taxonomy
    html = at.get("bidi_component")[0].proto.json
    found = {r for r in RELATIONS if f"relation: {r}" in html}
    assert found, "relationship edges name their type in the tooltip"
    assert "p_ab = " in html and "p_ba = " in html and "confidence " in html
    assert any("relationships between domain classes" in c.value for c in at.caption), "a legend"


def test_taxonomy_focuses_a_large_graph_on_one_class(open_page):
    at = open_page("taxonomy")
    whole = int(at.metric[0].value) + int(at.metric[1].value)
    focus = at.selectbox(key="tax_focus").value
    assert whole > 60 and focus != "", "a graph of more than 60 nodes opens on one class"
    n_nodes = int(next(c.value for c in at.caption if "nodes," in c.value).split()[0])
    assert n_nodes <= 60
    at.selectbox(key="tax_focus").set_value("").run()
    assert int(next(c.value for c in at.caption if "nodes," in c.value).split()[0]) > n_nodes


def test_taxonomy_edges_csv_lists_the_relationships_with_relation_and_confidence(open_page, runs, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    got = {}
    original = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        got[label] = data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    at = open_page("taxonomy")
    at.session_state["tax_tab"] = "⬇️ Downloads"
    at.run()
    assert "⬇️ Edges CSV" in {b.proto.label for b in at.get("download_button")}
    table = pd.read_csv(io.BytesIO(got["⬇️ Edges CSV"]))
    assert {"domain_a", "class_a", "domain_b", "class_b", "weight", "relation", "confidence"} <= set(table.columns)
    assert {"p_ab", "p_ba", "n_ab", "n_ba"} <= set(table.columns)
    W = open_run(runs / "r-fix").relationships("threshold")
    assert len(table) == sum(int((np.asarray(w) > 0).sum()) for w in W.values()), "one row per selected edge"
    assert table["confidence"].between(0, 1).all() and set(table["relation"]) <= {
        "equivalent",
        "narrower",
        "broader",
        "overlap",
    }


# ----------------------------------------------------------------------------- small texts


def test_a_finished_run_says_all_steps_done():
    from core.runs import STATE_ICONS, STEPS
    from ui.jobs import status_text

    text = status_text({"state": "done", "step": None, "steps_done": list(STEPS), "message": "done"}, alive=False)
    assert text == f"{STATE_ICONS['done']} **done** · all {len(STEPS)} steps done"


def test_runs_table_shows_missing_values_as_empty_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    tax = make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0)
    write_synthetic_run(tmp_path, "r-full", tax, methods=("mcfp",))
    write_synthetic_run(tmp_path, "r-part", tax, full=False)  # no headline metrics
    bad = write_synthetic_run(tmp_path, "r-bad", tax, full=False)
    (bad / "status.json").write_text("{not json")  # corrupt: no step, no creation time
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception
    frame = at.dataframe[0]
    table = frame.value
    text = table.select_dtypes(exclude="number")
    assert not text.isna().any().any(), text
    assert "None" not in set(text.astype(str).to_numpy().ravel())
    assert frame.proto.placeholder == "", "numbers missing for an unfinished run show as empty cells"


def test_domains_page_starts_on_the_demos_image_size(open_page):
    from core.config import load_config
    from ui.common import REPO

    at = open_page("domains")
    want = load_config(REPO / "assets" / "configs" / "demo.yaml").features.image_size
    assert at.select_slider(key="dom_size").value == want


def test_graph_focus_draws_one_class_its_universal_classes_and_their_relationships():
    from ui.graph import GraphFilter, graph_elements, graph_html, neighbourhood_sizes

    mappings = [np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([[0.5, 0.5], [0.0, 0.2]])]
    cnames, dnames = [["dog", "auto"], ["dalmatian", "car_side"]], ["cifar", "caltech"]
    evidence = {"p_ab": 0.8, "p_ba": 0.3, "n_ab": 30, "n_ba": 40, "confidence": 0.9, "weight": 0.8}
    relations = [
        {"a": 0, "i": 0, "b": 1, "j": 0, "relation": "narrower", **evidence},
        {"a": 0, "i": 1, "b": 1, "j": 1, "relation": "overlap", **evidence},
    ]
    assert neighbourhood_sizes(mappings) == {"0:0": 3, "0:1": 4, "1:0": 6, "1:1": 4}
    nodes, edges = graph_elements(
        mappings, ["dog", "car"], cnames, dnames, flt=GraphFilter(focus="0:0"), relations=relations
    )
    assert {n["id"] for n in nodes} == {"u:0", "0:0", "1:0"}
    rel = [e for e in edges if e["kind"] == "relation"]
    assert [(e["source"], e["target"], e["relation"]) for e in rel] == [("0:0", "1:0", "narrower")]
    assert "dog is a part of dalmatian" in rel[0]["title"] and "p_ab = 0.800" in rel[0]["title"]
    html = graph_html(nodes, edges)
    assert "relation: narrower" in html and "#e31a1c" in html
    _, whole = graph_elements(mappings, ["dog", "car"], cnames, dnames, relations=relations)
    assert sum(e["kind"] == "relation" for e in whole) == 2


def test_an_untouched_setting_follows_the_run_a_chosen_one_carries_over(open_page):
    """Opening a page stores no setting (so another run shows its own value); a choice does."""
    from ui.setting import SETTING_KEY

    at = open_page("taxonomy")
    assert SETTING_KEY not in at.session_state
    _navigate(at, "relationships")
    at.selectbox(key="rel_method").set_value("threshold").run()
    at.slider(key="rel_threshold_t").set_value(0.6).run()
    assert tuple(at.session_state[SETTING_KEY]) == ("threshold", "t", 0.6)
