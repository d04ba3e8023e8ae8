"""Runs on many processes, GPUs and hosts, launched by torchrun (torch.distributed, nothing home-made).

    torchrun --nproc_per_node=N [--nnodes M --rdzv_backend c10d --rdzv_endpoint HOST:PORT] \\
        -m core run --config C.yaml --out RUN

What is shared across ranks: the backbone passes. Frozen protocol: every split whose features
are not cached is cut into contiguous, batch-aligned parts (:func:`shard`), each rank forwards
its part, and rank 0 gathers the rows in order (:func:`gather_rows`) and writes the feature
cache: the same rows, the same batches and the same unreadable-image indices as a one-process
run. Fine-tuning (``features.mode: finetune``, :mod:`core.finetune`): every network is trained
with DistributedDataParallel, each rank taking its part of every global batch
(:func:`batch_part`, losses weighted by :func:`part_weights`), and every prediction pass
(validation, cross-domain, test, the embedding's features) is sharded like the features.
Rank 0 alone writes the run folder (lock, status, log, every step); the other ranks build the
domains in memory (deterministic from the config), serve rank 0's requests (:func:`serve`:
feature parts, fine-tuning, a network's weights, prediction parts; never a file of the run) and
leave once rank 0 releases them (:func:`release`: after the features step, or at the end of a
fine-tuning run). Every collective has a finite timeout (``$UNITAX_DIST_TIMEOUT`` seconds,
default 1800; the serving ranks also wait that long for rank 0's next request, e.g. while it
selects relationships), so a dead peer never hangs the others: the collective fails, the rank
exits non-zero and torchrun's agent stops the rest; rank 0 records the run as failed or cancelled.

    launch_env() -> Launch | None      torchrun's RANK / WORLD_SIZE / LOCAL_RANK (None: one process)
    launched() -> bool; init(device) -> device; finish(); barrier()
    rank(), world_size(), is_main(), tag() -> "[rank r/W] ", log(message)
    shard(n, rank, world, *, block=1) -> indices (m,)        deterministic contiguous part
    batch_part(n, rank, world) -> positions (m,)             a rank's part of a training batch
    part_weights(counts (W,)) -> (W,) float64                loss factors: DDP's mean = the batch mean
    gather_rows(local (m_r, D), *, dst=0, write=None) -> (sum m_r, D) float32 on dst, None elsewhere
    sharding()  context manager (rank 0): backbone passes are shared while it is open
    leading() -> bool; request(cmd); guard()                 rank 0's side of a shared pass
    all_sum(values (k,)) -> (k,) float64; all_sum_ints(x (k,)) -> (k,) int64
    broadcast_state(module, *, buffers_only=False); split_id(split) -> tuple
    compute_shared(fn, split, model, **kwargs) -> (features, failed, images/s)
    serve(cfg, device) -> int; release()

Bit-identical features need the same intra-op thread count per process as the one-process run
(torchrun sets OMP_NUM_THREADS=1): a partial batch's features can differ in the last bits.

Test-only hook: ``$UNITAX_TEST_DIST_EXIT=R`` makes rank R leave with ``os._exit(3)`` when it starts
its first part of a split, of a fine-tuning or of a prediction pass (simulates a killed rank;
tests/test_distributed.py, tests/test_distributed_finetune.py).

Imports torch only inside the functions that need it (a process group, a gather).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

__all__ = [
    "Launch",
    "launch_env",
    "launched",
    "init",
    "finish",
    "barrier",
    "rank",
    "world_size",
    "is_main",
    "tag",
    "log",
    "shard",
    "batch_part",
    "part_weights",
    "gather_rows",
    "leading",
    "request",
    "guard",
    "all_sum",
    "all_sum_ints",
    "broadcast_state",
    "split_id",
    "served",
    "set_served",
    "test_exit_hook",
    "sharding",
    "compute_shared",
    "serve",
    "release",
    "TIMEOUT_ENV",
    "TEST_EXIT_ENV",
    "DEFAULT_TIMEOUT_S",
]

TIMEOUT_ENV = "UNITAX_DIST_TIMEOUT"
TEST_EXIT_ENV = "UNITAX_TEST_DIST_EXIT"
DEFAULT_TIMEOUT_S = 1800.0
_GATHER_BYTES = 128 << 20  # what the gathering rank receives per round, at most


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int


def _env_int(environ, name: str, default: int | None = None) -> int:
    raw = environ.get(name)
    if raw is None:
        if default is None:
            raise ValueError(f"${name} is not set but $WORLD_SIZE is: launch with torchrun")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {raw!r}") from None


def launch_env(environ=None) -> Launch | None:
    """torchrun's RANK, WORLD_SIZE and LOCAL_RANK; None when this is one process (no WORLD_SIZE, or 1)."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    world = _env_int(environ, "WORLD_SIZE")
    if world < 1:
        raise ValueError(f"$WORLD_SIZE must be >= 1, got {world}")
    if world == 1:
        return None
    r, local = _env_int(environ, "RANK"), _env_int(environ, "LOCAL_RANK", 0)
    if not 0 <= r < world or local < 0:
        raise ValueError(f"$RANK {r} / $LOCAL_RANK {local} do not fit $WORLD_SIZE {world}")
    return Launch(r, world, local)


def launched() -> bool:
    """True in a process started by torchrun with more than one rank."""
    return launch_env() is not None


class _State:
    """This process's place in the group (one per process)."""

    def __init__(self) -> None:
        self.launch: Launch | None = None
        self.device: Any = None  # the rank's torch.device (the backbone's)
        self.comm: Any = None  # where collectives' tensors live: the GPU under nccl, else the CPU
        self.sharding = False  # rank 0: feature extraction is shared with the other ranks
        self.broken = False  # a collective failed: no further collective is attempted
        self.served: Any = None  # rank 0: the network the other ranks hold (core.finetune), and its mark
        self.served_mark: Any = None


_S = _State()


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        seconds = DEFAULT_TIMEOUT_S if raw is None else float(raw)
    except ValueError:
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if not 0 < seconds <= 10**8:  # inf, nan and absurd values would overflow torch's timeout
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds in (0, 1e8], got {raw!r}")
    return timedelta(seconds=seconds)


def init(device=None):
    """Join torchrun's process group: nccl on CUDA (device ``cuda:LOCAL_RANK``), gloo otherwise.

    ``device`` is the run's device choice (a torch.device or name; None = cpu). Returns this
    rank's device. ValueError when the process was not launched by torchrun with > 1 rank.
    """
    launch = launch_env()
    if launch is None:
        raise ValueError("not launched by torchrun with more than one process ($WORLD_SIZE unset or 1)")
    import torch
    import torch.distributed as dist

    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda":
        dev = torch.device("cuda", launch.local_rank)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_timeout())
    _S.launch, _S.device, _S.broken = launch, dev, False
    _S.comm = dev if backend == "nccl" else torch.device("cpu")
    log(f"joined: backend {backend}, device {dev}")
    return dev


def finish() -> None:
    """Leave the process group (safe to call twice or when none was joined)."""
    import torch.distributed as dist

    _S.sharding = False
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _S.launch = None


def _group_ready() -> bool:
    return _S.launch is not None


def rank() -> int:
    """This process's rank (0 in one process)."""
    return _S.launch.rank if _S.launch else 0


def world_size() -> int:
    """Number of ranks (1 in one process)."""
    return _S.launch.world_size if _S.launch else 1


def is_main() -> bool:
    """True on rank 0 (and in one process): the rank that writes files."""
    return rank() == 0


def tag() -> str:
    """``"[rank r/W] "`` in a group, ``""`` in one process: the prefix of every log line."""
    return f"[rank {rank()}/{world_size()}] " if _S.launch else ""


def log(message: str) -> None:
    """One log line on stderr, prefixed with the rank."""
    print(f"{tag()}{message}", file=sys.stderr, flush=True)


def _collective(what: str, fn, *args, **kwargs):
    """Run one collective; a failure (dead peer, timeout) marks the group broken and raises a
    RuntimeError naming the rank and the collective."""
    if _S.broken:
        raise RuntimeError(f"{tag()}{what}: an earlier collective failed; the process group is unusable")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - gloo/nccl raise RuntimeError subclasses
        _S.broken = True
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(f"{tag()}{what} failed (a rank died or timed out): {text}") from exc


def barrier() -> None:
    """Wait for every rank (bounded by the group's timeout)."""
    import torch.distributed as dist

    if _group_ready():
        _collective("barrier", dist.barrier)


# ---------------------------------------------------------------------------- sharding


def shard(n: int, rank: int, world: int, *, block: int = 1) -> np.ndarray:
    """Indices (m,) int64 of rank ``rank``'s contiguous part of ``range(n)``, in ``world`` parts.

    The ``ceil(n / block)`` blocks of ``block`` consecutive indices are dealt in contiguous runs;
    the first ``blocks % world`` ranks get one block more. Deterministic; the parts of ranks
    0..world-1 concatenate to ``range(n)``; a rank may get nothing when there are fewer blocks
    than ranks. ``block`` = the batch size keeps every batch as in a one-process pass.
    """
    for name, v, low in (("n", n, 0), ("world", world, 1), ("block", block, 1), ("rank", rank, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if rank >= world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank!r}")
    blocks = -(-int(n) // int(block))
    base, extra = divmod(blocks, int(world))
    first = rank * base + min(rank, extra)
    count = base + (1 if rank < extra else 0)
    return np.arange(first * block, min((first + count) * block, n), dtype=np.int64)


def batch_part(n: int, rank: int, world: int) -> np.ndarray:
    """Positions (m,) int64 of rank ``rank``'s part of a global training batch of ``n`` rows.

    Contiguous parts of at least two rows (BatchNorm in train mode needs two): the first
    ``max(1, min(world, n // 2))`` ranks share the batch as :func:`shard` deals it, the others get
    nothing (they still join the step with a zero-weighted loss). The parts of ranks
    0..world-1 concatenate to ``range(n)``: every row of the batch once, in order.
    """
    for name, v, low in (("n", n, 0), ("world", world, 1), ("rank", rank, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if rank >= world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank!r}")
    active = max(1, min(int(world), int(n) // 2))
    if rank >= active:
        return np.zeros(0, dtype=np.int64)
    return shard(int(n), int(rank), active)


def part_weights(counts) -> np.ndarray:
    """Loss factors (W,) float64 of ranks holding ``counts`` (W,) samples of one global batch:
    ``W * c_r / sum(c)``. DistributedDataParallel averages the ranks' gradients, so with each
    rank's mean loss scaled by its factor the step's gradient is the mean over the whole batch
    (uneven parts weighted by their sizes; a rank with no samples adds zero)."""
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"counts must be a non-empty 1-D array of ints, got {c.dtype} {c.shape}")
    if (c < 0).any():
        raise ValueError(f"counts must be >= 0, got {c.tolist()}")
    total = int(c.sum())
    if total == 0:
        raise ValueError(f"counts must hold at least one sample, got {c.tolist()}")
    return c.size * c.astype(np.float64) / total


def gather_rows(
    local: np.ndarray,
    *,
    dst: int = 0,
    write: Callable[[int, np.ndarray], None] | None = None,
    max_bytes: int = _GATHER_BYTES,
) -> np.ndarray | None:
    """Every rank's rows (m_r, D), in rank order, on rank ``dst``.

    Without ``write``: the concatenation (sum m_r, D) on ``dst``, None elsewhere. With ``write``:
    ``dst`` calls ``write(start, rows)`` for the rows of every other rank (``start`` = their
    position in the concatenation; its own rows it has placed itself) and gets None. ``dst``
    receives at most ``max_bytes`` per round (float32), and ``local`` is read one round at a
    time (a map stays on disk). Ranks may hold different numbers of rows (0 included); D must agree
    (ValueError naming the widths).
    """
    import torch
    import torch.distributed as dist

    if local.ndim != 2:
        raise ValueError(f"local rows must be 2-D (m, D), got shape {local.shape}")
    if not _group_ready():
        return None if write is not None else np.array(local)
    W, me, dev = world_size(), rank(), _S.comm
    dims = torch.tensor([local.shape[0], local.shape[1]], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(dims) for _ in range(W)]
    _collective("gather_rows (sizes)", dist.all_gather, sizes, dims)
    counts, widths = zip(*[tuple(int(v) for v in s.cpu()) for s in sizes])
    if len(set(widths)) != 1:
        raise ValueError(f"ranks hold rows of different widths: {list(widths)}")
    D = widths[0]
    chunk = max(1, int(max_bytes) // max(1, D * 4 * W))
    rounds = -(-max(counts) // chunk)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = None
    if me == dst and write is None:
        out = np.empty((int(starts[-1]), D), dtype=np.float32)
        out[starts[me] : starts[me + 1]] = local
    for i in range(rounds):
        lo = i * chunk
        buf = torch.zeros((chunk, D), dtype=torch.float32, device=dev)
        if me != dst or write is None:  # dst's own rows stay where they are
            part = np.asarray(local[lo : lo + chunk], dtype=np.float32)
            buf[: len(part)] = torch.from_numpy(part).to(dev)
        bufs = [torch.empty_like(buf) for _ in range(W)] if me == dst else None
        _collective("gather_rows", dist.gather, buf, bufs, dst=dst)
        if me != dst:
            continue
        for r, b in enumerate(bufs):
            take = max(0, min(chunk, counts[r] - lo))
            if r == me or not take:
                continue
            rows = b[:take].cpu().numpy()
            if write is None:
                out[starts[r] + lo : starts[r] + lo + take] = rows
            else:
                write(int(starts[r] + lo), rows)
    return out


def _gather_objects(obj, dst: int = 0) -> list | None:
    import torch.distributed as dist

    got = [None] * world_size() if rank() == dst else None
    _collective("gather_object", dist.gather_object, obj, got, dst=dst)
    return got


def _broadcast(obj=None):
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    box = [obj]
    _collective("broadcast", dist.broadcast_object_list, box, src=0)
    return box[0]


def leading() -> bool:
    """Rank 0 while :func:`sharding` is open and the group is usable: backbone passes are shared."""
    return _S.sharding and not _S.broken


def request(cmd: dict) -> None:
    """Rank 0: send ``cmd`` (a dict with an ``"op"``) to the ranks in :func:`serve`."""
    if not leading():
        raise ValueError(f"only rank 0 inside sharding() sends requests (rank {rank()}, op {cmd.get('op')!r})")
    _broadcast(cmd)


@contextlib.contextmanager
def guard():
    """Around work that every rank does in lockstep: an exception marks the group broken (the
    others wait in a collective that will never match: no release may follow) and propagates."""
    try:
        yield
    except BaseException:
        _S.broken = True
        raise


def served(obj, mark) -> bool:
    """Rank 0: the other ranks hold ``obj`` as it was when marked ``mark`` (core.finetune)."""
    return _S.served is obj and _S.served_mark == mark


def set_served(obj, mark) -> None:
    """Rank 0: the other ranks now hold ``obj`` (marked ``mark``)."""
    _S.served, _S.served_mark = obj, mark


def test_exit_hook() -> None:
    """``$UNITAX_TEST_DIST_EXIT`` = this rank: leave at once with exit code 3 (tests only)."""
    if _group_ready() and os.environ.get(TEST_EXIT_ENV) == str(rank()):
        log(f"{TEST_EXIT_ENV}: leaving with exit code 3 (test hook)")
        os._exit(3)


def all_sum(values) -> np.ndarray:
    """The element-wise sum (k,) float64 over the ranks of ``values`` (k,), added in rank order
    on every rank: bit for bit the same number everywhere (decisions taken on it agree)."""
    import torch
    import torch.distributed as dist

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not _group_ready():
        return v.copy()
    mine = torch.from_numpy(v.copy()).to(_S.comm)
    parts = [torch.zeros_like(mine) for _ in range(world_size())]
    _collective("all_sum", dist.all_gather, parts, mine)
    out = np.zeros_like(v)
    for p in parts:
        out = out + p.cpu().numpy()
    return out


def all_sum_ints(values) -> np.ndarray:
    """The element-wise sum (k,) int64 over the ranks of ``values`` (k,) (exact: integers)."""
    import torch
    import torch.distributed as dist

    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if not _group_ready():
        return v.copy()
    t = torch.from_numpy(v.copy()).to(_S.comm)
    _collective("all_sum_ints", dist.all_reduce, t)
    return t.cpu().numpy()


def broadcast_state(module, *, buffers_only: bool = False) -> None:
    """Rank 0's parameters and buffers (or buffers only) copied into ``module`` on every rank, in
    place; the modules must have the same architecture (state_dict keys, shapes, dtypes)."""
    import torch
    import torch.distributed as dist

    if not _group_ready():
        return
    tensors = [b for b in module.buffers()] if buffers_only else list(module.state_dict().values())
    with torch.no_grad():
        for t in tensors:
            buf = t.detach()
            moved = buf.device != _S.comm or not buf.is_contiguous()
            if moved:
                buf = buf.to(_S.comm).contiguous()
            _collective("broadcast_state", dist.broadcast, buf, src=0)
            if moved and rank() != 0:
                t.copy_(buf.to(t.device))


def split_id(split) -> tuple:
    """What names a split across ranks: (pixels key, length, digest of its labels)."""
    import hashlib

    labels = np.ascontiguousarray(np.asarray(split.labels, dtype=np.int64))
    return (split.key, int(len(labels)), hashlib.sha1(labels.tobytes()).hexdigest()[:16])


def _shard_set(split, idx: np.ndarray):
    """The images ``idx`` of ``split`` as an ImageSet whose shift is seeded by their indices in
    ``split`` (as in a one-process pass), not by their positions in the part."""
    from core.imagesets import ImageSet

    class _Part(ImageSet):
        def _shifted(self, images, local_idx):
            return split._shifted(images, idx[np.asarray(local_idx, dtype=np.int64)])

    return _Part(split.pool, split.items[idx], split.labels[idx], shift=split.shift,
                 shift_seed=split.shift_seed, name=split.name)  # fmt: skip


class _Offset:
    """A sink that puts a part's rows at their place in the whole split's sink."""

    def __init__(self, sink, offset: int) -> None:
        self.sink, self.offset = sink, int(offset)

    def write(self, start: int, rows: np.ndarray) -> None:
        self.sink.write(self.offset + start, rows)

    @property
    def array(self) -> np.ndarray:
        return self.sink.array


def _compute_part(fn, split, model, kwargs: dict, progress=None, sink=None):
    """This rank's part of ``split``: (features (m, D), or None when they went to ``sink``; failed
    indices in ``split``; images/s)."""
    test_exit_hook()
    block = int(kwargs.get("batch_size") or 1)
    idx = shard(len(split), rank(), world_size(), block=block)
    part = _shard_set(split, idx)
    if sink is None:
        feats, failed, rate = fn(part, model, device=_S.device, progress=progress, **kwargs)
    else:
        first = int(idx[0]) if idx.size else 0
        _, failed, rate = fn(part, model, device=_S.device, progress=progress, sink=_Offset(sink, first), **kwargs)
        feats = None
    return feats, idx[np.asarray(failed, dtype=np.int64)], rate


@contextlib.contextmanager
def sharding():
    """Rank 0: while open, :func:`compute_shared` splits feature extraction across the ranks that
    :func:`serve`. Leaving it releases them (:func:`release`)."""
    _S.sharding = _group_ready() and is_main()
    try:
        yield
    finally:
        release()


def compute_shared(fn, split, model, *, device=None, progress=None, sink=None, **kwargs):
    """``fn(split, model, device=, progress=, sink=, **kwargs)`` -> (features (N, D), failed (F,),
    images/s), the work shared by the ranks while :func:`sharding` is open on rank 0 (else ``fn``
    itself; ``sink`` is passed only when given).

    ``fn`` is :func:`core.features.compute_features`; ``kwargs`` travel to the other ranks, which
    run the same function on their parts with the same backbone (by name) and batch size. Rank 0
    forwards its own part into ``sink`` and writes the gathered rows of the others there; the
    features returned are ``sink.array`` (without a sink: a float32 array).
    """
    extra = {} if sink is None else {"sink": sink}
    if not _S.sharding:
        return fn(split, model, device=device, progress=progress, **extra, **kwargs)
    import time

    n, W = len(split), world_size()
    t0 = time.perf_counter()
    m = len(shard(n, 0, W, block=int(kwargs.get("batch_size") or 1)))

    def scaled(done: int, total: int, rate: float, eta_s) -> None:  # rank 0's part stands for all
        progress(min(n, done * n // max(m, 1)), n, rate * W, eta_s)

    if sink is None:
        from core.featstore import ArraySink

        sink = ArraySink(np.zeros((n, model.dim), dtype=np.float32))
    _broadcast({"op": "features", "key": split.key, "n": n, "backbone": model.name, "kwargs": kwargs})
    try:
        _, failed, _ = _compute_part(fn, split, model, kwargs, scaled if progress else None, sink=sink)
        gather_rows(sink.array[:m], write=sink.write)  # rank 0's part is in the sink already
        parts = _gather_objects(np.asarray(failed, dtype=np.int64))
    except BaseException:
        # the ranks wait in this split's gather: no other collective may follow (release
        # neither); rank 0's exit breaks their gather and torchrun stops them
        _S.broken = True
        raise
    all_failed = np.sort(np.concatenate(parts)).astype(np.int64)
    elapsed = time.perf_counter() - t0
    return sink.array, all_failed, (n / elapsed if elapsed > 0 else 0.0)


def release() -> None:
    """Rank 0: tell the serving ranks that no more backbone passes come (they leave); no-op
    elsewhere, when not sharding, or when the group is broken (a failing release is logged)."""
    if not _S.sharding:
        return
    _S.sharding = False
    _S.served = _S.served_mark = None
    if not _S.broken:
        try:
            _broadcast(None)
        except RuntimeError as exc:  # the others are gone already: nothing left to release
            log(str(exc))


def serve(cfg, device) -> int:
    """Ranks > 0: build the config's domains and do what rank 0 requests, until it releases this
    rank; returns how many requests this rank served. Requests: ``features`` (this rank's part of
    a split's backbone pass), and under fine-tuning ``finetune`` (train a network in lockstep with
    rank 0), ``network`` (receive a network's weights) and ``predict`` (this rank's part of a
    prediction pass of the last network trained or received; core.finetune). A failure raises (the
    rank exits non-zero and torchrun stops the group)."""
    from core.backbones import load_backbone
    from core.domains import domains_from_config
    from core.features import compute_features

    models: dict[str, Any] = {}

    def model(name: str):
        if name not in models:
            import torch

            models[name] = load_backbone(name).to(device)
            if device.type == "cuda":
                models[name] = models[name].to(memory_format=torch.channels_last)
        return models[name]

    # while rank 0 runs its domains step: the images, and the backbone rank 0 will ask for
    splits = [s for d in domains_from_config(cfg) for s in d.splits.values()]
    by_key = {s.key: s for s in splits}
    by_id = {split_id(s): s for s in splits}

    def lookup(sid) -> Any:
        sid = tuple(sid)
        if sid not in by_id:
            raise ValueError(f"{tag()}rank 0 asked for images this rank does not have: {sid[0]!r} (n={sid[1]})")
        return by_id[sid]

    if not cfg.finetune:
        model(cfg.features.backbone)
    network = None  # fine-tuning: the network of the last finetune / network request
    done = 0
    while True:
        cmd = _broadcast()
        if cmd is None:
            log(f"released after {done} {'request(s)' if cfg.finetune else 'split(s)'}")
            return done
        op = cmd.get("op", "features")
        if op == "features":
            split = by_key.get(cmd["key"])
            if split is None or len(split) != cmd["n"]:
                raise ValueError(f"{tag()}rank 0 asked for images this rank does not have: {cmd['key']!r}")
            feats, failed, rate = _compute_part(compute_features, split, model(cmd["backbone"]), cmd["kwargs"])
            if len(feats):
                log(f"features {split.name}: {len(feats)} of {len(split)} images ({rate:.0f} img/s)")
            else:  # a split of fewer batches than ranks: the leading ranks forward it
                log(f"features {split.name}: no part for this rank ({len(split)} images, fewer batches than ranks)")
            gather_rows(np.asarray(feats, dtype=np.float32))
            _gather_objects(np.asarray(failed, dtype=np.int64))
        elif op == "finetune":
            from core.finetune import follow_finetune

            network = follow_finetune(cmd, lookup, device)
        elif op == "network":
            from core.finetune import follow_network

            network = follow_network(cmd, device)
        elif op == "predict":
            from core.finetune import follow_predict

            if network is None:
                raise ValueError(f"{tag()}rank 0 asked for predictions before sending a network")
            follow_predict(cmd, network, lookup(cmd["split"]), device)
        else:
            raise ValueError(f"{tag()}unknown request from rank 0: {op!r}")
        done += 1
