"""core.curation: the decision log (order, latest wins, undo/redo, bulk decisions, concurrent
appends, torn and stale lines, links), class names, and the curated edge set and its scores."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pytest

from core.curation import (
    CurationState,
    Decision,
    EdgeRef,
    class_label,
    curated_edges,
    curated_table,
    curation_scores,
    decide,
    load_state,
    parse_class,
    parse_edge,
    read_records,
    redo,
    replay,
    selected_set,
    setting_edges,
    undo,
)
from core.runs import F, Run, init_run_dir
from core.selection import Edges

NAMES = ["A", "B", "C"]
CLASSES = [["cat", "dog", "bird"], ["feline", "canine", "canine", "#7"], ["animal", "Cat"]]


def make_run(root, classes=CLASSES, names=NAMES) -> Run:
    run = Run(init_run_dir(root / "r"))
    run.write_domains(
        [
            {"name": n, "source": "x", "shift": "none", "class_names": list(c), "n_train": 0, "n_val": 0, "n_test": 0}
            for n, c in zip(names, classes)
        ]  # fmt: skip
    )
    return run


@pytest.fixture
def run(tmp_path) -> Run:
    return make_run(tmp_path)


E1, E2, E3 = EdgeRef(0, 0, 1, 0), EdgeRef(0, 1, 1, 1), EdgeRef(1, 3, 2, 0)


# ----------------------------------------------------------------------------- the log


def test_decisions_apply_in_order_and_the_latest_wins(run):
    decide(run, "accept", [E1, E2], note="both")
    decide(run, "reject", [E2])
    state = load_state(run)
    assert [d.action for d in state.applied] == ["accept", "reject"]
    assert state.verdict(E1) == "accept" and state.verdict(E2) == "reject" and state.verdict(E3) is None
    assert state.accepted == {E1} and state.rejected == {E2}
    decide(run, "add", [E2], relation="narrower")
    state = load_state(run)
    assert state.verdict(E2) == "accept"
    assert state.verdicts[E2][1].relation == "narrower"
    assert state.verdicts[E1][1].note == "both"


def test_undo_redo_and_a_new_decision_clears_redo(run):
    d1 = decide(run, "accept", [E1])
    d2 = decide(run, "reject", [E1])
    assert undo(run).id == d2.id
    assert load_state(run).verdict(E1) == "accept"  # the earlier decision is in force again
    assert undo(run).id == d1.id
    assert load_state(run).verdict(E1) is None
    assert undo(run) is None  # nothing left
    assert redo(run).id == d1.id
    assert load_state(run).verdict(E1) == "accept"
    decide(run, "add", [E3])  # a new decision: d2 can no longer be redone
    assert redo(run) is None
    state = load_state(run)
    assert [d.id for d in state.applied][:1] == [d1.id] and state.undone == []
    assert state.problems == []


def test_a_bulk_decision_is_undone_whole(run):
    decide(run, "accept", [E1])
    bulk = decide(run, "reject", [E1, E2, E3], note="bulk")
    assert load_state(run).rejected == {E1, E2, E3}
    assert undo(run).id == bulk.id
    state = load_state(run)
    assert state.rejected == set() and state.accepted == {E1}


def test_decide_refuses_bad_input(run):
    with pytest.raises(ValueError, match="action 'keep'"):
        decide(run, "keep", [E1])
    with pytest.raises(ValueError, match="relation 'same'"):
        decide(run, "accept", [E1], relation="same")
    with pytest.raises(ValueError, match="accept: no edges"):
        decide(run, "accept", [])
    with pytest.raises(ValueError, match="is not in this run"):
        decide(run, "accept", [EdgeRef(0, 9, 1, 0)])
    with pytest.raises(ValueError, match="both ends are in domain 'A'"):
        decide(run, "accept", [EdgeRef(0, 0, 0, 1)])
    with pytest.raises(ValueError, match="characters; at most"):
        decide(run, "accept", [E1], note="x" * 3000)
    assert not run.file(F.CURATION).exists() or read_records(run.path)[0] == []


def _append_many(path: str, worker: int, n: int) -> None:
    run = Run(path)
    for k in range(n):
        decide(run, "accept", [EdgeRef(0, k % 3, 1, worker % 4)], note=f"w{worker}-{k}")


def test_concurrent_appends_from_processes_lose_nothing(run):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(run.path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records, problems = read_records(run.path)
    assert problems == []
    assert len(records) == 160
    assert {r["note"] for r in records} == {f"w{w}-{k}" for w in range(4) for k in range(40)}
    assert len({r["id"] for r in records}) == 160


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(run):
    d1 = decide(run, "accept", [E1])
    with open(run.file(F.CURATION), "a", encoding="utf-8") as fh:
        fh.write('{"v": 1, "id": "torn", "action": "reje')  # a crash in the middle of a write
    state = load_state(run)
    assert [d.id for d in state.applied] == [d1.id]
    assert state.problems == ["line 2: cut short, skipped"]
    d2 = decide(run, "reject", [E2])
    lines = run.file(F.CURATION).read_text(encoding="utf-8").split("\n")
    assert json.loads(lines[2])["id"] == d2.id  # on its own line, after the torn one
    state = load_state(run)
    assert [d.id for d in state.applied] == [d1.id, d2.id]
    assert state.problems == ["line 2: not a JSON object, skipped"]


def test_a_symlinked_log_is_refused(run, tmp_path):
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("", encoding="utf-8")
    os.symlink(target, run.file(F.CURATION))
    with pytest.raises(ValueError, match="symbolic link"):
        decide(run, "accept", [E1])
    with pytest.raises(ValueError, match="symbolic link"):
        read_records(run.path)
    assert target.read_text(encoding="utf-8") == ""


def test_a_class_the_run_no_longer_has_is_skipped_with_a_problem(tmp_path):
    run = make_run(tmp_path)
    kept = decide(run, "accept", [E2])  # dog -> canine (#1)
    decide(run, "accept", [E1])  # cat -> feline
    renamed = [["kitten", "dog", "bird"], CLASSES[1], CLASSES[2]]
    run = make_run(tmp_path, classes=renamed)  # a rerun renamed A's class 0
    state = load_state(run)
    assert [d.id for d in state.applied] == [kept.id]
    assert len(state.problems) == 1 and "'cat'" in state.problems[0] and "not in this run" in state.problems[0]


def test_a_class_that_moved_is_found_by_name(tmp_path):
    run = make_run(tmp_path)
    decide(run, "accept", [EdgeRef(0, 2, 2, 0)])  # bird -> animal
    run = make_run(tmp_path, classes=[["bird", "cat", "dog"], CLASSES[1], CLASSES[2]])
    assert load_state(run).accepted == {EdgeRef(0, 0, 2, 0)}


def test_replay_skips_undo_of_a_decision_that_is_not_the_latest():
    records = [
        {
            "id": "d1",
            "action": "accept",
            "edges": [{"a": "A", "i": 0, "class_a": "cat", "b": "B", "j": 0, "class_b": "feline"}],
        },  # fmt: skip
        {
            "id": "d2",
            "action": "reject",
            "edges": [{"a": "A", "i": 0, "class_a": "cat", "b": "B", "j": 0, "class_b": "feline"}],
        },  # fmt: skip
        {"id": "u1", "action": "undo", "target": "d1", "_line": 3},
        {"id": "x", "action": "frobnicate", "_line": 4},
    ]
    state = replay(records, NAMES, CLASSES)
    assert [d.id for d in state.applied] == ["d1", "d2"]
    assert state.problems == [
        "line 3: undo of a decision that is not the latest, skipped",
        "line 4: unknown action 'frobnicate', skipped",
    ]


# ----------------------------------------------------------------------------- class names


def test_parse_class_names_indices_and_case():
    assert parse_class("A:dog", NAMES, CLASSES) == (0, 1)
    assert parse_class("A:DOG", NAMES, CLASSES) == (0, 1)  # case-insensitive when unique
    assert parse_class("C:Cat", NAMES, CLASSES) == (2, 1)
    assert parse_class("B:#2", NAMES, CLASSES) == (1, 2)
    assert parse_class("a:bird", NAMES, CLASSES) == (0, 2)  # the domain too
    assert parse_edge("A:cat", "B:feline", NAMES, CLASSES) == E1


def test_parse_class_errors():
    with pytest.raises(ValueError, match=r"no domain of this run prefixes it.*\['A', 'B', 'C'\]"):
        parse_class("Z:cat", NAMES, CLASSES)
    with pytest.raises(ValueError, match=r"has no class 'dgo'; did you mean 'dog'\?"):
        parse_class("A:dgo", NAMES, CLASSES)
    with pytest.raises(ValueError, match=r"'B:canine' is ambiguous.*B:#i with i one of \[1, 2\]"):
        parse_class("B:canine", NAMES, CLASSES)
    with pytest.raises(ValueError, match=r"domain 'B' has classes #0 to #3"):
        parse_class("B:#4", NAMES, CLASSES)
    with pytest.raises(TypeError, match="DOMAIN:CLASS"):
        parse_class(3, NAMES, CLASSES)
    with pytest.raises(ValueError, match="same domain"):
        parse_edge("A:cat", "A:dog", NAMES, CLASSES)


def test_class_label_uses_the_index_when_the_name_does_not_identify_the_class():
    assert class_label(0, 1, NAMES, CLASSES) == "A:dog"
    assert class_label(1, 1, NAMES, CLASSES) == "B:#1"  # a shared name
    assert class_label(1, 3, NAMES, CLASSES) == "B:#3"  # the name "#7" reads as an index
    for a, names in enumerate(CLASSES):
        for i in range(len(names)):
            assert parse_class(class_label(a, i, NAMES, CLASSES), NAMES, CLASSES) == (a, i)


# ----------------------------------------------------------------------------- edge sets


def _state(accept=(), reject=()) -> CurationState:
    applied = []
    if accept:
        applied.append(Decision("a", "accept", tuple(accept)))
    if reject:
        applied.append(Decision("r", "reject", tuple(reject)))
    return CurationState(applied=applied)


def test_curated_edges_are_selected_plus_accepted_minus_rejected_with_weights():
    w01 = np.array([[0.6, 0.0, 0.0, 0.0], [0.0, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    selected = {(0, 1): Edges.from_dense(w01)}
    state = _state(accept=[EdgeRef(0, 1, 1, 1), EdgeRef(0, 2, 1, 3), EdgeRef(2, 0, 0, 2)], reject=[EdgeRef(0, 0, 1, 0)])
    out = curated_edges(selected, state, [3, 4, 2])
    assert set(out) == {(a, b) for a in range(3) for b in range(3) if a != b}
    expect01 = np.zeros((3, 4))
    expect01[1, 1] = 1.0  # selected and accepted: weight 1
    expect01[2, 3] = 1.0  # added
    np.testing.assert_array_equal(out[0, 1], expect01)  # (0,0) rejected
    assert out[2, 0][0, 2] == 1.0 and out[2, 0].sum() == 1.0
    assert out[1, 0].shape == (4, 3) and not out[1, 0].any()
    np.testing.assert_array_equal(w01, selected[0, 1].dense())  # the input is not changed


def test_curated_table_rows_and_sources(run):
    w01 = np.zeros((3, 4))
    w01[0, 0], w01[1, 1] = 0.6, 0.3
    decide(run, "accept", [E2], note="ok", relation="equivalent")
    decide(run, "add", [EdgeRef(0, 2, 2, 0)])
    decide(run, "reject", [E1])
    state = load_state(run)
    table = curated_table({(0, 1): w01}, state, NAMES, CLASSES)
    rows = {(r.a, r.i, r.b, r.j): r for r in table.itertuples()}
    assert set(rows) == {(0, 1, 1, 1), (0, 2, 2, 0)}
    assert rows[0, 1, 1, 1].source == "accepted" and rows[0, 1, 1, 1].relation == "equivalent"
    assert rows[0, 1, 1, 1].note == "ok" and rows[0, 1, 1, 1].weight == 1.0
    assert rows[0, 2, 2, 0].source == "added" and rows[0, 2, 2, 0].class_b == "animal"


def test_curation_scores_on_a_hand_made_case():
    w = np.zeros((3, 4))
    w[0, 0] = w[1, 1] = w[2, 2] = 0.5
    selected = {(0, 1): w}
    # accepted: (0,0) selected, (2,3) not selected; rejected: (1,1) selected, (2,0) not selected
    state = _state(accept=[EdgeRef(0, 0, 1, 0), EdgeRef(0, 2, 1, 3)], reject=[EdgeRef(0, 1, 1, 1), EdgeRef(0, 2, 1, 0)])
    s = curation_scores(selected, state)
    assert s["n_selected"] == 3 and s["n_judged"] == 2 and s["n_accepted"] == 2 and s["n_rejected"] == 2
    assert s["precision"] == pytest.approx(1 / 2)  # judged selected: one accepted, one rejected
    assert s["recall"] == pytest.approx(1 / 2)  # accepted: one of two selected
    assert s["f1"] == pytest.approx(0.5)
    empty = curation_scores(selected, CurationState())
    assert np.isnan(empty["precision"]) and np.isnan(empty["recall"]) and np.isnan(empty["f1"])


def test_setting_edges_and_selected_set():
    P = {(0, 1): np.array([[0.7, 0.3], [0.4, 0.6]]), (1, 0): np.array([[0.2, 0.8], [0.5, 0.5]])}
    edges = setting_edges(P, "threshold", 0.5)
    assert selected_set(edges) == {EdgeRef(0, 0, 1, 0), EdgeRef(0, 1, 1, 1), EdgeRef(1, 0, 0, 1), EdgeRef(1, 1, 0, 0),
                                   EdgeRef(1, 1, 0, 1)}  # fmt: skip
    assert selected_set(setting_edges(P, "mcfp", None)) == {EdgeRef(0, 0, 1, 0), EdgeRef(0, 1, 1, 1),
                                                             EdgeRef(1, 0, 0, 1), EdgeRef(1, 1, 0, 0)}  # fmt: skip
    with pytest.raises(ValueError, match="needs a value for 't'"):
        setting_edges(P, "threshold", None)
    with pytest.raises(ValueError, match="method 'magic'"):
        setting_edges(P, "magic", None)


def test_undone_count_keeps_decisions_a_new_decision_made_unredoable():
    names, classes = ["A", "B"], [["x", "y"], ["u", "v"]]
    xu = {"a": "A", "i": 0, "class_a": "x", "b": "B", "j": 0, "class_b": "u"}
    yv = {"a": "A", "i": 1, "class_a": "y", "b": "B", "j": 1, "class_b": "v"}
    recs = [
        {"id": "1", "action": "accept", "edges": [xu]},
        {"id": "2", "action": "reject", "edges": [yv]},
        {"id": "3", "action": "undo", "target": "2"},
        {"id": "4", "action": "undo", "target": "1"},
        {"id": "5", "action": "redo", "target": "1"},
        {"id": "6", "action": "add", "edges": [{"a": "B", "i": 0, "class_a": "u", "b": "A", "j": 1, "class_b": "y"}]},
    ]
    from core.curation import replay

    state = replay(recs, names, classes)
    assert [d.id for d in state.applied] == ["1", "6"]
    assert state.undone == [] and state.n_undone == 1  # "2" stays undone though it can no longer be redone
