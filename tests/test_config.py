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
from tests.conftest import heavy_imports


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
        ({"baselines": {"train": {"lr": -1}}}, ValueError, r"^baselines\.train\.lr: must be > 0 and <= 10, got -1$"),
        (
            {"baselines": {"train": {"epochs": "ten"}}},
            TypeError,
            r"^baselines\.train\.epochs: must be an integer in \[1, 10000\], got 'ten'$",
        ),
        (
            {"universal": {"loss": "hinge"}},
            ValueError,
            r"^universal\.loss: must be one of \['soft', 'partial'\], got 'hinge'$",
        ),
        (
            {"domains": {"synthetic": {"shifts": ["A", "Z"]}}},
            ValueError,
            r"^domains\.synthetic\.shifts\[1\]: must be one of .*, got 'Z'$",
        ),
        (
            {"selection": {"methods": [{"name": "threshold"}]}},
            ValueError,
            r"^selection\.methods\[0\]\.params\.t: required",
        ),
        ({"selection": {"methods": [{"name": "mcfp", "params": {"t": 1}}]}}, ValueError, r"params\.t: method 'mcfp'"),
        (
            {"selection": {"methods": [{"name": "density", "params": {"p": 1.5}}]}},
            ValueError,
            r"^selection\.methods\[0\]\.params\.p: must be in \(0, 1\], got 1\.5$",
        ),
        ({"selection": {"methods": []}}, ValueError, r"^selection\.methods: must have 1 to 100 entries, got 0$"),
        ({"seed": True}, TypeError, r"^seed: must be an integer in \[0, 4294967295\], got True$"),
        (
            {"baselines": {"head": {"dropout": 1.0}}},
            ValueError,
            r"^baselines\.head\.dropout: must be >= 0 and < 1, got 1\.0$",
        ),
        (
            {"domains": {"synthetic": None, "list": []}},
            ValueError,
            r"^domains\.list: need 2 to 100 domains \(synthetic and/or list\), got 0$",
        ),
        (
            {"domains": {"synthetic": {"n_domains": 2, "names": ["x"]}}},
            ValueError,
            r"^domains\.synthetic\.names: 1 names for n_domains=2$",
        ),
        ({"baselines": "big"}, TypeError, r"^baselines: must be a mapping, got 'big'$"),
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


def test_sections_validate_themselves_when_built_directly():
    import dataclasses

    from core.config import ConfigError, HeadConfig, TrainConfig

    with pytest.raises(ConfigError, match=r"^lr: must be > 0 and <= 10, got 0$"):
        TrainConfig(lr=0)
    with pytest.raises(ConfigError, match=r"^warmup_epochs: must be < epochs=3, got 3$"):
        TrainConfig(epochs=3, warmup_epochs=3)
    with pytest.raises(ConfigError, match=r"^depth: must be an integer in \[1, 32\], got 0$"):
        dataclasses.replace(HeadConfig(), depth=0)  # replace() re-validates too


def test_integral_floats_become_ints_and_values_are_normalised():
    cfg = config_from_dict(
        {
            "seed": 7.0,
            "baselines": {"train": {"epochs": 30.0, "lr": 1}},
            "domains": {"synthetic": {"shifts": ["A", "B"]}},
            "selection": {"methods": [{"name": "hypothesis", "params": {"k_max": 4.0}}]},
        }
    )
    assert cfg.seed == 7 and type(cfg.seed) is int
    assert cfg.baselines.train.epochs == 30 and type(cfg.baselines.train.epochs) is int
    assert cfg.baselines.train.lr == 1.0 and type(cfg.baselines.train.lr) is float
    assert cfg.domains.synthetic.shifts == ("A", "B")  # a list becomes a tuple
    assert cfg.selection.methods[0].params == {"k_max": 4} and type(cfg.selection.methods[0].params["k_max"]) is int
    assert cfg.selection.methods[0].key == "hypothesis_k_max4"


def test_selection_names_and_ranges_come_from_core_selection():
    import dataclasses

    from core.checks import OneOf
    from core.config import MethodSpec
    from core.selection import METHODS

    rule = next(f for f in dataclasses.fields(MethodSpec) if f.name == "name").metadata["rule"]
    assert isinstance(rule, OneOf) and rule.choices == tuple(METHODS)
    for name, spec in METHODS.items():
        params = {} if spec.param is None else {spec.param: spec.default}
        assert config_from_dict({"selection": {"methods": [{"name": name, "params": params}]}})


def test_config_shift_names_match_core_shifts_and_config_stays_torch_free():

    pytest.importorskip("torch")
    from core.config import SHIFTS
    from core.registry import SHIFTS as REGISTRY_SHIFTS
    from core.shifts import SHIFTS as SHIFT_DESCRIPTIONS

    assert SHIFTS is REGISTRY_SHIFTS is SHIFT_DESCRIPTIONS
    assert heavy_imports("core.config") == []


def _rule(cls, name):
    import dataclasses

    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["rule"]


def test_config_vocabularies_come_from_core_registry():
    from core.config import DomainConfig, SyntheticConfig
    from core.registry import DEFAULT_SHIFTS, DEVICES, SHIFTS, SOURCES, SYNTHETIC_BASES

    assert _rule(DomainConfig, "source").choices == tuple(SOURCES)
    assert _rule(DomainConfig, "shift").choices == tuple(SHIFTS)
    assert _rule(SyntheticConfig, "shifts").each.choices == tuple(SHIFTS)
    assert _rule(SyntheticConfig, "base").choices == SYNTHETIC_BASES
    assert _rule(RunConfig, "device").choices == DEVICES
    assert SyntheticConfig().shifts == DEFAULT_SHIFTS
    for source in SOURCES:
        config_from_dict(
            {"domains": {"synthetic": None, "list": [{"name": "a", "source": source}, {"name": "b", "source": source}]}}
        )


def test_backbone_is_a_known_name_or_a_model_name():
    from core.registry import BACKBONES, DEFAULT_BACKBONE

    assert RunConfig().features.backbone == DEFAULT_BACKBONE and BACKBONES[DEFAULT_BACKBONE].offline
    for name in [*BACKBONES, "vit_small_patch16_224", "regnet_y_400mf", "resnet18.a1_in1k"]:
        assert config_from_dict({"features": {"backbone": name}}).features.backbone == name
    for bad in ["../weights", "resnet 18", "-x", "näive"]:
        with pytest.raises(ValueError, match=r"^features\.backbone: must be one of \['efficientnet_lite0'"):
            config_from_dict({"features": {"backbone": bad}})


def test_registry_loads_no_engine_and_is_read_by_the_cli_help():

    from core.cli import build_parser
    from core.registry import BACKBONES, SHIFTS, SOURCES
    from core.selection import METHODS

    assert heavy_imports("core.registry", ("torch", "PIL", "yaml")) == []
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = " ".join(sub.choices["run"].format_help().split())
    for name in [*SHIFTS.values(), *SOURCES, *BACKBONES, *METHODS]:
        assert name in text
