"""core.decode: JPEG headers, the PIL-like resize, batched decoding (on CPU here), staging, and
its use by core.features.compute_features. The CUDA paths run in bench/gpu_check.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core import decode
from core.decode import (
    JpegHeader,
    decode_files,
    gpu_decodable,
    gpu_decode_enabled,
    jpeg_header,
    resize_square,
    stage_batch,
)
from core.imagesets import ImageSet
from core.pools import FilePool, ProceduralPool, _resize

# torchvision 0.29 deprecates its decoders (core.decode silences that outside pytest's own filters)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth gradient with noise: JPEG-friendly, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y + seed * 17) % 97 * 2.6], -1)
    return (img + rng.integers(0, 25, img.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def files(tmp_path):
    """good JPEGs of several sizes and subsamplings, a progressive one, a PNG, a greyscale and a
    CMYK JPEG, a truncated JPEG, a corrupt file, an empty file, a missing path."""
    paths = {}
    for k, (h, w, sub) in enumerate(
        [(300, 400, "4:2:0"), (500, 333, "4:4:4"), (224, 224, "4:2:2"), (300, 400, "4:2:0")]
    ):
        p = tmp_path / f"good{k}.jpg"
        Image.fromarray(_photo(h, w, k)).save(p, quality=85, subsampling=sub)
        paths[f"good{k}"] = str(p)
    p = tmp_path / "prog.jpg"
    Image.fromarray(_photo(120, 90, 9)).save(p, quality=90, progressive=True)
    paths["prog"] = str(p)
    p = tmp_path / "img.png"
    Image.fromarray(_photo(64, 80, 5)).save(p)
    paths["png"] = str(p)
    p = tmp_path / "grey.jpg"
    Image.fromarray(_photo(70, 50, 6)[..., 0], "L").save(p)
    paths["grey"] = str(p)
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(_photo(40, 60, 7)).convert("CMYK").save(p)
    paths["cmyk"] = str(p)
    data = open(paths["good0"], "rb").read()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    paths["trunc"] = str(tmp_path / "trunc.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all" * 10)
    paths["junk"] = str(tmp_path / "junk.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    paths["empty"] = str(tmp_path / "empty.jpg")
    paths["missing"] = str(tmp_path / "missing.jpg")
    return paths


def test_jpeg_header_reads_the_frame_and_refuses_other_bytes(files):
    h = jpeg_header(open(files["good1"], "rb").read())
    assert h == JpegHeader(333, 500, 3, 0xC0, False)
    assert gpu_decodable(h)
    prog = jpeg_header(open(files["prog"], "rb").read())
    assert prog.sof == 0xC2 and gpu_decodable(prog)
    grey = jpeg_header(open(files["grey"], "rb").read())
    assert grey.components == 1 and not gpu_decodable(grey)
    assert not gpu_decodable(jpeg_header(open(files["cmyk"], "rb").read()))
    for name in ("png", "junk", "empty"):
        assert jpeg_header(open(files[name], "rb").read()) is None
    assert jpeg_header(b"\xff\xd8\xff\xe0\x00\x01") is None  # segment length below 2
    assert jpeg_header(b"\xff\xd8\xff\xda\x00\x08abcdef") is None  # SOS before a frame
    assert not gpu_decodable(None)
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        jpeg_header("\xff\xd8")


@pytest.mark.parametrize("hw", [(300, 400), (500, 333), (224, 224), (40, 500), (20, 30), (224, 100)])
@pytest.mark.parametrize("size", [224, 64, 32])
def test_resize_square_is_within_one_level_of_pil(hw, size):
    img = np.random.default_rng(hw[0] * 7 + size).integers(0, 256, (*hw, 3)).astype(np.uint8)
    want = _resize(img, size).astype(int)
    got = resize_square(torch.from_numpy(img).permute(2, 0, 1)[None], size)[0].permute(1, 2, 0).numpy()
    diff = np.abs(got.astype(int) - want)
    assert got.shape == (size, size, 3) and got.dtype == np.uint8
    assert diff.max() <= 2 and (diff > 1).mean() < 1e-3 and (diff > 0).mean() < 0.3


def test_resize_square_identity_and_bad_arguments():
    x = torch.zeros((2, 3, 16, 16), dtype=torch.uint8)
    assert resize_square(x, 16) is x
    with pytest.raises(ValueError, match=r"x must be a uint8 tensor \(N,3,H,W\), got torch.float32"):
        resize_square(x.float(), 8)
    with pytest.raises(ValueError, match=r"got torch.uint8 \(3, 16, 16\)"):
        resize_square(x[0], 8)
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        resize_square(x, 0)
    with pytest.raises(ValueError, match="x must be a uint8 tensor"):
        resize_square(np.zeros((1, 3, 4, 4), np.uint8), 2)


ORDER = ["good0", "png", "trunc", "good1", "grey", "junk", "cmyk", "good2", "empty", "prog", "missing", "good3"]
UNREADABLE = {"trunc", "junk", "empty", "missing"}


@pytest.mark.parametrize("size", [224, 64])
def test_decode_files_matches_the_cpu_path_keeps_order_and_the_ok_mask(files, size):
    paths = [files[k] for k in ORDER]
    pool = FilePool(paths, key="t")
    want, want_ok = pool.load(np.arange(len(paths)), size)
    got, ok = decode_files(paths, size, device="cpu")
    assert got.shape == (len(paths), 3, size, size) and got.dtype == torch.uint8
    np.testing.assert_array_equal(ok, want_ok)
    np.testing.assert_array_equal(ok, [k not in UNREADABLE for k in ORDER])
    got = got.permute(0, 2, 3, 1).numpy()
    for n, name in enumerate(ORDER):
        diff = np.abs(got[n].astype(int) - want[n])
        if name in UNREADABLE:
            assert not got[n].any()  # zero image
        elif name.startswith(("good", "prog")):  # libjpeg-turbo decode + resize_square: within a level
            assert diff.max() <= 2 and (diff > 0).mean() < 0.3, name
        else:  # the CPU decoder itself: identical pixels
            assert diff.max() == 0, name


def test_jpeg_header_never_raises_on_cut_or_damaged_bytes(files):
    data = open(files["good0"], "rb").read()[:1500]
    rng = np.random.default_rng(0)
    for cut in range(0, len(data), 7):
        jpeg_header(data[:cut])
    for _ in range(200):
        b = np.frombuffer(data, np.uint8).copy()
        b[rng.integers(2, len(b), 5)] = rng.integers(0, 256, 5)
        h = jpeg_header(b.tobytes())
        assert h is None or isinstance(h, JpegHeader)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decode_files_refuses_a_decompression_bomb_from_its_header(files, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300)
    _, ok = decode_files([files["good0"], files["good2"]], 32)  # 400x300 over the limit, 224x224 under
    np.testing.assert_array_equal(ok, [False, True])


def test_decode_files_retries_file_by_file_when_the_batch_fails(files, monkeypatch):
    from torchvision import io as tvio

    real, calls = tvio.decode_jpeg, []

    def flaky(inp, **kw):
        calls.append(isinstance(inp, list))
        if isinstance(inp, list):
            raise RuntimeError("batch refused")
        if inp.numel() == len(open(files["good1"], "rb").read()):
            raise RuntimeError("this one refused too")
        return real(inp, **kw)

    monkeypatch.setattr(tvio, "decode_jpeg", flaky)
    got, ok = decode_files([files["good0"], files["good1"]], 48)
    assert ok.all() and calls[0] is True and calls.count(False) == 2
    want, _ = FilePool([files["good1"]], key="t").load(np.arange(1), 48)
    np.testing.assert_array_equal(got[1].permute(1, 2, 0).numpy(), want[0])  # refused -> PIL, exactly


def test_decode_files_bad_arguments(files):
    with pytest.raises(ValueError, match="size must be an int in 1..4096, got 0"):
        decode_files([files["good0"]], 0)
    with pytest.raises(ValueError, match="size must be an int in 1..4096, got True"):
        decode_files([files["good0"]], True)
    with pytest.raises(ValueError, match="read_workers must be a positive int, got 0"):
        decode_files([files["good0"]], 8, read_workers=0)
    x, ok = decode_files([], 8)
    assert x.shape == (0, 3, 8, 8) and ok.shape == (0,)


def test_stage_batch_on_cpu_is_the_cpu_path_unchanged(files):
    paths = [files[k] for k in ORDER]
    split = ImageSet(FilePool(paths, key="t"), np.arange(len(paths))[::-1].copy(), np.zeros(len(paths)))
    idx = np.array([0, 3, 5, 7])
    staged = stage_batch(split, idx, 40, torch.device("cpu"))
    want, want_ok = split.images(idx, 40)
    assert staged.event is None
    np.testing.assert_array_equal(staged.ready(torch.device("cpu")).permute(0, 2, 3, 1).numpy(), want)
    np.testing.assert_array_equal(staged.ok, want_ok)
    with pytest.raises(IndexError, match="index out of range"):
        stage_batch(split, np.array([len(paths)]), 40, torch.device("cpu"))


def test_gpu_decode_is_gated(files, monkeypatch):
    fp = ImageSet(FilePool([files["good0"]], key="t"), np.arange(1), np.zeros(1))
    proc = ImageSet(ProceduralPool(seed=0), np.arange(1), np.zeros(1))
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert gpu_decode_enabled(fp, cuda) and not gpu_decode_enabled(fp, cpu)
    assert not gpu_decode_enabled(proc, cuda)
    assert not gpu_decode_enabled(fp.with_shift("A", seed=1), cuda)
    monkeypatch.setenv("UNITAX_GPU_DECODE", "0")
    assert not gpu_decode_enabled(fp, cuda)


def test_read_file_and_header_of_a_real_buffer(files):
    data = decode.read_file(files["good3"])
    assert isinstance(data, bytearray) and data == open(files["good3"], "rb").read()
    assert Image.open(io.BytesIO(data)).size == (jpeg_header(data).width, jpeg_header(data).height)


def test_compute_features_unchanged_on_cpu_for_files(files):
    """The staged input path gives the same features as the host images forwarded directly."""
    from core.backbones import load_backbone
    from core.features import compute_features

    paths = [files[k] for k in ORDER]
    split = ImageSet(FilePool(paths, key="t"), np.arange(len(paths)), np.zeros(len(paths)))
    model = load_backbone(pretrained=False)
    torch.manual_seed(0)
    feats, failed, _ = compute_features(
        split, model, image_size=32, device=torch.device("cpu"), batch_size=5, num_workers=1
    )
    imgs, ok = split.images(np.arange(len(paths)), 32)
    with torch.inference_mode():
        want = model.features(torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255)).numpy()
    want[~ok] = 0
    np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(failed, np.flatnonzero(~ok))


def test_stage_paths_on_cpu_decodes_at_once(files):
    staged = decode.stage_paths([files["good0"], files["junk"]], 24, torch.device("cpu"))
    assert staged.event is None and staged.x.shape == (2, 3, 24, 24)
    np.testing.assert_array_equal(staged.ok, [True, False])


def test_finetune_decoded_batches_match_the_dataloader(files):
    """core.finetune's GPU-decode loader (run here on CPU) yields what the DataLoader yields."""
    from core.finetune import _Batches, _DecodedBatches, _EpochBatches, _loader

    names = ["good0", "png", "trunc", "good1", "grey", "good2", "prog", "good3"]
    pool = FilePool([files[k] for k in names], key="t")
    sets = [ImageSet(pool, np.arange(4), np.arange(4)), ImageSet(pool, np.arange(4, 8), np.arange(4) + 10)]
    ds = _Batches(sets, 48, redraw=False)
    sampler = _EpochBatches(len(ds), 3, shuffle=True, seed=5)
    cpu = torch.device("cpu")
    assert not isinstance(_loader(ds, sampler, cpu, 0), _DecodedBatches)  # CPU: the DataLoader, unchanged
    want = list(_loader(ds, sampler, cpu, 0))
    got = list(_DecodedBatches(ds, sampler, cpu, workers=2))
    assert len(got) == len(want) == len(_DecodedBatches(ds, sampler, cpu)) and len(want) > 1
    for (gx, gok, gdom, gy), (wx, wok, wdom, wy) in zip(got, want):
        assert gx.shape == wx.shape and gx.dtype == wx.dtype == torch.uint8
        assert torch.equal(gok, wok) and torch.equal(gdom, wdom) and torch.equal(gy, wy)
        assert (gx.int() - wx.int()).abs().max() <= 2
