"""Headless AppTest of every dashboard page on image-free synthetic runs (tests.sample_run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.synthetic import make_synthetic_taxonomy  # noqa: E402
from tests.conftest import page_opener  # noqa: E402
from tests.sample_run import write_synthetic_run  # noqa: E402

pytestmark = pytest.mark.slow  # AppTest renders every page: excluded from the quick loop (-m "not slow")

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished noise-model runs (r-old, r-new) under one runs root."""
    root = tmp_path_factory.mktemp("runs")
    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    write_synthetic_run(root, "r-old", tax, noise=0.3, seed=1, methods=("mcfp", "mcfp_binary"))
    new = write_synthetic_run(root, "r-new", tax, noise=0.1, seed=2, methods=("mcfp",))
    env = new / "environment.json"
    env.write_text(env.read_text().replace("2026-01-01", "2026-02-01"))  # r-new is the newest
    return root


@pytest.fixture
def open_page(runs, monkeypatch):
    return page_opener(runs, monkeypatch)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_current_run_and_demo_button(open_page):
    at = open_page("home")
    assert at.title[0].value.startswith("🧭")
    assert any("r-new" in m.value for m in at.markdown), "the newest run is the current run"
    assert at.button(key="run_demo").label == "🚀 Run the demo"
    assert not at.error


def test_home_without_runs_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("No run yet" in i.value for i in at.info)


def test_relationships_slider_changes_metrics_and_url(open_page):
    at = open_page("relationships")
    at.selectbox(key="rel_method").set_value("threshold").run()
    at.slider(key="rel_threshold_t").set_value(0.05).run()
    low = (metric(at, "Edges selected"), metric(at, "Recall"), metric(at, "Precision"))
    at.slider(key="rel_threshold_t").set_value(0.6).run()
    high = (metric(at, "Edges selected"), metric(at, "Recall"), metric(at, "Precision"))
    assert int(low[0].replace(",", "")) > int(high[0].replace(",", ""))
    assert float(low[1]) >= float(high[1])  # fewer edges cannot recall more
    assert at.query_params["method"] == "threshold" and at.query_params["t"] == "0.6"
    assert next(m for m in at.metric if m.label == "F1").delta is not None  # delta vs previous setting
    assert not at.error


def test_relationships_scores_equal_core(open_page, runs):
    from core.metrics import relationship_scores
    from core.runs import open_run
    from core.selection import select_relationships

    at = open_page("relationships", method="density", p="0.5")
    assert at.selectbox(key="rel_method").value == "density"
    assert at.slider(key="rel_density_p").value == pytest.approx(0.5)
    run = open_run(runs / "r-new")
    tax = run.ground_truth()
    pred = {k: select_relationships(P, "density", p=0.5) for k, P in run.matrices("hard").items()}
    want = relationship_scores(pred, tax.true_relationships(), tax.class_counts)
    assert float(metric(at, "F1")) == pytest.approx(want["f1"], abs=5e-4)
    assert float(metric(at, "EDR ↓")) == pytest.approx(want["edr"], abs=5e-4)


def test_relationships_tabs_show_pairs_sweep_and_best(open_page):
    at = open_page("relationships", method="mcfp")
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 6  # lazy tabs: per pair only
    at.session_state["rel_tab"] = "📈 Sweep"
    at.run()
    assert len(at.get("plotly_chart")) == 1 and not at.dataframe
    assert any(c.value.startswith("Now: ") for c in at.caption)
    at.session_state["rel_tab"] = "🏆 Best parameters"
    at.run()
    assert set(at.dataframe[0].value["method"]) >= {"threshold", "mcfp", "density", "hypothesis"}


def test_crossdomain_heatmap_and_row_view(open_page):
    at = open_page("crossdomain")
    assert any("test acc." in m.label for m in at.metric)
    assert len(at.get("plotly_chart")) == 2  # heatmap + row bars
    at.selectbox(key="cd_pair").set_value((2, 0)).run()
    at.selectbox(key="cd_sort").set_value("confidence (row max)").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert at.get("progress")[0].proto.value == 100  # finished run: full bar


def test_taxonomy_graph_table_and_downloads(open_page):
    at = open_page("taxonomy")
    graph = at.get("bidi_component")[0].proto
    assert "vis.Network" in graph.js_content and "sourceMappingURL" not in graph.js_content
    assert "cdn.jsdelivr" not in graph.js_content and 'src="http' not in graph.js_content
    assert int(metric(at, "Universal classes")) > 0
    at.text_input(key="tax_search").set_value("no-such-class-xyz").run()
    assert any("Nothing matches" in i.value for i in at.info)
    at.text_input(key="tax_search").set_value("").run()
    at.session_state["tax_tab"] = "⬇️ Downloads"
    at.run()
    assert {b.proto.label for b in at.get("download_button")} >= {"⬇️ GraphML", "⬇️ Mappings CSV"}
    at.session_state["tax_tab"] = "📋 Classes"
    at.run()
    table = at.dataframe[0].value
    assert len(table) == int(metric(at, "Universal classes")) and table["size"].min() >= 1


def test_taxonomy_live_source_follows_relationships(open_page):
    at = open_page("taxonomy")
    live = [o for o in at.selectbox(key="tax_source").options if o.startswith("live")]
    at.selectbox(key="tax_source").set_value(live[0]).run()
    assert not at.exception and not at.error
    assert int(metric(at, "Universal classes")) > 0


def test_universal_results_table_and_embedding(open_page):
    at = open_page("universal")
    table = at.dataframe[0].value
    assert "baseline" in table.columns and table.iloc[-1]["domain"] == "mean"
    assert len(at.get("plotly_chart")) >= 2  # history curve(s) + bars (+ embedding)
    at.segmented_control(key="uni_colour").set_value("class").run()
    assert not at.exception


def test_runs_compare_and_delete(open_page, runs):
    at = open_page("runs")
    assert set(at.dataframe[0].value["run"]) >= {"r-old", "r-new"}
    diff = next(d.value for d in at.dataframe if "key" in d.value.columns)
    assert "seed" in set(diff["key"])  # the two runs differ in their seed
    extra = write_synthetic_run(runs, "r-doomed", make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0), full=False)
    at.run()
    at.selectbox(key="runs_victim").set_value("r-doomed").run()
    assert at.button(key="runs_delete").disabled  # not confirmed yet
    at.checkbox(key="runs_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not extra.exists()


def test_domains_validates_before_launch(open_page):
    at = open_page("domains")
    assert at.success and not at.error
    at.number_input(key="dom_cm").set_value(100.0).run()  # more concepts per domain than exist
    assert any("concepts_mean" in e.value for e in at.error)


def test_domains_saves_config(open_page, runs):
    at = open_page("domains")
    at.text_input(key="dom_name").set_value("saved-one").run()
    at.button(key="dom_save").click().run()
    saved = runs / "_configs" / "saved-one.yaml"
    assert saved.exists() and "synthetic" in saved.read_text()


def test_try_it_without_a_model_file_says_so(open_page):
    at = open_page("try_it")  # the sample runs have no universal model.pt
    assert any("no universal model file" in i.value for i in at.info)
    assert not at.get("file_uploader")


def test_try_it_rejects_a_non_image_upload(open_page, runs):
    model = runs / "r-new" / "universal" / "mcfp" / "model.pt"
    model.write_bytes(b"")  # only its presence matters: the bad upload is refused before loading
    try:
        at = open_page("try_it")
        at.get("file_uploader")[0].set_value(("x.png", b"not an image", "image/png")).run()
        assert any("not an image that can be read" in e.value and "BytesIO" not in e.value for e in at.error)
    finally:
        model.unlink()


def test_domains_image_preview_and_missing_dataset(open_page):
    at = open_page("domains")
    before = len(at.get("image"))
    at.toggle(key="dom_images").set_value(True).run()
    assert not at.exception and not at.error
    assert len(at.get("image")) == before + 1, "the shifted image grid is added"
    assert at.dataframe[-1].value["classes"].min() >= 1
    at.radio(key="dom_kind").set_value("📁 Datasets").run()
    at.text_input(key="dom_root").set_value("/nonexistent/datasets").run()
    at.session_state["dom_table"] = {
        "edited_rows": {},
        "added_rows": [{"name": "c100", "source": "cifar100", "shift": "none"}],
        "deleted_rows": [],
    }
    at.run()
    errors = [e.value for e in at.error]
    assert any(
        "A dataset is missing" in e and "/nonexistent/datasets" in e and "cifar-100-python" in e for e in errors
    ), errors
    assert not at.success, "a setup with a missing dataset is not called valid"


def test_taxonomy_evidence_lists_cross_domain_counts(open_page):
    at = open_page("taxonomy")
    at.session_state["tax_tab"] = "🔎 Evidence"
    at.run()
    pairs = at.dataframe[0].value
    assert {"from", "seen by", "images", "P"} <= set(pairs.columns)
    assert (pairs["images"] >= 0).all() and any("test images of" in c.value for c in at.caption)


def test_crossdomain_follows_and_cancels_a_running_job(open_page, runs):
    from core.runlock import process_identity
    from core.runs import open_run, write_status

    run_dir = write_synthetic_run(runs, "r-live", make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0), full=False)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        write_status(
            run_dir,
            state="running",
            step="baselines",
            steps_done=["domains", "features"],
            progress=0.5,
            eta_s=75.0,
            message="syn0: epoch 3/6",
            pid=proc.pid,
            pid_identity=process_identity(proc.pid),
        )
        at = open_page("crossdomain", run="r-live")
        text = at.get("progress")[0].proto.text
        assert "running" in text and "step 3/8: baselines" in text and "ETA of this step 1 min 15 s" in text
        at.button(key="cancel_r-live").click().run()
        assert open_run(run_dir).status()["state"] == "cancelled"
        assert proc.wait(10) is not None  # the job's process group got SIGTERM
        assert at.button(key="resume_r-live")
    finally:
        proc.kill()


def test_pages_do_not_import_torch_or_sklearn(runs):
    """Importing torch/torchvision/sklearn costs ~8 s: the pages must not (checked in a fresh process)."""
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"for p in {['home', 'domains', 'crossdomain', 'relationships', 'taxonomy', 'universal', 'runs', 'try_it']}:\n"
        f"    at = AppTest.from_file({APP!r}, default_timeout=60).run()\n"
        "    if p != 'home':\n"
        "        at.switch_page(f'pages/{p}.py').run()\n"
        "    assert not at.exception, (p, at.exception)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'sklearn', 'timm') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env = dict(os.environ, UNITAX_RUNS=str(runs))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=str(Path(APP).parent)
    )
    assert "HEAVY []" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_taxonomy_filters_live_in_the_url(open_page):
    at = open_page("taxonomy", domains="1", q="c1", w="0.2")
    assert at.multiselect(key="tax_domains").value == [1]
    assert at.text_input(key="tax_search").value == "c1"
    assert at.slider(key="tax_min_w").value == 0.2
    at.text_input(key="tax_search").set_value("c2").run()
    assert at.query_params["q"] in ("c2", ["c2"])
    assert not at.exception


def _live_option(at: AppTest) -> str:
    return next(o for o in at.selectbox(key="tax_source").options if o.startswith("live"))


def _navigate(at: AppTest, page: str) -> None:
    """Go to ``page`` as the sidebar does in a browser: Streamlit clears the query string on
    navigation (AppTest keeps it), so only the session can carry a setting across pages."""
    for k in [k for k in at.query_params if k != "run"]:
        del at.query_params[k]
    at.switch_page(f"pages/{page}.py").run()


def test_relationships_and_taxonomy_share_the_current_setting(open_page, runs):
    from core.runs import open_run
    from core.selection import select_relationships
    from core.taxonomy import build_universal_taxonomy

    at = open_page("relationships")
    at.selectbox(key="rel_method").set_value("hypothesis").run()
    at.slider(key="rel_hypothesis_k_max").set_value(5).run()
    _navigate(at, "taxonomy")
    assert _live_option(at) == "live: hypothesis (k_max=5) from 🔗 Relationships"
    assert at.query_params["method"] in ("hypothesis", ["hypothesis"])
    assert at.query_params["k_max"] in ("5", ["5"])
    at.selectbox(key="tax_source").set_value(_live_option(at)).run()
    run = open_run(runs / "r-new")
    pred = {k: select_relationships(P, "hypothesis", k_max=5) for k, P in run.matrices("hard").items()}
    want = build_universal_taxonomy(pred, run.ground_truth().class_counts)
    assert int(metric(at, "Universal classes")) == len(want.classes)
    _navigate(at, "relationships")  # and back: the slider kept its value
    assert at.selectbox(key="rel_method").value == "hypothesis"
    assert at.slider(key="rel_hypothesis_k_max").value == 5
    assert not at.exception and not at.error


def test_the_current_setting_round_trips_through_the_url(open_page):
    at = open_page("taxonomy", method="density", p="0.55", q="c")
    assert _live_option(at) == "live: density (p=0.55) from 🔗 Relationships"
    query = {k: at.query_params[k] for k in ("method", "p", "q")}
    assert query == {"method": "density", "p": "0.55", "q": "c"} or query == {
        "method": ["density"],
        "p": ["0.55"],
        "q": ["c"],
    }  # the filters did not drop the setting
    _navigate(at, "relationships")
    assert at.selectbox(key="rel_method").value == "density"
    assert at.slider(key="rel_density_p").value == pytest.approx(0.55)
    assert at.query_params["p"] in ("0.55", ["0.55"])
    shared = open_page("taxonomy", **{k: at.query_params[k] for k in ("method", "p")})  # a new session
    assert _live_option(shared) == "live: density (p=0.55) from 🔗 Relationships"
    assert not at.exception and not at.error


def _runs_page(root: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _delete_via_page(at: AppTest, run_id: str) -> None:
    at.selectbox(key="runs_victim").set_value(run_id).run()
    at.checkbox(key="runs_sure").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_runs_delete_keeps_a_users_file_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    tax = make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0)
    write_synthetic_run(tmp_path, "r-other", tax, full=False)
    run_dir = write_synthetic_run(tmp_path, "r-keep", tax, full=False)
    (run_dir / "notes").mkdir()
    (run_dir / "notes" / "my-notes.txt").write_text("mine")
    at = _runs_page(tmp_path)
    _delete_via_page(at, "r-keep")
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1, warnings
    assert "my-notes.txt" in warnings[0] and "kept its folder" in warnings[0] and "r-keep" in warnings[0]
    assert (run_dir / "notes" / "my-notes.txt").read_text() == "mine"  # never deleted
    assert not (run_dir / "status.json").exists() and not (run_dir / "config.yaml").exists()
    at.run()
    assert not at.warning, "the note is shown once"


def test_runs_delete_of_a_locked_run_shows_one_error(tmp_path, monkeypatch):
    from core.runs import RunLock

    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    run_dir = write_synthetic_run(tmp_path, "r-busy", make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0), full=False)
    at = _runs_page(tmp_path)
    with RunLock(run_dir, purpose="test"):
        _delete_via_page(at, "r-busy")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Run r-busy is being worked on by another process"), errors
    assert f"pid {os.getpid()}" in errors[0] and errors[0].endswith("cancel it first."), errors
    assert "LockedError" not in errors[0] and str(run_dir) not in errors[0], "one friendly line: no type, no path"
    assert (run_dir / "status.json").exists(), "nothing was deleted"


def test_runs_table_shows_a_corrupt_run_with_its_reason(tmp_path, monkeypatch):
    from core.runs import STATE_ICONS

    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    tax = make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0)
    write_synthetic_run(tmp_path, "r-fine", tax, full=False)
    bad = write_synthetic_run(tmp_path, "r-bad", tax, full=False)
    (bad / "status.json").write_text("{not json")
    at = _runs_page(tmp_path)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["r-bad", "state"] == f"{STATE_ICONS['corrupt']} corrupt"
    assert "status.json" in table.loc["r-bad", "message"]
    assert table.loc["r-fine", "state"] == f"{STATE_ICONS['done']} done"


def test_runs_delete_refuses_a_folder_unitax_did_not_make(tmp_path, monkeypatch):
    from core.runs import MARKER

    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    run_dir = write_synthetic_run(
        tmp_path, "r-foreign", make_synthetic_taxonomy(6, 2, 4, 1, 1.5, 0.5, seed=0), full=False
    )
    (run_dir / MARKER).unlink()  # looks like a run (status, config), but unitax did not mark it
    at = _runs_page(tmp_path)
    _delete_via_page(at, "r-foreign")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "NotARunFolderError" in errors[0] and "not made by unitax" in errors[0], errors
    assert (run_dir / "status.json").exists() and (run_dir / "config.yaml").exists()


def test_universal_page_gives_each_difference_its_verdict(tmp_path, monkeypatch):
    from core.runs import Run

    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    run = Run(write_synthetic_run(tmp_path, "r-iv", tax, noise=0.1, seed=2, methods=("mcfp",)))
    names = run.domain_names()
    summary = run.results_json()
    acc = {n: [0.8, 0.7, 0.9] for n in [*names, "mean"]}
    diff = {n: {"diff": 0.01, "lo": -0.01, "hi": 0.03, "within_noise": True, "p_value": 0.5} for n in names}
    diff["mean"] = {"diff": 0.05, "lo": 0.02, "hi": 0.08, "within_noise": False, "p_value": 0.001}
    summary["intervals"] = {"level": 0.95, "n_boot": 100, "accuracy": {"baseline": acc, "universal/mcfp": acc},
                            "vs_baseline": {"universal/mcfp": diff}}  # fmt: skip
    run.write_results(run.results(), summary)
    at = page_opener(tmp_path, monkeypatch)("universal", run="r-iv")
    verdicts = next(d.value for d in at.dataframe if "verdict" in d.value.columns)
    assert list(verdicts["verdict"]) == ["better", *(["within noise"] * len(names))]
    assert any("McNemar" in c.value for c in at.caption)
