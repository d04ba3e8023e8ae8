"""Hostile configs: each attack, and the one-line error it must get before any work starts.

Value attacks are written as YAML and go through ``load_config``, as a user's file would; each
expected message starts with the key path and shows the refused value. File attacks hit the
boundary of ``load_config`` itself and must name the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import ConfigError, config_from_dict, config_to_dict, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "assets" / "configs"

# (attack, YAML text, expected message: a regex anchored at the key path)
VALUE_ATTACKS = [
    (
        "n_train 1e20 (a float)",
        "domains: {n_train: 1.0e+20}",
        r"^domains\.n_train: must be an integer in \[1, 10000000\], got 1e\+20$",
    ),
    (
        "n_train 1e20 (YAML 1.1 reads it as a string)",
        "domains: {n_train: 1e20}",
        r"^domains\.n_train: must be an integer in \[1, 10000000\], got '1e20'$",
    ),
    (
        "n_train within the cap per class, too many images in all",
        "domains: {synthetic: {}, n_train: 1000000}",
        r"^domains\.n_train: up to \d+ procedural images .*at most 10000000",
    ),
    ("n_val negative", "domains: {n_val: -5}", r"^domains\.n_val: must be an integer in \[1, 10000000\], got -5$"),
    ("seed -1", "seed: -1", r"^seed: must be an integer in \[0, 4294967295\], got -1$"),
    ("seed 2**70", f"seed: {2**70}", rf"^seed: must be an integer in \[0, 4294967295\], got {2**70}$"),
    ("seed 1.5", "seed: 1.5", r"^seed: must be an integer in \[0, 4294967295\], got 1\.5$"),
    ("lr 0", "baselines: {train: {lr: 0}}", r"^baselines\.train\.lr: must be > 0 and <= 10, got 0$"),
    ("lr .nan", "baselines: {train: {lr: .nan}}", r"^baselines\.train\.lr: must be > 0 and <= 10, got nan$"),
    ("lr .inf", "baselines: {train: {lr: .inf}}", r"^baselines\.train\.lr: must be > 0 and <= 10, got inf$"),
    (
        "lr 'fast'",
        "baselines: {train: {lr: fast}}",
        r"^baselines\.train\.lr: must be a number > 0 and <= 10, got 'fast'$",
    ),
    (
        "weight_decay -.inf",
        "baselines: {train: {weight_decay: -.inf}}",
        r"^baselines\.train\.weight_decay: must be >= 0 and <= 10, got -inf$",
    ),
    (
        "batch_size true",
        "baselines: {train: {batch_size: true}}",
        r"^baselines\.train\.batch_size: must be an integer in \[1, 65536\], got True$",
    ),
    ("amp 1", "baselines: {train: {amp: 1}}", r"^baselines\.train\.amp: must be true or false, got 1$"),
    (
        "image_size 100000",
        "features: {image_size: 100000}",
        r"^features\.image_size: must be an integer in \[16, 1024\], got 100000$",
    ),
    (
        "epochs 1e9",
        "universal: {train: {epochs: 1.0e+9}}",
        r"^universal\.train\.epochs: must be an integer in \[1, 10000\], got 1000000000\.0$",
    ),
    (
        "label smoothing 1",
        "universal: {label_smoothing: 1}",
        r"^universal\.label_smoothing: must be >= 0 and < 1, got 1$",
    ),
    (
        "unknown key",
        "baselines: {train: {learning_rate: 0.1}}",
        r"^baselines\.train\.learning_rate: unknown key; valid keys here: \[",
    ),
    ("unknown top-level key that is not a string", "1: x", r"^1: unknown key"),
    (
        "shift not known",
        "domains: {synthetic: {shifts: [A, D]}}",
        r"^domains\.synthetic\.shifts\[1\]: must be one of \['none', 'A', 'B', 'C'\], got 'D'$",
    ),
    (
        "too many domains",
        "domains: {synthetic: {n_domains: 1000}}",
        r"^domains\.synthetic\.n_domains: must be an integer in \[2, 100\], got 1000$",
    ),
    (
        "more procedural concepts than exist",
        "domains: {synthetic: {n_concepts: 1000, concepts_mean: 14}}",
        r"^domains\.synthetic\.n_concepts: the procedural base has 144 concepts, got 1000$",
    ),
    ("data_root empty", "data_root: ''", r"^data_root: must not be empty, got ''$"),
    ("data_root a number", "data_root: 5", r"^data_root: must be a string, got 5$"),
    ("data_root with a NUL", 'data_root: "/data\\0/x"', r"^data_root: must not contain a NUL character"),
    (
        "domain root a list",
        "domains: {synthetic: null, list: [{name: a, source: digits, root: [x]}, {name: b, source: digits}]}",
        r"^domains\.list\[0\]\.root: must be a string, got \['x'\]$",
    ),
    (
        "selection method unknown",
        "selection: {methods: [{name: magic}]}",
        r"^selection\.methods\[0\]\.name: must be one of \['threshold', .*\], got 'magic'$",
    ),
    (
        "threshold .nan",
        "selection: {methods: [{name: threshold, params: {t: .nan}}]}",
        r"^selection\.methods\[0\]\.params\.t: must be in \[0, 1\], got nan$",
    ),
    (
        "k_max 'many'",
        "selection: {methods: [{name: hypothesis, params: {k_max: many}}]}",
        r"^selection\.methods\[0\]\.params\.k_max: must be an int, got 'many'$",
    ),
    (
        "label a path",
        "selection: {methods: [{name: mcfp, label: ../../etc}]}",
        r"^selection\.methods\[0\]\.label: must be a plain folder name, got '\.\./\.\./etc'$",
    ),
    ("name a mapping", "name: {a: 1}", r"^name: must be a string, got \{'a': 1\}$"),
    ("section a list", "features: [1, 2]", r"^features: must be a mapping, got \[1, 2\]$"),
]


def _write(tmp_path: Path, text: str | bytes, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(("attack", "text", "match"), VALUE_ATTACKS, ids=[a[0] for a in VALUE_ATTACKS])
def test_value_attack_is_refused_with_key_path_and_value(tmp_path, attack, text, match):
    with pytest.raises(ValueError, match=match) as info:
        load_config(_write(tmp_path, text))
    assert isinstance(info.value, ConfigError)
    assert "\n" not in str(info.value)


def _alias_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nselection: {{methods: *l{levels - 1}}}\n"


def _too_long_name(tmp_path: Path) -> Path:
    return tmp_path / ("x" * 300 + ".yaml")


# (attack, make the path, exception, expected message)
FILE_ATTACKS = [
    ("missing file", lambda p: p / "nope.yaml", FileNotFoundError, r"^config file '.*nope\.yaml' does not exist$"),
    ("path is a folder", lambda p: p, ValueError, r"^config path '.*' is a folder, not a YAML file$"),
    (
        "binary file",
        lambda p: _write(p, bytes(range(256)) * 4),
        ValueError,
        r"^config file '.*cfg\.yaml' is not UTF-8 text \(byte 128\): a binary file\?$",
    ),
    (
        "UTF-8 with control bytes",
        lambda p: _write(p, b"name: \x00\x01\x02"),
        ValueError,
        r"^config file '.*cfg\.yaml': not valid YAML: .*unacceptable character",
    ),
    (
        "name too long for the file system",
        _too_long_name,
        ValueError,
        r"^config path '.*xxx.*' is too long for the file system$",
    ),
    ("empty file", lambda p: _write(p, ""), ValueError, r"^config file '.*cfg\.yaml' is empty"),
    ("comments only", lambda p: _write(p, "# nothing\n"), ValueError, r"^config file '.*cfg\.yaml' is empty"),
    (
        "list at top level",
        lambda p: _write(p, "- 1\n- 2\n"),
        TypeError,
        r"^config file '.*cfg\.yaml': the top level must be a mapping of keys, got a list$",
    ),
    (
        "string at top level",
        lambda p: _write(p, "hello\n"),
        ValueError,
        r"^config file '.*cfg\.yaml': the top level must be a mapping of keys, got a str$",
    ),
    (
        "YAML alias bomb",
        lambda p: _write(p, _alias_bomb()),
        ValueError,
        r"^config file '.*cfg\.yaml': more than 100000 YAML nodes once aliases are expanded",
    ),
    (
        "recursive alias",
        lambda p: _write(p, "name: &a [*a]\n"),
        ValueError,
        r"^config file '.*cfg\.yaml': line 1: recursive YAML alias$",
    ),
    (
        "nesting 100 deep",
        lambda p: _write(p, "name: " + "[" * 100 + "]" * 100),
        ValueError,
        r"^config file '.*cfg\.yaml': line 1: nested deeper than 32$",
    ),
    (
        "nesting 2000 deep",
        lambda p: _write(p, "name: " + "[" * 2000 + "]" * 2000),
        ValueError,
        r"^config file '.*cfg\.yaml': nested deeper than 32$",
    ),
    (
        "file over 1 MiB",
        lambda p: _write(p, "# pad\n" * 200_000 + "name: x\n"),
        ValueError,
        r"^config file '.*cfg\.yaml' has \d+ bytes; at most 1048576 are read$",
    ),
    (
        "duplicate key",
        lambda p: _write(p, "seed: 1\nseed: 2\n"),
        ValueError,
        r"^config file '.*cfg\.yaml': line 2: duplicate key 'seed'$",
    ),
    (
        "two documents",
        lambda p: _write(p, "name: a\n---\nname: b\n"),
        ValueError,
        r"^config file '.*cfg\.yaml': not valid YAML: expected a single document",
    ),
    ("invalid YAML", lambda p: _write(p, "name: [unclosed\n"), ValueError, r"^config file '.*': not valid YAML: "),
    (
        "integer of a million digits",
        lambda p: _write(p, "seed: " + "9" * 1_000_000),
        ValueError,
        r"^config file '.*cfg\.yaml': not valid YAML: .*(digits|limit)",
    ),
    ("path with a NUL", lambda p: str(p / "a\x00b.yaml"), ValueError, r"^config path '.*' contains a NUL character$"),
    ("path not a path", lambda p: 42, TypeError, r"^config path must be a str or path, got 42$"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("attack", "make", "exc", "match"), FILE_ATTACKS, ids=[a[0] for a in FILE_ATTACKS])
def test_file_attack_is_refused_at_the_boundary(tmp_path, attack, make, exc, match):
    path = make(tmp_path)
    with pytest.raises(exc, match=match) as info:  # the timeout catches a hang (an expanded bomb)
        load_config(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 600


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.timeout(10)
def test_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"^config path '.*cfg\.yaml' is not a regular file$"):
        load_config(fifo)


def test_aliases_that_stay_small_still_work(tmp_path):
    text = "baselines: {head: &h {depth: 3, width: 64}}\nuniversal: {head: *h}\n"
    cfg = load_config(_write(tmp_path, text))
    assert cfg.universal.head == cfg.baselines.head
    assert cfg.universal.head.depth == 3


def test_shared_python_structure_gives_a_short_message():
    bomb: list = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9  # 9**9 leaves if expanded
    with pytest.raises(ValueError, match=r"^selection\.methods\[0\]: must be a mapping, got \[\[") as info:
        config_from_dict({"selection": {"methods": bomb}})
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.name and cfg == config_from_dict(config_to_dict(cfg))
