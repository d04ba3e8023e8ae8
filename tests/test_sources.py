"""Sources on fixtures written in the exact on-disk formats: CIFAR-100 pickles, Caltech folders."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.sources import SOURCES, ImageSet, decode_image, load_source, stratified_split


def _write_cifar(root: Path, names: list[str], n_train: int, n_test: int, seed: int) -> dict:
    """torchvision's cifar-100-python format: pickled dicts with bytes keys, data (N, 3072) CHW."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.repeat(np.arange(len(names)), n)
        data = rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8)
        with open(folder / split, "wb") as fh:
            pickle.dump(
                {
                    b"data": data,
                    b"fine_labels": labels.tolist(),
                    b"coarse_labels": [0] * labels.size,
                    b"filenames": [b"x.png"] * labels.size,
                },
                fh,
            )
        out[split] = (data, labels)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"all"]}, fh)
    return out


def _jpeg(path: Path, colour: tuple[int, int, int], size=(20, 14)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")


def _write_caltech101(root: Path) -> Path:
    folder = root / "101_ObjectCategories"
    for c, colour in (
        ("Faces", (200, 10, 10)),
        ("ant", (10, 200, 10)),
        ("car_side", (10, 10, 200)),
        ("BACKGROUND_Google", (0, 0, 0)),
    ):
        for k in range(1, 7):
            _jpeg(folder / c / f"image_{k:04d}.jpg", colour)
    (folder / "empty_class").mkdir()
    good = (folder / "ant" / "image_0001.jpg").read_bytes()
    (folder / "ant" / "image_0007.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG
    return folder


def test_cifar100_fixture_loads_with_pixels_and_split(tmp_path, seed):
    names = ["apple", "bear", "castle", "dolphin"]
    data = _write_cifar(tmp_path, names, n_train=10, n_test=3, seed=seed)
    src = load_source("cifar100", root=tmp_path, seed=seed)
    assert src.class_names == names
    assert [len(src.splits[s]) for s in ("train", "val", "test")] == [36, 4, 12]
    # val is one stratified image per class, disjoint from train
    assert sorted(src.splits["val"].labels.tolist()) == [0, 1, 2, 3]
    assert not set(src.splits["val"].items) & set(src.splits["train"].items)
    raw, labels = data["test"]
    img = src.splits["test"].image(5)
    np.testing.assert_array_equal(img, raw[5].reshape(3, 32, 32).transpose(1, 2, 0))
    assert src.splits["test"].labels[5] == labels[5]
    imgs, ok = src.splits["train"].images(np.arange(4), 16)
    assert imgs.shape == (4, 16, 16, 3) and ok.all()


def test_cifar100_missing_or_wrong_root(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*cifar-100-python"):
        load_source("cifar100", root=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"lacks \['train', 'test', 'meta'\]"):
        load_source("cifar100", root=tmp_path)
    with pytest.raises(ValueError, match="needs a dataset root"):
        load_source("cifar100")
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for f in ("train", "test", "meta"):
        (folder / f).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="unreadable or not in torchvision's"):
        load_source("cifar100", root=tmp_path)


def test_caltech101_layout_split_and_corrupt_file(tmp_path, seed):
    _write_caltech101(tmp_path)
    with pytest.warns(UserWarning, match="empty_class"):
        src = load_source("caltech101", root=tmp_path, seed=seed)
    assert src.class_names == ["Faces", "ant", "car_side"]  # background excluded, empty skipped
    sizes = {s: len(v) for s, v in src.splits.items()}
    assert sum(sizes.values()) == 19
    for s in ("train", "val", "test"):  # stratified: every class in every split
        assert set(src.splits[s].labels.tolist()) == {0, 1, 2}
    with pytest.warns(UserWarning, match="empty_class"):
        again = load_source("caltech101", root=tmp_path, seed=seed)
    np.testing.assert_array_equal(again.splits["test"].items, src.splits["test"].items)
    # the truncated file is reported by ok=False, the others decode to their colour
    oks = []
    for s in ("train", "val", "test"):
        imgs, ok = src.splits[s].images(np.arange(len(src.splits[s])), 8)
        oks.append(ok)
        good = imgs[ok]
        assert good.shape[1:] == (8, 8, 3)
    assert sum(int((~ok).sum()) for ok in oks) == 1


def test_caltech101_torchvision_layout_and_wrong_root(tmp_path):
    _write_caltech101(tmp_path / "caltech101")
    with pytest.warns(UserWarning):
        assert load_source("caltech101", root=tmp_path).n_classes == 3
    with pytest.raises(ValueError, match="no '101_ObjectCategories' folder"):
        load_source("caltech101", root=tmp_path / "caltech101" / "101_ObjectCategories" / "ant")


def test_caltech256_names_drop_prefix_and_clutter(tmp_path):
    folder = tmp_path / "256_ObjectCategories"
    for d in ("001.ak47", "002.american-flag", "257.clutter"):
        for k in range(1, 4):
            _jpeg(folder / d / f"{d[:3]}_{k:04d}.jpg", (50, 60, 70))
    src = load_source("caltech256", root=tmp_path)
    assert src.class_names == ["ak47", "american-flag"]
    assert load_source("caltech256", root=tmp_path, include_clutter=True).n_classes == 3


def test_cache_key_follows_file_contents(tmp_path):
    folder = _write_caltech101(tmp_path)
    with pytest.warns(UserWarning):
        k1 = load_source("caltech101", root=tmp_path).splits["train"].key
    p = folder / "Faces" / "image_0001.jpg"
    _jpeg(p, (1, 2, 3), size=(30, 30))
    os.utime(p, ns=(1, 1))
    with pytest.warns(UserWarning):
        k2 = load_source("caltech101", root=tmp_path).splits["train"].key
    assert k1 != k2


def test_decode_odd_modes(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    deep = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(deep).save(tmp_path / "d.png")  # 16-bit greyscale PNG
    g = decode_image(tmp_path / "g.png")
    assert g.shape == (8, 8, 3) and g.dtype == np.uint8 and (g[..., 0] == grey).all()
    a = decode_image(tmp_path / "a.png")
    assert tuple(a[0, 0]) == (255, 0, 0) and tuple(a[7, 7]) == (255, 255, 255)
    d = decode_image(tmp_path / "d.png")
    assert d.dtype == np.uint8 and d.max() == 255 and d.min() == 0
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(OSError):
        decode_image(tmp_path / "bad.jpg")


def test_imagefolder_flat_and_presplit(tmp_path):
    for c in ("cat", "dog"):
        for k in range(5):
            _jpeg(tmp_path / "flat" / c / f"{k}.jpg", (k * 40, 0, 0))
    src = load_source("imagefolder", root=tmp_path / "flat")
    assert src.class_names == ["cat", "dog"] and sum(len(s) for s in src.splits.values()) == 10
    for s, n in (("train", 6), ("test", 2)):
        for c in ("cat", "dog"):
            for k in range(n):
                _jpeg(tmp_path / "pre" / s / c / f"{k}.png", (0, k * 30, 0))
    pre = load_source("imagefolder", root=tmp_path / "pre")
    assert len(pre.splits["test"]) == 4 and len(pre.splits["train"]) + len(pre.splits["val"]) == 12
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_source("imagefolder", root=tmp_path / "none")


def test_stratified_split_is_deterministic_disjoint_and_stratified(seed):
    labels = np.repeat(np.arange(5), [1, 2, 3, 10, 50])
    parts = stratified_split(labels, seed=seed)
    allidx = np.concatenate(list(parts.values()))
    assert sorted(allidx.tolist()) == list(range(labels.size))
    assert (labels[parts["train"]] == 0).sum() == 1
    for c in (2, 3, 4):
        for s in ("train", "val", "test"):
            assert (labels[parts[s]] == c).sum() >= 1
    assert abs((labels[parts["test"]] == 4).sum() - 10) <= 1
    again = stratified_split(labels, seed=seed)
    for s in parts:
        np.testing.assert_array_equal(parts[s], again[s])
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(labels, fractions=(0.5, 0.2, 0.2))


def test_digits_and_procedural_builtins(seed):
    d = load_source("digits", seed=seed)
    assert d.class_names == [str(k) for k in range(10)]
    assert d.splits["train"].image(0).shape == (8, 8, 3)
    assert sum(len(s) for s in d.splits.values()) == 1797
    p = load_source("procedural", seed=seed, n_concepts=10, per_class=(3, 1, 2))
    assert [len(p.splits[s]) for s in ("train", "val", "test")] == [30, 10, 20]
    assert not set(p.splits["train"].items) & set(p.splits["test"].items)
    assert p.splits["train"].image(0).shape == (64, 64, 3)


def test_unknown_source_and_bad_options():
    with pytest.raises(ValueError, match="unknown source 'imagenet'"):
        load_source("imagenet")
    with pytest.raises(TypeError, match="procedural"):
        load_source("procedural", colour="red")
    assert set(SOURCES) == {"procedural", "digits", "cifar100", "caltech101", "caltech256", "imagefolder"}


def test_imageset_indexing_and_subset(seed):
    s = load_source("procedural", seed=seed, n_concepts=4, per_class=(2, 1, 1)).splits["train"]
    assert isinstance(s, ImageSet)
    with pytest.raises(IndexError, match="out of range"):
        s.image(len(s))
    sub = s.subset(np.array([1, 3]), np.array([7, 7]))
    assert sub.labels.tolist() == [7, 7]
    np.testing.assert_array_equal(sub.image(1), s.image(3))
    assert sub.key != s.key and s.with_shift("A", seed=1).key != s.key


def test_check_root_looks_up_the_layout_without_reading(tmp_path):
    from core.sources import check_root

    check_root("procedural", None)  # built in: nothing to look up
    with pytest.raises(ValueError, match="source 'caltech101' needs a dataset root"):
        check_root("caltech101", None)
    with pytest.raises(
        ValueError, match=r"does not exist or is not a folder; expected layout: <root>/101_ObjectCategories"
    ):
        check_root("caltech101", tmp_path / "nope")
    with pytest.raises(ValueError, match="no '256_ObjectCategories' folder under"):
        check_root("caltech256", tmp_path)
    (tmp_path / "256_ObjectCategories").mkdir()
    check_root("caltech256", tmp_path)
    with pytest.raises(ValueError, match=r"lacks \['train', 'test', 'meta'\]"):
        check_root("cifar100", tmp_path)
    with pytest.raises(ValueError, match="unknown source 'mnist'"):
        check_root("mnist", tmp_path)


def test_every_registry_source_has_a_loader():
    from core import loaders, registry, sources

    assert sources.SOURCES is registry.SOURCES and sources.SPLITS is registry.SPLITS
    assert set(loaders.LOADERS) == set(registry.SOURCES)
    assert set(registry.SYNTHETIC_BASES) <= set(registry.SOURCES)
