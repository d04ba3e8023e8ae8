"""Hostile data files and values, each with the outcome the tool promises.

Attack                                                  Outcome
------------------------------------------------------  ------------------------------------------------
CIFAR meta/train/test pickle whose payload runs a       ValueError naming the file and the global;
command (``__reduce__`` -> os.system)                   the command never runs
pickle naming any global outside containers + numpy     ValueError naming the file and the global
(collections.OrderedDict, os.system, builtins.eval)
real CIFAR pickles (Python 2 protocol 2, numpy 1.x      load exactly as plain pickle.load does
names; Python 3 protocols 2-5, numpy 2.x names)
not a pickle / truncated pickle                         ValueError naming the file
decompression bomb: huge dimensions in the header,      "unreadable image": ValueError from
PIL's warning range and its error range                 decode_image, ok=False in ImageSet.images
a domain whose every image is unreadable                ValueError naming the domain and a file
P rows whose sum overflows to inf (entries ~1e308)      scaled like the same proportions, not zeroed
"""

from __future__ import annotations

import os
import pickle
import re
import shlex
import struct
import zlib
from collections import OrderedDict
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from core.safeload import ALLOWED_GLOBALS, safe_loads, safe_unpickle
from core.sources import FilePool, decode_image, load_source

ONE_LINE = re.compile(r"^[^\n]+$")


# ---------------------------------------------------------------------------- pickles


class _RunsCommand:
    """Pickles as ``os.system(command)``: unpickling it with plain pickle runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _touch(marker: Path) -> _RunsCommand:
    return _RunsCommand(f"touch {shlex.quote(str(marker))}")


def _cifar_dicts(names: list[str], n: int, seed: int) -> dict[str, dict]:
    """torchvision's cifar-100-python content: bytes keys, uint8 (N, 3072) CHW data, label lists."""
    rng = np.random.default_rng(seed)
    out = {"meta": {b"fine_label_names": [s.encode() for s in names], b"coarse_label_names": [b"all"]}}
    for split in ("train", "test"):
        labels = np.repeat(np.arange(len(names)), n)
        out[split] = {
            b"data": rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8),
            b"fine_labels": labels.tolist(),
            b"coarse_labels": [0] * labels.size,
        }
    return out


def _write_cifar(root: Path, content: dict[str, dict], *, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, d in content.items():
        (folder / name).write_bytes(pickle.dumps(d, protocol=protocol))
    return folder


@pytest.mark.parametrize("which", ["meta", "train", "test"])
def test_cifar_pickle_with_a_command_payload_is_refused_and_never_runs(tmp_path, seed, which):
    marker = tmp_path / "pwned"
    content = _cifar_dicts(["apple", "bear"], 3, seed)
    content[which][b"coarse_label_names" if which == "meta" else b"coarse_labels"] = _touch(marker)
    folder = _write_cifar(tmp_path, content)
    with pytest.raises(
        ValueError,
        match=re.escape(f"{folder / which}: refusing to unpickle ")
        + r"(posix|nt)\.system: only plain containers and numpy arrays",
    ) as err:
        load_source("cifar100", root=tmp_path, seed=seed)
    assert ONE_LINE.match(str(err.value))
    assert not marker.exists()


def test_the_payload_used_above_does_run_under_plain_pickle(tmp_path):
    """The attack is real: the same bytes run the command when loaded with pickle.loads."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps({b"x": _touch(marker)}))
    assert marker.exists()


def test_a_whole_file_payload_is_refused_by_safe_unpickle(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "meta"
    path.write_bytes(pickle.dumps(_touch(marker), protocol=2))
    with pytest.raises(ValueError, match=re.escape(f"{path}: refusing to unpickle ") + r"(posix|nt)\.system"):
        safe_unpickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "value, refused",
    [
        (OrderedDict(a=1), "collections.OrderedDict"),
        (_RunsCommand("true"), "system"),
        (PurePosixPath("x"), "pathlib.PurePosixPath"),
        (eval, "eval"),
    ],
)
def test_any_global_outside_containers_and_numpy_is_refused(value, refused):
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(ValueError, match=rf"^upload\.pkl: refusing to unpickle \S*{re.escape(refused)}: "):
            safe_loads(pickle.dumps(value, protocol=protocol), source="upload.pkl")


def test_codecs_encode_is_allowed_only_as_latin1():
    ok = b"c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00latin1\x86R."
    assert safe_loads(ok) == b"abc"
    other = ok.replace(b"X\x06\x00\x00\x00latin1", b"X\x05\x00\x00\x00rot13")
    with pytest.raises(ValueError, match=r"^<bytes>: not a readable pickle: .*only as \(str, 'latin1'\)"):
        safe_loads(other)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_plain_containers_round_trip(protocol):
    value = {
        b"data": np.arange(24, dtype=np.uint8).reshape(2, 12),
        "f": np.linspace(0, 1, 5, dtype=np.float32),
        "scalar": np.float64(2.5),
        "i": np.int64(-3),
        "struct": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        "list": [1, 2.5, "x", b"y", None, True],
        "tuple": (1, (2, 3)),
        "set": {1, 2},
        "frozen": frozenset({b"z"}),
        "complex": 1 + 2j,
        "bytearray": bytearray(b"ab"),
        "empty": b"",
        "big": 2**100,
    }
    back = safe_loads(pickle.dumps(value, protocol=protocol))
    assert back.keys() == value.keys()
    for key, v in value.items():
        if isinstance(v, np.ndarray):
            assert back[key].dtype == v.dtype
            np.testing.assert_array_equal(back[key], v)
        else:
            assert back[key] == v and type(back[key]) is type(v)


def test_allowed_globals_are_exactly_containers_codecs_and_numpy_helpers():
    modules = {m for m, _ in ALLOWED_GLOBALS}
    assert modules == {
        "builtins",
        "__builtin__",
        "_codecs",
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
    }
    assert {n for m, n in ALLOWED_GLOBALS if m == "builtins"} == {
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "bytes",
        "bytearray",
        "str",
        "int",
        "float",
        "complex",
        "bool",
    }


def _py2_str(b: bytes) -> bytes:
    """A Python 2 ``str`` in a protocol-2 pickle (SHORT_BINSTRING / BINSTRING)."""
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _py2_uint8_array(raw: bytes, shape: tuple[int, ...]) -> bytes:
    """numpy 1.x under Python 2 pickling a C-contiguous uint8 array (numpy.core names)."""
    ints = b"".join(b"K" + bytes([d]) if d < 256 else b"J" + struct.pack("<i", d) for d in shape)
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + _py2_str(b"b")
        + b"\x87R"
        + b"(K\x01("
        + ints
        + b"tcnumpy\ndtype\n"
        + _py2_str(b"u1")
        + b"K\x00K\x01\x87R"
        + b"(K\x03"
        + _py2_str(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        + b"\x89"
        + _py2_str(raw)
        + b"tb"
    )


def _py2_dict(items: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x80\x02}(" + b"".join(_py2_str(k) + v for k, v in items) + b"u."


def _py2_str_list(values: list[bytes]) -> bytes:
    return b"](" + b"".join(_py2_str(v) for v in values) + b"e"


def _py2_int_list(values: list[int]) -> bytes:
    return b"](" + b"".join(b"K" + bytes([v]) for v in values) + b"e"


def test_python2_cifar_pickles_load_exactly_as_plain_pickle(tmp_path, seed):
    """The real files: written by Python 2's cPickle (protocol 2) with numpy 1.x."""
    rng = np.random.default_rng(seed)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    names = [b"apple", b"bear", b"castle"]
    (folder / "meta").write_bytes(
        _py2_dict([(b"fine_label_names", _py2_str_list(names)), (b"coarse_label_names", _py2_str_list([b"all"]))])
    )
    expected = {}
    for split, n in (("train", 4), ("test", 2)):
        labels = np.repeat(np.arange(3), n)
        data = rng.integers(0, 256, size=(labels.size, 3072), dtype=np.uint8)
        (folder / split).write_bytes(
            _py2_dict(
                [
                    (b"data", _py2_uint8_array(data.tobytes(), data.shape)),
                    (b"fine_labels", _py2_int_list(labels.tolist())),
                ]
            )
        )
        expected[split] = data
    for f in ("meta", "train", "test"):
        plain = pickle.loads((folder / f).read_bytes(), encoding="bytes")
        safe = safe_unpickle(folder / f)
        assert safe.keys() == plain.keys()
        for k in plain:
            np.testing.assert_array_equal(np.asarray(safe[k]), np.asarray(plain[k]))
    assert safe_unpickle(folder / "meta", encoding="latin1")["fine_label_names"] == ["apple", "bear", "castle"]
    src = load_source("cifar100", root=tmp_path, seed=seed)
    assert src.class_names == ["apple", "bear", "castle"]
    want = expected["test"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(src.splits["test"].image(1), want)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python3_cifar_pickles_of_every_protocol_load(tmp_path, seed, protocol):
    _write_cifar(tmp_path, _cifar_dicts(["apple", "bear"], 3, seed), protocol=protocol)
    src = load_source("cifar100", root=tmp_path, seed=seed)
    assert src.class_names == ["apple", "bear"] and len(src.splits["test"]) == 6


def test_numpy1_module_names_written_by_python3_load():
    blob = pickle.dumps({b"data": np.arange(6, dtype=np.uint8)}, protocol=2)
    old = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in old
    np.testing.assert_array_equal(safe_loads(old)[b"data"], np.arange(6, dtype=np.uint8))


@pytest.mark.parametrize(
    "content, why",
    [
        (b"not a pickle", "not a readable pickle"),
        (pickle.dumps({b"data": np.arange(9)})[:40], "not a readable pickle"),
        (b"", "not a readable pickle: EOFError"),
    ],
)
def test_malformed_pickles_are_one_line_errors_naming_the_file(tmp_path, content, why):
    path = tmp_path / "train"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {why}")) as err:
        safe_unpickle(path)
    assert ONE_LINE.match(str(err.value))


def test_cifar_files_of_the_wrong_shape_are_refused_naming_the_file(tmp_path, seed):
    content = _cifar_dicts(["apple", "bear"], 3, seed)
    content["train"][b"fine_labels"] = [0, 1, 7, 0, 1, 0]
    folder = _write_cifar(tmp_path, content)
    with pytest.raises(ValueError, match=re.escape(repr(str(folder / "train"))) + r": fine_labels outside 0\.\.1"):
        load_source("cifar100", root=tmp_path, seed=seed)
    (folder / "meta").write_bytes(pickle.dumps([b"apple"]))
    with pytest.raises(ValueError, match=r"meta'? holds a pickled list, expected a dict"):
        load_source("cifar100", root=tmp_path, seed=seed)


# ---------------------------------------------------------------------------- decompression bombs


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims width x height pixels (valid CRC) and that holds no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + end)


def test_png_header_claiming_gigapixels_is_an_unreadable_image(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 100_000, 100_000)  # 1e10 pixels: 30 GB decoded
    with pytest.raises(ValueError, match=r"bomb\.png'.*(decompression bomb|DecompressionBombError)") as err:
        decode_image(bomb)
    assert ONE_LINE.match(str(err.value))
    pixels, ok = FilePool([str(bomb)], key="t").load(np.array([0]), 16)
    assert ok.tolist() == [False] and pixels.shape == (1, 16, 16, 3)


@pytest.mark.parametrize("side", [12, 40])  # 144 px: PIL only warns; 1600 px: PIL raises
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_images_over_the_pixel_limit_are_unreadable_not_raised(tmp_path, monkeypatch, side):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(small)
    Image.new("RGB", (side, side), (1, 2, 3)).save(big)
    with pytest.raises(ValueError, match=r"big\.png' "):
        decode_image(big)
    _, ok = FilePool([str(small), str(big)], key="t").load(np.array([0, 1]), 16)
    assert ok.tolist() == [True, False]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_is_checked_from_the_header_even_when_pil_only_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    big = tmp_path / "big.png"
    Image.new("RGB", (12, 12), (1, 2, 3)).save(big)
    with pytest.raises(ValueError, match=r"big\.png': image of 12 x 12 pixels exceeds the limit of 100 pixels"):
        decode_image(big)


def test_uploaded_bomb_for_prediction_is_refused_as_unreadable(tmp_path):
    from core.inference import load_image

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 100_000, 100_000)
    with pytest.raises(ValueError, match="is not a readable image"):
        load_image(bomb, size=32)


# ---------------------------------------------------------------------------- unreadable domains


def _tiny_backbone():
    """A 3-feature 'backbone' (mean colour): feature extraction without loading real weights."""
    import torch

    from core.backbones import Backbone

    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return Backbone("mean-colour", net, 3, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), pool="none")


def _folder_of(root: Path, readable: int) -> Path:
    """<root>/<class>/<k>.jpg, 2 classes x 5 files; the first ``readable`` files are real JPEGs."""
    k = 0
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            path = root / c / f"{i}.jpg"
            if k < readable:
                Image.new("RGB", (20, 20), (200, 30 * i, 0)).save(path)
            else:
                path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
            k += 1
    return root


def test_a_domain_of_only_unreadable_images_is_refused_naming_it(tmp_path, seed):
    from core.domains import DomainSpec, build_domains
    from core.features import extract_features_report

    root = _folder_of(tmp_path / "photos", readable=0)
    domain = build_domains([DomainSpec(name="cam", source="imagefolder", root=str(root))], seed=seed)[0]
    train = domain.splits["train"]
    with pytest.raises(
        ValueError,
        match=rf"^domain 'cam': none of its {len(train)} train images could be read "
        rf"\(e.g. path '{re.escape(str(root))}/(cat|dog)/\d\.jpg'\)$",
    ):
        extract_features_report(
            train, backbone=_tiny_backbone(), image_size=16, device="cpu", num_workers=0, cache_dir=tmp_path / "cache"
        )
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    with pytest.raises(ValueError, match="^domain 'cam': none of its"):  # and again from the feature cache
        extract_features_report(
            train, backbone=_tiny_backbone(), image_size=16, device="cpu", num_workers=0, cache_dir=tmp_path / "cache"
        )


def test_a_domain_with_some_readable_images_passes_and_reports_the_rest(tmp_path, seed):
    from core.domains import DomainSpec, build_domains
    from core.features import extract_features_report

    root = _folder_of(tmp_path / "photos", readable=9)
    domain = build_domains([DomainSpec(name="cam", source="imagefolder", root=str(root))], seed=seed)[0]
    failed = 0
    for split in domain.splits.values():
        res = extract_features_report(
            split, backbone=_tiny_backbone(), image_size=16, device="cpu", num_workers=0, use_cache=False
        )
        failed += res.failed.size
    assert failed == 1


def test_check_readable_counts_distinct_failures():
    from core.features import check_readable

    check_readable("cam", 0, np.zeros(0, np.int64))
    check_readable("cam", 3, np.array([0, 1, 1]))  # image 2 was read
    with pytest.raises(ValueError, match=r"^domain 'cam': none of its 3 images could be read \(e.g. path 'a\.jpg'\)$"):
        check_readable("cam", 3, np.array([2, 0, 1]), example="a.jpg")
    with pytest.raises(TypeError, match="domain_name must be a str, got int"):
        check_readable(3, 3, np.array([0]))


# ---------------------------------------------------------------------------- overflowing matrices


METHODS = [
    ("threshold", {"t": 0.3}),
    ("mcfp", {}),
    ("mcfp_binary", {}),
    ("density", {"p": 0.7}),
    ("hypothesis", {"k_max": 3}),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("method, params", METHODS)
def test_rows_whose_sum_overflows_are_scaled_not_zeroed(method, params):
    from core.selection import select_relationships

    with pytest.warns(UserWarning, match=r"P: 1 row\(s\) sum to more than 1 \(row 0 sums to inf\)"):
        got = select_relationships([[1.6e308, 0.8e308, 0.0], [0.5, 0.5, 0.0]], method, **params)
    want = select_relationships([[2 / 3, 1 / 3, 0.0], [0.5, 0.5, 0.0]], method, **params)
    np.testing.assert_array_equal(got, want)
    assert got[0].sum() > 0  # the overflowing row still has its relationships


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("method, params", METHODS)
def test_two_entries_of_1e308_select_like_a_half_half_row(method, params):
    from core.selection import select_relationships

    with pytest.warns(UserWarning, match="normalising them"):
        got = select_relationships([[1e308, 1e308], [0.5, 0.5]], method, **params)
    np.testing.assert_array_equal(got, select_relationships([[0.5, 0.5], [0.5, 0.5]], method, **params))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_overflowing_rows_keep_their_proportions():
    from core._validation import as_probability_matrix
    from core.crossdomain import normalize_rows

    P = [[1.6e308, 0.8e308, 1.6e308, 0.0], [1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    want = [[0.4, 0.2, 0.4, 0.0], [0.25, 0.75, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    with pytest.warns(UserWarning, match="normalising them"):
        np.testing.assert_allclose(as_probability_matrix(P), want, rtol=1e-15)
    np.testing.assert_allclose(normalize_rows(np.array(P)), want, rtol=1e-15)


def test_rows_with_finite_sums_are_divided_bit_for_bit_as_before(rng):
    from core._validation import as_probability_matrix
    from core.crossdomain import normalize_rows

    counts = rng.integers(0, 50, size=(30, 17)).astype(np.float64)
    counts[3] = 0.0
    sums = counts.sum(axis=1, keepdims=True)
    expected = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    assert np.array_equal(normalize_rows(counts), expected)
    with pytest.warns(UserWarning):
        got = as_probability_matrix(counts)
    big = sums[:, 0] > 1
    assert np.array_equal(got[big], counts[big] / sums[big])
