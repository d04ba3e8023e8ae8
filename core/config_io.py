"""The run config's plain form: sections built from mappings, YAML files read safely, dumps, hashes.

Standard library only at import time (``yaml`` loads when a file is read). Nothing here knows the
sections themselves: :mod:`core.config` defines them and builds a ``RunConfig`` with
:func:`build_section`; every section derives from :class:`core.checks.Validated`.

    build_section(cls, data, path) -> a cls instance       every error names its key path
    read_config_file(path) -> dict                         the top-level mapping of a YAML file
    config_to_dict(cfg) -> dict/list                       tuples become lists (YAML/JSON)
    config_hash(cfg) -> str                                stable short hash of a (sub-)config

A file is refused, naming its path, when it is a folder, a special file, a name too long for the
file system, over ``MAX_CONFIG_BYTES``, not UTF-8, invalid YAML, an alias bomb (more than
``MAX_YAML_NODES`` nodes once aliases are expanded), nested deeper than ``MAX_YAML_DEPTH``, repeats
a key, is empty or is not a mapping at the top level.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import stat
from typing import Any

from core.checks import ConfigError, ConfigTypeError, Instance, Optional, Seq, show

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_YAML_NODES",
    "MAX_YAML_DEPTH",
    "build_section",
    "read_config_file",
    "config_to_dict",
    "config_hash",
]

MAX_CONFIG_BYTES = 1 << 20  # a config file over 1 MiB is refused unread
MAX_YAML_NODES = 100_000  # YAML nodes after expanding aliases (a config has a few hundred)
MAX_YAML_DEPTH = 32  # nesting of YAML collections (a config nests 5 deep)


# ---------------------------------------------------------------------------- building


def _nested(rule: Any, value: Any, key: str) -> Any:
    """Build the config sections a field holds (per its rule); other values pass unchanged."""
    if isinstance(rule, Optional):
        return None if value is None else _nested(rule.rule, value, key)
    if isinstance(rule, Instance) and dataclasses.is_dataclass(rule.cls):
        return build_section(rule.cls, value, key)
    if (
        isinstance(rule, Seq)
        and isinstance(rule.each, Instance)
        and isinstance(value, (list, tuple))
        and len(value) <= rule.max_len
    ):
        return [_nested(rule.each, v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def build_section(cls: type, data: Any, path: str) -> Any:
    """A ``cls`` instance (a :class:`core.checks.Validated` dataclass) from a plain mapping, its
    nested sections built too; every error names its key path (``path`` is the section's own)."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigTypeError(f"{path or 'config'}: must be a mapping, got {show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if not (isinstance(k, str) and k in fields)]
    if unknown:
        where = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(f"{where}: unknown key; valid keys here: {sorted(fields)}")
    data = cls._resolve(data)
    kwargs = {
        name: _nested(fields[name].metadata.get("rule"), value, f"{path}.{name}" if path else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise exc.under(path) from None


# ---------------------------------------------------------------------------- loading


def _read_config_bytes(path: pathlib.Path, where: str) -> bytes:
    """The file's bytes, refusing folders, special files, long names and files over the cap."""
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"config path {where} is a folder, not a YAML file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"config path {where} is not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {where} has {st.st_size} bytes; at most {MAX_CONFIG_BYTES} are read")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"config file {where} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ConfigError(f"config path {where} is too long for the file system") from None
        raise ConfigError(f"config file {where} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {where} is larger than {MAX_CONFIG_BYTES} bytes")
    return raw


def _yaml_children(node: Any) -> list:
    """The child nodes of a YAML node (keys and values of a mapping)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [c for pair in node.value for c in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _refuse_duplicate_keys(node: Any, where: str) -> None:
    """A mapping that repeats a key (YAML would silently keep the last one) is refused."""
    import yaml

    seen: set = set()
    for key, _ in node.value if isinstance(node, yaml.MappingNode) else ():
        if isinstance(key, yaml.ScalarNode) and key.value != "<<":
            if (key.tag, key.value) in seen:
                raise ConfigError(f"config file {where}: line {key.start_mark.line + 1}: duplicate key {key.value!r}")
            seen.add((key.tag, key.value))


def _check_yaml_nodes(root: Any, where: str) -> None:
    """Refuse recursive aliases, nesting over MAX_YAML_DEPTH, more than MAX_YAML_NODES nodes once
    aliases are expanded (a "billion laughs" document) and duplicate keys, before constructing."""
    sizes: dict[int, int] = {}  # expanded size per node; a shared (aliased) node is counted per use

    def size(node: Any, depth: int, stack: frozenset) -> int:
        line = f"line {node.start_mark.line + 1}"
        if id(node) in stack:
            raise ConfigError(f"config file {where}: {line}: recursive YAML alias")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"config file {where}: {line}: nested deeper than {MAX_YAML_DEPTH}")
        if id(node) not in sizes:
            _refuse_duplicate_keys(node, where)
            inner = stack | {id(node)}
            sizes[id(node)] = 1 + sum(size(c, depth + 1, inner) for c in _yaml_children(node))
        if sizes[id(node)] > MAX_YAML_NODES:
            raise ConfigError(
                f"config file {where}: more than {MAX_YAML_NODES} YAML nodes once aliases are expanded (an alias bomb?)"
            )
        return sizes[id(node)]

    size(root, 0, frozenset())


def _parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` of one document, after :func:`_check_yaml_nodes`; errors on one line."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: may raise already
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_nodes(node, where)
        return loader.construct_document(node)
    except RecursionError:  # the composer recurses per nesting level
        raise ConfigError(f"config file {where}: nested deeper than {MAX_YAML_DEPTH}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, ConfigError):
            raise
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"config file {where}: not valid YAML: {detail[:300]}") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_config_file(path: str | os.PathLike) -> dict:
    """The top-level mapping of a YAML config file, not yet validated.

    Raises FileNotFoundError when it does not exist, and :class:`ConfigError` (a ValueError)
    naming the path for everything the module docstring lists.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigTypeError(f"config path must be a str or path, got {show(path)}")
    where = show(os.fspath(path))
    if "\x00" in str(os.fspath(path)):
        raise ConfigError(f"config path {where} contains a NUL character")
    raw = _read_config_bytes(pathlib.Path(path), where)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {where} is not UTF-8 text (byte {exc.start}): a binary file?") from None
    data = _parse_yaml(text, where)
    if data is None:
        raise ConfigError(f"config file {where} is empty: write at least 'name: <run name>'")
    if not isinstance(data, dict):
        raise ConfigTypeError(
            f"config file {where}: the top level must be a mapping of keys, got a {type(data).__name__}"
        )
    return data


# ---------------------------------------------------------------------------- dumping


def config_to_dict(cfg: Any) -> Any:
    """Plain dict/list form of a config (tuples become lists), for YAML/JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (tuple, list)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


# Fields added after run folders were first written, with the value that reproduces what a run
# written before them did (by config class). config_hash leaves a field out while it holds that
# value, so adding a field never makes an older run's finished steps stale; any other value does.
HASH_NEUTRAL: dict[str, dict[str, Any]] = {
    "HeadConfig": {"widths": None, "input_dropout": 0.0},
    "TrainConfig": {
        "nesterov": True,
        "milestones": (),
        "gamma": 0.1,
        "min_lr": 0.0,
        "checkpoint": "val_acc",
        "preset": None,
    },  # fmt: skip
    "SyntheticConfig": {"images": "disjoint"},
    "DomainsConfig": {"split_rule": "stratified", "include_clutter": False},
    "FeaturesConfig": {
        "mode": "frozen",
        "weights": None,
        "crop_scale": (0.8, 1.0),
        "flip": True,
        "store_dtype": "float32",
    },
    "BaselinesConfig": {"recipes": ()},
    "UniversalConfig": {"inference": "probs"},
}


def _hash_form(cfg: Any) -> Any:
    """:func:`config_to_dict` without the fields that hold their :data:`HASH_NEUTRAL` value."""
    if dataclasses.is_dataclass(cfg):
        neutral = HASH_NEUTRAL.get(type(cfg).__name__, {})
        out = {}
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if f.name in neutral and config_to_dict(value) == config_to_dict(neutral[f.name]):
                continue
            out[f.name] = _hash_form(value)
        return out
    if isinstance(cfg, (tuple, list)):
        return [_hash_form(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: _hash_form(v) for k, v in cfg.items()}
    return cfg


def config_hash(cfg: Any) -> str:
    """Stable short hash of a (sub-)config: used to see whether a finished step is still valid.
    Fields added later count only when set away from what older runs did (:data:`HASH_NEUTRAL`)."""
    text = json.dumps(_hash_form(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
