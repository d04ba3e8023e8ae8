"""Universal model: soft targets, d_a = M_a p, losses, training on the union of domains."""

import numpy as np
import pytest
import torch

from core.config import HeadConfig, TrainConfig
from core.universal import (
    UniversalObjective,
    domain_predictions,
    evaluate_universal,
    partial_loss,
    soft_loss,
    soft_targets,
    train_universal,
)

M0 = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])  # domain 0: class 0 -> u0+u1, class 1 -> u2
M1 = np.eye(3)  # domain 1: one class per universal class


def test_soft_targets_sum_to_one_and_follow_mapping():
    rng = np.random.default_rng(0)
    M = rng.random((5, 7)) * (rng.random((5, 7)) > 0.5)
    M[:, 0] += 0.1  # no empty row
    t = soft_targets(M, rng.integers(0, 5, 50))
    assert np.allclose(t.sum(axis=1), 1.0)
    assert np.allclose(soft_targets(M0, [0, 1]), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])


def test_soft_targets_refuse_empty_rows_and_bad_labels():
    with pytest.raises(ValueError, match=r"class row\(s\) \[1\] map to no universal class"):
        soft_targets(np.array([[1.0, 0.0], [0.0, 0.0]]), [0])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        soft_targets(M0, [2])


def test_domain_prediction_hand_example():
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    d = domain_predictions(p, M0)
    # d_a = M_a p: class 0 gets p0 + p1, class 1 gets 0.5 p2
    assert np.allclose(d, [[0.5, 0.25], [0.9, 0.05]])
    assert domain_predictions(p, M0).argmax(axis=1).tolist() == [0, 0]
    with pytest.raises(ValueError, match="disagree"):
        domain_predictions(p, np.eye(2))


def test_losses_hand_values():
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5]]))
    t = torch.tensor([[0.5, 0.5, 0.0]])
    assert float(soft_loss(logits, t)) == pytest.approx(-(0.5 * np.log(0.2) + 0.5 * np.log(0.3)), rel=1e-5)
    assert float(partial_loss(logits, t)) == pytest.approx(-np.log(0.5), rel=1e-5)
    smooth = float(soft_loss(logits, t, label_smoothing=0.3))
    ts = 0.7 * np.array([0.5, 0.5, 0]) + 0.1
    assert smooth == pytest.approx(-(ts * np.log([0.2, 0.3, 0.5])).sum(), rel=1e-5)


def test_objective_correctness_matches_numpy():
    obj = UniversalObjective([M0, M1])
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    dom = torch.tensor([0, 0, 0, 1, 1, 1])
    lab = torch.tensor([0, 1, 1, 0, 1, 2])
    p = torch.softmax(logits, 1).numpy()
    want = [domain_predictions(p[i : i + 1], [M0, M1][int(dom[i])]).argmax() == lab[i] for i in range(6)]
    assert obj.correct_fn(logits, dom, lab).tolist() == want
    with pytest.raises(ValueError, match="loss 'l2'"):
        UniversalObjective([M0], loss="l2")
    with pytest.raises(ValueError, match="same number U"):
        UniversalObjective([M0, np.eye(2)])


@pytest.mark.parametrize("loss", ["soft", "partial"])
def test_universal_model_learns_union(loss):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 3
    n = 360
    u = rng.integers(0, 3, n)  # true universal class of each sample
    X = (centers[u] + rng.normal(size=(n, 8))).astype(np.float32)
    dom = rng.integers(0, 2, n)
    y = np.where(dom == 0, (u == 2).astype(int), u)  # domain 0 merges u0 and u1
    res = train_universal(
        X[:240],
        dom[:240],
        y[:240],
        X[240:],
        dom[240:],
        y[240:],
        [M0, M1],
        loss=loss,
        head=HeadConfig(depth=2, width=16),
        train=TrainConfig(epochs=25, batch_size=32),
        seed=0,
    )
    acc = evaluate_universal(res.model, X[240:], dom[240:], y[240:], [M0, M1])
    assert min(acc.values()) > 0.9
    assert res.best_val_acc > 0.9


def test_embedding_2d_pca_tsne_and_errors():
    from core.embedding import embed_2d

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(20, 6)), rng.normal(size=(20, 6)) + 8])
    xy, how = embed_2d(X, method="pca")
    assert how == "pca" and xy.shape == (40, 2)
    assert np.array_equal(xy, embed_2d(X, method="pca")[0])  # deterministic
    assert abs(xy[:20, 0].mean() - xy[20:, 0].mean()) > 5  # the two clusters separate on PC1
    xy, how = embed_2d(X, method="auto", tsne_max=100, seed=0)
    assert how == "tsne" and xy.shape == (40, 2)
    assert embed_2d(X, method="auto", tsne_max=10)[1] == "pca"  # large N -> PCA
    assert embed_2d(X[:3], method="tsne")[1] == "pca"  # too few points for t-SNE
    with pytest.raises(ValueError, match="method 'umap'"):
        embed_2d(X, method="umap")
    with pytest.raises(ValueError, match="NaN"):
        embed_2d(np.full((5, 2), np.nan))


# ---------------------------------------------------------------------------- inference rule

M_RULE = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # class 0 -> u0 + u1, class 1 -> u2
Z_RULE = np.array([[2.0, -3.0, 1.0]])  # logits (1, U)


def test_probs_and_logits_rules_pick_different_classes():
    from core.universal import domain_scores

    p = np.exp(Z_RULE) / np.exp(Z_RULE).sum()
    d_probs = domain_scores(Z_RULE, M_RULE, inference="probs")
    assert np.allclose(d_probs, [[p[0, 0] + p[0, 1], p[0, 2]]])  # softmax mass: class 0 (0.73 vs 0.27)
    assert d_probs.argmax() == 0
    d_logits = domain_scores(Z_RULE, M_RULE, inference="logits")
    assert np.allclose(d_logits, [[2.0 - 3.0, 1.0]])  # summed logits: class 1
    assert d_logits.argmax() == 1
    with pytest.raises(ValueError, match="inference must be one of probs, logits; got 'softmax'"):
        domain_scores(Z_RULE, M_RULE, inference="softmax")
    with pytest.raises(ValueError, match=r"logits must be \(N, U\)"):
        domain_scores(Z_RULE[0], M_RULE)


def test_evaluate_universal_and_objective_follow_the_rule():
    # an identity "model": the features are the logits
    X, dom, y = Z_RULE.astype(np.float32), np.array([0]), np.array([1])
    assert evaluate_universal(torch.nn.Identity(), X, dom, y, [M_RULE]) == {0: 0.0}
    assert evaluate_universal(torch.nn.Identity(), X, dom, y, [M_RULE], inference="logits") == {0: 1.0}
    z, d, lab = torch.tensor(Z_RULE, dtype=torch.float32), torch.tensor([0]), torch.tensor([1])
    assert UniversalObjective([M_RULE]).correct_fn(z, d, lab).tolist() == [False]
    assert UniversalObjective([M_RULE], inference="logits").correct_fn(z, d, lab).tolist() == [True]
    with pytest.raises(ValueError, match="inference must be one of probs, logits; got 'raw'"):
        UniversalObjective([M_RULE], inference="raw")


def test_inference_config_is_validated():
    import dataclasses

    from core.config import UniversalConfig, config_from_dict
    from core.universal import INFERENCE_RULES

    assert config_from_dict({}).universal.inference == "probs"  # today's rule stays the default
    assert config_from_dict({"universal": {"inference": "logits"}}).universal.inference == "logits"
    with pytest.raises(ValueError, match=r"^universal\.inference: must be one of \['probs', 'logits'\], got 'soft'"):
        config_from_dict({"universal": {"inference": "soft"}})
    rule = next(f for f in dataclasses.fields(UniversalConfig) if f.name == "inference").metadata["rule"]
    assert tuple(rule.choices) == INFERENCE_RULES


def test_inference_summary_and_lines():
    from core.results import inference_lines, inference_summary

    by_rule = {
        "probs": {"baseline": [np.array([True])], "universal/m": [np.array([True, False]), np.array([], bool)]},
        "logits": {"baseline": [np.array([True])], "universal/m": [np.array([True, True]), np.array([], bool)]},
    }
    s = inference_summary(by_rule, ["A", "B"], "logits")
    assert s == {
        "configured": "logits",
        "probs": {"universal/m": {"A": 0.5, "B": None, "mean": 0.5}},
        "logits": {"universal/m": {"A": 1.0, "B": None, "mean": 1.0}},
    }
    assert inference_lines(s) == ["universal/m mean test accuracy: logits (configured) 1.000; probs 0.500"]
    assert inference_lines(None) == [] and inference_lines({"configured": "probs"}) == []
    assert inference_lines({"configured": "probs", "probs": "damaged"}) == []


@pytest.mark.slow
def test_a_run_reports_both_rules_with_the_configured_one_as_headline(tmp_path, monkeypatch):
    """The tiny pipeline with universal.inference = logits: metrics.json (the results table's
    numbers) follow the logits rule, results.json holds both rules' accuracies."""
    from pathlib import Path

    import yaml

    from core import pipeline
    from core.runs import open_run

    monkeypatch.setenv("UNITAX_CACHE", str(tmp_path / "cache"))
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "assets" / "configs" / "tiny.yaml").read_text())
    cfg["selection"] = {"methods": [{"name": "mcfp"}]}
    cfg["universal"]["inference"] = "logits"
    status = pipeline.run_pipeline(cfg, tmp_path / "run")
    assert status["state"] == "done", status
    run = open_run(tmp_path / "run")
    inference = run.results_json()["inference"]
    assert inference["configured"] == "logits" and set(inference) == {"configured", "probs", "logits"}
    metrics = run.universal_metrics("mcfp")
    for name in run.domain_names():
        assert inference["logits"]["universal/mcfp"][name] == pytest.approx(metrics[name])
        assert 0.0 <= inference["probs"]["universal/mcfp"][name] <= 1.0
    mean = inference["logits"]["universal/mcfp"]["mean"]
    assert run.results_json()["headline"]["universal_mean/mcfp"] == pytest.approx(mean)
