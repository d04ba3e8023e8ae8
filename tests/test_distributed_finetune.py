"""Distributed fine-tuning (core.finetune under torchrun, core.distributed): the partition of a
global training batch and its loss weights, the whole-batch crops, DistributedDataParallel on two
gloo processes against one process (uneven parts), and the fine-tuning pipeline under torchrun
(2 CPU ranks) against a one-process run: exact where the math allows (batches that one rank
holds whole; sharded prediction passes), a killed rank fails the run cleanly.

Exactness: a global batch split over ranks gives the mean gradient of the whole batch, but
BatchNorm in train mode then normalises each rank's part with its own statistics (no
SyncBatchNorm on CPU), so a network with BatchNorm trained on split batches is another, equally
valid training, not the one-process weights. Without BatchNorm the weights agree to float
rounding (1e-6 here); a batch one rank holds whole (batch_size 2 on 2 ranks) gives bit for bit
the one-process network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core import distributed as dist
from tests.test_distributed import _free_port as free_port
from tests.test_distributed import _two_ranks as two_ranks

REPO = Path(__file__).resolve().parent.parent
TINY_FINETUNE = REPO / "assets" / "configs" / "tiny-finetune.yaml"


# ---------------------------------------------------------------------------- the batch partition


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 7, 16, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_batch_part_takes_every_row_once_with_two_or_more_a_rank(n, world):
    parts = [dist.batch_part(n, r, world) for r in range(world)]
    assert np.array_equal(np.concatenate(parts), np.arange(n))  # every sample once, in order
    sizes = [p.size for p in parts]
    assert all(s == 0 or s >= 2 for s in sizes) or n < 2  # BatchNorm in train mode needs two
    active = [s for s in sizes if s]
    assert not active or max(active) - min(active) <= 1  # as even as it can be
    assert sizes[0] == n if n < 4 else sizes.count(0) == max(0, world - n // 2)


def test_batch_part_examples():
    assert [dist.batch_part(5, r, 2).tolist() for r in range(2)] == [[0, 1, 2], [3, 4]]
    assert [dist.batch_part(3, r, 2).tolist() for r in range(2)] == [[0, 1, 2], []]
    assert [dist.batch_part(2, r, 3).tolist() for r in range(3)] == [[0, 1], [], []]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 2), "n must be an int >= 0, got -1"),
        ((4, 0, 0), "world must be an int >= 1, got 0"),
        ((4, 2, 2), r"rank must be in 0\.\.1, got 2"),
        ((4, -1, 2), "rank must be an int >= 0, got -1"),
        ((4.0, 0, 2), "n must be an int >= 0, got 4.0"),
        ((4, True, 2), "rank must be an int >= 0, got True"),
    ],
)
def test_batch_part_refuses_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        dist.batch_part(*args)


def test_part_weights_make_the_mean_of_scaled_means_the_batch_mean():
    rng = np.random.default_rng(0)
    for counts in ([3, 2], [5, 0], [2, 2, 3], [1, 7, 0, 4], [4]):
        losses = [rng.normal(size=c) for c in counts]  # per-sample losses (or gradients) of each rank
        w = dist.part_weights(np.array(counts))
        assert w.shape == (len(counts),) and w.dtype == np.float64
        ddp = np.mean([wi * (x.mean() if x.size else 0.0) for wi, x in zip(w, losses)])  # DDP averages ranks
        assert ddp == pytest.approx(np.concatenate(losses).mean(), rel=1e-12)
    assert dist.part_weights(np.array([2, 0])).tolist() == [2.0, 0.0]  # a whole batch on one rank: exact
    naive = np.mean([x.mean() for x in (np.ones(3), np.zeros(2))])  # unweighted: 0.5, not 0.6
    assert naive != pytest.approx(np.concatenate([np.ones(3), np.zeros(2)]).mean())


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        (np.array([2, -1]), r"counts must be >= 0, got \[2, -1\]"),
        (np.array([0, 0]), r"at least one sample, got \[0, 0\]"),
        (np.array([1.5, 2.0]), "counts must be a non-empty 1-D array of ints, got float64"),
        (np.zeros((0,), np.int64), r"non-empty 1-D array of ints, got int64 \(0,\)"),
        (np.ones((2, 2), np.int64), r"non-empty 1-D array of ints, got int64 \(2, 2\)"),
    ],
)
def test_part_weights_refuse_bad_counts(counts, match):
    with pytest.raises(ValueError, match=match):
        dist.part_weights(counts)


def test_epoch_batches_parts_cover_each_global_batch_once():
    from core.finetune import _EpochBatches

    world = 3
    whole = _EpochBatches(23, 7, shuffle=True, seed=4)
    parts = [_EpochBatches(23, 7, shuffle=True, seed=4, part=(r, world)) for r in range(world)]
    firsts = []
    for epoch in (1, 2):
        for s in [whole, *parts]:
            s.epoch = epoch
        g = whole.global_batches()
        firsts.append(g[0].tolist())
        assert [b.tolist() for b in g] == [b.tolist() for b in whole.batches()]  # one process: unchanged
        assert sorted(np.concatenate(g).tolist()) == list(range(23))
        assert all(len(p) == len(g) for p in parts)  # every rank takes every step
        for i, rows in enumerate(g):
            keys = [list(iter(p))[i] for p in parts]
            assert all(k[:2] == (epoch, i) for k in keys)
            assert np.array_equal(np.concatenate([k[2] for k in keys]), rows)  # the global batch, once, in order
    assert firsts[0] != firsts[1]  # shuffled anew every epoch


def test_eval_rows_keep_the_one_process_batches():
    from core.finetune import _EpochBatches

    n, bs = 11, 4
    one = [b.tolist() for b in _EpochBatches(n, bs, shuffle=False).batches()]
    ranks = [_EpochBatches(n, bs, shuffle=False, rows=dist.shard(n, r, 2, block=bs)).batches() for r in range(2)]
    assert [b.tolist() for part in ranks for b in part] == one
    with pytest.raises(ValueError, match="rows is for passes in order"):
        _EpochBatches(n, bs, shuffle=True, rows=np.arange(3))


def test_crops_drawn_for_the_whole_batch_match_one_process():
    """A rank's rows cropped with their slice of the batch's draws = those rows of the one-process crop."""
    from core.finetune import _crop_theta, _warp, random_resized_crop

    x = torch.rand(7, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    whole = random_resized_crop(x, size=16, scale=(0.3, 1.0), generator=torch.Generator().manual_seed(5))
    theta = _crop_theta(7, 20, 24, (0.3, 1.0), (3 / 4, 4 / 3), True, torch.Generator().manual_seed(5))
    for rows in ([0, 1, 2, 3], [4, 5, 6]):
        idx = torch.tensor(rows)
        assert torch.equal(_warp(x[idx], theta[idx], 16), whole[idx])


def test_objective_specs_rebuild_the_objective():
    from core.finetune import classifier_objective, objective_from_spec, universal_objective

    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    dom, y = torch.zeros(5, dtype=torch.long), torch.tensor([0, 1, 1, 0, 1])
    c = classifier_objective()
    assert torch.equal(objective_from_spec(c.spec).loss(z, dom, y), c.loss(z, dom, y))
    M = [np.array([[1.0, 0, 0], [0, 1, 1]]), np.array([[0, 0, 1.0]])]
    u = universal_objective(M, label_smoothing=0.1)
    again = objective_from_spec(u.spec)
    assert torch.equal(again.loss(z, dom, y), u.loss(z, dom, y))
    assert torch.equal(again.correct(z, dom, y), u.correct(z, dom, y))
    with pytest.raises(ValueError, match="kind 'classifier' or 'universal', got {'kind': 'x'}"):
        objective_from_spec({"kind": "x"})


def test_one_process_step_plan_skips_batches_without_two_readable_images():
    from core.finetune import _step_counts

    ok = np.array([True, False, True])
    readable, counts = _step_counts(ok, 3, False)
    assert readable.tolist() == ok.tolist() and counts.tolist() == [2]
    assert _step_counts(np.array([False, True]), 2, False)[1].tolist() == [0]


def test_step_plan_on_two_ranks_drops_a_lone_readable_image(monkeypatch):
    """Batch of 5 on 2 ranks (rows 0-2 and 3-4): rank 1's row 4 is unreadable, so its part holds
    one readable image, which BatchNorm cannot train on: rank 0's three images are the step."""
    from core.finetune import _step_counts

    others = {0: np.array([0, 0, 0, 1, 0]), 1: np.array([1, 0, 1, 0, 0])}  # the other rank's flags
    for me, ok in ((0, np.array([True, False, True])), (1, np.array([True, False]))):
        monkeypatch.setattr(dist, "world_size", lambda: 2)
        monkeypatch.setattr(dist, "rank", lambda me=me: me)
        monkeypatch.setattr(dist, "all_sum_ints", lambda mask, me=me: mask + others[me])
        readable, counts = _step_counts(ok, 5, True)
        assert readable.tolist() == [True, False, True, True, False]  # the same plan on both ranks
        assert counts.tolist() == [2, 0]
        assert dist.part_weights(counts).tolist() == [2.0, 0.0]


# ---------------------------------------------------------------------------- two gloo processes


def _two_ranks(script: str, tmp_path: Path, timeout: float = 120) -> list:
    """``script`` as ranks 0 and 1 of a gloo group, one thread each (tests.test_distributed)."""
    return two_ranks(script, tmp_path, {"OMP_NUM_THREADS": "1"}, timeout=timeout)


@pytest.mark.slow
def test_ddp_on_uneven_parts_gives_the_one_process_weights(tmp_path):
    """Batches of 5 on 2 ranks (parts of 3 and 2): without BatchNorm the trained weights are the
    one-process weights to float rounding; unweighted parts (plain DDP mean) are not; with
    BatchNorm both ranks still end with the same weights, bit for bit."""
    res = _two_ranks(
        """
        import json
        import numpy as np, torch
        from torch import nn
        from core import distributed as d
        from core.backbones import Backbone
        from core.config import HeadConfig, TrainConfig
        from core.finetune import FinetunedNet, _finetune, classifier_objective
        from core.heads import build_head
        from core.sources import load_source

        torch.set_num_threads(1)

        def tiny(bn):
            torch.manual_seed(0)
            layers = [nn.Conv2d(3, 8, 3, stride=2, padding=1), *([nn.BatchNorm2d(8)] if bn else []), nn.ReLU(),
                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            bb = Backbone("tiny", nn.Sequential(*layers), 16, (0.5,) * 3, (0.5,) * 3, pool="plain")
            bb.net.requires_grad_(True)
            return FinetunedNet(bb, build_head(16, 4, HeadConfig(depth=2, width=16, dropout=0.0)))

        def diff(a, b):
            return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

        sp = load_source("procedural", seed=3, n_concepts=4, per_class=(6, 3, 2)).splits
        cfg = TrainConfig(epochs=2, batch_size=5, optimizer="sgd", lr=0.05, momentum=0.9, schedule="none",
                          checkpoint="val_acc")
        kw = dict(config=cfg, image_size=16, crop_scale=(0.8, 1.0), flip=True, seed=1, device="cpu",
                  progress=None, on_batch=None, workers=0)
        run = lambda net, group: _finetune(net, [sp["train"]], [sp["val"]], classifier_objective(), group=group, **kw)
        one = run(tiny(False), False)
        d.init("cpu")
        two = run(tiny(False), True)
        out = {"diff": diff(one.model, two.model), "hist_one": one.history, "hist_two": two.history}
        weights = d.part_weights
        d.part_weights = lambda counts: np.ones(len(counts))  # plain DDP: every part weighs the same
        out["naive"] = diff(one.model, run(tiny(False), True).model)
        d.part_weights = weights
        bn = run(tiny(True), True).model
        gathered = d.gather_rows(torch.cat([v.reshape(-1).float() for v in bn.state_dict().values()])[None].numpy())
        if d.rank() == 0:
            out["bn_ranks_differ"] = float(np.abs(gathered[0] - gathered[1]).max())
            print(json.dumps(out, default=float))
        d.finish()
        """,
        tmp_path,
    )
    for rc, _, err in res:
        assert rc == 0, err[-3000:]
    out = json.loads(res[0][1].strip().splitlines()[-1])
    print(f"max weight difference to one process: {out['diff']:.2e} (unweighted parts: {out['naive']:.2e})")
    assert out["diff"] < 1e-6, out["diff"]
    assert out["naive"] > 1e-4, out["naive"]  # the weighting matters: the test can fail
    assert out["bn_ranks_differ"] == 0.0
    for h1, h2 in zip(out["hist_one"], out["hist_two"]):
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-6)
        assert (h1["val_loss"], h1["val_acc"]) == pytest.approx((h2["val_loss"], h2["val_acc"]), rel=1e-6)


# ---------------------------------------------------------------------------- the pipeline under torchrun


def _cfg() -> dict:
    """tiny-finetune with one epoch a network: baselines in batches of 2 (one rank holds each
    batch whole: exactly one process's training), the universal network in batches of 16 (split
    over the ranks), prediction passes in batches of 2 (shared by both ranks)."""
    cfg = yaml.safe_load(TINY_FINETUNE.read_text())
    cfg["name"] = "dist-ft"
    cfg["features"]["batch_size"] = 2
    cfg["baselines"]["train"].update(epochs=1, batch_size=2)
    cfg["universal"]["train"].update(epochs=1, batch_size=16)
    return cfg


def _env(cache: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ, UNITAX_CACHE=str(cache), OMP_NUM_THREADS="1", **(extra or {}))
    if not extra:
        env.pop(dist.TEST_EXIT_ENV, None)
    return env


def _one(cfg_path: Path, out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    env = _env(cache)
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "core", "run", "--config", str(cfg_path), "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _torchrun(cfg_path: Path, out: Path, cache: Path, extra_env: dict | None = None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "core", "run", "--config", str(cfg_path), "--out", str(out)]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=_env(cache, extra_env), capture_output=True, text=True, timeout=300)
    return proc, time.monotonic() - t0


def _npz_equal(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            assert np.array_equal(x[k], y[k]), (a.name, k)


def _results(run: Path) -> dict:
    r = json.loads((run / "results.json").read_text())
    r.pop("timings_s", None)
    return r


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    base = tmp_path_factory.mktemp("dist-ft")
    cfg_path = base / "ft.yaml"
    cfg_path.write_text(yaml.safe_dump(_cfg()))
    proc = _one(cfg_path, base / "one", base / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base, cfg_path, base / "one"


@pytest.mark.slow
def test_two_ranks_fine_tune_as_one_process(one_process):
    import torch as t

    base, cfg_path, one = one_process
    two = base / "two"
    proc, took = _torchrun(cfg_path, two, base / "cache")
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((two / "status.json").read_text())
    assert status["state"] == "done" and json.loads((two / "environment.json").read_text())["world_size"] == 2
    err = proc.stderr + proc.stdout
    assert "[rank 1/2] fine-tuned efficientnet_lite0 with rank 0" in err and "[rank 1/2] released after" in err
    # baselines in whole batches: the one-process networks, bit for bit; the sharded cross-domain
    # predictions of every pair and the relationships built on them: identical
    for a in (0, 1):
        w1, w2 = (t.load(r / "baselines" / f"domain_{a}.pt", weights_only=False)["state_dict"] for r in (one, two))
        assert all(t.equal(w1[k], w2[k]) for k in w1)
    for name in ("matrices.npz", "predictions.npz"):
        _npz_equal(one / "crossdomain" / name, two / "crossdomain" / name)
    _npz_equal(one / "taxonomy" / "mcfp" / "relationships.npz", two / "taxonomy" / "mcfp" / "relationships.npz")
    m1, m2 = (json.loads((r / "baselines" / "metrics.json").read_text()) for r in (one, two))
    for name in m1:
        assert m1[name]["test_acc"] == m2[name]["test_acc"] and m1[name]["val_acc"] == m2[name]["val_acc"]
    # the universal network trained on split batches (BatchNorm per rank): a network of the same
    # shape and a full results table; its test evaluation and embedding, sharded over the ranks,
    # are exactly what one process computes from the same networks (results rerun in one process)
    r2 = _results(two)
    assert r2.keys() == _results(one).keys() and r2["protocol"] == "finetune"
    assert all(np.isfinite(row["universal/mcfp"]) for row in r2["table"])
    again = base / "again"
    shutil.copytree(two, again)
    proc = _one(cfg_path, again, base / "cache", "--from", "results")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _results(again) == r2
    assert (again / "results.csv").read_text() == (two / "results.csv").read_text()
    _npz_equal(again / "embedding.npz", two / "embedding.npz")
    print(f"two ranks: {took:.1f}s")


@pytest.mark.slow
def test_a_killed_rank_fails_the_fine_tuning_run_cleanly(one_process):
    from core.runs import RunLock

    base, cfg_path, _ = one_process
    run = base / "killed"
    proc, took = _torchrun(cfg_path, run, base / "cache", {dist.TEST_EXIT_ENV: "1"})
    assert proc.returncode != 0
    assert took < 120  # the dead peer is noticed at once, not after the collectives' timeout
    status = json.loads((run / "status.json").read_text())
    assert status["state"] in ("failed", "cancelled"), status
    assert status["steps_done"] == ["domains", "features"] and status["pid"] is None
    assert not (run / "baselines" / "domain_0.pt").exists()
    with RunLock(run, purpose="test", wait_s=0.5):  # the lock is free again
        pass
