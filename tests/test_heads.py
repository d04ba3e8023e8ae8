"""MLP heads: shapes, depth/activation options, model files that load with weights_only=True."""

import pytest
import torch
from torch import nn

from core.config import HeadConfig
from core.heads import MLPHead, build_head, load_model, save_model


@pytest.mark.parametrize("depth", [1, 2, 6])
def test_depth_counts_linear_layers(depth):
    head = MLPHead(16, 5, depth=depth, width=8, dropout=0.1)
    assert sum(isinstance(m, nn.Linear) for m in head.modules()) == depth
    assert head(torch.zeros(3, 16)).shape == (3, 5)


def test_activation_none_is_one_linear_map():
    torch.manual_seed(0)
    head = MLPHead(6, 3, depth=4, width=5, dropout=0.0, activation="none").eval()
    x, y = torch.randn(4, 6), torch.randn(4, 6)
    # linear maps satisfy f(x + y) - f(0) = (f(x) - f(0)) + (f(y) - f(0))
    f0 = head(torch.zeros(1, 6))
    assert torch.allclose(head(x + y) - f0, (head(x) - f0) + (head(y) - f0), atol=1e-5)
    relu = MLPHead(6, 3, depth=4, width=5, dropout=0.0, activation="relu").eval()
    assert any(isinstance(m, nn.ReLU) for m in relu.modules())
    assert not any(isinstance(m, (nn.ReLU, nn.GELU)) for m in head.modules())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"activation": "swish"}, "activation 'swish'"),
        ({"depth": 0}, "depth must be"),
        ({"dropout": 1.0}, "dropout must be"),
    ],
)
def test_bad_head_options(kw, match):
    with pytest.raises(ValueError, match=match):
        MLPHead(4, 2, **kw)


def test_model_file_round_trips_with_weights_only(tmp_path):
    torch.manual_seed(1)
    head = build_head(10, 4, HeadConfig(depth=3, width=7, dropout=0.2, activation="gelu")).eval()
    path = save_model(tmp_path / "m.pt", head, domain="d0", class_names=["a", "b", "c", "d"], val_acc=0.5)
    raw = torch.load(path, weights_only=True)  # must not need pickle of custom classes
    assert raw["metadata"]["class_names"] == ["a", "b", "c", "d"]
    loaded, meta = load_model(path)
    x = torch.randn(5, 10)
    assert torch.equal(loaded(x), head(x))
    assert meta["val_acc"] == 0.5 and loaded.hparams["activation"] == "gelu"


def test_save_refuses_non_plain_metadata(tmp_path):
    with pytest.raises(TypeError, match="metadata.obj"):
        save_model(tmp_path / "m.pt", MLPHead(2, 2), obj=object())


def test_load_refuses_foreign_file(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a unitax head"):
        load_model(tmp_path / "other.pt")
