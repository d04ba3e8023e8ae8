"""The memory-mapped feature store: round trips, damaged entries rebuilt, bounded memory, and heads
trained on a map equal to heads trained on the same array in RAM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core import featstore
from core.featstore import gather_rows, is_mapped, load_features, open_features, open_writer

KEY = "images|backbone=x|size=32|v1"


def _rand(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _write(path, X, dtype="float32", failed=(), batch=7, key=KEY):
    w = open_writer(path, X.shape[0], X.shape[1], dtype)
    for s in range(0, len(X), batch):
        w.write(s, X[s : s + batch])
    w.commit(key, failed)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip_is_mapped_and_exact_or_within_float16_rounding(tmp_path, dtype):
    X = _rand(103, 9)
    path = tmp_path / "k.npy"
    _write(path, X, dtype, failed=[4, 100])
    feats, failed = open_features(path, KEY, 103)
    assert isinstance(feats, np.memmap) and is_mapped(feats) and feats.dtype == np.dtype(dtype)
    assert not feats.flags.writeable and failed.tolist() == [4, 100]
    if dtype == "float32":
        np.testing.assert_array_equal(feats, X)
    else:
        np.testing.assert_array_equal(feats, X.astype(np.float16))  # exactly float16 rounding
        np.testing.assert_allclose(feats, X, rtol=1e-3, atol=1e-4)
    assert np.load(path).dtype == np.dtype(dtype)  # a plain .npy file
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == featstore.FORMAT and meta["dtype"] == dtype and meta["shape"] == [103, 9]
    # small entries come back in RAM as float32; over the limit they stay mapped
    small, _ = load_features(path, KEY, 103)
    assert type(small) is np.ndarray and small.dtype == np.float32 and not is_mapped(small)
    np.testing.assert_array_equal(small, np.asarray(feats, dtype=np.float32))
    big, _ = load_features(path, KEY, 103, ram_limit=0)
    assert is_mapped(big) and big.dtype == np.dtype(dtype)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_writes_in_any_order_get_the_same_checksum(tmp_path):
    X = _rand(50, 4)
    _write(tmp_path / "a.npy", X)
    w = open_writer(tmp_path / "b.npy", 50, 4)
    for s in (40, 0, 20, 10, 30):
        w.write(s, X[s : s + 10])
    w.commit(KEY)
    meta = [json.loads((tmp_path / f"{c}.json").read_text()) for c in "ab"]
    assert meta[0]["crc32"] == meta[1]["crc32"]
    np.testing.assert_array_equal(open_features(tmp_path / "b.npy", KEY, 50)[0], X)


def _damage(path: Path, how: str) -> None:
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-5])
    elif how == "appended":
        path.write_bytes(path.read_bytes() + b"\0" * 8)
    elif how == "altered":
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x40
        path.write_bytes(bytes(data))
    elif how == "foreign":
        meta["key"] = "other images"
        meta_path.write_text(json.dumps(meta))
    elif how == "meta_dtype":
        meta["dtype"] = "float16"  # the file is float32
        meta_path.write_text(json.dumps(meta))
    elif how == "bad_dtype":
        meta["dtype"] = "int8"
        meta_path.write_text(json.dumps(meta))
    elif how == "other_npy":
        np.save(path, np.zeros((20, 3), dtype=np.float64))
    elif how == "fortran":
        np.save(path, np.asfortranarray(np.load(path)))
    elif how == "not_npy":
        path.write_bytes(b"\x93NUMPY garbage")
    elif how == "meta_json":
        meta_path.write_text("{not json")
    elif how == "meta_list":
        meta_path.write_text("[1, 2]")
    elif how == "failed_range":
        meta["failed"] = [25]
        meta_path.write_text(json.dumps(meta))
    elif how == "no_meta":
        meta_path.unlink()
    elif how == "format":
        meta["format"] = 99
        meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "how",
    ["truncated", "appended", "altered", "foreign", "meta_dtype", "bad_dtype", "other_npy", "fortran", "not_npy",
     "meta_json", "meta_list", "failed_range", "no_meta", "format"],
)  # fmt: skip
def test_damaged_or_foreign_entries_are_refused(tmp_path, how):
    path = tmp_path / "k.npy"
    _write(path, _rand(20, 3))
    assert open_features(path, KEY, 20) is not None
    _damage(path, how)
    assert open_features(path, KEY, 20) is None
    assert load_features(path, KEY, 20) is None


def test_wrong_n_key_or_dtype_request_is_a_miss_and_old_format_is_read(tmp_path):
    path = tmp_path / "k.npy"
    X = _rand(20, 3)
    _write(path, X, "float16")
    assert open_features(path, KEY, 21) is None
    assert open_features(path, KEY + "x", 20) is None
    assert open_features(path, KEY, 20, dtype="float32") is None
    assert open_features(path, KEY, 20, dtype="float16") is not None
    # format 1 (the cache before the store): float32, no dtype in the meta, the same checksum rule
    import zlib

    np.save(path, X)
    meta = {"format": 1, "key": KEY, "n": 20, "shape": [20, 3], "crc32": zlib.crc32(X.tobytes()), "failed": []}
    path.with_suffix(".json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(open_features(path, KEY, 20)[0], X)
    meta["crc32"] += 1
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert open_features(path, KEY, 20) is None


def test_abort_and_failed_commit_keep_the_previous_entry(tmp_path):
    path = tmp_path / "k.npy"
    X = _rand(10, 3)
    _write(path, X)
    w = open_writer(path, 10, 3)
    w.write(0, X[:5] + 1)
    w.abort()
    np.testing.assert_array_equal(open_features(path, KEY, 10)[0], X)
    w = open_writer(path, 10, 3)
    w.write(0, X + 1)
    with pytest.raises(ValueError, match=r"failed indices must be in \[0, 10\), got range \[3, 10\]"):
        w.commit(KEY, [3, 10])
    np.testing.assert_array_equal(open_features(path, KEY, 10)[0], X)
    with pytest.raises(ValueError, match="already committed or aborted"):
        w.write(0, X)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npy"]


def test_bad_arguments_are_refused(tmp_path):
    for bad in ("float64", "int8", "f16", None, 3):
        with pytest.raises(ValueError, match="store dtype must be one of"):
            open_writer(tmp_path / "k.npy", 3, 2, bad)
    with pytest.raises(ValueError, match="n must be an int >= 0, got -1"):
        open_writer(tmp_path / "k.npy", -1, 2)
    with pytest.raises(ValueError, match="dim must be an int >= 1, got 0"):
        open_writer(tmp_path / "k.npy", 3, 0)
    w = open_writer(tmp_path / "k.npy", 3, 2)
    with pytest.raises(ValueError, match=r"rows 2..4 of shape \(2, 2\) do not fit \(3, 2\)"):
        w.write(2, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"of shape \(1, 5\) do not fit"):
        w.write(0, np.zeros((1, 5)))
    w.abort()
    with pytest.raises(ValueError, match="one D"):
        gather_rows([(np.zeros((3, 2)), None), (np.zeros((3, 4)), None)])
    from core.config import ConfigError, FeaturesConfig
    from core.config_io import config_hash

    with pytest.raises(ConfigError, match="store_dtype: must be one of \\['float32', 'float16'\\], got 'float64'"):
        FeaturesConfig(store_dtype="float64")
    # the default keeps older runs' step hashes; float16 changes them
    assert config_hash(FeaturesConfig()) != config_hash(FeaturesConfig(store_dtype="float16"))
    assert "store_dtype" not in json.dumps(__import__("core.config_io").config_io._hash_form(FeaturesConfig()))


def test_gather_rows_in_ram_and_mapped(tmp_path):
    X, Y = _rand(70, 5, 1), _rand(30, 5, 2)
    _write(tmp_path / "x.npy", X)
    mx = open_features(tmp_path / "x.npy", KEY, 70)[0]
    keep = np.array([0, 3, 4, 69])
    want = np.concatenate([X[keep], Y])
    in_ram = gather_rows([(mx, keep), (Y, None)])
    assert type(in_ram) is np.ndarray and in_ram.dtype == np.float32
    np.testing.assert_array_equal(in_ram, want)
    mapped = gather_rows([(mx, keep), (Y, None)], folder=tmp_path, ram_limit=0)
    assert is_mapped(mapped) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.npy"]  # the temporary file is unlinked


def _tiny_backbone():
    from core.backbones import Backbone

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 24))
    return Backbone("tiny_test_net", net, 24, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), pool="torchvision")


def test_extraction_writes_the_store_and_returns_a_map(tmp_path, monkeypatch):
    from core.features import extract_features_report, feature_cache_key
    from core.sources import load_source

    split = load_source("procedural", seed=3, n_concepts=10, per_class=(200, 0, 0)).splits["train"]  # 2,000 images
    net = _tiny_backbone()
    kw = dict(backbone=net, image_size=16, cache_dir=tmp_path, batch_size=256, num_workers=0)
    ref = extract_features_report(split, use_cache=False, **kw).features
    assert type(ref) is np.ndarray and ref.shape == (2000, 24)
    monkeypatch.setattr(featstore, "RAM_LIMIT", 0)  # every split "too large for RAM"
    first = extract_features_report(split, **kw)
    assert not first.from_cache and isinstance(first.features, np.memmap)
    np.testing.assert_array_equal(first.features, ref)
    again = extract_features_report(split, **kw)
    assert again.from_cache and isinstance(again.features, np.memmap)
    np.testing.assert_array_equal(again.features, ref)
    half = extract_features_report(split, store_dtype="float16", **kw)
    assert not half.from_cache and half.features.dtype == np.float16  # its own cache entry
    np.testing.assert_array_equal(half.features, ref.astype(np.float16))  # first run == what a rerun reads
    assert extract_features_report(split, store_dtype="float16", **kw).from_cache
    keys = {feature_cache_key(split, backbone=net, image_size=16, store_dtype=d) for d in ("float32", "float16")}
    assert len(keys) == 2 and {p.stem for p in tmp_path.glob("*.npy")} == keys
    monkeypatch.setattr(featstore, "RAM_LIMIT", 1 << 30)
    small = extract_features_report(split, store_dtype="float16", **kw).features
    assert type(small) is np.ndarray and small.dtype == np.float32
    np.testing.assert_array_equal(small, ref.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="store dtype must be one of"):
        extract_features_report(split, store_dtype="bfloat16", **kw)


def _train(X, y, Xv, yv, epochs=4):
    from core.config import HeadConfig, TrainConfig
    from core.heads import build_head
    from core.training import predict_logits, train_classifier

    torch.manual_seed(0)
    model = build_head(X.shape[1], 3, HeadConfig(width=16))
    res = train_classifier(
        model, X, y, Xv, yv, config=TrainConfig(epochs=epochs, batch_size=16, lr=0.01, patience=0), seed=1
    )
    return res, predict_logits(res.model, Xv, batch_size=7)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_head_trained_on_a_map_equals_the_head_trained_in_ram(tmp_path, dtype):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 150)
    X = (rng.normal(size=(150, 10)) + 3 * np.eye(3, 10)[y]).astype(np.float32)
    _write(tmp_path / "t.npy", X[:110], dtype, key="t")
    _write(tmp_path / "v.npy", X[110:], dtype, key="v")
    mt, mv = open_features(tmp_path / "t.npy", "t", 110)[0], open_features(tmp_path / "v.npy", "v", 40)[0]
    ram = X.astype(dtype).astype(np.float32)
    a, la = _train(ram[:110], y[:110], ram[110:], y[110:])
    b, lb = _train(mt, y[:110], mv, y[110:])
    assert a.history == [{**h, "samples_per_s": a.history[i]["samples_per_s"],
                          "epoch_s": a.history[i]["epoch_s"], "eta_s": a.history[i]["eta_s"]}
                         for i, h in enumerate(b.history)]  # fmt: skip
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    np.testing.assert_array_equal(la, lb)
    assert a.best_val_acc > 0.6


def test_context_keeps_large_splits_mapped(tmp_path, monkeypatch):
    from core.config import RunConfig
    from core.context import RunContext, split_data, union

    monkeypatch.setenv("UNITAX_CACHE", str(tmp_path / "cache"))
    X0, X1 = _rand(40, 6, 1), _rand(25, 6, 2)
    _write(tmp_path / "a.npy", X0, "float16", key="a")
    _write(tmp_path / "b.npy", X1, "float16", key="b")
    m0, m1 = open_features(tmp_path / "a.npy", "a", 40)[0], open_features(tmp_path / "b.npy", "b", 25)[0]
    y0, y1 = np.arange(40) % 4, np.arange(25) % 3
    ctx = RunContext(cfg=RunConfig(), run=None)
    ctx.domains = [SimpleNamespace(splits={"train": SimpleNamespace(labels=y)}) for y in (y0, y1)]
    ctx.features = {(0, "train"): m0, (1, "train"): m1}
    ctx.failed = {(0, "train"): np.zeros(0, np.int64), (1, "train"): np.array([2, 7])}
    X, y, item = split_data(ctx, 0, "train")
    assert X is m0 and item.tolist() == list(range(40))  # nothing unreadable: the store's own map
    monkeypatch.setattr(featstore, "RAM_LIMIT", 0)
    X, y, item = split_data(ctx, 1, "train")
    keep = np.setdiff1d(np.arange(25), [2, 7])
    assert is_mapped(X) and item.tolist() == keep.tolist() and y.tolist() == y1[keep].tolist()
    np.testing.assert_array_equal(X, m1[keep])
    U, dom, lab = union(ctx, "train")
    assert is_mapped(U) and U.dtype == np.float16 and U.shape == (63, 6)
    np.testing.assert_array_equal(U, np.concatenate([m0, m1[keep]]))
    assert dom.tolist() == [0] * 40 + [1] * 23 and lab.tolist() == y0.tolist() + y1[keep].tolist()
    assert union(ctx, "train")[0] is U  # built once per invocation
    # splits in RAM: exactly what the engine always did
    ctx2 = RunContext(cfg=RunConfig(), run=None)
    ctx2.domains, ctx2.failed = ctx.domains, ctx.failed
    ctx2.features = {(0, "train"): X0, (1, "train"): X1}
    U2 = union(ctx2, "train")[0]
    assert type(U2) is np.ndarray and not is_mapped(U2)
    np.testing.assert_array_equal(U2, np.concatenate([X0, X1[keep]]))


MEMORY_SCRIPT = r"""
import sys, numpy as np
from core import featstore
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
n, d, folder = int(sys.argv[1]), 256, sys.argv[2]
rng = np.random.default_rng(0)
batch = rng.normal(size=(512, d)).astype(np.float32)
before = hwm()
w = featstore.open_writer(folder + "/m.npy", n, d, "float32")
for s in range(0, n, 512):
    w.write(s, batch[: min(512, n - s)])
w.commit("m")
X, failed = featstore.load_features(folder + "/m.npy", "m", n, ram_limit=0)
total = 0.0
reader = featstore.RowReader.of(X)  # how training reads a map: rows by position
for k, start in enumerate(range(0, n, 4096)):
    total += float(reader.rows(start, min(start + 4096, n))[:, 0].sum())
    if k % 16 == 15:
        featstore.release(X)
print(hwm() - before)
"""


def test_peak_memory_does_not_grow_with_the_number_of_rows(tmp_path):
    """Writing and reading 200,000 x 256 float32 rows (205 MB) raises the peak RSS by far less."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, "200000", str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert out.returncode == 0, out.stderr
    grown = int(out.stdout.strip())
    assert grown < 80 << 20, f"peak RSS grew by {grown / 2**20:.0f} MiB for a 195 MiB store"


def test_row_reader_reads_maps_by_position_and_refuses_a_replaced_file(tmp_path):
    from core.featstore import RowReader

    X = _rand(60, 5)
    path = tmp_path / "k.npy"
    _write(path, X, "float16")
    m = open_features(path, KEY, 60)[0]
    r = RowReader.of(m[10:])  # a row range of the map: its own offset in the file
    idx = np.array([7, 0, 49, 7, 3])
    np.testing.assert_array_equal(r.take(idx), m[10:][idx])
    np.testing.assert_array_equal(r.rows(5, 20), m[15:30])
    with pytest.raises(IndexError, match=r"out of range \[0, 50\)"):
        r.take([50])
    assert RowReader.of(X) is None and RowReader.of(m[:, :2]) is None  # in RAM; not row-contiguous
    g = gather_rows([(m, np.array([1, 2, 59]))], folder=tmp_path, ram_limit=0)  # an unlinked temporary file
    np.testing.assert_array_equal(RowReader.of(g).take([2, 0]), m[[59, 1]])
    _write(path, X + 1, "float16")  # the entry is rebuilt (renamed over): the old map keeps the old file
    assert RowReader.of(m) is None
    from core.training import predict_logits

    head = torch.nn.Linear(5, 2)
    np.testing.assert_array_equal(
        predict_logits(head, m, batch_size=8), predict_logits(head, X.astype(np.float16).astype(np.float32))
    )


@pytest.mark.parametrize("raw", ["abc", "1e400", "-5", "nan", "inf"])
def test_a_bad_ram_limit_names_the_variable(monkeypatch, raw):
    monkeypatch.setattr(featstore, "RAM_LIMIT", None)
    monkeypatch.setenv("UNITAX_FEATURES_RAM_MB", raw)
    with pytest.raises(ValueError, match=r"\$UNITAX_FEATURES_RAM_MB must be a number of megabytes >= 0"):
        featstore.default_ram_limit()


def test_ram_limit_from_the_environment(monkeypatch):
    monkeypatch.setattr(featstore, "RAM_LIMIT", None)
    monkeypatch.setenv("UNITAX_FEATURES_RAM_MB", "")
    assert featstore.default_ram_limit() == 1024 << 20
    monkeypatch.setenv("UNITAX_FEATURES_RAM_MB", "0.5")
    assert featstore.default_ram_limit() == 1 << 19


def test_a_folder_where_the_entry_belongs_is_named(tmp_path):
    (tmp_path / "k.npy").mkdir()
    with pytest.raises(ValueError, match=r"feature cache entry .*k\.npy' is not a file"):
        featstore.open_writer(tmp_path / "k.npy", 4, 3)


def test_a_dead_writers_temporary_file_is_removed_a_live_ones_kept(tmp_path):
    path = tmp_path / "k.npy"
    stale = tmp_path / ".k.npy.dead1234.tmp"
    stale.write_bytes(b"left by a kill -9")
    live = open_writer(path, 4, 3)  # holds its own lock; removes the stale file
    assert not stale.exists() and live.tmp.exists()
    other = open_writer(path, 4, 3)  # a second writer of the same entry leaves the live one alone
    assert live.tmp.exists()
    other.abort()
    live.write(0, np.ones((4, 3), np.float32))
    live.commit(KEY, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npy"]
