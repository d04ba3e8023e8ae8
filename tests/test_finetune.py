"""Fine-tuning (features.mode: finetune): the thesis's heads, recipes, checkpoint rules, weights,
augmentation, and a whole tiny run through the pipeline (core.finetune, core.finetune_steps).

Fast tests train a tiny convolutional backbone (a few hundred weights) wrapped like any backbone;
the slow ones fine-tune the offline EfficientNet-Lite0 at 32 px on two CPU threads or fewer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.backbones import Backbone
from core.config import (
    HEAD_PRESETS,
    TRAIN_PRESETS,
    ConfigError,
    HeadConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)
from core.finetune import (
    FinetunedNet,
    _crop_boxes,
    classifier_objective,
    finetune,
    predict_images,
    random_resized_crop,
    trainable_backbone,
    weights_file_name,
)
from core.heads import MLPHead, build_head, load_model, save_model
from core.sources import load_source

REPO = Path(__file__).resolve().parent.parent
TINY_FINETUNE = REPO / "assets" / "configs" / "tiny-finetune.yaml"


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on the shared 2-core machine two OpenMP threads wait on each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def splits():
    """Procedural images: 4 classes, 6 train / 3 val / 2 test images each."""
    return load_source("procedural", seed=3, n_concepts=4, per_class=(6, 3, 2)).splits


def tiny_net(n_out: int, *, seed: int = 0, head: HeadConfig | None = None) -> FinetunedNet:
    """A 2-conv backbone (with BatchNorm, like the real ones) + a head, as the pipeline builds them."""
    torch.manual_seed(seed)
    conv = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    backbone = Backbone("tiny", conv, 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), pool="plain")
    backbone.net.requires_grad_(True)
    return FinetunedNet(backbone, build_head(16, n_out, head or HeadConfig(depth=2, width=16, dropout=0.0)))


# ---------------------------------------------------------------------------- heads


def _layers(head: MLPHead) -> list[nn.Module]:
    return [*head.body, head.out]


def test_thesis_baseline_head_sizes_dropout_and_no_activation():
    head = build_head(
        2048, 10, config_from_dict({"baselines": {"head": {"preset": "thesis_baseline_head"}}}).baselines.head
    )
    linears = [(m.in_features, m.out_features) for m in _layers(head) if isinstance(m, nn.Linear)]
    assert linears == [(2048, 1024), (1024, 512), (512, 256), (256, 128), (128, 10)]
    # one Dropout right before every Linear: 0.5 on the input, 0.2 after that
    kinds = [type(m).__name__ for m in _layers(head)]
    assert kinds == ["Dropout", "Linear"] * 5
    assert [m.p for m in _layers(head) if isinstance(m, nn.Dropout)] == [0.5, 0.2, 0.2, 0.2, 0.2]
    assert not any(isinstance(m, (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh)) for m in head.modules())
    assert head.features(torch.zeros(3, 2048)).shape == (3, 128)


def test_thesis_universal_head_is_two_linear_layers_without_dropout():
    cfg = config_from_dict({"universal": {"head": {"preset": "thesis_universal_head"}}})
    head = build_head(2048, 37, cfg.universal.head)
    assert [type(m).__name__ for m in _layers(head)] == ["Linear", "Linear"]
    assert [(m.in_features, m.out_features) for m in _layers(head)] == [(2048, 1024), (1024, 37)]


def test_renamed_presets_and_deprecated_aliases_keep_their_meaning():
    for old, new in (("thesis", "linear_6x512"), ("thesis_universal", "linear_2x512")):
        a = config_from_dict({"baselines": {"head": {"preset": old}}}).baselines.head
        b = config_from_dict({"baselines": {"head": {"preset": new}}}).baselines.head
        assert (a.depth, a.width, a.dropout, a.activation, a.widths) == (
            b.depth,
            b.width,
            b.dropout,
            b.activation,
            None,
        )
    assert HEAD_PRESETS["linear_6x512"] == {"depth": 6, "width": 512, "dropout": 0.5, "activation": "none"}


def test_head_widths_and_depth_must_agree():
    assert config_from_dict({"baselines": {"head": {"widths": [64, 32]}}}).baselines.head.depth == 3
    with pytest.raises(ConfigError, match=r"^baselines\.head\.depth: must be len\(widths\) \+ 1 = 3"):
        config_from_dict({"baselines": {"head": {"widths": [64, 32], "depth": 2}}})
    with pytest.raises(ValueError, match="depth must be len"):
        MLPHead(8, 2, depth=2, widths=[4, 4])


def test_a_head_file_written_before_widths_still_loads(tmp_path):
    head = MLPHead(8, 3, depth=2, width=4)
    path = save_model(tmp_path / "h.pt", head)
    payload = torch.load(path, weights_only=True)
    for key in ("widths", "input_dropout"):  # the hparams of older files
        payload["hparams"].pop(key)
    torch.save(payload, path)
    again, _ = load_model(path)
    assert torch.equal(again.out.weight, head.out.weight)


# ---------------------------------------------------------------------------- config


def test_thesis_recipes_hold_the_numbers_of_its_notebooks():
    from core.config_io import build_section

    c101, c256, cifar = (
        build_section(TrainConfig, {"preset": p}, "train")
        for p in ("thesis_caltech101", "thesis_caltech256", "thesis_cifar100")
    )
    assert (c101.optimizer, c101.lr, c101.momentum, c101.nesterov, c101.weight_decay) == ("sgd", 0.01, 0.9, False, 5e-4)
    assert (c101.epochs, c256.epochs, c101.batch_size, c101.schedule) == (10, 20, 64, "none")
    assert (cifar.optimizer, cifar.lr, cifar.weight_decay, cifar.milestones, cifar.epochs) == (
        "adamw", 1e-3, 1e-3, (30, 60, 80), 50,
    )  # fmt: skip
    assert {c.checkpoint for c in (c101, c256, cifar)} == {"val_loss"} and c101.patience == 0
    uni = TrainConfig(**TRAIN_PRESETS["thesis_universal"])
    assert (uni.optimizer, uni.lr, uni.min_lr, uni.schedule, uni.batch_size, uni.checkpoint, uni.epochs) == (
        "adamw", 5e-5, 1e-7, "cosine", 64, "val_acc", 50,
    )  # fmt: skip


def test_thesis_config_reads_as_the_thesis_protocol():
    cfg = load_config(REPO / "assets" / "configs" / "thesis-caltech101-caltech256.yaml")
    assert cfg.finetune and cfg.features.backbone == "resnet50" and cfg.features.image_size == 224
    assert cfg.baselines.recipe("caltech101").epochs == 10 and cfg.baselines.recipe("caltech256").epochs == 20
    assert cfg.baselines.head.widths == (1024, 512, 256, 128) and cfg.universal.head.widths == (1024,)
    assert cfg.universal_train.lr == 5e-5 and cfg.universal.label_smoothing == 0.1


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"features": {"mode": "tuned"}}, r"^features\.mode: must be one of"),
        ({"features": {"crop_scale": [0.9, 0.5]}}, r"^features\.crop_scale: must be \[low, high\]"),
        ({"features": {"weights": "/w.pth"}}, r"^features\.weights: read only with features\.mode finetune"),
        ({"baselines": {"recipes": [{"domain": "nope"}]}}, r"^baselines\.recipes\[0\]\.domain: not a domain"),
        ({"baselines": {"recipes": [{"domain": "syn0"}, {"domain": "syn0"}]}}, r"two recipes for domain 'syn0'"),
        ({"baselines": {"recipes": [{"domain": "syn0", "backbone": "resnet152"}]}}, r"needs features\.mode finetune"),
        ({"features": {"mode": "finetune"}, "evaluation": {"seeds": 3}}, r"^evaluation\.seeds: .*set 1, got 3"),
        ({"baselines": {"train": {"schedule": "multistep"}}}, r"^baselines\.train\.milestones: schedule multistep"),
        ({"baselines": {"train": {"milestones": [5, 3]}}}, r"milestones: must be strictly increasing"),
        ({"baselines": {"train": {"lr": 0.01, "min_lr": 0.02}}}, r"^baselines\.train\.min_lr: must be < lr=0\.01"),
        ({"baselines": {"train": {"checkpoint": "loss"}}}, r"^baselines\.train\.checkpoint: must be one of"),
    ],
)
def test_bad_finetune_settings_are_refused_with_their_key(data, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(data)


def test_schedules_multistep_and_cosine_floor():
    from core.training import make_scheduler

    def lrs(cfg):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
        sched, out = make_scheduler(opt, cfg), []
        for _ in range(cfg.epochs):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    multi = lrs(TrainConfig(epochs=6, lr=1.0, schedule="multistep", milestones=(2, 4), gamma=0.5))
    assert multi == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])  # torch's MultiStepLR
    cos = lrs(TrainConfig(epochs=4, lr=1.0, schedule="cosine", min_lr=0.1))
    assert cos == pytest.approx([0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


# ---------------------------------------------------------------------------- augmentation


def test_random_resized_crop_identity_flip_and_boxes():
    x = torch.rand(3, 3, 12, 12)
    same = random_resized_crop(x, size=12, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    assert torch.allclose(same, x, atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    flipped = [
        random_resized_crop(x[:1], size=12, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=gen) for _ in range(20)
    ]
    mirrored = [torch.allclose(f, x[:1].flip(-1), atol=1e-5) for f in flipped]
    assert any(mirrored) and not all(mirrored)  # a flip with p 0.5, drawn per call
    top, left, h, w = _crop_boxes(4000, 40, 60, (0.3, 0.9), (3 / 4, 4 / 3), torch.Generator().manual_seed(1))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 40).all() and (left + w <= 60).all()
    frac = np.sort((h * w / 2400).numpy())
    # the same distribution of crop areas as torchvision's own sampler (whose retries favour small crops)
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(2)
    ref = np.sort([hh * ww / 2400 for _, _, hh, ww in
                   (RandomResizedCrop.get_params(torch.zeros(3, 40, 60), [0.3, 0.9], [3 / 4, 4 / 3])
                    for _ in range(4000))])  # fmt: skip
    assert (
        np.abs(frac - ref).mean() < 0.01 and np.abs(frac - ref).max() < 0.05 and frac.min() > 0.28 and frac.max() < 0.92
    )
    a = random_resized_crop(x, size=8, generator=torch.Generator().manual_seed(5))
    b = random_resized_crop(x, size=8, generator=torch.Generator().manual_seed(5))
    assert a.shape == (3, 3, 8, 8) and torch.equal(a, b)


# ---------------------------------------------------------------------------- training


def test_finetuning_changes_the_backbone_weights(splits):
    net = tiny_net(4)
    before = net.backbone.net[0].weight.detach().clone()
    head_before = net.head.out.weight.detach().clone()
    cfg = TrainConfig(epochs=2, batch_size=8, optimizer="sgd", lr=0.05, schedule="none", patience=0)
    res = finetune(net, [splits["train"]], [splits["val"]], classifier_objective(), config=cfg, image_size=16)
    assert not torch.allclose(res.model.backbone.net[0].weight, before)  # the backbone trained
    assert not torch.allclose(res.model.head.out.weight, head_before)
    assert len(res.history) == 2 and res.samples_per_s > 0
    logits, ok = predict_images(res.model, splits["test"], image_size=16)
    assert logits.shape == (len(splits["test"]), 4) and ok.all()


@pytest.mark.parametrize("rule", ["val_loss", "val_acc"])
def test_checkpoint_follows_the_configured_rule(splits, rule):
    net = tiny_net(4, seed=1)
    cfg = TrainConfig(epochs=6, batch_size=6, optimizer="sgd", lr=0.1, schedule="none", patience=0, checkpoint=rule)
    res = finetune(net, [splits["train"]], [splits["val"]], classifier_objective(), config=cfg, image_size=16, seed=1)
    losses = [h["val_loss"] for h in res.history]
    accs = [h["val_acc"] for h in res.history]
    by_loss, by_acc = int(np.argmin(losses)) + 1, int(np.argmax(accs)) + 1  # first on ties
    assert by_loss != by_acc  # this seed's epochs tell the two rules apart
    want = by_loss if rule == "val_loss" else by_acc
    assert res.best_epoch == want
    # the returned weights are that epoch's: its validation loss and accuracy come back
    logits, _ = predict_images(res.model, splits["val"], image_size=16)
    y = torch.from_numpy(splits["val"].labels)
    assert float(nn.functional.cross_entropy(torch.from_numpy(logits), y)) == pytest.approx(losses[want - 1], rel=1e-4)
    assert res.best_val_acc == pytest.approx(accs[want - 1])


def test_universal_objective_trains_on_several_domains(splits):
    from core.finetune import universal_objective

    M = [np.eye(4), np.array([[1.0, 1.0, 0, 0], [0, 0, 1.0, 1.0]])]  # U = 4 universal classes
    other = splits["train"].subset(np.arange(8), labels=np.array([0, 1] * 4))
    obj = universal_objective(M, label_smoothing=0.1)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.01, patience=0)
    res = finetune(tiny_net(4), [splits["train"], other], [splits["val"]], obj, config=cfg, image_size=16)
    assert res.history[0]["train_acc"] >= 0 and not math.isnan(res.history[0]["val_acc"])


@pytest.mark.slow  # writes a 45 MB weights file
def test_network_file_round_trip_and_weights_errors(tmp_path, monkeypatch):
    import torchvision

    net = FinetunedNet(trainable_backbone("resnet18", pretrained=False), build_head(512, 3, HeadConfig(depth=1)))
    path = save_model(tmp_path / "net.pt", net, domain="a")
    again, meta = load_model(path)
    x = torch.rand(2, 3, 32, 32)
    net.eval()
    assert isinstance(again, FinetunedNet) and meta == {"domain": "a"}
    assert torch.allclose(again(x), net(x), atol=1e-5)
    # ImageNet weights: never downloaded; missing -> both places and the expected file named
    assert weights_file_name("resnet50") == "resnet50-11ad3fa6.pth"  # IMAGENET1K_V2, as the thesis's code loads
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ValueError, match=r"resnet50-11ad3fa6\.pth.*torch cache '.*hub/checkpoints'.*features\.weights"):
        trainable_backbone("resnet50")
    with pytest.raises(ValueError, match=r"features\.weights '/no/such\.pth' is not a file or folder"):
        trainable_backbone("resnet50", weights="/no/such.pth")
    # a folder holding the file torchvision names serves as features.weights
    folder = tmp_path / "w"
    folder.mkdir()
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, folder / weights_file_name("resnet18"))
    loaded = trainable_backbone("resnet18", weights=folder)
    assert loaded.dim == 512 and torch.equal(loaded.net.conv1.weight, state["conv1.weight"])
    assert all(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ValueError, match="use 'efficientnet_lite0'"):
        trainable_backbone("no_such_net")


# ---------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_tiny_finetune_run_end_to_end(tmp_path, monkeypatch):
    import json

    from core import pipeline
    from core.runs import Run

    monkeypatch.setenv("UNITAX_RUNS", str(tmp_path))
    status = pipeline.run_pipeline(TINY_FINETUNE, tmp_path / "ft")
    assert status["state"] == "done", status
    run = Run(tmp_path / "ft")
    assert run.environment()["protocol"] == "finetune" and run.results_json()["protocol"] == "finetune"
    # baselines: whole networks, kept on minimum validation loss; the backbone moved off ImageNet
    lite0 = trainable_backbone("efficientnet_lite0")
    metrics = run.baseline_metrics()
    for a, name in enumerate(run.domain_names()):
        net, meta = run.load_model(run.baseline_model_path(a))
        assert isinstance(net, FinetunedNet) and meta["protocol"] == "finetune"
        stem = net.backbone.net.conv_stem.weight
        assert not torch.allclose(stem, lite0.net.conv_stem.weight)
        hist = metrics[name]["history"]
        assert metrics[name]["best_epoch"] == int(np.argmin([h["val_loss"] for h in hist])) + 1
        assert len(net.head.hparams["widths"]) == 4  # the thesis's baseline head
    # cross-domain predictions of every ordered pair, results for the universal network
    assert set(run.matrices("hard")) == {(0, 1), (1, 0)}
    uni, _ = run.load_model(run.universal_model_path("mcfp"))
    assert isinstance(uni, FinetunedNet) and uni.head.hparams["widths"] == [1024]
    table = run.results()
    assert list(table["domain"]) == [*run.domain_names(), "mean"] and table["universal/mcfp"].notna().all()
    assert run.embedding()["xy"].shape[1] == 2
    json.dumps(run.results_json())  # plain data
    # one image through the fine-tuned universal network (the Try-it page's path)
    from core.inference import predict_image

    out = predict_image(run, np.zeros((40, 40, 3), np.uint8), top_k=2)
    assert set(out["domains"]) == set(run.domain_names())
    assert os.path.getsize(run.baseline_model_path(0)) > 1_000_000  # the whole network, not a head


def test_sweep_and_curated_model_are_refused_in_a_fine_tuning_run(tmp_path):
    from core.curated import check_curated
    from core.runs import Run
    from core.sweep import check_sweep
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    run = Run(write_synthetic_run(tmp_path, "ft", make_synthetic_taxonomy(12, 2, 6, 3, 1.5, 0.5, seed=1), full=False))
    run.write_domains([{**d, "n_train": 40, "n_val": 10} for d in run.domains()])  # as if made from images
    cfg = dict(run.config)
    cfg["features"] = {**cfg["features"], "mode": "finetune"}
    run.write_config(cfg)
    with pytest.raises(ValueError, match="fine-tunes its models .* a sweep trains heads on frozen features"):
        check_sweep(run.path)
    with pytest.raises(ValueError, match="fine-tunes its models .* the curated model trains heads on frozen"):
        check_curated(run.path, "mcfp", None)
