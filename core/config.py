"""Run configuration: frozen dataclasses, loaded from YAML and validated before any work starts.

Every key is checked: unknown keys, wrong types and impossible values raise ``ValueError`` (or
``TypeError``) whose message starts with the key path, e.g. ``baselines.train.lr: must be > 0,
got -1``. :func:`config_to_dict` gives the resolved config (all defaults filled in) that the run
folder stores as ``config.yaml``.

Sections (see ``assets/configs/demo.yaml`` for a commented example)::

    name, seed, device, data_root
    domains:   synthetic (a SyntheticConfig) and/or list (real DomainConfig entries), split sizes
    features:  backbone, image_size, batch_size
    baselines: head (HeadConfig), train (TrainConfig)
    crossdomain: matrix ("hard" | "soft") used for selection
    selection: methods [{name, params, label}]
    universal: head, train (None = same as baselines), loss, label_smoothing
    embedding: method, max_points
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

__all__ = [
    "HeadConfig",
    "TrainConfig",
    "SyntheticConfig",
    "DomainConfig",
    "DomainsConfig",
    "FeaturesConfig",
    "BaselinesConfig",
    "CrossDomainConfig",
    "MethodSpec",
    "SelectionConfig",
    "UniversalConfig",
    "EmbeddingConfig",
    "RunConfig",
    "HEAD_PRESETS",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "config_hash",
]

ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "none")
SHIFTS = ("none", "A", "B", "C")


def _meta(**kw: Any) -> dict:
    return {"check": kw}


@dataclass(frozen=True)
class HeadConfig:
    """A fully connected head on cached features."""

    # number of Linear layers (1 = linear probe); the thesis baseline had 6, its universal head 2
    depth: int = field(default=2, metadata=_meta(min=1, max=32))
    # hidden width of every layer but the last
    width: int = field(default=256, metadata=_meta(min=1))
    # dropout before every Linear but the first; the thesis used dropout in its 6-layer heads
    dropout: float = field(default=0.2, metadata=_meta(min=0.0, max_excl=1.0))
    # non-linearity between layers. "none" reproduces the thesis heads, which had none (so the
    # stack collapses to one linear map); offered, not hidden, but not the default
    activation: str = field(default="relu", metadata=_meta(choices=ACTIVATIONS))
    # optional preset name that fills the fields above ("thesis", "thesis_universal", "linear")
    preset: str | None = field(default=None, metadata=_meta(choices=("thesis", "thesis_universal", "linear", None)))


# Presets: the thesis's heads (as published: no activation between the layers).
HEAD_PRESETS: dict[str, dict[str, Any]] = {
    "thesis": {"depth": 6, "width": 512, "dropout": 0.5, "activation": "none"},
    "thesis_universal": {"depth": 2, "width": 512, "dropout": 0.0, "activation": "none"},  # no dropout
    "linear": {"depth": 1, "dropout": 0.0, "activation": "none"},
}


@dataclass(frozen=True)
class TrainConfig:
    """Recipe shared by the baselines and the universal model (same recipe = fair comparison)."""

    epochs: int = field(default=30, metadata=_meta(min=1))
    batch_size: int = field(default=128, metadata=_meta(min=1))
    optimizer: str = field(default="adamw", metadata=_meta(choices=("adamw", "sgd")))
    lr: float = field(default=1e-3, metadata=_meta(min_excl=0.0))
    weight_decay: float = field(default=1e-4, metadata=_meta(min=0.0))
    momentum: float = field(default=0.9, metadata=_meta(min=0.0, max_excl=1.0))  # SGD only
    # learning-rate schedule over the epochs; cosine needs no tuning of step points
    schedule: str = field(default="cosine", metadata=_meta(choices=("cosine", "step", "none")))
    warmup_epochs: int = field(default=0, metadata=_meta(min=0))
    # stop after this many epochs without a better validation accuracy (0 = never stop early)
    patience: int = field(default=8, metadata=_meta(min=0))
    # mixed precision on CUDA (ignored on CPU/MPS)
    amp: bool = True


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic domains over a base source (DESIGN 4.2): classes are sets of base concepts."""

    base: str = field(default="procedural", metadata=_meta(choices=("procedural", "digits", "cifar100", "caltech256")))
    n_concepts: int = field(default=24, metadata=_meta(min=2))
    n_domains: int = field(default=3, metadata=_meta(min=2))
    concepts_mean: float = field(default=14.0, metadata=_meta(min_excl=0.0))
    concepts_var: float = field(default=4.0, metadata=_meta(min=0.0))
    class_size_mean: float = field(default=1.8, metadata=_meta(min_excl=0.0))
    class_size_var: float = field(default=1.0, metadata=_meta(min=0.0))
    # one shift per domain (none, A, B, C); cycled when shorter than n_domains
    shifts: tuple[str, ...] = field(default=("A", "B", "C"), metadata=_meta(each_choices=SHIFTS, min_len=1))
    # domain names; default "syn0", "syn1", ...
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DomainConfig:
    """One real (non-synthetic) domain: a labelled source on disk or built in."""

    name: str = field(default="", metadata=_meta(nonempty=True))
    source: str = field(
        default="", metadata=_meta(choices=("procedural", "digits", "cifar100", "caltech101", "caltech256", "imagefolder"))
    )
    shift: str = field(default="none", metadata=_meta(choices=SHIFTS))
    root: str | None = None  # overrides the run's data_root for this domain


@dataclass(frozen=True)
class DomainsConfig:
    synthetic: SyntheticConfig | None = None
    list: tuple[DomainConfig, ...] = ()
    # images per base concept and split for synthetic domains over procedural concepts; a cap
    # per class for real sources (None = all images)
    n_train: int | None = field(default=60, metadata=_meta(min=1))
    n_val: int | None = field(default=15, metadata=_meta(min=1))
    n_test: int | None = field(default=30, metadata=_meta(min=1))


@dataclass(frozen=True)
class FeaturesConfig:
    backbone: str = field(default="efficientnet_lite0", metadata=_meta(nonempty=True))
    # 64 px keeps the CPU demo within minutes; use 224 on a GPU for the thesis setting
    image_size: int = field(default=64, metadata=_meta(min=8, max=1024))
    batch_size: int | None = field(default=None, metadata=_meta(min=1))  # None = pick by device


@dataclass(frozen=True)
class BaselinesConfig:
    head: HeadConfig = HeadConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class CrossDomainConfig:
    # which prediction matrix the selection reads: "hard" (argmax counts, the thesis) or "soft"
    matrix: str = field(default="hard", metadata=_meta(choices=("hard", "soft")))


@dataclass(frozen=True)
class MethodSpec:
    """One selection method with its parameters, e.g. {name: threshold, params: {t: 0.2}}."""

    name: str = field(default="mcfp", metadata=_meta(choices=("threshold", "mcfp", "mcfp_binary", "density", "hypothesis")))
    params: dict = field(default_factory=dict)
    label: str | None = None  # folder name under taxonomy/ and universal/; default from name+params

    @property
    def key(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        return self.name + "_" + "_".join(f"{k}{v}" for k, v in sorted(self.params.items()))


_METHOD_PARAMS = {"threshold": {"t"}, "mcfp": set(), "mcfp_binary": set(), "density": {"p"}, "hypothesis": {"k_max"}}


@dataclass(frozen=True)
class SelectionConfig:
    methods: tuple[MethodSpec, ...] = (MethodSpec("mcfp"), MethodSpec("threshold", {"t": 0.2}))


@dataclass(frozen=True)
class UniversalConfig:
    # the thesis's universal head had 2 layers
    head: HeadConfig = HeadConfig(depth=2)
    train: TrainConfig | None = None  # None = the baselines' recipe
    loss: str = field(default="soft", metadata=_meta(choices=("soft", "partial")))
    label_smoothing: float = field(default=0.0, metadata=_meta(min=0.0, max_excl=1.0))


@dataclass(frozen=True)
class EmbeddingConfig:
    # "auto" = t-SNE up to tsne_max points, PCA above
    method: str = field(default="auto", metadata=_meta(choices=("auto", "tsne", "pca")))
    max_points: int = field(default=2000, metadata=_meta(min=10))
    tsne_max: int = field(default=3000, metadata=_meta(min=10))


@dataclass(frozen=True)
class RunConfig:
    name: str = field(default="run", metadata=_meta(nonempty=True))
    seed: int = 42
    device: str = field(default="auto", metadata=_meta(choices=("auto", "cpu", "cuda", "mps")))
    data_root: str | None = None  # folder with the real datasets (CIFAR-100, Caltech-101/256)
    domains: DomainsConfig = DomainsConfig(synthetic=SyntheticConfig())
    features: FeaturesConfig = FeaturesConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    crossdomain: CrossDomainConfig = CrossDomainConfig()
    selection: SelectionConfig = SelectionConfig()
    universal: UniversalConfig = UniversalConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()

    @property
    def universal_train(self) -> TrainConfig:
        return self.universal.train or self.baselines.train


# ---------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Convert a YAML value to type ``tp`` or raise naming ``path``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path)
        raise TypeError(f"{path}: unsupported union type {tp}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is tuple:
        (elem, _) = typing.get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        return tuple(_convert(elem, v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{path}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"{path}: unsupported type {_type_name(tp)}")


def _check(value: Any, check: dict, path: str) -> None:
    if value is None:
        return
    if "choices" in check and value not in check["choices"]:
        valid = [c for c in check["choices"] if c is not None]
        raise ValueError(f"{path}: {value!r} is not one of {valid}")
    if "each_choices" in check:
        for i, v in enumerate(value):
            if v not in check["each_choices"]:
                raise ValueError(f"{path}[{i}]: {v!r} is not one of {list(check['each_choices'])}")
    if "min_len" in check and len(value) < check["min_len"]:
        raise ValueError(f"{path}: needs at least {check['min_len']} entries, got {len(value)}")
    if check.get("nonempty") and not value:
        raise ValueError(f"{path}: must not be empty")
    if "min" in check and value < check["min"]:
        raise ValueError(f"{path}: must be >= {check['min']}, got {value!r}")
    if "min_excl" in check and value <= check["min_excl"]:
        raise ValueError(f"{path}: must be > {check['min_excl']}, got {value!r}")
    if "max" in check and value > check["max"]:
        raise ValueError(f"{path}: must be <= {check['max']}, got {value!r}")
    if "max_excl" in check and value >= check["max_excl"]:
        raise ValueError(f"{path}: must be < {check['max_excl']}, got {value!r}")


def _build(cls: type, data: Any, path: str) -> Any:
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"{path or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ValueError(f"{where}: unknown key; valid keys here: {sorted(fields)}")
    data = dict(data)
    if cls is HeadConfig and data.get("preset") is not None:
        preset = data["preset"]
        if preset not in HEAD_PRESETS:
            raise ValueError(f"{path}.preset: {preset!r} is not one of {sorted(HEAD_PRESETS)}")
        data = {**HEAD_PRESETS[preset], **data}
    kwargs = {}
    for name, value in data.items():
        sub = f"{path}.{name}" if path else name
        converted = _convert(hints[name], value, sub)
        _check(converted, fields[name].metadata.get("check", {}), sub)
        kwargs[name] = converted
    obj = cls(**kwargs)
    _validate_object(obj, path)
    return obj


def _validate_object(obj: Any, path: str) -> None:
    """Cross-field checks."""
    p = (path + ".") if path else ""
    if isinstance(obj, MethodSpec):
        allowed = _METHOD_PARAMS[obj.name]
        extra = sorted(set(obj.params) - allowed)
        if extra:
            raise ValueError(f"{p}params.{extra[0]}: method {obj.name!r} takes {sorted(allowed) or 'no parameters'}")
        missing = sorted(allowed - set(obj.params))
        if missing:
            raise ValueError(f"{p}params.{missing[0]}: required by method {obj.name!r}")
        for k, v in obj.params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{p}params.{k}: expected a number, got {v!r}")
        if "t" in obj.params and not 0.0 <= obj.params["t"] <= 1.0:
            raise ValueError(f"{p}params.t: must be in [0, 1], got {obj.params['t']!r}")
        if "p" in obj.params and not 0.0 < obj.params["p"] <= 1.0:
            raise ValueError(f"{p}params.p: must be in (0, 1], got {obj.params['p']!r}")
        if "k_max" in obj.params:
            if int(obj.params["k_max"]) != obj.params["k_max"] or obj.params["k_max"] < 1:
                raise ValueError(f"{p}params.k_max: must be an integer >= 1, got {obj.params['k_max']!r}")
            obj.params["k_max"] = int(obj.params["k_max"])  # 4.0 from a slider -> 4
        if obj.label is not None:
            from core.runs import validate_run_id

            try:
                validate_run_id(obj.label)
            except ValueError as exc:
                raise ValueError(f"{p}label: {obj.label!r} must be a plain folder name") from exc
    elif isinstance(obj, SyntheticConfig):
        if obj.names is not None and len(obj.names) != obj.n_domains:
            raise ValueError(f"{p}names: {len(obj.names)} names for n_domains={obj.n_domains}")
        if obj.concepts_mean > obj.n_concepts:
            raise ValueError(f"{p}concepts_mean: {obj.concepts_mean} exceeds n_concepts={obj.n_concepts}")
    elif isinstance(obj, DomainsConfig):
        n = (obj.synthetic.n_domains if obj.synthetic else 0) + len(obj.list)
        if n < 2:
            raise ValueError(f"{p}list: need at least 2 domains (synthetic and/or list), got {n}")
        names = _domain_names(obj)
        dupes = sorted({x for x in names if names.count(x) > 1})
        if dupes:
            raise ValueError(f"{p}list: duplicate domain name {dupes[0]!r}")
    elif isinstance(obj, TrainConfig):
        if obj.warmup_epochs >= obj.epochs and obj.warmup_epochs > 0:
            raise ValueError(f"{p}warmup_epochs: {obj.warmup_epochs} must be < epochs={obj.epochs}")
    elif isinstance(obj, SelectionConfig):
        if not obj.methods:
            raise ValueError(f"{p}methods: at least one selection method is needed")
        keys = [m.key for m in obj.methods]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"{p}methods: two methods share the label {dupes[0]!r}; set 'label'")


def _domain_names(domains: DomainsConfig) -> list[str]:
    names = []
    if domains.synthetic is not None:
        syn = domains.synthetic
        names += list(syn.names) if syn.names else [f"syn{i}" for i in range(syn.n_domains)]
    names += [d.name for d in domains.list]
    return names


def config_from_dict(data: dict) -> RunConfig:
    """Validate a plain dict (as loaded from YAML) into a :class:`RunConfig`."""
    return _build(RunConfig, data, "")


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a YAML config file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {os.fspath(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return config_from_dict(data)


def config_to_dict(cfg: Any) -> Any:
    """Plain dict/list form of a config (tuples become lists), for YAML/JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (tuple, list)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def config_hash(cfg: Any) -> str:
    """Stable short hash of a (sub-)config: used to see whether a finished step is still valid."""
    import hashlib
    import json

    text = json.dumps(config_to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def domain_names(cfg: RunConfig) -> list[str]:
    """Names of all domains of a config, synthetic first."""
    return _domain_names(cfg.domains)
