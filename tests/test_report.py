"""The run's self-contained HTML report (core.report), its command (python -m core report) and the
dashboard's download button (ui.reportview), on image-free synthetic runs (tests.sample_run)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.curation import EdgeRef, decide, undo
from core.report import (
    build_report,
    chosen_method,
    graph_svg,
    line_plot_svg,
    nice_ticks,
    report_inputs,
    taxonomy_stats,
)
from core.runs import CURATED, F, Run
from core.synthetic import make_synthetic_taxonomy
from core.taxonomy import build_universal_taxonomy
from tests.sample_run import write_synthetic_run

SECTIONS = ("run", "results", "selection", "sweep", "taxonomy", "decisions")
EVIL = "<script>alert(1)</script>"


def _tax():
    return make_synthetic_taxonomy(20, 3, 10, 4, 1.8, 1.0, seed=3)


def _sweep_table(run: Run) -> pd.DataFrame:
    """A small sweep table as core.sweep writes it (placeholder accuracies)."""
    names = run.domain_names()
    rows = []
    for k, (method, param, value) in enumerate(
        [("threshold", "t", 0.1), ("threshold", "t", 0.2), ("threshold", "t", 0.3), ("mcfp", "", None)]
    ):
        acc = [0.8 + 0.01 * k - 0.02 * a for a in range(len(names))]
        scores = {"edr": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5 + 0.01 * k}
        rows.append({"method": method, "param": param, "value": value, "n_edges": 40 - k, "n_universal": 20 + k,
                     "val_acc_mean": float(np.mean(acc)), **{f"val_acc_{n}": v for n, v in zip(names, acc)},
                     "train_s": 0.5, "same_as": "", **scores})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def full_run(tmp_path) -> Run:
    """A finished noise-model run with two methods, intervals in its results and a sweep table."""
    run = Run(write_synthetic_run(tmp_path, "r1", _tax(), noise=0.2, seed=1, methods=("mcfp", "threshold")))
    table, summary = run.results(), run.results_json()
    names = run.domain_names()
    summary["headline"] = {"universal_mean/mcfp": 0.70, "universal_mean/threshold": 0.71}
    summary["intervals"] = {
        "level": 0.95,
        "n_boot": 100,
        "accuracy": {"baseline": {n: [0.8, 0.75, 0.85] for n in [*names, "mean"]}},
        "vs_baseline": {"universal/mcfp": {"mean": {"diff": -0.01, "lo": -0.03, "hi": 0.02, "within_noise": True}}},
    }
    run.write_results(table, summary)
    run.write_sweep_table(_sweep_table(run))
    return run


@pytest.fixture
def partial_run(tmp_path) -> Run:
    """A run that finished only domains .. crossdomain."""
    return Run(write_synthetic_run(tmp_path, "r0", _tax(), noise=0.2, seed=1, full=False))


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="(\w+)">(.*?)</section>', text, flags=re.S))


# ----------------------------------------------------------------------------- the report


def test_full_run_has_every_section_with_its_content(full_run):
    text = build_report(full_run)
    sec = _sections(text)
    assert list(sec) == list(SECTIONS)
    assert "could not be built" not in text
    assert "r1" in sec["run"] and "syn0" in sec["run"] and "efficientnet_lite0" in sec["run"]
    # results: one row per model, the baseline's interval, the paired difference
    assert "<td>baseline</td>" in sec["results"] and "<td>mcfp</td>" in sec["results"]
    assert "[0.750, 0.850]" in sec["results"] and "within noise" in sec["results"]
    # selection: both saved methods, the universal classes, scores computed from the ground truth
    for key in full_run.methods():
        assert f"<td>{key}</td>" in sec["selection"]
        assert f'<td class="n">{full_run.taxonomy(key).n_universal}</td>' in sec["selection"]
    assert "<th>F1</th>" in sec["selection"]
    # sweep: a line plot with ticks and a legend, the best table
    assert sec["sweep"].count("<svg") == 1 and "<polyline" in sec["sweep"] and "mcfp: " in sec["sweep"]
    assert "Best setting per method" in sec["sweep"]
    # taxonomy: the best method by the headline (threshold), its statistics and its picture
    assert chosen_method(full_run) == "threshold"
    assert "Method threshold" in sec["taxonomy"] and "<svg" in sec["taxonomy"]
    stats = taxonomy_stats(full_run.taxonomy("threshold"))
    assert f"{stats['n_joining']} of {stats['n_universal']}" in sec["taxonomy"]
    assert "No decisions logged" in sec["decisions"]


def test_partial_run_builds_and_says_what_is_missing(partial_run):
    text = build_report(partial_run)
    sec = _sections(text)
    assert list(sec) == list(SECTIONS) and "could not be built" not in text
    assert "syn0" in sec["run"]
    assert "No results yet" in sec["results"]
    assert "No selection yet" in sec["selection"]
    assert "No accuracy sweep" in sec["sweep"]
    assert "No taxonomy saved yet" in sec["taxonomy"]
    assert "No decisions logged" in sec["decisions"]


def test_an_empty_run_folder_still_builds(tmp_path):
    from core.runs import init_run_dir

    run = Run(init_run_dir(tmp_path / "empty"))
    text = build_report(run)
    assert "No domains yet" in text and "No config in the run folder" in text and "No results yet" in text


def test_decisions_table_shows_notes_undone_and_scores(full_run):
    decide(full_run, "accept", [EdgeRef(0, 0, 1, 0)], note="same object, checked by hand", author="ann",
           relation="equivalent")  # fmt: skip
    decide(full_run, "reject", [EdgeRef(0, 1, 2, 0), EdgeRef(1, 1, 2, 1)], note="noise", author="bob")
    decide(full_run, "add", [EdgeRef(2, 2, 0, 2)], note="to be undone", author="bob")
    undo(full_run, author="bob")
    with open(full_run.file(F.CURATION), "a", encoding="utf-8") as fh:
        fh.write("not json\n")
    sec = _sections(build_report(full_run, method="mcfp"))["decisions"]
    assert "same object, checked by hand" in sec and "equivalent" in sec and "ann" in sec
    names, classes = full_run.domain_names(), full_run.class_names()
    assert f"{names[0]}:{classes[0][0]} → {names[1]}:{classes[1][0]}" in sec
    assert "to be undone" not in sec and "2 decision(s) in force, 1 undone" in sec
    assert "Log problems (1)" in sec and "not a JSON object" in sec
    assert "The decisions as ground truth for mcfp" in sec and "<th>precision</th>" in sec


def test_class_names_and_notes_are_escaped(full_run):
    domains = full_run.domains()
    domains[0]["class_names"][0] = EVIL
    full_run.write_domains(domains)
    names, classes, counts = full_run.domain_names(), full_run.class_names(), full_run.class_counts()
    for key in full_run.methods():
        W = full_run.relationships(key)
        full_run.write_taxonomy(key, build_universal_taxonomy(W, counts, class_names=classes, domain_names=names))
    decide(full_run, "accept", [EdgeRef(0, 0, 1, 0)], note='<img src=x onerror="alert(2)"> "quoted"')
    text = build_report(full_run)
    assert EVIL not in text and "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in text


def test_nothing_is_loaded_from_elsewhere(full_run):
    domains = full_run.domains()
    domains[1]["class_names"][0] = "see https://example.org/x"
    full_run.write_domains(domains)
    decide(full_run, "accept", [EdgeRef(1, 0, 0, 0)], note="cf. http://example.org/y")
    text = build_report(full_run)
    assert "see https://example.org/x" in text  # as text it may appear ...
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, flags=re.I)  # ... never as a link
    assert "<script" not in text.lower() and "@import" not in text and "url(" not in text
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', text))  # only the page's own anchors


def test_unknown_method_is_refused_with_the_saved_ones(full_run):
    with pytest.raises(ValueError, match=r"method 'nope' has no saved taxonomy in run 'r1'; saved: \['mcfp'"):
        build_report(full_run, method="nope")


def test_chosen_method_best_then_first_then_none(full_run, partial_run):
    summary = full_run.results_json()
    summary["headline"] = {"universal_mean/mcfp": 0.9, "universal_mean/threshold": float("nan")}
    full_run.write_results(full_run.results(), summary)
    assert chosen_method(full_run) == "mcfp"
    summary["headline"] = {}
    full_run.write_results(full_run.results(), summary)
    assert chosen_method(full_run) == full_run.methods()[0]
    assert chosen_method(full_run, "threshold") == "threshold"
    assert chosen_method(partial_run) is None


def test_a_damaged_file_spoils_only_its_section(full_run):
    full_run.file(F.SWEEP_CSV).write_text("method,value\nmcfp,\n")  # no val_acc_mean column
    sec = _sections(build_report(full_run))
    assert "could not be built" in sec["sweep"] and "not a sweep table" in sec["sweep"]
    assert "could not be built" not in sec["results"] + sec["taxonomy"]


def test_curated_model_appears_as_method_curated(full_run):
    """A curated taxonomy and model (core.curated writes them under the key ``curated``): the
    report, the dashboard's headline helpers and the CLI's status all take it."""
    from core.cli import main
    from ui.runview import best_method, headline_table

    counts, names, classes = full_run.class_counts(), full_run.domain_names(), full_run.class_names()
    W = full_run.relationships("mcfp")
    base = {"method": "mcfp", "param": None, "value": None, "matrix": "hard"}
    full_run.write_selection(CURATED, W, {"method": CURATED, "params": {}, "base": base})
    full_run.write_taxonomy(CURATED, build_universal_taxonomy(W, counts, class_names=classes, domain_names=names))
    full_run.write_universal(CURATED, [], {n: 0.99 for n in names})
    # first: only its metrics (results not rewritten yet)
    sec = _sections(build_report(full_run))
    assert "<td>curated</td>" in sec["results"] and "0.990" in sec["results"]
    assert "<td>curated</td>" in sec["selection"] and "decisions on mcfp" in sec["selection"]
    # then: a results table with the curated column, as the results step writes it
    table, summary = full_run.results(), full_run.results_json()
    table[f"universal/{CURATED}"] = 0.98
    summary["headline"][f"universal_mean/{CURATED}"] = 0.98
    full_run.write_results(table, summary)
    sec = _sections(build_report(full_run))
    assert sec["results"].count("<td>curated</td>") == 1 and "0.980" in sec["results"]
    assert chosen_method(full_run) == CURATED and "Method curated" in sec["taxonomy"]
    assert best_method(summary["headline"], full_run.methods()) == CURATED
    assert CURATED in set(headline_table(summary["headline"])["method"])
    assert main(["status", str(full_run.path)]) == 0


def test_a_curated_taxonomy_is_shown_beside_the_best_method(full_run):
    counts, names, classes = full_run.class_counts(), full_run.domain_names(), full_run.class_names()
    W = {ab: w.copy() for ab, w in full_run.relationships("mcfp").items()}
    first = next(iter(W))
    W[first][:] = 0.0  # a curated taxonomy unlike the chosen one
    base = {"method": "mcfp", "param": None, "value": None, "matrix": "hard"}
    full_run.write_selection(CURATED, W, {"method": CURATED, "params": {}, "base": base})
    tax = build_universal_taxonomy(W, counts, class_names=classes, domain_names=names)
    full_run.write_taxonomy(CURATED, tax)
    assert chosen_method(full_run) == "threshold"  # the headline has no curated model
    sec = _sections(build_report(full_run))["taxonomy"]
    assert "Method threshold (the run&#x27;s best" in sec
    assert "Curated taxonomy (method curated: the researcher&#x27;s decisions on mcfp (hard matrices))" in sec
    assert sec.count("<svg") == 2 and sec.index("Method threshold") < sec.index("Curated taxonomy")
    curated_part = sec[sec.index("Curated taxonomy") :]
    stats = taxonomy_stats(tax)
    assert f"{stats['n_joining']} of {stats['n_universal']}" in curated_part
    # the curated taxonomy chosen on the command line: shown once
    sec = _sections(build_report(full_run, method=CURATED))["taxonomy"]
    assert sec.count("<svg") == 1 and "Curated taxonomy" not in sec and "decisions on mcfp" in sec
    # no curated taxonomy: one picture
    assert _sections(build_report(full_run, method="mcfp"))["taxonomy"].count("<svg") == 2
    full_run.file(F.taxonomy(CURATED, "taxonomy.json")).unlink()
    assert _sections(build_report(full_run, method="mcfp"))["taxonomy"].count("<svg") == 1


def test_within_noise_footnote_states_the_rule_of_paired_difference(full_run):
    sec = _sections(build_report(full_run))["results"]
    assert "within noise&#x27;: the 95% interval contains 0 OR the exact McNemar test" in sec
    assert "does not reject (p ≥ 0.05)" in sec


# ----------------------------------------------------------------------------- figures


def test_nice_ticks_are_round_and_inside():
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.8831, 0.9012)
    assert ticks == [0.885, 0.89, 0.895, 0.9]
    assert nice_ticks(1, 10, 6) == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(3, 3) == [3.0] and nice_ticks(1, 0) == nice_ticks(0, 1)
    with pytest.raises(ValueError, match=r"tick range \[0, nan\] is not finite"):
        nice_ticks(0, float("nan"))


def test_line_plot_has_axes_ticks_legend_and_escapes():
    svg = line_plot_svg(
        [
            {
                "label": "a<b",
                "x": [0.1, 0.3, 0.2, 0.4],
                "y": [0.5, 0.7, float("nan"), 0.6],
                "colour": "#000",
                "best": 0.3,
            }
        ],
        hlines=[{"label": "ref & co", "y": 0.55, "colour": "#f00"}],
        title="t",
        x_label="x",
        y_label="y",
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "a&lt;b" in svg and "ref &amp; co" in svg and "a<b" not in svg
    assert svg.count('points="') == 1 and len(re.search(r'points="([^"]*)"', svg).group(1).split()) == 3  # NaN left out
    assert 'stroke-dasharray="5 3"' in svg  # the reference line and its legend entry
    assert ">0.2<" in svg and ">0.60<" in svg  # x and y tick labels


def test_graph_stays_within_the_node_limit_and_says_what_it_omits(full_run):
    tax = full_run.taxonomy("threshold")
    stats = taxonomy_stats(tax)
    svg, caption = graph_svg(tax, max_nodes=12)
    nodes = len(re.findall(r'<circle cx="(?:150|400)"', svg))  # universal (x=150) and member (x=400) nodes
    assert 0 < nodes <= 12
    shown = int(re.search(r"Shown: (\d+) of the (\d+)", caption).group(1))
    assert re.search(rf"Shown: {shown} of the {stats['n_joining']} such classes \({nodes} nodes\)", caption)
    assert f"{stats['n_joining'] - shown} more left out" in caption
    assert f"the {stats['n_universal'] - stats['n_joining']} universal classes of a single domain" in caption
    with pytest.raises(ValueError, match="max_nodes must be at least 2, got 1"):
        graph_svg(tax, max_nodes=1)


def test_universal_labels_tell_the_classes_apart(full_run):
    from core.report_svg import _pick_classes, _strip_common_prefix, universal_labels

    tax = full_run.taxonomy("threshold")
    _, drawn = _pick_classes(tax, 60)
    labels = universal_labels(tax, drawn)
    assert len(drawn) > 3
    cut_to = [lab.split(") ", 1)[1][:12] for lab in labels.values()]  # what is left after "U12 (3) "
    old = [f"U{u} {tax.names[u]}"[:19] for u in drawn]  # the old labels, cut to 20 characters
    assert len({o.split(" ", 1)[1] for o in old}) < len(set(cut_to))  # the new labels differ more
    for u, lab in labels.items():
        assert lab.startswith(f"U{u} ({len(tax.classes[u])}) ")
        assert any(lab.endswith(tax.class_names[a][i]) for a, i in tax.classes[u])
    svg, _ = graph_svg(tax)
    u = drawn[0]
    assert f"<title>U{u} {tax.names[u]} ({len(tax.classes[u])} members)</title>" in svg  # the full name as tooltip
    # a hand-made case: two classes sharing their first member get different labels
    W = {(0, 1): np.array([[0.9, 0.8], [0.0, 0.0]]), (1, 0): np.zeros((2, 2))}
    hand = build_universal_taxonomy(W, [2, 2], class_names=[["thing x", "y"], ["thing cat", "thing dog"]],
                                    domain_names=["A", "B"])  # fmt: skip
    assert hand.names[:2] == ["A:thing x / B:thing cat", "A:thing x / B:thing dog"]  # alike when cut
    assert universal_labels(hand, [0, 1]) == {0: "U0 (2) …cat", 1: "U1 (2) …dog"}
    assert _strip_common_prefix(["blue dotted ring", "blue dotted square"]) == ["…ring", "…square"]
    assert _strip_common_prefix(["c1", "c2"]) == ["c1", "c2"]  # no separator: nothing stripped
    assert _strip_common_prefix(["ab ", "ab c"]) == ["ab ", "ab c"]  # one would be empty
    assert _strip_common_prefix(["only one"]) == ["only one"]


def test_taxonomy_stats_of_a_hand_made_taxonomy():
    W = {(0, 1): np.array([[0.9, 0.0], [0.0, 0.0]]), (1, 0): np.array([[0.8, 0.0], [0.0, 0.0]])}
    tax = build_universal_taxonomy(W, [2, 2], class_names=[["a", "b"], ["c", "d"]], domain_names=["A", "B"])
    s = taxonomy_stats(tax)
    assert (s["n_universal"], s["n_domain_classes"], s["n_joining"], s["n_split"]) == (3, 4, 1, 0)
    assert s["size_counts"] == {1: 2, 2: 1} and s["members_max"] == 2 and s["members_min"] == 1
    assert s["per_domain"] == [
        {"domain": "A", "classes": 2, "universal": 2},
        {"domain": "B", "classes": 2, "universal": 2},
    ]
    svg, caption = graph_svg(tax)
    assert "Shown: 1 of the 1 such classes (3 nodes)" in caption and "left out" not in caption
    alone = build_universal_taxonomy({}, [1, 1], class_names=[["a"], ["c"]], domain_names=["A", "B"])
    svg, caption = graph_svg(alone)
    assert svg == "" and "No universal class joins two domains" in caption


def test_report_inputs_name_the_files_read(full_run):
    files = report_inputs(full_run)
    assert {F.RESULTS_CSV, F.RESULTS_JSON, F.SWEEP_CSV, F.CURATION, F.DOMAINS} <= set(files)
    assert F.taxonomy("mcfp", "taxonomy.json") in files


def test_report_module_imports_no_torch_nor_streamlit():
    from tests.conftest import heavy_imports

    assert heavy_imports("core.report, core.cli_report") == []
    assert heavy_imports("core.report", heavy=("ui", "ui.graph")) == []  # core never imports ui


def test_the_palette_has_one_owner_shared_by_the_report_and_the_dashboard(full_run):
    import core.palette as palette
    import core.report as report
    from ui import graph

    assert report.DOMAIN_COLOURS is palette.DOMAIN_COLOURS is graph.DOMAIN_COLOURS
    assert graph.RELATION_COLOURS is palette.RELATION_COLOURS and graph.UNIVERSAL_COLOUR is palette.UNIVERSAL_COLOUR
    svg, _ = graph_svg(full_run.taxonomy("threshold"))
    assert f'fill="{palette.UNIVERSAL_COLOUR}"' in svg and f'fill="{palette.DOMAIN_COLOURS[0]}"' in svg


# ----------------------------------------------------------------------------- the command


def test_cli_writes_the_run_report_and_refuses_existing_out_without_force(full_run, tmp_path, capsys):
    from core.cli import main

    assert main(["report", str(full_run.path)]) == 0
    target = full_run.file(F.REPORT)
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out = tmp_path / "mine.html"
    out.write_text("keep me")
    assert main(["report", str(full_run.path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; choose another name, or add --force to replace it" in err
    assert out.read_text() == "keep me"
    assert main(["report", str(full_run.path), "--out", str(out), "--force", "--method", "mcfp"]) == 0
    assert "Method mcfp (chosen on the command line)" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "no-such-run"], "no-such-run"),
        (["report", "r1", "--method", "nope"], "method 'nope' has no saved taxonomy"),
        (["report", "r1", "--out", "/no/such/folder/x.html"], "the folder /no/such/folder does not exist"),
        (["report", "r1", "--out", "."], "is a folder"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(full_run, monkeypatch, capsys, argv, message):
    from core.cli import main

    monkeypatch.setenv("UNITAX_RUNS", str(full_run.path.parent))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_cli_refuses_a_folder_the_tool_did_not_create(tmp_path, capsys):
    from core.cli import main

    path = write_synthetic_run(tmp_path, "r2", _tax(), full=False)
    (path / ".unitax-run").unlink()
    assert main(["report", str(path)]) == 2
    assert "no .unitax-run marker" in capsys.readouterr().err and not (path / F.REPORT).exists()


# ----------------------------------------------------------------------------- the dashboard


@pytest.mark.slow
def test_download_button_on_home_and_runs_pages(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    import streamlit as st

    from tests.conftest import page_opener

    got = {}
    original = st.download_button

    def spy(label, data, *args, **kwargs):
        got[kwargs.get("key")] = data
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    write_synthetic_run(tmp_path, "r-a", _tax(), noise=0.3, seed=1)
    open_page = page_opener(tmp_path, monkeypatch)
    at = open_page("home")
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["⬇️ Report (HTML)"]
    build = got["report_r-a"]
    assert callable(build)  # built on click, not while the page is drawn
    html = build()
    assert html.startswith("<!DOCTYPE html>") and "Unitax report: r-a" in html
    at = open_page("runs")  # one run: its report under the note that comparing needs two
    assert len(at.get("download_button")) == 1
    write_synthetic_run(tmp_path, "r-b", _tax(), noise=0.2, seed=2)
    at = open_page("runs")  # two runs compared: one report each
    assert [b.proto.label for b in at.get("download_button")] == ["⬇️ Report (HTML)"] * 2
    assert not at.error


def test_report_download_builds_once_per_version_of_the_files(full_run):
    pytest.importorskip("streamlit")
    from ui.reportview import _build, report_stamps

    stamps = report_stamps(full_run)
    first = _build(str(full_run.path), full_run.id, stamps)
    assert first == _build(str(full_run.path), full_run.id, stamps)  # cached: the same text, time included
    decide(full_run, "accept", [EdgeRef(0, 0, 1, 0)], note="new")
    assert report_stamps(full_run) != stamps
    assert "new" in _sections(_build(str(full_run.path), full_run.id, report_stamps(full_run)))["decisions"]
    broken = _build(str(Path(full_run.path) / "missing"), "missing", stamps)
    assert "could not be built" in broken and "<script" not in broken
