"""Bring your own predictions (core.importer, ``python -m core import``): both CSV layouts with
class names and with indices give the expected count matrices; the run folder holds what a run
needs and is scored against an imported truth; every bad file is one error naming file, line
and column; the CLI's exit codes; the dashboard opens the imported run and says it has no images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from core import importer
from core.importer import count_matrices, import_predictions, is_imported, read_predictions
from core.runs import MARKER, STEPS, Run, RunLock, init_run_dir

# Three domains; each row: (true class, {other domain: that domain's model's prediction}).
CLASSES = {"A": ["car", "cat", "dog"], "B": ["animal", "vehicle"], "C": ["x", "y"]}  # sorted names
ROWS = {
    "A": [
        ("cat", {"B": "animal", "C": "x"}),
        ("cat", {"B": "animal", "C": "y"}),
        ("dog", {"B": "animal", "C": "x"}),
        ("car", {"B": "vehicle", "C": "y"}),
        ("car", {"B": "vehicle", "C": "y"}),
    ],
    "B": [
        ("animal", {"A": "cat", "C": "x"}),
        ("animal", {"A": "dog", "C": "x"}),
        ("vehicle", {"A": "car", "C": "y"}),
    ],
    "C": [
        ("x", {"A": "cat", "B": "animal"}),
        ("y", {"A": "car", "B": "vehicle"}),
        ("y", {"A": "car", "B": "animal"}),
    ],
}
# C_ab[i, j]: rows of a's true class i that b's model called j (classes in CLASSES order), by hand.
EXPECTED = {
    (0, 1): [[0, 2], [2, 0], [1, 0]],
    (0, 2): [[0, 2], [1, 1], [1, 0]],
    (1, 0): [[0, 1, 1], [1, 0, 0]],
    (1, 2): [[2, 0], [0, 1]],
    (2, 0): [[0, 1, 0], [2, 0, 0]],
    (2, 1): [[1, 0], [1, 1]],
}
TRUTH = "domain_a,class_a,domain_b,class_b\nA,cat,B,animal\nA,dog,B,animal\nA,car,B,vehicle\nA,car,C,y\nB,vehicle,C,y\n"


def _cell(domain: str, name: str, as_index: bool, hashed: bool = False) -> str:
    if not as_index:
        return name
    i = CLASSES[domain].index(name)
    return f"#{i}" if hashed else str(i)


def write_folder(folder: Path, layout: str = "unitax", *, as_index: bool = False, classes_files: bool = False,
                 true_cols: dict | None = None, hashed: bool = True) -> Path:  # fmt: skip
    """The three domains of ROWS as prediction CSVs in ``folder`` (layout "unitax" or "thesis");
    with ``as_index`` each file's first true class is written ``#i`` when ``hashed``, else ``i``."""
    folder.mkdir(parents=True, exist_ok=True)
    for d, rows in ROWS.items():
        others = [o for o in CLASSES if o != d]
        if layout == "unitax":
            name, header = f"{d}.csv", ["true"] + [f"pred_{o}" for o in others]
        else:
            true_col = (true_cols or {}).get(d, f"domain_{d}")
            name, header = f"variant1_{d}_predictions.csv", [true_col] + [f"predictions_{o}_on_{d}" for o in others]
        lines = [",".join(header)]
        for k, (true, pred) in enumerate(rows):
            cells = [_cell(d, true, as_index, hashed=hashed and k == 0)] + [_cell(o, pred[o], as_index) for o in others]
            lines.append(",".join(cells))
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        if classes_files:
            (folder / f"{d}.classes.txt").write_text("\n".join(CLASSES[d]) + "\n", encoding="utf-8")
    return folder


def assert_expected(imp) -> None:
    counts = count_matrices(imp)
    assert sorted(counts) == sorted(EXPECTED)
    for ab, want in EXPECTED.items():
        np.testing.assert_array_equal(counts[ab], np.asarray(want, dtype=float), err_msg=str(ab))


# ----------------------------------------------------------------------------- reading both layouts


@pytest.mark.parametrize(
    ("layout", "as_index", "classes_files"),
    [("unitax", False, False), ("unitax", True, True), ("thesis", False, False), ("thesis", True, True)],
)
def test_both_layouts_with_names_and_indices_give_the_expected_counts(tmp_path, layout, as_index, classes_files):
    imp = read_predictions(write_folder(tmp_path / "p", layout, as_index=as_index, classes_files=classes_files))
    assert imp.names == ["A", "B", "C"]
    assert imp.class_names == [CLASSES[d] for d in "ABC"]
    assert {d.layout for d in imp.domains} == {layout}
    assert_expected(imp)


def test_indices_without_a_classes_file_number_the_classes(tmp_path):
    imp = read_predictions(write_folder(tmp_path / "p", "thesis", as_index=True))
    assert imp.class_names == [["0", "1", "2"], ["0", "1"], ["0", "1"]]
    assert [d.classes_from for d in imp.domains] == ["indices"] * 3
    assert_expected(imp)


def test_the_thesis_spells_the_true_column_three_ways(tmp_path):
    folder = write_folder(tmp_path / "p", "thesis", as_index=True, true_cols={"B": "B", "C": "C_targets"})
    imp = read_predictions(folder)
    assert imp.names == ["A", "B", "C"]
    assert_expected(imp)


def test_a_classes_file_adds_classes_without_rows_and_its_names_win_over_indices(tmp_path):
    folder = write_folder(tmp_path / "p", as_index=True, hashed=False)
    (folder / "A.classes.txt").write_text("car\ncat\ndog\nbus\n", encoding="utf-8")  # class 3 has no row
    (folder / "C.classes.txt").write_text("1\n0\n", encoding="utf-8")  # names that read as indices: names win
    imp = read_predictions(folder)
    assert imp.class_names[0] == ["car", "cat", "dog", "bus"]
    counts = count_matrices(imp)
    assert counts[0, 1].shape == (4, 2) and counts[0, 1][3].sum() == 0
    np.testing.assert_array_equal(counts[0, 1][:3], EXPECTED[0, 1])
    # C's cell "0" is now the class named "0", i.e. class 1 (y): rows and columns of C swap
    np.testing.assert_array_equal(counts[1, 2], np.asarray(EXPECTED[1, 2])[:, ::-1])
    np.testing.assert_array_equal(counts[2, 1], np.asarray(EXPECTED[2, 1])[::-1])


def test_names_with_commas_and_quotes_round_trip(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "A.csv").write_text('true,pred_B\n"red, ripe ""apple""",fruit\n"red, ripe ""apple""",fruit\npear,tree\n')
    (folder / "B.csv").write_text('true,pred_A\nfruit,"red, ripe ""apple"""\ntree,pear\n')
    imp = read_predictions(folder)
    assert imp.class_names[0] == ["pear", 'red, ripe "apple"']
    np.testing.assert_array_equal(count_matrices(imp)[0, 1], [[0, 1], [2, 0]])
    truth = tmp_path / "truth.csv"
    truth.write_text('domain_a,class_a,domain_b,class_b\nA,"red, ripe ""apple""",B,fruit\n')
    run = Run(import_predictions(folder, tmp_path / "run", truth=truth))
    assert run.truth_pairs() == [(0, 1, 1, 0)]


def test_own_model_columns_and_id_columns_are_ignored(tmp_path):
    folder = write_folder(tmp_path / "p")
    text = (folder / "B.csv").read_text().splitlines()
    text = [f"{line},{extra},{own}" for line, extra, own in zip(text, ["id", "1", "2", "3"], ["pred_B"] + ["x"] * 3)]
    (folder / "B.csv").write_text("\n".join(text) + "\n")
    imp = read_predictions(folder)
    assert_expected(imp)
    assert any("pred_B" in n for n in imp.notes)


# ----------------------------------------------------------------------------- the run folder


def test_import_writes_a_run_the_pipeline_would_recognise(tmp_path):
    path = import_predictions(write_folder(tmp_path / "p"), tmp_path / "run")
    run = Run(path)
    assert (path / MARKER).is_file() and is_imported(run)
    doms = run.domains()
    assert [d["name"] for d in doms] == ["A", "B", "C"]
    assert [(d["source"], d["n_train"], d["n_val"], d["n_test"]) for d in doms] == [
        ("imported", 0, 0, n) for n in (5, 3, 3)
    ]
    count, hard, soft = (run.matrices(k) for k in ("count", "hard", "soft"))
    for ab, want in EXPECTED.items():
        np.testing.assert_array_equal(count[ab], want)
        np.testing.assert_allclose(hard[ab], np.asarray(want) / np.asarray(want).sum(axis=1, keepdims=True))
        np.testing.assert_array_equal(soft[ab], hard[ab])
    preds = run.predictions()
    np.testing.assert_array_equal(preds["true"][0], [1, 1, 2, 0, 0])
    np.testing.assert_array_equal(preds["pred"][0, 1], [0, 0, 0, 1, 1])
    assert preds["item"] == {} and preds["conf"] == {}  # no images, no probabilities
    status = run.status()
    assert status["state"] == "done" and status["steps_done"] == list(STEPS[:6])
    assert set(run.step_hashes()) == set(STEPS[:6])
    assert run.methods() == ["mcfp", "threshold_t0.2"]  # core.config.SelectionConfig's default methods
    assert run.selection("mcfp")["scores"] is None  # no ground truth
    assert run.true_relationships() is None
    cfg = yaml.safe_load((path / "config.yaml").read_text())
    assert cfg["source"] == "imported" and "domains" not in cfg
    assert [d["rows"] for d in cfg["imported"]["domains"]] == [5, 3, 3]
    assert cfg["crossdomain"]["matrix"] == "hard" and [m["name"] for m in cfg["selection"]["methods"]] == [
        "mcfp",
        "threshold",
    ]


def test_truth_scores_equal_core_metrics(tmp_path):
    from core.config import MethodSpec
    from core.crossdomain import normalize_rows
    from core.metrics import relationship_scores
    from core.selection import select_relationships

    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    methods = [MethodSpec("mcfp"), MethodSpec("threshold", {"t": 0.4})]
    run = Run(import_predictions(write_folder(tmp_path / "p"), tmp_path / "run", truth=truth, methods=methods))
    k = [len(CLASSES[d]) for d in "ABC"]
    want_true = {(a, b): np.zeros((k[a], k[b])) for a in range(3) for b in range(3) if a != b}
    for a, i, b, j in [(0, 1, 1, 0), (0, 2, 1, 0), (0, 0, 1, 1), (0, 0, 2, 1), (1, 1, 2, 1)]:  # TRUTH by hand
        want_true[a, b][i, j] = want_true[b, a][j, i] = 1.0
    got_true = run.true_relationships()
    for ab in want_true:
        np.testing.assert_array_equal(got_true[ab], want_true[ab])
    P = {ab: normalize_rows(np.asarray(c, dtype=float)) for ab, c in EXPECTED.items()}
    for key, (name, params) in {"mcfp": ("mcfp", {}), "threshold_t0.4": ("threshold", {"t": 0.4})}.items():
        want = relationship_scores({ab: select_relationships(p, name, **params) for ab, p in P.items()}, want_true, k)
        assert run.selection(key)["scores"] == pytest.approx(want), key


def test_a_clean_import_recovers_its_truth_exactly(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "A.csv").write_text("true,pred_B\na0,b0\na0,b0\na1,b1\n")
    (folder / "B.csv").write_text("true,pred_A\nb0,a0\nb1,a1\nb1,a1\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("domain_a,class_a,domain_b,class_b\nA,a0,B,b0\nB,b1,A,a1\n")
    run = Run(import_predictions(folder, tmp_path / "run", truth=truth))
    assert run.selection("mcfp")["scores"] == pytest.approx({"edr": 0.0, "precision": 1.0, "recall": 1.0, "f1": 1.0})
    assert len(run.taxonomy("mcfp").classes) == 2  # a0+b0, a1+b1


def test_out_must_be_new_or_empty_and_a_refusal_touches_nothing(tmp_path):
    folder = write_folder(tmp_path / "p")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"--out .*mine: not empty.*no \.unitax-run marker"):
        import_predictions(folder, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    done = import_predictions(folder, tmp_path / "run")
    before = sorted(p.name for p in done.iterdir())
    with pytest.raises(ValueError, match=r"--out .*run: not empty; an import starts a run of its own"):
        import_predictions(folder, done)
    assert sorted(p.name for p in done.iterdir()) == before
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*afile: not a folder"):
        import_predictions(folder, tmp_path / "afile")
    empty = init_run_dir(tmp_path / "empty-run")  # an empty marked folder is fine
    assert import_predictions(folder, empty) == empty


def test_a_bad_truth_is_refused_before_the_folder_exists(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("domain_a,class_a,domain_b,class_b\nA,cat,B,animal\nA,cow,B,animal\n")
    with pytest.raises(ValueError, match=r"truth\.csv: line 3, column class_a: .*no class 'cow'"):
        import_predictions(write_folder(tmp_path / "p"), tmp_path / "run", truth=truth)
    assert not (tmp_path / "run").exists()


def test_the_truth_file_may_sit_among_the_predictions(tmp_path):
    folder = write_folder(tmp_path / "p")
    (folder / "truth.csv").write_text(TRUTH)
    with pytest.raises(ValueError, match=r"truth\.csv: line 1, column true: missing from the header"):
        read_predictions(folder)  # without --truth it is one more (bad) prediction file
    run = Run(import_predictions(folder, tmp_path / "run", truth=folder / "truth.csv"))
    assert len(run.truth_pairs()) == 5


# ----------------------------------------------------------------------------- bad files

GOOD = {"A.csv": "true,pred_B\ncat,dog\ncat,dog\ncar,bus\n", "B.csv": "true,pred_A\ndog,cat\nbus,car\n"}


def _bad(tmp_path: Path, files: dict) -> Path:
    folder = tmp_path / "p"
    folder.mkdir()
    for name, text in {**GOOD, **files}.items():
        if text is None:
            continue
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return folder


BAD = {
    "missing true": ({"A.csv": "label,pred_B\ncat,dog\n"}, r"A\.csv: line 1, column true: missing from the header"),
    "unknown name": (
        {"A.csv": "true,pred_B\ncat,dog\ncats,dog\n", "A.classes.txt": "cat\ncar\n"},
        r"A\.csv: line 3, column true: unknown class name 'cats' of domain 'A' \(listed in A\.classes\.txt\); "
        r"did you mean 'cat'\?",
    ),
    "index out of range": (
        {"B.csv": "true,pred_A\ndog,#1\nbus,5\n", "A.classes.txt": "car\ncat\n"},
        r"B\.csv: line 3, column pred_A: class index 5 is out of range: domain 'A' has classes 0 to 1",
    ),
    "huge index": (
        {"A.csv": "true,pred_B\n0,dog\n99999999,bus\n", "B.csv": "true,pred_A\ndog,0\nbus,1\n"},
        r"A\.csv: line 3, column true: class index 99999999 is out of range",
    ),
    "unknown domain": (
        {"A.csv": "true,pred_B,pred_Z\ncat,dog,q\n"},
        r"A\.csv: line 1, column pred_Z: no domain 'Z': there is no CSV for it",
    ),
    "domain missing a column": (
        {
            "A.csv": "true,pred_B,pred_C\ncat,dog,x\ncar,bus,x\n",
            "B.csv": "true,pred_A,pred_C\ndog,cat,x\nbus,car,y\n",
            "C.csv": "true,pred_A\nx,cat\ny,car\n",
        },
        r"C\.csv: line 1, column pred_B: missing; every domain's file needs the predictions of every other",
    ),
    "ragged short": (
        {"A.csv": "true,pred_B\ncat,dog\ncat\n"},
        r"A\.csv: line 3, column pred_B: 1 cells, the header has 2",
    ),
    "ragged long": ({"A.csv": "true,pred_B\ncat,dog,x\n"}, r"A\.csv: line 2, column 3: 3 cells, the header has 2"),
    "empty cell": ({"B.csv": "true,pred_A\ndog, \n"}, r"B\.csv: line 2, column pred_A: empty"),
    "line after a blank line": (
        {"A.csv": "true,pred_B\n\ncat,dog\n  \ncat\n"},
        r"A\.csv: line 5, column pred_B: 1 cells",
    ),
    "line after a quoted newline": (
        {"A.csv": 'true,pred_B\n"two\nlines",dog\ncat,\n'},
        r"A\.csv: line 4, column pred_B: empty",
    ),
    "control character in a name": (
        {"A.csv": 'true,pred_B\ncat,dog\n"two\nlines",dog\n'},
        r"A\.csv: line 3, column true: class name 'two\\nlines' holds a control character",
    ),
    "not utf-8": (
        {"A.csv": "true,pred_B\ncat,dog\ncaf\xe9,dog\n".encode("latin-1")},
        r"A\.csv: line 3: not UTF-8 text \(byte 0xe9\)",
    ),
    "binary": ({"B.csv": b"true,pred_A\n\x00\x01\x02"}, r"B\.csv: line 2: a binary file \(NUL byte\)"),
    "empty file": ({"A.csv": ""}, r"A\.csv: line 1: empty file"),
    "header only": ({"A.csv": "true,pred_B\n"}, r"A\.csv: line 2: no rows after the header"),
    "open quote": ({"A.csv": 'true,pred_B\ncat,dog\n"cat,dog\n'}, r"A\.csv: line 3: not a readable CSV row"),
    "duplicate column": (
        {"A.csv": "true,pred_B,pred_B\ncat,dog,dog\n"},
        r"A\.csv: line 1, column pred_B: appears twice",
    ),
    "foreign column": (
        {"A.csv": "true,pred_B,score\ncat,dog,1\n"},
        r"A\.csv: line 1, column score: not a column of this layout",
    ),
    "duplicate domain file": (
        {"a.csv": "true,pred_B\ncat,dog\n"},
        r"a\.csv: domain 'a' again: A\.csv is its file already",
    ),
    "duplicate domain thesis": (
        {"run2_A_predictions.csv": "domain_A,predictions_B_on_A\n0,1\n"},
        r"run2_A_predictions\.csv: domain 'A' again: A\.csv is its file already",
    ),
    "thesis column of another domain": (
        {"A.csv": None, "x_A.csv": "domain_A,predictions_B_on_C\n0,1\n"},
        r"x_A\.csv: line 1, column predictions_B_on_C: does not read as predictions_Y_on_X",
    ),
    "names and indices mixed": (
        {"A.csv": "true,pred_B\ncat,dog\n1,dog\n"},
        r"A\.csv: line 3, column true: '1' reads as a class index of domain 'A' but other cells name its classes",
    ),
    "classes file repeats": (
        {"A.classes.txt": "cat\ncar\ncat\n"},
        r"A\.classes\.txt: line 3: class name 'cat' repeats line 1",
    ),
    "classes file gap": ({"A.classes.txt": "cat\n\ncar\n"}, r"A\.classes\.txt: line 2: empty"),
    "classes file of no domain": ({"Z.classes.txt": "a\nb\n"}, r"Z\.classes\.txt: no domain 'Z'"),
    "two classes files": (
        {"A.classes.txt": "cat\ncar\n", "a.classes.txt": "cat\ncar\n"},
        r"a\.classes\.txt: a second classes file for domain 'A' \(after A\.classes\.txt\)",
    ),
    "one domain": ({"B.csv": None, "A.csv": "true\ncat\ndog\n"}, r"only domain 'A' \(A\.csv\); at least 2 domains"),
    "one class": (
        {"A.csv": "true,pred_B\ncat,dog\ncar,dog\n", "B.csv": "true,pred_A\ndog,cat\ndog,car\n"},
        r"domain 'B': every cell names class 'dog'; at least 2 classes",
    ),
    "colon in a domain": (
        {"A.csv": None, "B.csv": None, "a:b.csv": "true,pred_c\nx,y\nz,y\n", "c.csv": "true,pred_a:b\ny,x\nq,z\n"},
        r"a:b\.csv: domain name 'a:b' holds ':'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_file_is_one_error_naming_file_line_and_column(tmp_path, case):
    files, match = BAD[case]
    with pytest.raises(ValueError, match=match) as info:
        read_predictions(_bad(tmp_path, files))
    assert "\n" not in str(info.value)


def test_too_many_bytes_or_rows_are_refused(tmp_path, monkeypatch):
    folder = _bad(tmp_path, {"A.csv": "true,pred_B\n" + "cat,dog\n" * 5})
    monkeypatch.setattr(importer, "MAX_ROWS", 4)
    with pytest.raises(ValueError, match=r"A\.csv: line 6: more than 4 rows"):
        read_predictions(folder)
    monkeypatch.setattr(importer, "MAX_ROWS", 100)
    monkeypatch.setattr(importer, "MAX_BYTES", 20)
    with pytest.raises(ValueError, match=r"A\.csv: 52 bytes is too large to import"):
        read_predictions(folder)


def test_a_folder_without_csv_files_or_no_folder_is_refused(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match=r": no \.csv files; put one CSV per domain there"):
        read_predictions(tmp_path)
    with pytest.raises(ValueError, match=r"nowhere: no such folder"):
        read_predictions(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- the command line


def test_cli_imports_and_prints_the_scores(tmp_path, capsys):
    from core.__main__ import main

    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    argv = ["import", "--predictions", str(write_folder(tmp_path / "p")), "--truth", str(truth), "--out"]
    assert main([*argv, str(tmp_path / "run"), "--method", "mcfp", "--method", "hypothesis=2"]) == 0
    out = capsys.readouterr().out
    assert f"imported run {tmp_path / 'run'}: 3 domains, 7 classes, no images" in out
    assert "hypothesis_k_max2:" in out and "f1=" in out
    assert Run(tmp_path / "run").methods() == ["hypothesis_k_max2", "mcfp"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "threshold=7"], r"--method 'threshold=7': params\.t: must be in \[0, 1\], got 7"),
        (["--method", "magic"], r"--method 'magic': unknown method 'magic'"),
        (["--method", "mcfp=1"], r"--method 'mcfp=1': mcfp takes no parameter"),
    ],
)
def test_cli_bad_methods_exit_2(tmp_path, capsys, extra, message):
    from core.cli import main

    code = main(["import", "--predictions", str(write_folder(tmp_path / "p")), "--out", str(tmp_path / "r"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "r").exists()


def test_cli_a_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    from core.cli import main

    folder = _bad(tmp_path, {"B.csv": "true,pred_A\ndog,cat\nbus\n"})
    assert main(["import", "--predictions", str(folder), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "B.csv: line 3, column pred_A: 1 cells" in err
    assert not (tmp_path / "r").exists()


def test_cli_refuses_a_non_empty_out_and_a_locked_one(tmp_path, capsys):
    from core.cli import main

    folder = write_folder(tmp_path / "p")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["import", "--predictions", str(folder), "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    locked = init_run_dir(tmp_path / "locked")
    with RunLock(locked, purpose="test"):
        assert main(["import", "--predictions", str(folder), "--out", str(locked)]) == 1
    err = capsys.readouterr().err
    assert "in use by" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- the dashboard


@pytest.fixture(scope="module")
def imported_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    truth = root.parent / "truth.csv"
    truth.write_text(TRUTH)
    import_predictions(write_folder(root.parent / "preds"), root / "imp", truth=truth)
    return root


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "warning", "info", "error") for e in at.get(kind))


def _open(root: Path, monkeypatch, page: str, state: dict | None = None, **query):
    pytest.importorskip("streamlit")
    from tests.conftest import page_opener

    at = page_opener(root, monkeypatch)(page, **query)
    if state:
        for k, v in state.items():
            at.session_state[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_relationships_scores_the_imported_run_against_its_truth(imported_root, monkeypatch):
    from core.metrics import relationship_scores
    from core.selection import select_relationships

    at = _open(imported_root, monkeypatch, "relationships", method="mcfp")
    run = Run(imported_root / "imp")
    pred = {ab: select_relationships(P, "mcfp") for ab, P in run.matrices("hard").items()}
    want = relationship_scores(pred, run.true_relationships(), run.class_counts())
    f1 = next(m.value for m in at.metric if m.label == "F1")
    assert float(f1) == pytest.approx(want["f1"], abs=5e-4)
    assert not at.error


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "state", "downloads"),
    [
        ("taxonomy", None, False),
        ("taxonomy", {"tax_tab": "⬇️ Downloads"}, True),
        ("curation", None, False),
        ("curation", {"cur_tab": "⬇️ Export / import"}, True),
        ("crossdomain", None, False),
    ],
)
def test_the_pages_open_the_imported_run(imported_root, monkeypatch, page, state, downloads):
    at = _open(imported_root, monkeypatch, page, state)
    assert not at.error
    assert bool(at.get("download_button")) == downloads


@pytest.mark.slow
def test_the_taxonomy_evidence_says_there_are_no_images_to_show(imported_root, monkeypatch):
    at = _open(imported_root, monkeypatch, "taxonomy", {"tax_tab": "🔎 Evidence"})
    assert "No images to show: this run was imported from prediction files" in _texts(at)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "state"),
    [
        ("universal", None),
        ("try_it", None),
        ("relationships", {"rel_tab": "🎯 Accuracy sweep"}),
        ("curation", {"cur_tab": "🎯 Train on it"}),
    ],
)
def test_pages_that_need_images_say_the_imported_run_has_none(imported_root, monkeypatch, page, state):
    at = _open(imported_root, monkeypatch, page, state)
    text = _texts(at)
    assert "imported from prediction files" in text and "no images" in text, text[:500]
    assert not at.error
    for b in at.button:
        if b.label.startswith(("🎯 Train", "▶️ Run sweep", "Train in the background")):
            assert b.disabled, b.label


def test_no_job_trains_or_runs_in_an_imported_run(tmp_path):
    from core.curated import check_curated
    from core.pipeline import run_pipeline
    from core.sweep import check_sweep

    folder = write_folder(tmp_path / "preds")
    out = import_predictions(folder, tmp_path / "run")
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ValueError, match="imported from predictions: it has no images to train a sweep on"):
        check_sweep(out)
    with pytest.raises(ValueError, match="imported from predictions: it has no images to train the curated model on"):
        check_curated(out, "mcfp", None)
    with pytest.raises(ValueError, match="holds predictions imported with `python -m core import`"):
        run_pipeline("assets/configs/tiny.yaml", out)
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing touched
