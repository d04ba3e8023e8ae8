"""Training loop for heads on features: seeded mini-batches, AdamW/SGD + schedule, validation
every epoch, checkpoint on validation accuracy or loss (TrainConfig.checkpoint), early stopping,
progress callback.

Features X (N, D): a float array in RAM goes to the device as one float32 tensor (the fast path);
a memory-mapped (core.featstore) or float16 array stays where it is and each mini-batch's rows
are read and converted to float32 on their own (the same rows in the same order: a float32 map
trains exactly the model its in-RAM copy trains), so memory does not grow with N.

The loop is objective-agnostic: ``loss_fn(logits, *extras) -> scalar`` and
``correct_fn(logits, *extras) -> bool (B,)`` receive the batch's extra tensors (labels for a
baseline; domain ids and labels for the universal model). Mixed precision on CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.config import TrainConfig

__all__ = [
    "EpochProgress",
    "TrainResult",
    "fit",
    "train_classifier",
    "predict_logits",
    "feature_rows",
    "make_optimizer",
    "make_scheduler",
    "seed_everything",
]


@dataclass(frozen=True)
class EpochProgress:
    """What the progress callback receives after every epoch."""

    epoch: int  # 1-based
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    best_val_acc: float  # validation accuracy of the kept epoch so far
    lr: float
    samples_per_s: float
    epoch_s: float  # wall time of this epoch (training + validation)
    eta_s: float  # upper bound: remaining epochs at the current speed (early stopping may cut it)


@dataclass
class TrainResult:
    model: nn.Module  # with the kept epoch's weights loaded (TrainConfig.checkpoint)
    history: list[dict] = field(default_factory=list)  # one dict per epoch (EpochProgress fields)
    best_epoch: int = 0
    best_val_acc: float = 0.0  # validation accuracy of the kept epoch
    stopped_early: bool = False
    samples_per_s: float = 0.0  # mean training throughput


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (init, dropout) and return a CPU generator for shuffling."""
    torch.manual_seed(int(seed))
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        params = list(model.parameters())
        try:  # one fused kernel per step: several times faster than the per-tensor loop on CPU
            return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or torch version without it
            return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov and config.momentum > 0,
        )
    raise ValueError(f"optimizer {config.optimizer!r} is not 'adamw' or 'sgd'")


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch multiplier: linear warmup, then cosine to ``min_lr`` (torch's CosineAnnealingLR
    with T_max = the epochs after warmup), steps of 0.1 at 50%/75%, ``gamma`` at each of
    ``milestones`` (torch's MultiStepLR), or flat."""
    warm, total = config.warmup_epochs, config.epochs
    floor = config.min_lr / config.lr

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        frac = (epoch - warm) / max(1, total - warm)
        if config.schedule == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))
        if config.schedule == "step":
            return 0.1 ** (int(frac >= 0.5) + int(frac >= 0.75))
        if config.schedule == "multistep":
            return config.gamma ** sum(epoch >= m for m in config.milestones)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _as_tensor(x, device: torch.device, dtype=None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


class _Rows:
    """Features X (N, D) left where they are (a map, or float16): indexing by a slice or by
    indices (a tensor or array) reads just those rows and returns them as a float32 tensor on
    ``device``, in the order asked. A map of a file is read with positional reads
    (core.featstore.RowReader: nothing of the file stays in this process's memory); other maps
    through the map, whose pages are dropped again after every batch (featstore.release)."""

    def __init__(self, X: np.ndarray, device: torch.device) -> None:
        from core.featstore import RowReader, is_mapped

        self.X, self.device = X, device
        self.shape = tuple(X.shape)
        self.ndim = X.ndim
        self._reader = RowReader.of(X)
        self._mapped = self._reader is None and is_mapped(X)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if self._reader is not None and step == 1:
                rows = self._reader.rows(start, stop)
            else:
                rows = np.array(self.X[key], dtype=np.float32)  # a copy: the map is read-only
        else:
            idx = key.cpu().numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
            if self._reader is not None:
                rows = self._reader.take(idx)
            else:
                order = np.argsort(idx, kind="stable")
                rows = np.empty((len(idx),) + self.shape[1:], dtype=self.X.dtype)
                rows[order] = self.X[idx[order]]
        if self._mapped:
            from core.featstore import release

            release(self.X)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(self.device)


def _lazy(x) -> bool:
    """Read ``x`` batch by batch: a memory-mapped or float16 numpy array."""
    from core.featstore import is_mapped

    return isinstance(x, np.ndarray) and (x.dtype == np.float16 or is_mapped(x))


def feature_rows(X, device: torch.device | str = "cpu"):
    """X (N, D) ready for mini-batches on ``device``: a float32 tensor (X in RAM, as always), or,
    for a memory-mapped or float16 array, an object that reads only the rows asked for
    (``rows[idx]`` / ``rows[a:b]`` -> float32 (B, D) tensor; ``len``, ``shape``)."""
    device = torch.device(device)
    return _Rows(X, device) if _lazy(X) else _as_tensor(X, device, torch.float32)


def _prepare(data: Sequence, device: torch.device, name: str) -> list:
    if not isinstance(data, (tuple, list)) or len(data) < 1:
        raise TypeError(f"{name} must be a tuple (X, *extras), got {type(data).__name__}")
    tensors = [feature_rows(data[0], device)] + [_as_tensor(d, device) for d in data[1:]]
    n = tensors[0].shape[0]
    if tensors[0].ndim != 2:
        raise ValueError(f"{name}: X must be (N, D), got shape {tuple(tensors[0].shape)}")
    for i, t in enumerate(tensors[1:], 1):
        if t.shape[0] != n:
            raise ValueError(f"{name}: entry {i} has {t.shape[0]} rows, X has {n}")
    return tensors


@torch.no_grad()
def _evaluate(model, tensors, loss_fn, correct_fn, batch_size, device) -> tuple[float, float]:
    from core.device import autocast

    model.eval()
    n = tensors[0].shape[0]
    if n == 0:
        return float("nan"), float("nan")
    loss_sum, correct = 0.0, 0
    for start in range(0, n, batch_size):
        batch = [t[start : start + batch_size] for t in tensors]
        with autocast(device):
            logits = model(batch[0])
        logits = logits.float()
        loss_sum += float(loss_fn(logits, *batch[1:])) * batch[0].shape[0]
        correct += int(correct_fn(logits, *batch[1:]).sum())
    return loss_sum / n, correct / n


def _train_batch(
    model: nn.Module,
    x: torch.Tensor,
    extras: Sequence[torch.Tensor],
    loss_fn: Callable[..., torch.Tensor],
    opt,
    scaler,
    device: torch.device,
    use_amp: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch (shared by :func:`_fit` and core.finetune): the forward
    pass (under autocast when ``use_amp``), ``loss_fn(logits, *extras)`` on float32 logits, the
    backward pass and the step (through the GradScaler ``scaler`` when given). Returns
    ``(logits (B, K) float32, loss)``."""
    from core.device import autocast

    with autocast(device) if use_amp else contextlib.nullcontext():
        logits = model(x)
    logits = logits.float()
    loss = loss_fn(logits, *extras)
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return logits, loss


def _train_epoch(
    model: nn.Module,
    tr: list[torch.Tensor],
    order: torch.Tensor,
    opt,
    scaler,
    *,
    loss_fn,
    correct_fn,
    batch_size: int,
    device: torch.device,
    use_amp: bool,
) -> tuple[float, int]:
    """One pass over the training tensors in ``order``; (sum of losses, number correct)."""
    model.train()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = [t[idx] for t in tr]
        logits, loss = _train_batch(model, batch[0], batch[1:], loss_fn, opt, scaler, device, use_amp)
        loss_sum += float(loss.detach()) * len(idx)
        with torch.no_grad():
            correct += int(correct_fn(logits.detach(), *batch[1:]).sum())
    return loss_sum, correct


class _Checkpoint:
    """Keeps the weights of the best epoch by the rule (TrainConfig.checkpoint): the highest
    validation accuracy ("val_acc") or the lowest validation loss ("val_loss"); first on ties.
    :meth:`offer` takes the epoch's score as "higher is better" (the negated loss for val_loss)."""

    def __init__(self, rule: str = "val_acc") -> None:
        if rule not in ("val_acc", "val_loss"):
            raise ValueError(f"checkpoint rule must be 'val_acc' or 'val_loss', got {rule!r}")
        self.rule = rule
        self.state: dict | None = None
        self.score, self.epoch, self.since = -math.inf, 0, 0
        self.val_acc = float("nan")  # validation accuracy of the kept epoch

    def score_of(self, *, val_loss: float, val_acc: float, train_loss: float, train_acc: float) -> float:
        """The epoch's score under the rule (higher is better); an empty validation split (NaN)
        falls back to the training accuracy / loss."""
        if self.rule == "val_loss":
            return -(train_loss if math.isnan(val_loss) else val_loss)
        return train_acc if math.isnan(val_acc) else val_acc

    def offer(self, model: nn.Module, score: float, epoch: int, *, val_acc: float | None = None) -> None:
        if score > self.score:
            self.val_acc = score if val_acc is None else val_acc
            self.score, self.since, self.epoch = score, 0, epoch
            self.state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            self.since += 1

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


def _end_epoch(result: TrainResult, info: EpochProgress, best: _Checkpoint, patience: int, progress) -> bool:
    """After an epoch (shared by :func:`_fit` and core.finetune): ``info`` joins the history and
    goes to ``progress``; True (and ``result.stopped_early``) when ``patience`` epochs (> 0) have
    passed without a better checkpoint."""
    result.history.append({k: getattr(info, k) for k in info.__dataclass_fields__})
    if progress is not None:
        progress(info)
    if patience and best.since >= patience:
        result.stopped_early = True
        return True
    return False


def _finish(model: nn.Module, best: _Checkpoint, result: TrainResult) -> None:
    """After the last epoch: the kept epoch's weights back in ``model`` (eval mode) and in ``result``."""
    best.restore(model)
    model.eval()
    result.best_epoch, result.best_val_acc = best.epoch, best.val_acc


def _fit(
    model: nn.Module,
    train: Sequence,
    val: Sequence,
    *,
    loss_fn: Callable[..., torch.Tensor],
    correct_fn: Callable[..., torch.Tensor],
    config: TrainConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[EpochProgress], None] | None = None,
) -> TrainResult:
    config = config or TrainConfig()
    device = torch.device(device)
    gen = seed_everything(seed)
    model.to(device)
    tr, va = _prepare(train, device, "train"), _prepare(val, device, "val")
    n = tr[0].shape[0]
    if n == 0:
        raise ValueError("train: no training samples")
    opt = make_optimizer(model, config)
    sched = make_scheduler(opt, config)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp and not torch.cuda.is_bf16_supported() else None
    result, best, total_time = TrainResult(model=model), _Checkpoint(config.checkpoint), 0.0
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum, correct = _train_epoch(
            model,
            tr,
            order,
            opt,
            scaler,
            loss_fn=loss_fn,
            correct_fn=correct_fn,
            batch_size=config.batch_size,
            device=device,
            use_amp=use_amp,
        )
        lr = opt.param_groups[0]["lr"]
        sched.step()
        dt = time.perf_counter() - t0
        total_time += dt
        val_loss, val_acc = _evaluate(model, va, loss_fn, correct_fn, max(1024, config.batch_size), device)
        train_acc = correct / n
        score = best.score_of(val_loss=val_loss, val_acc=val_acc, train_loss=loss_sum / n, train_acc=train_acc)
        best.offer(model, score, epoch, val_acc=train_acc if math.isnan(val_acc) else val_acc)
        epoch_s = time.perf_counter() - t0
        info = EpochProgress(
            epoch,
            config.epochs,
            loss_sum / n,
            train_acc,
            val_loss,
            val_acc,
            best.val_acc,
            lr,
            n / max(dt, 1e-9),
            epoch_s,
            epoch_s * (config.epochs - epoch),
        )
        if _end_epoch(result, info, best, config.patience, progress):
            break
    _finish(model, best, result)
    result.samples_per_s = n * len(result.history) / max(total_time, 1e-9)
    return result


@contextlib.contextmanager
def cpu_threads(device: torch.device, n: int | None = 1):
    """Limit torch's intra-op threads on CPU while training small heads (restored after).

    Measured on the shared 2-core CPU (bench/bench_pipeline.py, tests): heads of a few hundred
    units run 7-50x faster on one thread than on two when the cores are busy (OpenMP threads
    wait on each other); on an idle machine the two are within 20%. ``n=None`` leaves it alone.
    """
    if device.type != "cpu" or n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit(
    model: nn.Module,
    train: Sequence,
    val: Sequence,
    *,
    loss_fn: Callable[..., torch.Tensor],
    correct_fn: Callable[..., torch.Tensor],
    config: TrainConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[EpochProgress], None] | None = None,
    threads: int | None = 1,
) -> TrainResult:
    """Train ``model`` on ``train = (X (N, D), *extras)``; validate on ``val`` each epoch.
    X may be memory-mapped or float16 (read batch by batch; see the module docstring).

    Keeps the weights of the best epoch by ``config.checkpoint`` (highest validation accuracy or
    lowest validation loss, first one on ties) and stops after ``config.patience`` epochs without
    improvement (0 = never). An empty ``val`` falls back to training accuracy / loss.
    ``threads`` caps torch's CPU threads meanwhile (see :func:`cpu_threads`). Returns a
    :class:`TrainResult` with the best model.
    """
    device = torch.device(device)
    with cpu_threads(device, threads):
        return _fit(
            model,
            train,
            val,
            loss_fn=loss_fn,
            correct_fn=correct_fn,
            config=config,
            seed=seed,
            device=device,
            progress=progress,
        )


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, y.long())


def _argmax_correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=1) == y.long()


def train_classifier(
    model: nn.Module,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    config: TrainConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[EpochProgress], None] | None = None,
) -> TrainResult:
    """Plain classifier (a per-domain baseline): X (N, D) float (in RAM, or a memory-mapped /
    float16 array read batch by batch), y (N,) int in [0, n_out)."""
    n_out = model.out.out_features if hasattr(model, "out") else None
    for name, y in (("y_train", y_train), ("y_val", y_val)):
        y = np.asarray(y)
        if y.size and (y.min() < 0 or (n_out is not None and y.max() >= n_out)):
            raise ValueError(f"{name}: labels must be in [0, {n_out}), got range [{y.min()}, {y.max()}]")
    return fit(
        model,
        (X_train, np.asarray(y_train, dtype=np.int64)),
        (X_val, np.asarray(y_val, dtype=np.int64)),
        loss_fn=_ce,
        correct_fn=_argmax_correct,
        config=config,
        seed=seed,
        device=device,
        progress=progress,
    )


@torch.no_grad()
def predict_logits(
    model: nn.Module, X: np.ndarray, *, batch_size: int = 4096, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Logits (N, K) float32 of ``model`` on features X (N, D) (any float dtype, in RAM or a map:
    read ``batch_size`` rows at a time)."""
    from core.device import autocast

    device = torch.device(device)
    model.to(device).eval()
    out = []
    rows = _Rows(X, device) if _lazy(X) else None  # a map: its pages are let go as the pass goes on
    with cpu_threads(device, 1):
        for start in range(0, len(X), batch_size):
            if rows is not None:
                x = rows[start : start + batch_size]
            else:
                x = _as_tensor(X[start : start + batch_size], device, torch.float32)
            with autocast(device):
                out.append(model(x).float().cpu())
    if not out:
        return np.zeros((0, model.out.out_features), dtype=np.float32)
    return torch.cat(out).numpy()
