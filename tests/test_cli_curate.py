"""``python -m core curate``: every action through core.cli.main, its output, exit codes and
one-line errors."""

from __future__ import annotations

import sys
import types

import pytest
import yaml

from core.cli import main
from core.curation import EdgeRef, load_state
from core.runs import F
from tests.test_mapping_io import HEAD, write_run


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path)


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, match: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert match in err, err


def test_accept_reject_add_and_list(run, capsys):
    r = str(run.path)
    code, out, err = cli(capsys, "curate", r, "accept", "A:a0", "B:b0", "--note", "same", "--author", "ann", "--both",
                         "--relation", "equivalent")  # fmt: skip
    assert code == 0 and err == ""
    assert out.startswith("accept A:a0 -> B:b0, B:b0 -> A:a0 [equivalent]  # same  (by ann, decision ")
    assert cli(capsys, "curate", r, "reject", "A:#2", "b:B1")[0] == 0
    assert cli(capsys, "curate", r, "add", "B:b2", "A:a1", "--relation", "broader")[0] == 0
    state = load_state(run)
    assert state.accepted == {EdgeRef(0, 0, 1, 0), EdgeRef(1, 0, 0, 0), EdgeRef(1, 2, 0, 1)}
    assert state.rejected == {EdgeRef(0, 2, 1, 1)}
    code, out, err = cli(capsys, "curate", r, "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert "  ann  accept A:a0 -> B:b0, B:b0 -> A:a0 [equivalent]  # same" in lines[0]
    assert lines[1].endswith("reject A:a2 -> B:b1") and lines[2].endswith("add B:b2 -> A:a1 [broader]")


def test_list_shows_redo_and_skipped_lines(run, capsys):
    r = str(run.path)
    assert cli(capsys, "curate", r, "list")[1] == "no decisions in force\n"
    cli(capsys, "curate", r, "accept", "A:a0", "B:b0")
    with open(run.file(F.CURATION), "a", encoding="utf-8") as fh:
        fh.write("not json\n")
    cli(capsys, "curate", r, "undo")
    code, out, _ = cli(capsys, "curate", r, "list")
    assert code == 0
    assert out.splitlines() == ["no decisions in force", "(1 undone decision(s) can be redone)",
                                "skipped: line 2: not a JSON object, skipped"]  # fmt: skip


def test_bulk_decisions_are_shortened_in_the_list(run, capsys, tmp_path):
    rows = "".join(f"A,a{i},B,b{j},narrower\n" for i in range(3) for j in range(3))
    (tmp_path / "many.csv").write_text(HEAD + rows, encoding="utf-8")
    assert cli(capsys, "curate", str(run.path), "import", str(tmp_path / "many.csv"))[0] == 0
    out = cli(capsys, "curate", str(run.path), "list")[1]
    assert "A:a0 -> B:b0, A:a0 -> B:b1, A:a0 -> B:b2, … (+6 more; 9 edges) [narrower]  # imported from many.csv" in out


def test_undo_and_redo(run, capsys):
    r = str(run.path)
    code, _, err = cli(capsys, "curate", r, "undo")
    assert code == 1
    one_line_error(err, "nothing to undo")
    cli(capsys, "curate", r, "reject", "A:a1", "B:b1", "--note", "no")
    code, out, _ = cli(capsys, "curate", r, "undo")
    assert code == 0 and out.startswith("undid: reject A:a1 -> B:b1  # no  (by ")
    assert load_state(run).rejected == set()
    code, out, _ = cli(capsys, "curate", r, "redo")
    assert code == 0 and out.startswith("redid: reject A:a1 -> B:b1")
    assert load_state(run).rejected == {EdgeRef(0, 1, 1, 1)}
    code, _, err = cli(capsys, "curate", r, "redo")
    assert code == 1
    one_line_error(err, "nothing to redo")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["accept", "A:a0", "B:bb0"], "has no class 'bb0'; did you mean 'b0'?"),
        (["accept", "Q:a0", "B:b0"], "no domain of this run prefixes it"),
        (["add", "A:a0", "A:a1"], "same domain"),
        (["add", "A:a0", "B:b1", "--both", "--relation", "narrower"], "--both with --relation narrower"),
        (["add", "A:a0", "B:b1", "--note", "x" * 2001], "--note has 2001 characters; at most 2000"),
        (["export", "--format", "csv", "--method", "magic"], "--method 'magic' is not one of"),
        (["export", "--format", "csv", "--method", "mcfp", "--param", "0.3"], "method 'mcfp' takes no parameter"),
        (["export", "--format", "csv", "--param", "lots"], "--param 'lots' is not a number"),
        (["export", "--format", "csv", "--param", "1.5"], "t must be in [0, 1], got 1.5"),
        (["export", "--format", "csv", "--method", "hypothesis", "--param", "2.5"], "k_max of 'hypothesis' is a whole"),
        (["import", "missing.csv"], "missing.csv: no such file"),
        (["import", "x.csv", "--as", "truth", "--note", "n"], "--note and --author go with --as decisions"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(run, capsys, argv, match):
    code, out, err = cli(capsys, "curate", str(run.path), *argv)
    assert code == 2 and out == ""
    one_line_error(err, match)
    assert load_state(run).applied == []


def test_unknown_run_and_a_run_without_domains(tmp_path, capsys):
    code, _, err = cli(capsys, "curate", str(tmp_path / "nope"), "list")
    assert code == 2
    one_line_error(err, "does not exist")
    from core.runs import init_run_dir

    empty = init_run_dir(tmp_path / "empty")
    code, _, err = cli(capsys, "curate", str(empty), "list")
    assert code == 2
    one_line_error(err, "has no domains yet")


def test_a_symlinked_log_is_a_runtime_error(run, capsys, tmp_path):
    target = tmp_path / "other.jsonl"
    target.write_text("", encoding="utf-8")
    run.file(F.CURATION).symlink_to(target)
    code, _, err = cli(capsys, "curate", str(run.path), "accept", "A:a0", "B:b0")
    assert code == 1
    one_line_error(err, "symbolic link")


def test_export_to_stdout_and_files(run, capsys, tmp_path):
    r = str(run.path)
    cli(capsys, "curate", r, "accept", "A:a2", "B:b0", "--relation", "equivalent")
    code, out, err = cli(capsys, "curate", r, "export", "--format", "sssom")
    assert code == 0 and err == ""
    head = "\n".join(line[1:] for line in out.splitlines() if line.startswith("#"))
    assert set(yaml.safe_load(head)["curie_map"]) == {"A", "B"}
    assert "A:a2\ta2\tskos:exactMatch\tB:b0\tb0\tsemapv:ManualMappingCuration\t1.0\t" in out
    code, out, _ = cli(capsys, "curate", r, "export", "--format", "csv", "--method", "mcfp", "--matrix", "soft")
    rows = out.splitlines()
    assert code == 0 and rows[0] == "domain_a,class_a,domain_b,class_b,relation,direction,weight,source,action," \
                                    "confidence,p_ab,p_ba,author,time,note"  # fmt: skip
    assert len(rows) == 1 + 6 + 1  # the header, mcfp's one edge per class, the accepted a2 -> b0
    target = tmp_path / "out.csv"
    code, out, _ = cli(capsys, "curate", r, "export", "--format", "csv", "--param", "0.5", "--out", str(target))
    assert code == 0 and out == f"wrote 5 relationships (csv) to {target}\n"  # t=0.5: a0-b0 both ways, a1->b1,
    assert target.read_text(encoding="utf-8").count("\n") == 6  # b2->a2, and the accepted a2->b0
    code, _, err = cli(capsys, "curate", r, "export", "--format", "sssom", "--out", str(target))
    assert code == 2
    one_line_error(err, "exists; choose another name, or add --force")
    assert target.read_text(encoding="utf-8").startswith("domain_a")  # untouched
    code, _, _ = cli(capsys, "curate", r, "export", "--format", "sssom", "--out", str(target), "--force")
    assert code == 0 and target.read_text(encoding="utf-8").startswith("#curie_map:")
    code, _, err = cli(capsys, "curate", r, "export", "--format", "csv", "--out", str(tmp_path), "--force")
    assert code == 2
    one_line_error(err, "is a folder")


def test_import_as_decisions_and_as_truth(run, capsys, tmp_path):
    r = str(run.path)
    path = tmp_path / "truth.csv"
    path.write_text(HEAD + "A,a0,B,b2,\nA,a1,B,b1,narrower\n", encoding="utf-8")
    code, out, _ = cli(capsys, "curate", r, "import", str(path), "--author", "kim")
    assert code == 0 and out.startswith("imported 3 relationships as one 'add' decision ")
    assert load_state(run).applied[-1].author == "kim"
    code, out, _ = cli(capsys, "curate", r, "import", str(path), "--as", "truth")
    assert code == 0 and out == f"ground truth: 2 related class pairs written to {run.file(F.TRUTH)}\n"
    code, out, _ = cli(capsys, "curate", r, "import", str(path), "--as", "truth")
    assert code == 0 and out.endswith("(it replaces the truth imported before)\n")
    assert run.truth_pairs() == [(0, 0, 1, 2), (0, 1, 1, 1)]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + "A,a0,B,b0,\nA,a9,B,b0,\n", encoding="utf-8")
    code, _, err = cli(capsys, "curate", r, "import", str(bad), "--as", "truth")
    assert code == 2
    one_line_error(err, "bad.csv: line 3, column class_a: ")
    assert run.truth_pairs() == [(0, 0, 1, 2), (0, 1, 1, 1)]  # the earlier truth stays


@pytest.mark.parametrize(("state", "code"), [("done", 0), ("cancelled", 130), ("failed", 1)])
def test_train_calls_the_curated_job(run, capsys, monkeypatch, state, code):
    calls = []

    def curated_job(run_dir, *, method, value, device, on_progress):
        calls.append((run_dir, method, value, device))
        on_progress(1, 2, 5.0, "training the curated head")
        return {"state": state, **({"error": "boom"} if state == "failed" else {})}

    monkeypatch.setitem(sys.modules, "core.curated", types.SimpleNamespace(curated_job=curated_job))
    got, out, _ = cli(capsys, "curate", str(run.path), "train", "--device", "cpu")
    assert got == code
    assert calls == [(run.path, "threshold", 0.25, "cpu")]  # the config's first method by default
    assert "[curated] training the curated head, about 5s left" in out
    assert f"curated model of {run.path}: {state}" in out
    assert ("(boom)" in out) == (state == "failed")
    calls.clear()
    cli(capsys, "curate", str(run.path), "train", "--method", "hypothesis", "--param", "2")
    assert calls == [(run.path, "hypothesis", 2, None)]


def test_train_refusals(run, capsys, monkeypatch):
    def curated_job(run_dir, **kw):
        raise ValueError("run 'r' has no training images")

    monkeypatch.setitem(sys.modules, "core.curated", types.SimpleNamespace(curated_job=curated_job))
    code, _, err = cli(capsys, "curate", str(run.path), "train")
    assert code == 2
    one_line_error(err, "no training images")

    from core.runs import LockedError

    def locked(run_dir, **kw):
        raise LockedError("run folder is locked by pid 1")

    monkeypatch.setitem(sys.modules, "core.curated", types.SimpleNamespace(curated_job=locked))
    code, _, err = cli(capsys, "curate", str(run.path), "train")
    assert code == 1
    one_line_error(err, "locked by pid 1")


def test_list_never_prints_control_characters_from_notes_or_authors(tmp_path, capsys):
    from core import curation as C
    from core.cli import main
    from core.runs import Run
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    run = Run(write_synthetic_run(tmp_path, "r", make_synthetic_taxonomy(12, 2, 6, 3, 1.5, 0.5, seed=1), full=False))
    C.decide(run, "accept", [C.EdgeRef(0, 0, 1, 0)], note="l1\nl2\r\x1b[31mRED\x1b[0m\x07", author="evil\nauthor")
    capsys.readouterr()
    assert main(["curate", str(run.path), "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert out.count("\n") == 1 and "\\x1b[31mRED" in out and "evil\\nauthor" in out


def test_exports_defuse_formula_cells_and_the_import_takes_the_mark_off(tmp_path):
    import pandas as pd

    from core.mapping_io import csv_text, read_mapping_csv

    df = pd.DataFrame({"domain_a": ["A"], "class_a": ['=HYPERLINK("http://evil","x")'], "domain_b": ["B"],
                       "class_b": ["-1"], "note": ["@SUM(1)"]})  # fmt: skip
    text = csv_text(df)
    assert "'=HYPERLINK" in text and "'-1" in text and "'@SUM(1)" in text
    path = tmp_path / "m.csv"
    path.write_text(text)
    (edge, _), *_ = read_mapping_csv(path, ["A", "B"], [['=HYPERLINK("http://evil","x")', "y"], ["z", "-1"]])
    assert (edge.a, edge.i, edge.b, edge.j) == (0, 0, 1, 1)
