"""Config loading and validation: defaults, presets, key paths in every error."""

import pytest

from core.config import (
    HEAD_PRESETS,
    RunConfig,
    config_from_dict,
    config_hash,
    config_to_dict,
    load_config,
)


def test_defaults_round_trip_through_dict():
    cfg = config_from_dict({})
    assert isinstance(cfg, RunConfig)
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)


def test_thesis_preset_fills_fields_and_explicit_keys_win():
    cfg = config_from_dict({"baselines": {"head": {"preset": "thesis", "dropout": 0.3}}})
    head = cfg.baselines.head
    assert head.depth == HEAD_PRESETS["thesis"]["depth"] == 6
    assert head.activation == "none"
    assert head.dropout == 0.3


@pytest.mark.parametrize(
    ("data", "exc", "match"),
    [
        ({"foo": 1}, ValueError, r"^foo: unknown key"),
        ({"baselines": {"head": {"depht": 3}}}, ValueError, r"^baselines\.head\.depht: unknown key"),
        ({"baselines": {"train": {"lr": -1}}}, ValueError, r"^baselines\.train\.lr: must be > 0"),
        ({"baselines": {"train": {"epochs": "ten"}}}, TypeError, r"^baselines\.train\.epochs: expected an integer"),
        ({"universal": {"loss": "hinge"}}, ValueError, r"^universal\.loss: 'hinge' is not one of"),
        ({"domains": {"synthetic": {"shifts": ["A", "Z"]}}}, ValueError, r"^domains\.synthetic\.shifts\[1\]"),
        ({"selection": {"methods": [{"name": "threshold"}]}}, ValueError, r"^selection\.methods\[0\]\.params\.t: required"),
        ({"selection": {"methods": [{"name": "mcfp", "params": {"t": 1}}]}}, ValueError, r"params\.t: method 'mcfp'"),
        ({"selection": {"methods": [{"name": "density", "params": {"p": 1.5}}]}}, ValueError, r"params\.p: must be in"),
        ({"selection": {"methods": []}}, ValueError, r"^selection\.methods: at least one"),
        ({"seed": True}, TypeError, r"^seed: expected an integer"),
        ({"baselines": {"head": {"dropout": 1.0}}}, ValueError, r"^baselines\.head\.dropout: must be < 1"),
        ({"domains": {"synthetic": None, "list": []}}, ValueError, r"^domains\.list: need at least 2 domains"),
        ({"domains": {"synthetic": {"n_domains": 2, "names": ["x"]}}}, ValueError, r"^domains\.synthetic\.names"),
        ({"baselines": "big"}, TypeError, r"^baselines: expected a mapping"),
    ],
)
def test_bad_configs_fail_with_key_path(data, exc, match):
    with pytest.raises(exc, match=match):
        config_from_dict(data)


def test_load_config_rejects_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(TypeError, match="top level must be a mapping"):
        load_config(lst)


def test_shipped_configs_validate():
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "assets" / "configs"
    files = sorted(folder.glob("*.yaml"))
    assert {"demo.yaml", "tiny.yaml"} <= {f.name for f in files}
    for f in files:
        cfg = load_config(f)
        assert cfg.name
