"""Training loop: learns separable data, is seeded, checkpoints on val accuracy, stops early."""

import numpy as np
import pytest
import torch

from core.config import HeadConfig, TrainConfig
from core.heads import build_head
from core.training import fit, make_scheduler, train_classifier


def _blobs(seed, n=300, k=4, d=12, noise=0.6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 2
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, d)) * noise).astype(np.float32), y


@pytest.fixture
def data():
    X, y = _blobs(0)
    return X[:200], y[:200], X[200:], y[200:]


def test_learns_blobs_and_reports_progress(data):
    seen = []
    res = train_classifier(
        build_head(12, 4, HeadConfig(width=32)),
        *data,
        config=TrainConfig(epochs=15, batch_size=32, patience=0),
        seed=0,
        progress=seen.append,
    )
    assert res.best_val_acc >= 0.95
    assert [p.epoch for p in seen] == list(range(1, 16))
    assert seen[-1].eta_s == 0 and all(p.samples_per_s > 0 for p in seen)
    assert len(res.history) == 15 and res.samples_per_s > 0


def test_same_seed_same_model(data):
    cfg = TrainConfig(epochs=3, batch_size=16)
    torch.manual_seed(0)
    a = train_classifier(build_head(12, 4, HeadConfig(width=16)), *data, config=cfg, seed=5)
    torch.manual_seed(0)
    b = train_classifier(build_head(12, 4, HeadConfig(width=16)), *data, config=cfg, seed=5)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_checkpoint_is_best_val_epoch_and_early_stop(data):
    X, y, Xv, yv = data
    res = train_classifier(
        build_head(12, 4, HeadConfig(width=16)),
        X,
        y,
        Xv,
        yv,
        config=TrainConfig(epochs=200, lr=0.05, patience=3, batch_size=64),
        seed=0,
    )
    accs = [h["val_acc"] for h in res.history]
    assert res.stopped_early and len(accs) < 200
    assert res.best_val_acc == max(accs) and accs[res.best_epoch - 1] == max(accs)
    final = (res.model(torch.from_numpy(Xv)).argmax(1).numpy() == yv).mean()
    assert final == pytest.approx(res.best_val_acc)


def test_sgd_and_step_schedule(data):
    cfg = TrainConfig(epochs=8, optimizer="sgd", lr=0.05, schedule="step", warmup_epochs=1)
    res = train_classifier(build_head(12, 4, HeadConfig(width=16)), *data, config=cfg, seed=1)
    assert res.best_val_acc > 0.8
    lrs = [h["lr"] for h in res.history]
    assert lrs[0] < lrs[1] and lrs[-1] == pytest.approx(0.05 * 0.01)


def test_cosine_schedule_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, TrainConfig(epochs=4, schedule="cosine"))
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 1.0 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.2


def test_bad_inputs(data):
    X, y, Xv, yv = data
    with pytest.raises(ValueError, match=r"y_train: labels must be in \[0, 4\)"):
        train_classifier(build_head(12, 4), X, y + 4, Xv, yv)
    with pytest.raises(ValueError, match="train: entry 1 has 5 rows"):
        fit(build_head(12, 4), (X, y[:5]), (Xv, yv), loss_fn=None, correct_fn=None)
