"""Unit tests of the dashboard's helper package (ui/): graph, plots, uploads, jobs, run tables."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from ui.graph import GraphFilter, graph_elements, graph_html, strip_remote
from ui.jobs import format_eta, overall_progress
from ui.plots import SORTS, heatmap, row_bars, sort_order, sweep_curves
from ui.runview import config_diff, flatten
from ui.upload import read_image

MAPPINGS = [np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([[0.5, 0.5], [0.0, 0.2]])]
UNAMES = ["dog", "car"]
CNAMES = [["dog", "auto"], ["dalmatian", "car_side"]]
DNAMES = ["cifar", "caltech"]


def test_graph_elements_nodes_edges_and_string_ids():
    nodes, edges = graph_elements(MAPPINGS, UNAMES, CNAMES, DNAMES)
    assert {n["id"] for n in nodes} == {"u:0", "u:1", "0:0", "0:1", "1:0", "1:1"}
    assert all(isinstance(n["label"], str) for n in nodes)  # pyvis draws no integer labels
    assert len(edges) == 5 and {e["weight"] for e in edges} == {1.0, 0.5, 0.2}
    colours = {n["group"]: n["color"] for n in nodes}
    assert len(set(colours.values())) == 3  # two domains + universal, all distinct


@pytest.mark.parametrize(
    "flt, want_edges",
    [
        (GraphFilter(domains=(1,)), 3),
        (GraphFilter(min_weight=0.5), 4),
        (GraphFilter(search="dalmat"), 5),  # a:0 dalmatian sits in both universal classes
        (GraphFilter(search="DOG"), 2),  # U0 "dog" only: cifar dog and caltech dalmatian
        (GraphFilter(search="zebra"), 0),
    ],
)
def test_graph_filters(flt, want_edges):
    nodes, edges = graph_elements(MAPPINGS, UNAMES, CNAMES, DNAMES, flt=flt)
    assert len(edges) == want_edges
    ids = {n["id"] for n in nodes}
    assert all(e["source"] in ids and e["target"] in ids for e in edges)


def test_graph_elements_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="2 mappings, 1 class-name lists"):
        graph_elements(MAPPINGS, UNAMES, CNAMES[:1], DNAMES)


def test_graph_html_is_self_contained():
    nodes, edges = graph_elements(MAPPINGS, UNAMES, CNAMES, DNAMES)
    html = graph_html(nodes, edges)
    tags = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']([^\"']+)", html)
    assert tags == [], f"remote resources left: {tags}"
    assert "new vis.Network" in html and '"dalmatian"' in html


def test_strip_remote_removes_cdn_tags_only():
    html = (
        '<link href="https://cdn.x/b.css" rel="stylesheet" />'
        '<script src="https://cdn.x/b.js"\n integrity="x"></script><script>var a = 1;</script>'
    )
    assert strip_remote(html) == "<script>var a = 1;</script>"


def test_sort_order_and_heatmap_hover_names():
    P = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    rows, cols = sort_order(P, SORTS[2])
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0]
    fig = heatmap(P, ["a", "b", "c"], ["x", "y"], sort=SORTS[2])
    assert fig.data[0].customdata[0][0].tolist() == ["a", "y"]
    assert fig.data[0].z[0].tolist() == [0.9, 0.1]
    with pytest.raises(ValueError, match="sort 'weird'"):
        sort_order(P, "weird")


def test_row_bars_top_k_sorted():
    fig = row_bars(np.array([0.1, 0.6, 0.3]), ["a", "b", "c"], top_k=2)
    assert list(fig.data[0].y) == ["b (1)", "c (2)"]  # the index keeps cut names apart
    assert list(fig.data[0].customdata) == ["b", "c"]  # full names in the hover
    long = row_bars(np.array([1.0]), ["x" * 40], top_k=1)
    assert long.data[0].y[0] == "x" * 31 + "… (0)"


def test_sweep_curves_one_panel_per_parametrised_method():
    df = pd.DataFrame(
        {
            "method": ["threshold"] * 3 + ["mcfp"] + ["hypothesis"] * 2,
            "param": ["t"] * 3 + [None] + ["k_max"] * 2,
            "value": [0.3, 0.1, 0.2, np.nan, 1, 2],
            "f1": [0.6, 0.5, 0.7, 0.55, 0.4, 0.8],
        }
    )
    fig = sweep_curves(df, "f1")
    curves = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in curves] == ["threshold", "hypothesis"]
    assert list(curves[0].y) == [0.5, 0.7, 0.6]  # sorted by parameter value
    refs = [t for t in fig.data if t.name == "mcfp"]
    assert len(refs) == 2 and all(list(t.y) == [0.55, 0.55] for t in refs)  # one line per panel
    assert curves[1].xaxis == "x2"
    with pytest.raises(ValueError, match="metric 'auc'"):
        sweep_curves(df, "auc")


def _png(size=(8, 8)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_read_image_accepts_png_and_refuses_bad_uploads():
    img = read_image(_png())
    assert img.size == (8, 8) and img.mode == "RGB"
    with pytest.raises(ValueError, match="empty"):
        read_image(b"")
    with pytest.raises(ValueError, match="not an image that can be read") as err:
        read_image(b"\x89PNG but not really")
    assert "BytesIO" not in str(err.value)
    with pytest.raises(ValueError, match="limit is"):
        read_image(_png(), max_bytes=10)
    with pytest.raises(TypeError, match="uploaded bytes"):
        read_image("path.png")


def test_progress_and_eta():
    assert overall_progress({"state": "done"}) == 1.0
    half = overall_progress(
        {"state": "running", "steps_done": ["domains", "features"], "step": "baselines", "progress": 0.5}
    )
    assert half == pytest.approx(2.5 / 8)
    assert format_eta(65) == "1 min 05 s" and format_eta(None) == "—"


def test_config_diff_lists_changed_keys():
    a = {"seed": 1, "features": {"backbone": "x", "image_size": 64}}
    b = {"seed": 2, "features": {"backbone": "x", "image_size": 64}, "name": "n"}
    assert flatten(a) == {"seed": 1, "features.backbone": "x", "features.image_size": 64}
    assert config_diff(a, b)["key"].tolist() == ["name", "seed"]


def test_sample_run_follows_the_contract(tmp_path):
    from core.runs import open_run
    from core.synthetic import make_synthetic_taxonomy
    from tests.sample_run import write_synthetic_run

    tax = make_synthetic_taxonomy(12, 3, 8, 2, 1.5, 0.5, seed=0)
    run = open_run(write_synthetic_run(tmp_path, "s", tax, images_per_class=10, methods=("mcfp", "threshold")))
    mats, preds = run.matrices("hard"), run.predictions()
    assert set(mats) == {(a, b) for a in range(3) for b in range(3) if a != b}
    for (a, b), P in mats.items():
        assert np.allclose(P.sum(axis=1), 1.0)
        true, pred = preds["true"][a], preds["pred"][(a, b)]
        C = np.zeros_like(P)
        np.add.at(C, (true, pred), 1)
        assert np.allclose(C, run.matrices("count")[(a, b)])
    assert run.status()["state"] == "done" and run.methods() == ["mcfp", "threshold"]
    assert run.ground_truth().class_counts == tax.class_counts


def test_headline_table_has_a_row_per_method():
    from ui.runview import headline_table

    t = headline_table(
        {
            "baseline_mean": 0.8,
            "universal_mean/mcfp": 0.81,
            "f1/mcfp": 0.4,
            "universal_mean/density_p0.8": 0.79,
            "f1/density_p0.8": 0.53,
        }
    )
    assert list(t["method"]) == ["mcfp", "density_p0.8"]
    assert t.set_index("method").loc["density_p0.8", "F1 vs ground truth"] == 0.53


def test_class_labels_keep_domains_apart():
    import numpy as np

    from ui.plots import class_labels

    labels = class_labels(np.array([0, 1]), np.array([0, 0]), ["A", "B"], [["cat"], ["dog"]])
    assert list(labels) == ["A: cat", "B: dog"]


def test_matching_classes_filters_by_domain_and_name():
    from core.taxonomy import build_universal_taxonomy
    from ui.taxview import matching_classes

    rel = {(0, 1): np.array([[0.9, 0.0], [0.0, 0.0]])}
    tax = build_universal_taxonomy(
        rel, [2, 2], class_names=[["cat", "dog"], ["kitten", "cow"]], domain_names=["A", "B"]
    )
    every = matching_classes(tax, (0, 1))
    assert len(every) == tax.n_universal
    only_b = matching_classes(tax, (1,))
    assert all(any(a == 1 for a, _ in tax.classes[u]) for u in only_b) and len(only_b) < len(every)
    assert [tax.names[u] for u in matching_classes(tax, (0, 1), "KITTEN")] == [n for n in tax.names if "kitten" in n]


def test_param_specs_are_read_from_core_selection():
    from core.selection import METHODS
    from ui.data import ParamSpec, param_spec

    for name, method in METHODS.items():
        spec = param_spec(name)
        if method.param is None:
            assert spec is None
            continue
        assert isinstance(spec, ParamSpec) and spec == (method.param, *method.bounds, method.default)
        assert spec.lo <= spec.default <= spec.hi and spec.step > 0


def test_setting_query_and_description():
    from ui.setting import Setting, run_value

    assert Setting("density", "p", 0.5).query() == {"method": "density", "p": 0.5}
    assert Setting("mcfp").query() == {"method": "mcfp"} and Setting("mcfp").describe() == "mcfp"
    assert Setting("hypothesis", "k_max", 4).describe() == "hypothesis (k_max=4)"
    cfg = {
        "selection": {
            "methods": [{"name": "threshold", "params": {"t": 0.45}}, {"name": "density", "params": {"p": 9}}]
        }
    }
    assert run_value(cfg, "threshold") == 0.45 and run_value(cfg, "density") == 1.0  # clamped to the range
    assert run_value({}, "hypothesis") == 3 and run_value(cfg, "mcfp") is None


def test_job_status_text_uses_the_core_state_icons():
    from core.runs import STATE_ICONS, STEPS
    from ui.jobs import status_text, step_chain

    status = {"state": "running", "step": STEPS[1], "steps_done": [STEPS[0]], "eta_s": 5, "message": "epoch 2"}
    assert status_text(status, alive=True) == (
        f"{STATE_ICONS['running']} **running** · step 2/{len(STEPS)}: {STEPS[1]} · ETA of this step 5 s · epoch 2"
    )
    assert "ETA" not in status_text(status, alive=False)
    assert status_text({"state": "corrupt"}, alive=False).startswith(f"{STATE_ICONS['corrupt']} **corrupt**")
    assert step_chain(status).split(" → ")[:3] == [f"✅ {STEPS[0]}", f"▶️ **{STEPS[1]}**", f"◻️ {STEPS[2]}"]


def test_interval_tables_show_the_verdicts():
    from ui.intervalview import difference_table, interval_table, seed_table

    noisy = {"diff": 0.05, "lo": -0.01, "hi": 0.1, "within_noise": True, "p_value": 0.2}
    real = {"diff": 0.05, "lo": 0.01, "hi": 0.09, "within_noise": False}
    iv = {
        "accuracy": {
            "baseline": {"a": [0.8, 0.7, 0.9], "mean": [0.8, 0.75, 0.85]},
            "universal/m": {"a": [0.85, 0.8, 0.9], "mean": [0.85, 0.8, 0.9]},
        },
        "vs_baseline": {"universal/m": {"a": noisy, "mean": real}},
    }
    t = interval_table(iv, ["a"])
    assert list(t["domain"]) == ["a", "mean"] and t.loc[0, "baseline"] == "0.800 [0.700, 0.900]"
    d = difference_table(iv, ["a"])
    assert list(d["domain"]) == ["mean", "a"] and list(d["verdict"]) == ["better", "within noise"]
    assert d.loc[1, "p (exact)"] == "0.2" and d.loc[0, "interval"] == "[+0.010, +0.090]"
    s = seed_table({"baseline": {"a": [0.8, 0.9], "b": [0.6, 0.7]}})
    assert s.loc[0, "baseline"] == "0.850 ± 0.071 (n=2)" and list(s["domain"]) == ["a", "b", "mean"]
    assert s.loc[2, "baseline"] == "0.750 ± 0.071 (n=2)"
