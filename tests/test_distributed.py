"""Distributed runs (core/distributed.py): the deterministic split, the gather and its timeout on
two gloo processes, and the pipeline under torchrun (2 CPU ranks) against a one-process run of
the same config: identical feature cache, cross-domain matrices and results; a killed rank fails
the run cleanly (status failed/cancelled, lock released, bounded time) and a rerun completes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from core import distributed as dist

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "assets" / "configs" / "tiny.yaml"


# ---------------------------------------------------------------------------- shard, launch_env


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 64, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("block", [1, 4, 16])
def test_shard_covers_every_index_once_in_order(n, world, block):
    parts = [dist.shard(n, r, world, block=block) for r in range(world)]
    assert np.array_equal(np.concatenate(parts), np.arange(n))  # all, once, in rank order
    for p in parts:
        assert p.dtype == np.int64 and (p.size == 0 or np.array_equal(p, np.arange(p[0], p[-1] + 1)))
        assert p.size == 0 or p[0] % block == 0  # batches as in one process
    sizes = [-(-p.size // block) for p in parts]  # blocks per rank differ by at most one
    assert max(sizes) - min(sizes) <= 1
    again = [dist.shard(n, r, world, block=block) for r in range(world)]
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_shard_uneven_and_fewer_items_than_ranks():
    assert [dist.shard(10, r, 3).tolist() for r in range(3)] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [dist.shard(2, r, 4).tolist() for r in range(4)] == [[0], [1], [], []]
    assert [dist.shard(10, r, 2, block=4).tolist() for r in range(2)] == [list(range(8)), [8, 9]]


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((-1, 0, 2), {}, "n must be an int >= 0"),
        ((5, 0, 0), {}, "world must be an int >= 1"),
        ((5, 2, 2), {}, "rank must be in 0..1"),
        ((5, -1, 2), {}, "rank must be an int >= 0"),
        ((5, 0, 2), {"block": 0}, "block must be an int >= 1"),
        ((5.0, 0, 2), {}, "n must be an int"),
        ((True, 0, 2), {}, "n must be an int"),
    ],
)
def test_shard_refuses_bad_arguments(args, kw, match):
    with pytest.raises(ValueError, match=match):
        dist.shard(*args, **kw)


def test_launch_env_reads_torchrun_variables():
    assert dist.launch_env({}) is None
    assert dist.launch_env({"WORLD_SIZE": "1", "RANK": "0"}) is None  # one process: nothing changes
    assert dist.launch_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == dist.Launch(3, 4, 1)
    with pytest.raises(ValueError, match=r"\$RANK must be an integer, got 'x'"):
        dist.launch_env({"WORLD_SIZE": "2", "RANK": "x"})
    with pytest.raises(ValueError, match=r"\$RANK 2 / \$LOCAL_RANK 0 do not fit \$WORLD_SIZE 2"):
        dist.launch_env({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match=r"\$RANK is not set"):
        dist.launch_env({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE must be >= 1, got 0"):
        dist.launch_env({"WORLD_SIZE": "0"})


def test_one_process_is_rank_zero_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not dist.launched()
    assert (dist.rank(), dist.world_size(), dist.is_main(), dist.tag()) == (0, 1, True, "")
    with pytest.raises(ValueError, match="not launched by torchrun"):
        dist.init("cpu")


# ---------------------------------------------------------------------------- two gloo processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(script: str, tmp_path: Path, extra_env: dict | None = None, timeout: float = 60) -> list:
    """Run ``script`` as ranks 0 and 1 of a gloo group (torchrun's variables, no agent)."""
    path = tmp_path / "rank_script.py"
    path.write_text(textwrap.dedent(script))
    port = _free_port()
    procs = []
    for r in range(2):
        env = {k: v for k, v in os.environ.items() if k != dist.TEST_EXIT_ENV}
        env.update(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   PYTHONPATH=str(REPO), **(extra_env or {}))  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, str(path)], env=env, cwd=REPO, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))  # fmt: skip
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, o, e))
    return out


@pytest.mark.slow
def test_gather_rows_in_rank_order_in_small_rounds(tmp_path):
    res = _two_ranks(
        """
        import numpy as np
        from core import distributed as d
        d.init("cpu")
        r = d.rank()
        for counts in ([5, 2], [3, 0], [0, 4], [0, 0]):
            local = (np.arange(counts[r] * 3, dtype=np.float32).reshape(-1, 3) + 100 * r)
            want = np.concatenate([np.arange(c * 3, dtype=np.float32).reshape(-1, 3) + 100 * i
                                   for i, c in enumerate(counts)])
            got = d.gather_rows(local, max_bytes=2 * 2 * 3 * 4)  # 2 rows a rank a round: several rounds
            assert (got is None) == (r == 1)
            assert r == 1 or np.array_equal(got, want), (counts, got)
            seen = {}
            d.gather_rows(local, write=lambda s, rows: seen.__setitem__(s, rows.copy()), max_bytes=24)
            if r == 0 and counts[1]:
                rows = np.concatenate([seen[k] for k in sorted(seen)])
                assert sorted(seen)[0] == counts[0] and np.array_equal(rows, want[counts[0]:])
        d.barrier()
        d.finish()
        print("ok", r)
        """,
        tmp_path,
    )
    for rc, out, err in res:
        assert rc == 0 and "ok" in out, err


@pytest.mark.slow
def test_dead_or_silent_peer_fails_a_collective_within_the_timeout(tmp_path):
    res = _two_ranks(
        """
        import time
        from core import distributed as d
        d.init("cpu")
        if d.rank() == 1:
            time.sleep(12)  # never joins the barrier in time
            raise SystemExit(0)
        t0 = time.monotonic()
        try:
            d.barrier()
        except RuntimeError as exc:
            print(f"raised after {time.monotonic() - t0:.1f}s: {exc}")
            raise SystemExit(5)
        """,
        tmp_path,
        {dist.TIMEOUT_ENV: "3"},
    )
    rc, out, err = res[0]
    assert rc == 5, (out, err)
    assert "[rank 0/2] barrier failed" in out
    assert float(out.split("raised after ")[1].split("s")[0]) < 10


# ---------------------------------------------------------------------------- the pipeline under torchrun


def _small_cfg() -> dict:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["name"] = "dist"
    cfg["domains"].update(n_train=16, n_val=6, n_test=8)
    cfg["domains"]["synthetic"].update(n_domains=2, shifts=["none", "A"])  # a shift is seeded per image index
    cfg["features"]["batch_size"] = 16  # several batches per split, uneven parts
    cfg["baselines"]["train"] = {"epochs": 4, "batch_size": 32, "lr": 0.003, "patience": 4}
    return cfg


def _torchrun(cfg_path: Path, out: Path, cache: Path, *, extra_env: dict | None = None, timeout: float = 300):
    env = dict(os.environ, UNITAX_CACHE=str(cache), OMP_NUM_THREADS="1", **(extra_env or {}))
    if not extra_env:
        env.pop(dist.TEST_EXIT_ENV, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "core", "run", "--config", str(cfg_path), "--out", str(out)]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - t0


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The small config run in one process (its own feature cache); (cfg path, run dir, seconds)."""
    base = tmp_path_factory.mktemp("dist")
    cfg_path = base / "dist.yaml"
    cfg_path.write_text(yaml.safe_dump(_small_cfg()))
    # one intra-op thread, as torchrun gives each rank: a partial batch's features depend on it
    env = dict(os.environ, UNITAX_CACHE=str(base / "cache1"), OMP_NUM_THREADS="1")
    env.pop(dist.TEST_EXIT_ENV, None)
    env.pop("WORLD_SIZE", None)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "core", "run", "--config", str(cfg_path), "--out", str(base / "one")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return base, cfg_path, base / "one", time.monotonic() - t0


def _features_of(cache: Path) -> dict:
    return {p.name: np.load(p) for p in sorted(cache.glob("*.npy"))}


def _assert_same_run(a: Path, b: Path) -> None:
    for name in ("matrices.npz", "predictions.npz"):
        with np.load(a / "crossdomain" / name) as x, np.load(b / "crossdomain" / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                assert np.array_equal(x[k], y[k]), (name, k)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    ra.pop("timings_s", None), rb.pop("timings_s", None)
    assert ra == rb
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()


@pytest.mark.slow
def test_two_ranks_give_the_one_process_run(one_process):
    base, cfg_path, one, t_one = one_process
    proc, t_two = _torchrun(cfg_path, base / "two", base / "cache2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = [json.loads((d / "timings.json").read_text())["features"] for d in (one, base / "two")]
    print(f"one process {t_one:.1f}s, two ranks {t_two:.1f}s; features step {step[0]:.1f}s vs {step[1]:.1f}s")
    f1, f2 = _features_of(base / "cache1"), _features_of(base / "cache2")
    assert f1.keys() == f2.keys() and len(f1) == 6
    assert all(np.array_equal(f1[k], f2[k]) for k in f1)  # bit for bit
    _assert_same_run(one, base / "two")
    status = json.loads((base / "two" / "status.json").read_text())
    assert status["state"] == "done"
    assert json.loads((base / "two" / "environment.json").read_text())["world_size"] == 2
    err = proc.stderr + proc.stdout
    assert "[rank 1/2] released after 6 split(s)" in err and "[rank 0/2] " in err


@pytest.mark.slow
def test_killed_rank_fails_the_run_cleanly_and_a_rerun_completes(one_process):
    from core.runs import RunLock

    base, cfg_path, one, _ = one_process
    run = base / "killed"
    proc, took = _torchrun(cfg_path, run, base / "cache3", extra_env={dist.TEST_EXIT_ENV: "1"})
    assert proc.returncode != 0
    assert took < 240  # not the collectives' 1800 s timeout: the dead peer is noticed at once
    status = json.loads((run / "status.json").read_text())
    assert status["state"] in ("failed", "cancelled"), status
    assert status["steps_done"] == ["domains"] and status["pid"] is None
    with RunLock(run, purpose="test", wait_s=0.5):  # the lock is free again
        pass
    assert not list((base / "cache3").glob("*.npy"))  # no half-gathered cache entry
    proc, _ = _torchrun(cfg_path, run, base / "cache3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    _assert_same_run(one, run)


@pytest.mark.slow  # imports torch (the device choice): seconds
@pytest.mark.parametrize(("exc", "state"), [("cancel", "cancelled"), ("crash", "failed")])
def test_an_error_escaping_a_started_run_never_leaves_it_running(monkeypatch, tmp_path, exc, state):
    """torchrun's agent signals every rank at once: a second signal while the final status is
    written escapes _execute; the status must still end failed/cancelled and the lock be free."""
    from core import pipeline
    from core.runs import RunLock, read_status

    def escaping(ctx, keep, todo, warnings):
        ctx.run.write_status(state="running", step="domains", pid=os.getpid(), message="starting")
        raise pipeline.Cancelled("received SIGTERM") if exc == "cancel" else RuntimeError("gather broke")

    monkeypatch.setattr(pipeline, "_execute", escaping)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    run = tmp_path / "run"
    if exc == "cancel":
        assert pipeline.run_pipeline(yaml.safe_load(TINY.read_text()), run)["state"] == "cancelled"
    else:
        with pytest.raises(RuntimeError, match="gather broke"):
            pipeline.run_pipeline(yaml.safe_load(TINY.read_text()), run)
    status = read_status(run)
    assert status["state"] == state and status["pid"] is None
    assert state == "cancelled" or status["error"] == "RuntimeError: gather broke"
    with RunLock(run, purpose="test", wait_s=0.5):
        pass


@pytest.mark.parametrize("raw", ["inf", "1e30", "nan", "0", "-1", "junk"])
def test_a_bad_timeout_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(dist.TIMEOUT_ENV, raw)
    with pytest.raises(ValueError, match=r"\$UNITAX_DIST_TIMEOUT must be a number of seconds"):
        dist._timeout()
