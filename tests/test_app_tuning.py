"""Tuning on real data, on 🔗 Relationships (AppTest on image-free synthetic runs): the accuracy
sweep tab (launch, progress, cancel, results, best setting), the label-free indicators and the
edge evidence tab."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.runs import Run  # noqa: E402
from core.synthetic import make_synthetic_taxonomy  # noqa: E402
from tests.sample_run import write_synthetic_run  # noqa: E402

pytestmark = pytest.mark.slow  # AppTest renders the page: excluded from the quick loop (-m "not slow")

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
# Stands in for `python -m core sweep`: on SIGTERM it ends as the real job does, state "cancelled".
FAKE_SWEEP = """
import signal, sys, time
from core.runs import Run
def stop(*_):
    Run(sys.argv[1]).write_sweep_status(state="cancelled", message="cancelled", pid=None, pid_identity=None)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""
SWEEP_TAB, EDGE_TAB = "🎯 Accuracy sweep", "🧾 Edge evidence"


def _tax():
    return make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)


def plausible_sweep(run_dir: Path) -> pd.DataFrame:
    """A sweep table as core.sweep writes it: edges, universal classes and (with a ground truth)
    scores computed from the run's matrices; validation accuracies are placeholders."""
    from core.metrics import relationship_scores
    from core.selection import select_relationships
    from core.sweep import sweep_settings
    from core.taxonomy import build_universal_taxonomy

    run = Run(run_dir)
    mats, counts, names = run.matrices("hard"), run.class_counts(), run.domain_names()
    gt = run.ground_truth()
    rows = []
    for k, s in enumerate(sweep_settings(None, "coarse")):
        W = {ab: select_relationships(P, s.method, **s.params) for ab, P in mats.items()}
        tax = build_universal_taxonomy(W, counts)
        sc = relationship_scores(W, gt.true_relationships(), counts) if gt is not None else {}
        # placeholder: taxonomies near the true number of concepts train best
        fit = abs(len(tax.classes) - (gt.n_concepts if gt is not None else 20)) / 40
        acc = [round(0.8 - 0.15 * fit - 0.03 * a + 0.01 * math.sin(k + a), 4) for a in range(len(names))]
        rows.append(
            {
                "method": s.method,
                "param": s.param or "",
                "value": s.value,
                "n_edges": int(sum((w > 0).sum() for w in W.values())),
                "n_universal": len(tax.classes),
                "val_acc_mean": float(np.mean(acc)),
                **{f"val_acc_{n}": v for n, v in zip(names, acc)},
                "train_s": 0.5,
                "same_as": "",
                **{m: sc.get(m, np.nan) for m in ("edr", "precision", "recall", "f1")},
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    return tmp_path


def make_run(root: Path, run_id: str, *, truth: bool = True, sweep: bool = False, images: bool = False) -> Path:
    path = write_synthetic_run(root, run_id, _tax(), noise=0.2, seed=1, methods=("mcfp",))
    run = Run(path)
    if images:  # domains.json as the pipeline writes it for a run made from images
        run.write_domains([{**d, "n_train": 40, "n_val": 10} for d in run.domains()])
    if not truth:
        run.write_ground_truth(None)
    if sweep:
        run.write_sweep_table(plausible_sweep(path))
    return path


def open_rel(tab: str | None = None, *, truth: bool = True, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("pages/relationships.py").run()
    if tab is not None:
        at.session_state["rel_tab" if truth else "rel_tab_real"] = tab
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _text(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "warning", "info", "error") for e in at.get(kind))


# ----------------------------------------------------------------------------- accuracy sweep


def test_sweep_tab_without_a_sweep_explains_and_says_an_image_free_run_cannot_be_swept(root):
    make_run(root, "r1")
    at = open_rel(SWEEP_TAB)
    text = _text(at)
    assert "cached training features" in text and "validation split" in text and "trained once" in text
    assert "needs the run's **cached features**" in text and "0 training and 0 validation images" in text
    assert at.button(key="sw_run").disabled  # nothing to launch on a run without images
    assert at.multiselect(key="sw_methods").value == ["threshold", "mcfp", "mcfp_binary", "density", "hypothesis"]
    assert at.number_input(key="sw_epochs").value == 30  # the run's universal recipe
    assert not at.get("plotly_chart") and not at.error


def test_sweep_tab_shows_a_failed_sweep_with_its_error(root):
    run = Run(make_run(root, "r1"))
    run.write_sweep_status(state="failed", done=0, total=None, error="run 'r1' has no validation images", pid=None)
    at = open_rel(SWEEP_TAB)
    assert len(at.error) == 1 and "has no validation images" in at.error[0].value
    assert at.button(key="sw_resume").disabled  # resuming cannot help an image-free run


def test_launch_button_calls_start_sweep(root, monkeypatch):
    import core.jobs

    calls = []
    monkeypatch.setattr(core.jobs, "start_sweep", lambda run_id, **kw: calls.append((run_id, kw)) or run_id)
    make_run(root, "r1", images=True)
    at = open_rel(SWEEP_TAB)
    assert not at.button(key="sw_run").disabled
    at.multiselect(key="sw_methods").set_value(["threshold", "hypothesis"])
    at.radio(key="sw_grid").set_value("fine")
    at.number_input(key="sw_epochs").set_value(7)
    at.button(key="sw_run").click().run()
    assert not at.exception and not at.error
    assert len(calls) == 1
    run_id, kw = calls[0]
    assert run_id == "r1" and kw["methods"] == ["threshold", "hypothesis"] and kw["grid"] == "fine"
    assert kw["epochs"] == 7 and Path(kw["root"]) == root


def test_launch_errors_show_as_one_error(root, monkeypatch):
    import core.jobs
    from core.runs import LockedError

    def refuse(run_id, **kw):
        raise LockedError(f"run {run_id!r} is locked by pid 4242 (run)")

    monkeypatch.setattr(core.jobs, "start_sweep", refuse)
    make_run(root, "r1", images=True)
    at = open_rel(SWEEP_TAB)
    at.button(key="sw_run").click().run()
    assert not at.exception
    assert len(at.error) == 1
    assert "Starting the sweep failed" in at.error[0].value and "locked by pid 4242" in at.error[0].value


def test_running_sweep_shows_progress_eta_and_cancels(root):
    from core.runlock import process_identity

    run = Run(make_run(root, "r1", sweep=True, images=True))
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_SWEEP, str(run.path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    try:
        run.write_sweep_status(
            state="running",
            done=3,
            total=10,
            eta_s=75.0,
            message="3/10 distinct taxonomies trained",
            error=None,
            pid=proc.pid,
            pid_identity=process_identity(proc.pid),
        )
        at = open_rel(SWEEP_TAB)
        bar = at.get("progress")[0].proto
        assert bar.value == 30 and "3/10" in bar.text and "ETA of the whole sweep 1 min 15 s" in bar.text
        assert len(at.get("plotly_chart")) == 1  # the rows so far, drawn while it runs
        assert "sw_run" not in [b.key for b in at.button]  # no second launch while one runs
        at.button(key="sw_cancel").click().run()
        assert run.sweep_status()["state"] == "cancelled"
        assert proc.wait(10) is not None  # the sweep's process group got SIGTERM
        assert not at.exception
        assert not at.button(key="sw_resume").disabled
        assert "sw_cancel" not in [b.key for b in at.button]
    finally:
        proc.kill()


def test_resume_after_a_cancel_calls_start_sweep_with_the_finished_rows_epochs(root, monkeypatch):
    import core.jobs

    calls = []
    monkeypatch.setattr(core.jobs, "start_sweep", lambda run_id, **kw: calls.append(kw) or run_id)
    run = Run(make_run(root, "r1", sweep=True, images=True))
    run.write_sweep_meta({"matrix": "hard", "universal": "x", "epochs": 12, "seed": 0})
    run.write_sweep_status(state="cancelled", done=4, total=10, message="cancelled by user", pid=None)
    at = open_rel(SWEEP_TAB)
    assert any("cancelled" in w.value for w in at.warning)
    at.button(key="sw_resume").click().run()
    assert calls == [{"root": str(root), "methods": None, "grid": "coarse", "epochs": 12, "fresh": False}]


def test_sweep_results_chart_best_table_and_correlations(root):
    from core.sweep import best_by_accuracy, sweep_correlations

    path = make_run(root, "r1", sweep=True)
    at = open_rel(SWEEP_TAB, method="density", p="0.5")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    fig = charts[0].proto.spec
    assert '"universal classes"' in fig and '"y2"' in fig  # second y axis
    assert "F1 (ground truth)" in fig  # a run with a ground truth shows F1 beside the accuracy
    best = at.dataframe[0].value
    table = Run(path).sweep_table()
    want = best_by_accuracy(table)
    assert list(best["method"]) == list(want["method"])
    assert best["val. accuracy (mean)"].tolist() == pytest.approx(want["val_acc_mean"].round(4).tolist())
    assert {"F1", "EDR"} <= set(best.columns)
    corr = sweep_correlations(table)
    text = _text(at)
    assert f"Across **{corr['n']}** distinct taxonomies" in text and f"ρ = {corr['f1']:+.2f}" in text
    assert f"ρ = {corr['neg_edr']:+.2f}" in text
    assert at.get("download_button")[0].proto.label == "⬇️ sweep.csv"
    acc = table.query("method == 'density' and value == 0.5")["val_acc_mean"].iloc[0]
    assert metric(at, "Val. accuracy (sweep)") == f"{acc:.3f}"  # the indicator reads the same row


def test_best_setting_button_moves_the_slider_and_the_url(root):
    path = make_run(root, "r1", sweep=True)
    table = Run(path).sweep_table()
    best = table.loc[table.query("method == 'density'")["val_acc_mean"].idxmax(), "value"]
    start = 0.95 if best != 0.95 else 0.9
    at = open_rel(SWEEP_TAB, method="density", p=str(start))  # the density slider is drawn, at another value
    assert at.slider(key="rel_density_p").value == pytest.approx(start)
    at.button(key="sw_use_density").click().run()
    assert not at.exception
    assert at.selectbox(key="rel_method").value == "density"
    assert at.slider(key="rel_density_p").value == pytest.approx(best)  # the slider moved
    assert at.query_params["method"] in ("density", ["density"])
    assert float(np.ravel([at.query_params["p"]])[0]) == pytest.approx(best)  # and the URL followed
    assert at.button(key="sw_use_density").disabled  # now the current setting
    k_best = table.loc[table.query("method == 'hypothesis'")["val_acc_mean"].idxmax(), "value"]
    at.button(key="sw_use_hypothesis").click().run()
    assert at.selectbox(key="rel_method").value == "hypothesis"
    assert at.slider(key="rel_hypothesis_k_max").value == int(k_best)
    assert at.query_params["k_max"] in (str(int(k_best)), [str(int(k_best))])


# ----------------------------------------------------------------------------- label-free indicators


def test_indicators_on_a_run_without_ground_truth(root):
    from core.evidence import label_free_indicators
    from core.selection import select_relationships
    from core.taxonomy import build_universal_taxonomy

    path = make_run(root, "r1", truth=False)
    at = open_rel(method="hypothesis", k_max="2")
    run = Run(path)
    W = {ab: select_relationships(P, "hypothesis", k_max=2) for ab, P in run.matrices("hard").items()}
    tax = build_universal_taxonomy(W, run.class_counts())
    want = label_free_indicators(W, run.class_counts(), tax.mappings)
    assert int(metric(at, "Universal classes")) == want["n_universal"] == len(tax.classes)
    assert metric(at, "Split classes") == f"{want['split_share']:.1%}"
    assert metric(at, "Two-way agreement") == f"{want['bidirectional_agreement']:.1%}"
    assert metric(at, "Val. accuracy (sweep)") == "—"
    assert not any(m.label == "F1" for m in at.metric) and any("no ground truth" in i.value for i in at.info)
    assert [t.label for t in at.tabs] == [SWEEP_TAB, EDGE_TAB]
    at.slider(key="rel_hypothesis_k_max").set_value(5).run()
    assert next(m for m in at.metric if m.label == "Universal classes").delta is not None  # change since before


def test_sweep_tab_on_a_run_without_ground_truth_has_no_f1(root):
    make_run(root, "r1", truth=False, sweep=True)
    at = open_rel(SWEEP_TAB, truth=False, method="mcfp")
    assert len(at.get("plotly_chart")) == 1 and "F1 (ground truth)" not in at.get("plotly_chart")[0].proto.spec
    assert "F1" not in at.dataframe[0].value.columns
    assert any("No ground truth" in c.value for c in at.caption)
    assert metric(at, "Val. accuracy (sweep)") != "—"


# ----------------------------------------------------------------------------- edge evidence


def test_edge_evidence_tab_lists_and_filters_the_candidates(root):
    from core.evidence import edge_table
    from core.selection import select_relationships

    path = make_run(root, "r1", truth=False)
    at = open_rel(EDGE_TAB, truth=False, method="threshold", t="0.3")
    run = Run(path)
    C = run.matrices("count")
    counts = [C[(a, (a + 1) % 3)].sum(axis=1).astype(int) for a in range(3)]
    W = {ab: select_relationships(P, "threshold", t=0.3) for ab, P in run.matrices("hard").items()}
    want = edge_table(C, counts, selected=W)
    df = at.dataframe[0].value
    assert len(df) == len(want) and {"relation", "confidence", "class a", "domain b"} <= set(df.columns)
    assert df["selected"].is_monotonic_decreasing  # the setting's edges first, strongest share first
    assert df.loc[df["selected"], "P(a→b)"].is_monotonic_decreasing
    at.toggle(key="ev_sel").set_value(True).run()
    assert len(at.dataframe[0].value) == int(want["selected"].sum()) and at.dataframe[0].value["selected"].all()
    at.multiselect(key="ev_rel").set_value(["equivalent"]).run()
    assert set(at.dataframe[0].value["relation"]) == {"equivalent"}
    at.toggle(key="ev_sel").set_value(False).run()
    names = run.domain_names()
    at.selectbox(key="ev_pair").set_value((names[1], names[0])).run()
    shown = at.dataframe[0].value
    assert len(shown) == int(((want["a"] == 1) & (want["b"] == 0) & (want["relation"] == "equivalent")).sum())
    assert set(shown["domain a"]) == {names[1]} and set(shown["domain b"]) == {names[0]}
    at.slider(key="ev_conf").set_value(0.9).run()
    assert (at.dataframe[0].value["confidence"] >= 0.9).all()
    assert at.get("download_button")[0].proto.label.startswith("⬇️ edges.csv")
    assert "one image is never evidence" in _text(at) and not at.exception


# ----------------------------------------------------------------------------- helpers


def test_correlation_text_is_honest_about_weak_and_negative_correlations():
    from ui.sweepview import correlation_text

    weak = correlation_text({"n": 52, "f1": -0.16, "f1_p": 0.26, "neg_edr": 0.7, "neg_edr_p": 0.001})
    assert "**52** distinct taxonomies" in weak and "ρ = -0.16 (p = 0.26)" in weak
    assert "F1 does not predict which setting trains the best universal model" in weak
    assert "a lower EDR goes with a better universal model" in weak
    neg = correlation_text({"n": 40, "f1": -0.6, "f1_p": 0.0001, "neg_edr": float("nan"), "neg_edr_p": float("nan")})
    assert "a higher F1 goes with a *worse* universal model" in neg and "no rank correlation" in neg


def test_accuracy_curves_mark_the_current_setting():
    from ui.sweepplot import accuracy_curves

    df = pd.DataFrame(
        {
            "method": ["threshold"] * 3 + ["mcfp"],
            "param": ["t"] * 3 + [""],
            "value": [0.1, 0.2, 0.3, np.nan],
            "n_universal": [30, 25, 20, 28],
            "val_acc_mean": [0.7, 0.8, 0.75, 0.72],
            "f1": [np.nan] * 4,
        }
    )
    fig = accuracy_curves(df, current=("threshold", 0.2))
    assert [s.x0 for s in fig.layout.shapes] == [0.2]  # the vertical line at the slider's value
    names = [t.name for t in fig.data]
    assert "threshold: val. accuracy" in names and "mcfp: val. accuracy" in names and "universal classes" in names
    assert not any("F1" in (n or "") for n in names)
    assert fig.data[names.index("universal classes")].yaxis == "y2"
    assert accuracy_curves(df, current=("mcfp", None)).layout.shapes == ()
