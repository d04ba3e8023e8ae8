"""core.mapping_io: SSSOM and CSV exports of the curated edge set (columns, SKOS predicates per
relation, justifications, the YAML header), the CSV round trip, imports as decisions and as the
ground truth (Run.true_relationships and its users), and every bad-file error."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import yaml

from core import mapping_io
from core.crossdomain import normalize_rows
from core.curation import EdgeRef, curated_table, decide, load_state, parse_class, setting_edges, undo
from core.evidence import edge_table
from core.fsio import CorruptFileError
from core.mapping_io import (
    AUTOMATIC,
    CSV_COLUMNS,
    MANUAL,
    SSSOM_COLUMNS,
    import_decisions,
    import_truth,
    mapping_csv,
    read_mapping_csv,
    sssom_table,
    sssom_text,
    write_sssom,
)
from core.runs import F, Run, init_run_dir

# Two domains of three classes, 100 test images each. Evidence (p_ab, p_ba) of the edges the
# threshold 0.25 selects: a0->b0 (.9, .8) equivalent, a1->b1 (.8, .3) narrower, a2->b2 (.4, .9)
# broader, a2->b0 (.3, .1) overlap; a0->b2 (0, 0) is no candidate.
C_AB = np.array([[90, 10, 0], [10, 80, 10], [30, 30, 40]], dtype=float)
C_BA = np.array([[80, 10, 10], [30, 30, 40], [0, 10, 90]], dtype=float)
CONFIG = {
    "crossdomain": {"matrix": "hard"},
    "selection": {"methods": [{"name": "threshold", "params": {"t": 0.25}, "label": "threshold"}]},
    "domains": {"list": []},
}


def write_run(root, names=("A", "B"), classes=(("a0", "a1", "a2"), ("b0", "b1", "b2")), config=CONFIG) -> Run:
    run = Run(init_run_dir(root / "r"))
    run.write_config(config)
    run.write_domains(
        [
            {"name": n, "source": "x", "shift": "none", "class_names": list(c), "n_train": 0, "n_val": 0, "n_test": 300}
            for n, c in zip(names, classes)
        ]  # fmt: skip
    )
    counts = {(0, 1): C_AB, (1, 0): C_BA}
    hard = {ab: normalize_rows(c) for ab, c in counts.items()}
    run.write_crossdomain({"count": counts, "hard": hard, "soft": hard}, {}, {}, {}, {})
    return run


@pytest.fixture
def run(tmp_path) -> Run:
    return write_run(tmp_path)


def rows_by_edge(df: pd.DataFrame) -> dict:
    return {(r.subject_id, r.object_id): r for r in df.itertuples()}


def curated_set(run, method="threshold", value=0.25) -> set[EdgeRef]:
    table = curated_table(setting_edges(run.matrices("hard"), method, value), load_state(run),
                          run.domain_names(), run.class_names())  # fmt: skip
    return {EdgeRef(int(a), int(i), int(b), int(j)) for a, i, b, j in zip(table.a, table.i, table.b, table.j)}


# ----------------------------------------------------------------------------- SSSOM


def test_sssom_predicates_follow_the_evidence_in_the_skos_direction(run):
    df = sssom_table(run, "threshold", 0.25)
    assert list(df.columns) == SSSOM_COLUMNS
    rows = rows_by_edge(df)
    pred = {k: r.predicate_id for k, r in rows.items()}
    assert pred["A:a0", "B:b0"] == "skos:exactMatch"  # equivalent
    assert pred["A:a1", "B:b1"] == "skos:broadMatch"  # narrower: a1 is a part of b1, b1 is broader
    assert pred["B:b1", "A:a1"] == "skos:narrowMatch"  # the same pair seen from b1: a1 is narrower
    assert pred["A:a2", "B:b2"] == "skos:narrowMatch"  # broader: b2 is a part of a2
    assert pred["B:b2", "A:a2"] == "skos:broadMatch"
    assert pred["A:a2", "B:b0"] == "skos:relatedMatch"  # overlap
    assert len(df) == 10  # every selected edge, both directions
    assert set(df.mapping_justification) == {AUTOMATIC}
    ev = edge_table(run.matrices("count"), [np.full(3, 100), np.full(3, 100)])
    conf = {(r.a, r.i, r.b, r.j): r.confidence for r in ev.itertuples()}
    assert rows["A:a1", "B:b1"].confidence == pytest.approx(conf[0, 1, 1, 1], abs=1e-6)
    assert rows["A:a0", "B:b0"].subject_label == "a0" and rows["A:a0", "B:b0"].object_label == "b0"
    assert all(c.startswith("setting threshold=0.25 (hard matrices)") for c in df.comment)


def test_a_decision_overrides_the_evidence_and_is_manual_with_confidence_one(run):
    decide(run, "accept", [EdgeRef(0, 2, 1, 0)], relation="equivalent", note="same thing", author="ann")
    decide(run, "add", [EdgeRef(0, 0, 1, 2)], author="bob")  # no candidate, no relation
    decide(run, "add", [EdgeRef(1, 2, 0, 0)], relation="broader", author="bob")  # no candidate either
    decide(run, "reject", [EdgeRef(0, 2, 1, 1)])
    rows = rows_by_edge(sssom_table(run, "threshold", 0.25))
    r = rows["A:a2", "B:b0"]
    assert (r.predicate_id, r.mapping_justification, r.confidence) == ("skos:exactMatch", MANUAL, 1.0)
    assert "accepted by ann" in r.comment and "note: same thing" in r.comment
    r = rows["A:a0", "B:b2"]
    assert (r.predicate_id, r.mapping_justification, r.confidence) == ("skos:relatedMatch", MANUAL, 1.0)
    assert "added by bob" in r.comment
    assert rows["B:b2", "A:a0"].predicate_id == "skos:narrowMatch"  # broader, as the researcher said
    assert ("A:a2", "B:b1") not in rows  # rejected


def test_provenance_says_accepted_unless_the_action_was_add(run):
    # "both directions": a2 -> b0 is selected, b0 -> a2 is not (p 0.1 < 0.25)
    decide(run, "accept", [EdgeRef(0, 2, 1, 0), EdgeRef(1, 0, 0, 2)], author="ann")
    decide(run, "add", [EdgeRef(0, 0, 1, 2)], author="bob")  # no method selects it
    decide(run, "add", [EdgeRef(0, 1, 1, 1)], author="cy")  # an add of a selected edge (an import does that)
    rows = rows_by_edge(sssom_table(run, "threshold", 0.25))
    assert "; accepted by ann at " in rows["A:a2", "B:b0"].comment
    assert "; accepted by ann (not selected by the setting) at " in rows["B:b0", "A:a2"].comment
    assert "; added by bob at " in rows["A:a0", "B:b2"].comment
    assert "; added by cy at " in rows["A:a1", "B:b1"].comment
    assert not any("added by ann" in c for c in rows_by_edge(sssom_table(run, "threshold", 0.25)).keys())
    assert all("added by ann" not in r.comment for r in rows.values())
    # the CSV: source as core.curation.curated_table says it, the action beside it
    df = mapping_csv(run, "threshold", 0.25)
    got = {(r.class_a, r.class_b): (r.source, r.action) for r in df.itertuples()}
    assert got["a2", "b0"] == ("accepted", "accept")
    assert got["b0", "a2"] == ("added", "accept")  # not selected, accepted: curated_table's "added"
    assert got["a0", "b2"] == ("added", "add")
    assert got["a1", "b1"] == ("accepted", "add")
    assert got["b1", "a1"][0] == "selected" and pd.isna(got["b1", "a1"][1])
    table = curated_table(setting_edges(run.matrices("hard"), "threshold", 0.25), load_state(run),
                          run.domain_names(), run.class_names())  # fmt: skip
    assert list(df.source) == list(table.source)


def test_sssom_text_has_a_yaml_header_and_a_tsv_table(run, tmp_path):
    df = sssom_table(run, None, None)  # the config's first method: threshold 0.25
    text = sssom_text(df)
    lines = text.split("\n")
    head = [line for line in lines if line.startswith("#")]
    assert lines[: len(head)] == head  # the block comes first
    meta = yaml.safe_load("\n".join(line[1:] for line in head))
    assert list(meta)[0] == "curie_map"
    assert set(meta["curie_map"]) == {"A", "B"}
    assert all(v.startswith("https://") and v.endswith("/") for v in meta["curie_map"].values())
    assert meta["mapping_set_id"].startswith("urn:uuid:") and meta["license"].startswith("https://")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", str(meta["mapping_date"]))
    table = pd.read_csv(io.StringIO("\n".join(lines[len(head) :])), sep="\t", keep_default_na=False)
    assert list(table.columns) == SSSOM_COLUMNS and len(table) == len(df) == 10
    used = {c.split(":")[0] for c in pd.concat([table.subject_id, table.object_id])}
    assert used <= set(meta["curie_map"])
    path = write_sssom(df, tmp_path / "m.sssom.tsv")
    assert path.read_text(encoding="utf-8") == text
    with pytest.raises(ValueError, match="no SSSOM metadata"):
        sssom_text(pd.DataFrame(columns=SSSOM_COLUMNS))


def test_awkward_names_make_valid_curies_that_decode_to_the_class(tmp_path):
    names = ("my set", "2nd")
    classes = (("a/b", "x:y", "dup"), ('q"uote', "tab\there", "dup"))
    run = write_run(tmp_path, names=names, classes=classes)
    decide(run, "add", [EdgeRef(0, 1, 1, 1)], note='a "quoted"\tnote\nover two lines')
    df = sssom_table(run, "threshold", 0.25)
    meta = df.attrs["sssom"]
    assert set(meta["curie_map"]) == {"my_set", "d_2nd"}
    for curie, label in zip(pd.concat([df.subject_id, df.object_id]), pd.concat([df.subject_label, df.object_label])):
        prefix, local = curie.split(":", 1)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", prefix) and re.fullmatch(r"[A-Za-z0-9_.~%-]+", local)
        domain = {"my_set": "my set", "d_2nd": "2nd"}[prefix]
        a, i = parse_class(f"{domain}:{unquote(local)}", names, classes)
        assert classes[a][i] == label
    text = sssom_text(df)
    body = text[text.index("\nsubject_id") + 1 :]
    back = pd.read_csv(io.StringIO(body), sep="\t", keep_default_na=False)
    assert list(back.comment) == list(df.comment)  # quotes, tabs and newlines survive the quoting


def test_prefixes_are_valid_unique_and_not_built_in():
    assert mapping_io._prefixes(["skos", "a b", "a_b", "1", ""]) == ["skos_2", "a_b", "a_b_2", "d_1", "domain"]


# ----------------------------------------------------------------------------- CSV and its round trip


def test_mapping_csv_columns_and_values(run):
    decide(run, "accept", [EdgeRef(0, 1, 1, 1)], note="yes", author="ann")
    df = mapping_csv(run, "threshold", 0.25)
    assert list(df.columns) == CSV_COLUMNS and len(df) == 10
    r = df[(df.class_a == "a1") & (df.class_b == "b1")].iloc[0]
    assert (r.source, r.action, r.weight, r.confidence, r.author, r.note) == ("accepted", "accept", 1.0, 1.0, "ann",
                                                                               "yes")  # fmt: skip
    assert (r.p_ab, r.p_ba, r.relation, r.direction) == (pytest.approx(0.8), pytest.approx(0.3), "narrower", "both")
    r = df[(df.class_a == "a2") & (df.class_b == "b2")].iloc[0]
    assert (r.source, r.weight, r.relation, r.direction) == ("selected", pytest.approx(0.4), "broader", "both")
    r = df[(df.class_a == "a2") & (df.class_b == "b0")].iloc[0]
    assert (r.relation, r.direction) == ("overlap", "a->b")  # b0 -> a2 is not selected: imports as a2 -> b0 only
    r = df[(df.class_a == "a0") & (df.class_b == "b0")].iloc[0]
    assert (r.relation, r.direction) == ("equivalent", "both")


def test_csv_relation_is_the_sssom_predicates_relation(run):
    decide(run, "accept", [EdgeRef(0, 2, 1, 0)], relation="equivalent")
    decide(run, "add", [EdgeRef(0, 0, 1, 2)])  # no candidate, no relation: unknown
    decide(run, "add", [EdgeRef(1, 2, 0, 0)], relation="broader")
    csv = mapping_csv(run, "threshold", 0.25)
    sssom = sssom_table(run, "threshold", 0.25)
    assert len(csv) == len(sssom) == 12
    relation_of = {p: r for r, p in mapping_io.PREDICATES.items() if r != "overlap"}
    for c, s in zip(csv.itertuples(), sssom.itertuples()):
        assert (c.class_a, c.class_b) == (s.subject_label, s.object_label)
        expect = relation_of.get(s.predicate_id)
        assert c.relation == expect if expect else c.relation in ("overlap", "")
    got = {(r.class_a, r.class_b): (r.relation, r.direction) for r in csv.itertuples()}
    assert got["a0", "b2"] == ("", "both") and got["b2", "a0"] == ("broader", "both")  # two adds: both ways
    assert got["a2", "b0"] == ("equivalent", "a->b")  # the decision's relation, one way
    assert sum(r == "narrower" for r, _ in got.values()) == 2  # a1 -> b1 and b2 -> a2: only the evidence's


def test_csv_round_trip_gives_the_same_curated_edge_set(run, tmp_path):
    decide(run, "reject", [EdgeRef(0, 2, 1, 1), EdgeRef(1, 1, 0, 0)])
    decide(run, "add", [EdgeRef(0, 0, 1, 2)], relation="equivalent")  # one way although "equivalent"
    decide(run, "accept", [EdgeRef(1, 2, 0, 2)], relation="broader")
    before = curated_set(run)
    path = tmp_path / "out.csv"
    df = mapping_csv(run, "threshold", 0.25)
    assert {"broader", "narrower"} <= set(df.relation) and set(df.direction) == {"a->b", "both"}
    path.write_text(mapping_io.csv_text(df), encoding="utf-8")
    edges = read_mapping_csv(path, run.domain_names(), run.class_names())
    assert {e for e, _ in edges} == before
    stated = {EdgeRef(*k): r or None for k, r in zip(mapping_io._keys(_with_ids(run, df)), df.relation)}
    assert dict(edges) == stated  # each edge keeps its own row's relation
    d = import_decisions(run, path)
    assert d.action == "add" and d.note == "imported from out.csv" and set(d.edges) == before
    assert curated_set(run) == before
    assert undo(run).id == d.id  # one decision: one undo


def _with_ids(run, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the indices a, i, b, j of its rows (class names read back)."""
    names, classes = run.domain_names(), run.class_names()
    ends = [
        (parse_class(f"{da}:{ca}", names, classes), parse_class(f"{db}:{cb}", names, classes))
        for da, ca, db, cb in zip(df.domain_a, df.class_a, df.domain_b, df.class_b)
    ]
    return pd.DataFrame({"a": [x[0][0] for x in ends], "i": [x[0][1] for x in ends],
                         "b": [x[1][0] for x in ends], "j": [x[1][1] for x in ends]})  # fmt: skip


def test_csv_round_trip_with_duplicate_and_index_like_names(tmp_path):
    run = write_run(tmp_path, classes=(("x", "x", "#0"), ("b0", " padded ", "b,2")))
    decide(run, "add", [EdgeRef(0, 1, 1, 1), EdgeRef(1, 2, 0, 2)])
    df = mapping_csv(run, "threshold", 0.25)
    assert set(df.class_a) <= {"#0", "#1", "#2", "b0", "b,2"}  # the shared and index-like names by index
    path = tmp_path / "dup.csv"
    path.write_text(mapping_io.csv_text(df), encoding="utf-8")
    assert {e for e, _ in read_mapping_csv(path, run.domain_names(), run.class_names())} == curated_set(run)


# ----------------------------------------------------------------------------- reading CSV files


def write(tmp_path, text: str | bytes, name="in.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_relations_give_directions(tmp_path):
    path = write(
        tmp_path,
        "\ufeffClass_B,domain_a,class_a,domain_b,Relation,extra\n"
        "b0,A,a0,B,narrower,x\n\n"
        "b1,a,a1,b,BROADER,\n"
        "b2,A,a2,B,equivalent,\n"
        "b0,A,a2,B,overlap,\n"
        "b1,A,a0,B,,\n"
        "b0,A,a0,B,equivalent,\n",  # repeats a0 -> b0: kept once, with its first relation
    )
    edges = read_mapping_csv(path, ["A", "B"], [["a0", "a1", "a2"], ["b0", "b1", "b2"]])
    assert edges == [
        (EdgeRef(0, 0, 1, 0), "narrower"),
        (EdgeRef(1, 1, 0, 1), "narrower"),  # broader: b1 -> a1 only, a narrower edge seen from b1
        (EdgeRef(0, 2, 1, 2), "equivalent"),
        (EdgeRef(1, 2, 0, 2), "equivalent"),
        (EdgeRef(0, 2, 1, 0), "overlap"),
        (EdgeRef(1, 0, 0, 2), "overlap"),
        (EdgeRef(0, 0, 1, 1), None),
        (EdgeRef(1, 1, 0, 0), None),
        (EdgeRef(1, 0, 0, 0), "equivalent"),
    ]
    header_only = write(tmp_path, "domain_a,class_a,domain_b,class_b\n", "h.csv")
    assert read_mapping_csv(header_only, ["A", "B"], [["a0"], ["b0"]]) == []


NAMES, CLASSES = ["A", "B"], [["a0", "a1", "dup", "dup"], ["b0", "b1"]]
HEAD = "domain_a,class_a,domain_b,class_b,relation\n"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (HEAD + "A,a0,B,b0,\nZ,a0,B,b0,\n", r"line 3, column domain_a: unknown domain 'Z'; this run's domains"),
        (HEAD + "A,a0,B,bb1,\n", r"line 2, column class_b: .*has no class 'bb1'; did you mean 'b1'"),
        (HEAD + "A,dup,B,b0,\n", r"line 2, column class_a: .*ambiguous.*A:#i with i one of \[2, 3\]"),
        (HEAD + "A,#9,B,b0,\n", r"line 2, column class_a: .*classes #0 to #3"),
        (HEAD + "A,a0,A,a1,\n", r"line 2, column domain_b: 'A' is domain_a too"),
        (HEAD + "A,a0,B,b0,same\n", r"line 2, column relation: 'same' is not one of equivalent"),
        (HEAD + "A,,B,b0,\n", r"line 2, column class_a: empty"),
        (HEAD + "A,a0,B\n", r"line 2, column class_b: empty"),
        ("domain_a,class_a,domain_b,relation\nA,a0,B,\n", r"line 1, column class_b: missing from the header"),
        ("A,a0,B,b0\n", r"line 1, column domain_a: missing from the header"),
        ("\n\n", r"line 1: empty file"),
        (HEAD + 'A,a0,B,b0,\nA,"a1,B,b1,\n', r"line 3: not a readable CSV row"),
        ((HEAD + "A,a0,B,b0,\nA,caf\xe9,B,b0,\n").encode("latin-1"), r"line 3: not UTF-8 text \(byte 0xe9\)"),
        (HEAD.encode() + b"A,a0,B,b0,\n\x89PNG\x00\x00", r"line 3: a binary file \(NUL byte\)"),
    ],
)
def test_bad_files_are_one_error_naming_file_line_and_column(tmp_path, content, match):
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + match):
        read_mapping_csv(path, NAMES, CLASSES)


def test_missing_folder_and_too_large_files(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"nope.csv: no such file"):
        read_mapping_csv(tmp_path / "nope.csv", NAMES, CLASSES)
    with pytest.raises(ValueError, match=r": not a file"):
        read_mapping_csv(tmp_path, NAMES, CLASSES)
    path = write(tmp_path, HEAD + "A,a0,B,b0,\n" * 5)
    monkeypatch.setattr(mapping_io, "MAX_ROWS", 3)
    with pytest.raises(ValueError, match=r"in.csv: line 5: more than 3 rows"):
        read_mapping_csv(path, NAMES, CLASSES)
    monkeypatch.setattr(mapping_io, "MAX_BYTES", 50)
    with pytest.raises(ValueError, match=r"in.csv: \d+ bytes is too large to import"):
        read_mapping_csv(path, NAMES, CLASSES)


def test_a_direction_column_decides_the_direction(tmp_path):
    path = write(
        tmp_path,
        "domain_a,class_a,domain_b,class_b,relation,Direction\n"
        "A,a0,B,b0,broader,a->b\n"  # one way, whatever the relation says
        "A,a1,B,b1,narrower,both\n"  # both ways: b1 -> a1 is the broader side
        "B,b1,A,a1,overlap,both\n"  # names b1 -> a1 itself: its own relation wins over the implied one
        "A,a2,B,b2,narrower,\n"  # an empty cell: the relation decides (a2 -> b2 only)
        "A,a0,B,b2,, A -> B\n",
    )
    edges = read_mapping_csv(path, ["A", "B"], [["a0", "a1", "a2"], ["b0", "b1", "b2"]])
    assert edges == [
        (EdgeRef(0, 0, 1, 0), "broader"),
        (EdgeRef(0, 1, 1, 1), "narrower"),
        (EdgeRef(1, 1, 0, 1), "overlap"),
        (EdgeRef(0, 2, 1, 2), "narrower"),
        (EdgeRef(0, 0, 1, 2), None),
    ]
    bad = write(tmp_path, "domain_a,class_a,domain_b,class_b,direction\nA,a0,B,b0,b->a\n", "bad.csv")
    with pytest.raises(ValueError, match=r"bad.csv: line 2, column direction: 'b->a' is not one of a->b, both"):
        read_mapping_csv(bad, ["A", "B"], [["a0"], ["b0"]])


def test_a_pair_related_both_ways_imports_both_ways(run, tmp_path):
    """The demo's complaint: a pair selected both ways with a narrower/broader evidence was
    written "narrower" (a one-way edge) or empty; now it keeps its relation and its direction."""
    path = tmp_path / "out.csv"
    path.write_text(mapping_io.csv_text(mapping_csv(run, "threshold", 0.25)), encoding="utf-8")
    edges = dict(read_mapping_csv(path, run.domain_names(), run.class_names()))
    assert edges[EdgeRef(0, 1, 1, 1)] == "narrower" and edges[EdgeRef(1, 1, 0, 1)] == "broader"
    assert EdgeRef(1, 0, 0, 2) not in edges  # a2 -> b0 is one way
    assert set(edges) == curated_set(run)


# ----------------------------------------------------------------------------- imports


def test_import_decisions_relation_note_and_empty_files(run, tmp_path):
    path = write(tmp_path, HEAD + "A,a0,B,b2,narrower\nB,b1,A,a2,broader\n")
    d = import_decisions(run, path, author="eve", note="from the atlas")
    assert d.edges == (EdgeRef(0, 0, 1, 2), EdgeRef(0, 2, 1, 1))
    assert (d.relation, d.author, d.note) == ("narrower", "eve", "from the atlas")
    mixed = write(tmp_path, HEAD + "A,a0,B,b2,narrower\nA,a1,B,b2,\n", "mixed.csv")
    assert import_decisions(run, mixed).relation is None
    with pytest.raises(ValueError, match=r"h.csv: no relationships to import"):
        import_decisions(run, write(tmp_path, HEAD, "h.csv"))
    with pytest.raises(ValueError, match=r"h.csv: no relationships to import"):
        import_truth(run, tmp_path / "h.csv")


def test_import_truth_is_the_runs_ground_truth(run, tmp_path):
    assert run.truth_pairs() is None and run.true_relationships() is None  # no truth, no synthetic world
    path = write(tmp_path, HEAD + "A,a1,B,b1,narrower\nB,b1,A,a1,\nB,b0,A,a2,broader\n")
    assert import_truth(run, path) == 2  # a1-b1 once, whatever the direction
    assert run.file(F.TRUTH).read_text(encoding="utf-8") == "domain_a,class_a,domain_b,class_b\nA,a1,B,b1\nA,a2,B,b0\n"
    assert run.truth_pairs() == [(0, 1, 1, 1), (0, 2, 1, 0)]
    true = run.true_relationships()
    assert set(true) == {(0, 1), (1, 0)}
    expect = np.zeros((3, 3))
    expect[1, 1] = expect[2, 0] = 1.0
    np.testing.assert_array_equal(true[0, 1], expect)
    np.testing.assert_array_equal(true[1, 0], expect.T)
    assert import_truth(run, write(tmp_path, HEAD + "A,a0,B,b0,\n", "two.csv")) == 1  # a new import replaces it
    assert run.truth_pairs() == [(0, 0, 1, 0)]
    run.write_domains([{**d, "class_names": ["z0", "z1", "z2"]} for d in run.domains()])  # a rerun renamed classes
    with pytest.raises(CorruptFileError, match=r"imported ground truth is unreadable: .*truth.csv: line 2"):
        run.true_relationships()


def test_an_imported_truth_replaces_the_synthetic_one_and_scores_the_sweep(tmp_path):
    from core.config import config_from_dict
    from core.metrics import relationship_scores
    from core.selection import select_edges
    from core.sweep import Setting, _plan
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    run = Run(write_synthetic_run(tmp_path, "syn", make_synthetic_taxonomy(12, 2, 6, 2, 1.5, 0.5, seed=1),
                                  noise=0.2, seed=1, full=False))  # fmt: skip
    world = run.ground_truth().true_relationships()
    assert all(np.array_equal(run.true_relationships()[k], w) for k, w in world.items())
    cfg = config_from_dict(run.config)
    setting = Setting("mcfp", None)
    synthetic = _plan(run, cfg, [setting])[0].scores
    names = run.domain_names()
    path = write(tmp_path, f"domain_a,class_a,domain_b,class_b\n{names[0]},#0,{names[1]},#0\n")
    import_truth(run, path)
    imported = _plan(run, cfg, [setting])[0].scores
    W = {ab: select_edges(P, "mcfp") for ab, P in run.matrices("hard").items()}
    assert imported == pytest.approx(relationship_scores(W, run.true_relationships(), run.class_counts()))
    assert imported != pytest.approx(synthetic)


def test_a_config_with_real_domains_has_no_synthetic_truth(tmp_path):
    from core.synthetic import make_synthetic_taxonomy

    run = write_run(tmp_path, config={**CONFIG, "domains": {"list": [{"name": "A"}]}})
    run.write_ground_truth(make_synthetic_taxonomy(6, 2, 3, 1, 1.0, 0.1, seed=0))
    assert run.true_relationships() is None
    run.write_config(CONFIG)
    assert run.true_relationships() is not None


def test_load_truth_of_the_pages_reads_the_imported_truth(run, tmp_path):
    pytest.importorskip("streamlit")
    from ui import data

    assert data.load_truth(str(run.path), 0.0) is None
    import_truth(run, write(tmp_path, HEAD + "A,a1,B,b1,\n"))
    truth = data.load_truth(str(run.path), data.matrices_stamp(str(run.path)))
    assert truth["class_counts"] == [3, 3]
    assert truth["true"][0, 1].dense()[1, 1] == 1.0 and truth["true"][1, 0].dense()[1, 1] == 1.0
    assert truth["true"][0, 1].rows.size == 1


def test_without_count_matrices_or_edges(tmp_path):
    run = write_run(tmp_path)
    hard = run.matrices("hard")
    run.write_crossdomain({"hard": hard}, {}, {}, {}, {})  # an older run: no count matrices
    decide(run, "accept", [EdgeRef(0, 1, 1, 1)], relation="narrower")
    rows = rows_by_edge(sssom_table(run, "mcfp", None))
    assert rows["A:a1", "B:b1"].predicate_id == "skos:broadMatch" and rows["A:a1", "B:b1"].confidence == 1.0
    assert rows["A:a0", "B:b0"].predicate_id == "skos:relatedMatch" and np.isnan(rows["A:a0", "B:b0"].confidence)
    csv = mapping_csv(run, "mcfp", None)
    assert csv.p_ab.isna().all() and len(csv) == len(rows)
    undo(run)
    empty = sssom_table(run, "threshold", 1.0)
    assert len(empty) == 0 and sssom_text(empty).split("\n")[-2] == "\t".join(SSSOM_COLUMNS)
    assert list(mapping_csv(run, "threshold", 1.0).columns) == CSV_COLUMNS
    with pytest.raises(ValueError, match="has no count cross-domain matrices"):
        sssom_table(run, "mcfp", None, kind="count")


def test_a_csv_row_reads_its_class_in_its_own_domain_even_when_domain_names_prefix_each_other(tmp_path):
    from core.mapping_io import read_mapping_csv

    path = tmp_path / "m.csv"
    path.write_text("domain_a,class_a,domain_b,class_b,relation\nd,x:y,e,#0,narrower\n")
    (edge, _), *_ = read_mapping_csv(path, ["d", "d:x", "e"], [["x:y", "q"], ["y"], ["z"]])
    assert (edge.a, edge.i, edge.b, edge.j) == (0, 0, 2, 0)  # d's class "x:y", not d:x's class "y"
