"""The dashboard under hostile input: run names in the URL or the session that point outside the
runs root, NaN/inf/garbage URL parameters, and uploads that are bombs, truncated or not images.
Nothing may be opened outside the runs root, and no page may show an exception."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.synthetic import make_synthetic_taxonomy  # noqa: E402
from tests.sample_run import write_synthetic_run  # noqa: E402
from ui.urlstate import coerce, shown  # noqa: E402

pytestmark = pytest.mark.slow  # AppTest renders the pages: excluded from the quick loop (-m "not slow")

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A runs root holding run ``r-new`` (with a universal model file) and a symlink ``evil`` to
    a complete run folder outside the root; an empty runs root; the outside run itself."""
    tax = make_synthetic_taxonomy(12, 2, 6, 2, 1.5, 0.5, seed=0)
    outside = write_synthetic_run(tmp_path_factory.mktemp("elsewhere"), "outside", tax, seed=1)
    root = tmp_path_factory.mktemp("runs")
    run = write_synthetic_run(root, "r-new", tax, seed=2)
    (run / "universal" / "mcfp" / "model.pt").write_bytes(b"")  # presence only: no upload gets that far
    (root / "evil").symlink_to(outside, target_is_directory=True)
    empty = tmp_path_factory.mktemp("empty-runs")
    return {"root": root, "empty": empty, "outside": outside}


def _open(root: Path, page: str = "home", session: dict | None = None, **query) -> tuple[AppTest, list[str]]:
    """Open the app with ``query`` and ``session``, then go to ``page``; also return the texts of
    the warnings of every run (a notice about the URL shows on the first one)."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    for k, v in (session or {}).items():
        at.session_state[k] = v
    at.run()
    warned = [w.value for w in at.warning]
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
        warned += [w.value for w in at.warning]
    assert not at.exception, [e.value for e in at.exception]
    return at, warned


def _shows_run(at: AppTest, run_id: str) -> bool:
    """Whether any text of the page names ``run_id`` as the open run."""
    texts = [m.value for m in at.markdown] + [s.value for s in at.subheader]
    return any(f"`{run_id}`" in t for t in texts)


# --- the run named in the URL or the session ---------------------------------------------------


def test_absolute_path_is_not_opened_when_the_root_is_empty(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["empty"]))
    target = str(places["outside"])
    for page in ("home", "crossdomain"):
        at, _ = _open(places["empty"], page, run=target)
        assert not _shows_run(at, "outside"), f"{page} opened a run outside the runs root"
        assert not at.error
    at, warned = _open(places["empty"], "home", run=target)
    assert any(shown(target) in w and "no run is open" in w for w in warned), warned
    assert "run" not in at.query_params


@pytest.mark.parametrize(
    "value",
    [
        "/etc",
        "..",
        "../outside",
        "ABSOLUTE",
        "evil",
        "r-new/../r-new",
        "r-new\x00",
        "r-new\n",
        "x" * 5000,
        "_configs",
        "no-such-run",
    ],
)
def test_a_bad_run_in_the_url_is_ignored_with_a_warning(places, monkeypatch, value):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    (places["root"] / "_configs").mkdir(exist_ok=True)  # a folder in the root that is no run
    value = str(places["outside"]) if value == "ABSOLUTE" else value
    at, warned = _open(places["root"], "crossdomain", run=value)
    assert not _shows_run(at, "outside") and not _shows_run(at, "evil")
    assert _shows_run(at, "r-new"), "the newest run inside the root is shown instead"
    warnings = [w for w in warned if "is not a run in" in w]
    assert len(warnings) == 1 and shown(value) in warnings[0] and "showing run `r-new`" in warnings[0], warnings
    assert at.query_params.get("run") in ("r-new", ["r-new"])
    assert not at.error


def test_a_bad_run_in_the_session_is_ignored(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, warned = _open(places["root"], "home", session={"run_id": str(places["outside"])})
    assert _shows_run(at, "r-new") and not _shows_run(at, "outside")
    assert any("is not a run in" in w for w in warned)


def test_a_symlink_leading_out_of_the_root_is_not_listed(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, warned = _open(places["root"], "runs", run="r-new")
    assert "evil" not in at.selectbox(key="runs_victim").options
    assert "evil" not in set(at.dataframe[0].value["run"])
    assert not warned
    at, warned = _open(places["root"], "home")
    picker = next(s for s in at.selectbox if s.label == "Current run")
    assert picker.options == ["✅ r-new"] and not warned


def test_a_good_run_in_the_url_is_opened_without_a_warning(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, warned = _open(places["root"], "crossdomain", run="r-new")
    assert _shows_run(at, "r-new") and not warned and not at.error


# --- URL-backed widget values ---------------------------------------------------------------


@pytest.mark.parametrize(
    "method, param, raw, want",
    [
        ("threshold", "t", "nan", 0.3),
        ("threshold", "t", "inf", 0.3),
        ("threshold", "t", "-inf", 0.3),
        ("threshold", "t", "abc", 0.3),
        ("threshold", "t", "", 0.3),
        ("threshold", "t", "1e999", 0.3),
        ("threshold", "t", "7", 1.0),
        ("threshold", "t", "-2", 0.0),
        ("density", "p", "NaN", 0.7),
        ("density", "p", "0", 0.05),
        ("hypothesis", "k_max", "abc", 3),
        ("hypothesis", "k_max", "nan", 3),
        ("hypothesis", "k_max", "99", 10),
    ],
)
def test_relationships_url_numbers_are_parsed_strictly(places, monkeypatch, method, param, raw, want):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "relationships", method=method, **{param: raw})
    assert at.selectbox(key="rel_method").value == method
    value = at.slider(key=f"rel_{method}_{param}").value
    assert value == pytest.approx(want) and type(value) is type(want)
    assert not at.error


@pytest.mark.parametrize("raw", ["no-such-method", "", "__class__", "threshold\x00", "m" * 10000])
def test_relationships_unknown_method_falls_back(places, monkeypatch, raw):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "relationships", method=raw)
    assert at.selectbox(key="rel_method").value == "threshold"
    assert at.slider(key="rel_threshold_t").value == pytest.approx(0.3)
    assert at.query_params["method"] in ("threshold", ["threshold"]) and not at.error


@pytest.mark.parametrize(
    "w, domains, q, want_w, want_domains",
    [
        ("nan", "abc", "x\x00y", 0.0, [0, 1]),
        ("inf", "99,-1", "", 0.0, [0, 1]),
        ("-inf", "1,1,zz", "", 0.0, [1]),
        ("abc", ",", "q" * 5000, 0.0, [0, 1]),
        ("5", "0", "", 1.0, [0]),
    ],
)
def test_taxonomy_url_filters_are_parsed_strictly(places, monkeypatch, w, domains, q, want_w, want_domains):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "taxonomy", w=w, domains=domains, q=q)
    assert at.slider(key="tax_min_w").value == pytest.approx(want_w)
    assert at.multiselect(key="tax_domains").value == want_domains
    search = at.text_input(key="tax_search").value
    assert "\x00" not in search and len(search) <= 200
    assert not at.error


def test_taxonomy_reads_a_hostile_live_setting_safely(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "taxonomy", session={"rel_method": "evil", "rel_threshold_t": float("nan")})
    live = [o for o in at.selectbox(key="tax_source").options if o.startswith("live")]
    assert live == ["live: threshold (t=0.3) from 🔗 Relationships"]
    at.selectbox(key="tax_source").set_value(live[0]).run()
    assert not at.exception and not at.error


@pytest.mark.parametrize(
    "stored, method, param, want",
    [
        (("evil", "t", float("nan")), "threshold", "t", 0.3),
        (("threshold", "t", "1e999"), "threshold", "t", 0.3),
        (("threshold", "t", [0.5]), "threshold", "t", 0.3),
        (("threshold", "t", 7.0), "threshold", "t", 1.0),
        (("density", "t", 0.9), "density", "p", 0.7),  # a value of another parameter is not taken
        (("hypothesis", "k_max", True), "hypothesis", "k_max", 3),
        ("threshold", "threshold", "t", 0.3),
        (None, "threshold", "t", 0.3),
    ],
)
def test_a_hostile_stored_setting_is_checked_on_both_pages(places, monkeypatch, stored, method, param, want):
    from ui.setting import SETTING_KEY

    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "taxonomy", session={SETTING_KEY: stored})
    live = [o for o in at.selectbox(key="tax_source").options if o.startswith("live")]
    assert live == [f"live: {method} ({param}={want}) from 🔗 Relationships"]
    at, _ = _open(places["root"], "relationships", session={SETTING_KEY: stored})
    assert at.selectbox(key="rel_method").value == method
    value = at.slider(key=f"rel_{method}_{param}").value
    assert value == pytest.approx(want) and type(value) is type(want)
    assert at.query_params[param] in (str(want), [str(want)]) and not at.error


def test_coerce_rules():
    assert coerce("nan", 0.5, lo=0.0, hi=1.0) == 0.5
    assert coerce(float("inf"), 0.5, lo=0.0, hi=1.0) == 0.5
    assert coerce("0.25", 0.5, lo=0.0, hi=1.0) == 0.25
    assert coerce("2", 3, lo=1, hi=10) == 2 and coerce("2.5", 3, lo=1, hi=10) == 3
    assert coerce(True, 3, lo=1, hi=10) == 3  # a bool is no number
    assert coerce("mcfp", "threshold", choices=["threshold", "mcfp"]) == "mcfp"
    assert coerce(["mcfp"], "threshold", choices=["threshold", "mcfp"]) == "threshold"
    assert coerce("2,0,2,x", [0, 1, 2], choices=[0, 1, 2]) == [2, 0]
    assert coerce([], [0, 1], choices=[0, 1]) == []  # a widget cleared on purpose stays cleared
    assert coerce("a\x00b\x1b", "") == "ab"
    assert coerce("maybe", False) is False and coerce("true", False) is True


# --- uploads -------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _png(size=(16, 16)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


UPLOADS = {
    "bomb.png": _png_header(100_000, 100_000),  # PIL: DecompressionBombError
    "bigish.png": _png_header(10_000, 10_000),  # PIL: DecompressionBombWarning
    "truncated.png": _png((64, 64))[:60],
    "empty.png": b"",
    "drawing.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "page.jpg": b"<!doctype html><html><body>hi</body></html>",
    "noise.webp": bytes(range(256)) * 40,
    "zero-size.png": _png_header(0, 0),
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_try_it_shows_one_friendly_error_for_a_bad_upload(places, monkeypatch, name):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "try_it", run="r-new")
    at.get("file_uploader")[0].set_value((name, UPLOADS[name], "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(f"Could not read ‘{name}’: "), errors
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    assert not at.get("image"), "nothing is shown to classify"


def test_try_it_accepts_a_good_upload(places, monkeypatch):
    monkeypatch.setenv("UNITAX_RUNS", str(places["root"]))
    at, _ = _open(places["root"], "try_it", run="r-new")
    at.get("file_uploader")[0].set_value(("ok.png", _png(), "image/png")).run()
    assert not at.exception and not at.error
    assert at.button(key="try_go")


def test_read_image_treats_the_bomb_warning_as_an_error(monkeypatch):
    import ui.upload

    monkeypatch.setattr(ui.upload, "MAX_PIXELS", 10**12)  # only PIL's own guard is left
    with pytest.raises(ValueError, match="too large to open safely"):
        ui.upload.read_image(_png_header(10_000, 10_000))  # 1e8 pixels: PIL only warns
    with pytest.raises(ValueError, match="too large to open safely"):
        ui.upload.read_image(_png_header(100_000, 100_000))


@pytest.mark.parametrize("name", list(UPLOADS))
def test_read_image_raises_only_value_errors(name):
    from ui.upload import read_image

    with pytest.raises(ValueError):
        read_image(UPLOADS[name])
