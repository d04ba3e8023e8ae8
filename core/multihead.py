"""Many universal heads trained at once on the same inputs: the engine of the accuracy sweep.

A sweep trains one universal head per taxonomy (one per selection setting). The heads share
their inputs, so one batch drives all of them: the first layer of every head is one matrix
product ``x (B, D) @ W1 (D, S*width)``, the later layers batched products over the S heads.
Output layers are padded to the largest number of universal classes; padded logits are masked,
so a head's loss, gradients and predictions are those it would have alone.

Every head starts from the same initial weights (drawn from ``seed``) and sees the same batch
order, so differences between settings come from their taxonomies, not from the draw. AdamW
and SGD update each weight from its own gradient only, so stacking leaves each head's
optimisation unchanged; only dropout masks differ with the number of heads trained together.

Each head is checkpointed on its validation accuracy (the pooled domain accuracy of
``d_a = M_a p``) and stops after ``patience`` epochs without improvement; no test data is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.config import HeadConfig, TrainConfig
from core.training import feature_rows, make_optimizer, make_scheduler, seed_everything

__all__ = ["StackedHeads", "HeadScore", "train_heads"]

_MASKED = -1e9  # logit of a padded universal class: exp() underflows to exactly 0
_ACT = {"relu": torch.relu, "gelu": nn.functional.gelu, "silu": nn.functional.silu, "tanh": torch.tanh}


class StackedHeads(nn.Module):
    """S fully connected heads ``D -> width -> ... -> n_out[s]`` evaluated together.

    ``forward(x (B, D)) -> logits (S, B, max(n_out))`` with padded classes at a large negative
    value. Layer structure (depth, width, activation, dropout) as :class:`core.heads.MLPHead`.
    """

    def __init__(self, in_dim: int, n_out: Sequence[int], head: HeadConfig, *, seed: int = 0):
        super().__init__()
        if not n_out or min(n_out) < 1:
            raise ValueError(f"n_out must list at least one head with >= 1 class, got {list(n_out)}")
        self.S, self.U = len(n_out), int(max(n_out))
        self.head = head
        gen = torch.Generator().manual_seed(int(seed))
        dims = [in_dim, *head.hidden]  # head.widths layer by layer, else depth - 1 x width
        layers = [_init_linear(dims[i], dims[i + 1], gen) for i in range(head.depth - 1)]
        layers.append(_init_output(dims[-1], self.U, int(seed)))
        # the first layer of every head side by side: x (B, D) @ first (D, S * n1) is one product
        w0, b0 = layers[0]
        self.first = nn.Parameter(w0.repeat(1, self.S))
        self.first_bias = nn.Parameter(b0.expand(self.S, -1).clone())
        self.weights = nn.ParameterList([nn.Parameter(w.expand(self.S, -1, -1).clone()) for w, _ in layers[1:]])
        self.biases = nn.ParameterList([nn.Parameter(b.expand(self.S, -1).clone()) for _, b in layers[1:]])
        mask = torch.zeros(self.S, self.U, dtype=torch.bool)
        for s, n in enumerate(n_out):
            mask[s, n:] = True
        self.register_buffer("pad", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = _ACT.get(self.head.activation)
        if self.head.input_dropout > 0:
            x = nn.functional.dropout(x, self.head.input_dropout, self.training)
        h = (x @ self.first).view(x.shape[0], self.S, -1).transpose(0, 1) + self.first_bias[:, None, :]
        for w, b in zip(self.weights, self.biases):
            if act is not None:
                h = act(h)
            if self.head.dropout > 0:
                h = nn.functional.dropout(h, self.head.dropout, self.training)
            h = torch.baddbmm(b[:, None, :], h, w)
        return h.masked_fill(self.pad[:, None, :], _MASKED)


def _init_linear(n_in: int, n_out: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's default Linear initialisation (uniform +-1/sqrt(n_in)), as (n_in, n_out) + bias."""
    bound = 1.0 / math.sqrt(n_in)
    w = (torch.rand(n_in, n_out, generator=gen) * 2 - 1) * bound
    b = (torch.rand(n_out, generator=gen) * 2 - 1) * bound
    return w, b


def _init_output(n_in: int, n_out: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The output layer, one column at a time from its own seed: universal class u starts the
    same whatever the number of classes (padding) of the heads trained together."""
    cols = [_init_linear(n_in, 1, torch.Generator().manual_seed(seed * 100_003 + u + 1)) for u in range(n_out)]
    return torch.cat([w for w, _ in cols], dim=1), torch.cat([b for _, b in cols])


@dataclass
class HeadScore:
    """A head's best epoch: validation accuracy pooled over images and per domain."""

    val_acc: float = -1.0
    val_acc_by_domain: list[float] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    since_best: int = 0


class _Targets:
    """Every head's mapping rows stacked: targets (S, sum K, U) and class masks."""

    def __init__(self, mappings: Sequence[Sequence[np.ndarray]], U: int, device: torch.device):
        rows = []
        for maps in mappings:
            stacked = np.concatenate([np.asarray(M, dtype=np.float32) for M in maps])
            pad = np.zeros((stacked.shape[0], U), dtype=np.float32)
            pad[:, : stacked.shape[1]] = stacked
            rows.append(pad)
        self.M = torch.tensor(np.stack(rows), device=device)  # (S, sum K, U)
        sums = self.M.sum(dim=2, keepdim=True)
        if (sums <= 0).any():
            raise ValueError("a domain class maps to no universal class in one of the taxonomies")
        self.T = self.M / sums
        sizes = [np.asarray(M).shape[0] for M in mappings[0]]
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), device=device)
        self.owner = torch.tensor(np.repeat(np.arange(len(sizes)), sizes), device=device)

    def rows(self, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.offsets[domain] + label


def _loss(
    logits: torch.Tensor, tg: _Targets, rows: torch.Tensor, loss: str, smoothing: float, n_out: torch.Tensor
) -> torch.Tensor:
    """Sum over heads of each head's mean loss; logits (S, B, U)."""
    logp = torch.log_softmax(logits, dim=2)
    valid = logits > _MASKED / 2
    if loss == "partial":
        allowed = tg.M[:, rows] > 0
        return -torch.logsumexp(logp.masked_fill(~allowed, float("-inf")), dim=2).mean(dim=1).sum()
    t = tg.T[:, rows]
    if smoothing:
        t = (1.0 - smoothing) * t + smoothing * valid / n_out[:, None, None]
    return -(t * logp.masked_fill(~valid, 0.0)).sum(dim=2).mean(dim=1).sum()


@torch.no_grad()
def _validate(
    model: StackedHeads,
    X: torch.Tensor,
    dom: torch.Tensor,
    y: torch.Tensor,
    tg: _Targets,
    n_domains: int,
    batch: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """(pooled accuracy (S,), accuracy per domain (S, n_domains)) of d_a = M_a p on X."""
    model.eval()
    hits = []
    for start in range(0, len(X), batch):
        sl = slice(start, start + batch)
        p = torch.softmax(model(X[sl]), dim=2)  # (S, B, U)
        d = torch.bmm(p, tg.M.transpose(1, 2))  # (S, B, sum K)
        d = d.masked_fill(tg.owner[None, None, :] != dom[sl][None, :, None], float("-inf"))
        hits.append(d.argmax(dim=2) == tg.rows(dom[sl], y[sl])[None, :])
    hit = torch.cat(hits, dim=1).float().cpu().numpy()  # (S, N)
    d_np = dom.cpu().numpy()
    per = np.stack(
        [hit[:, d_np == a].mean(axis=1) if (d_np == a).any() else np.full(len(hit), np.nan) for a in range(n_domains)],
        axis=1,
    )
    return hit.mean(axis=1), per


def train_heads(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    mappings: Sequence[Sequence[np.ndarray]],
    *,
    head: HeadConfig,
    config: TrainConfig,
    loss: str = "soft",
    label_smoothing: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[HeadScore]:
    """Train one universal head per taxonomy at once; return each head's best validation score.

    ``train``/``val``: (X (N, D) float32, domain (N,) int, label (N,) int); ``mappings[s]`` is
    taxonomy s's list of ``M_a`` (K_a, U_s). ``progress(epoch, epochs)`` after every epoch.
    """
    if loss not in ("soft", "partial"):
        raise ValueError(f"loss {loss!r} is not 'soft' or 'partial'")
    if not mappings:
        raise ValueError("mappings: need at least one taxonomy")
    device = torch.device(device)
    n_out = [int(np.asarray(maps[0]).shape[1]) for maps in mappings]
    # features stay where they are when memory-mapped (read per batch), else one float32 tensor
    X, Xv = feature_rows(train[0], device), feature_rows(val[0], device)
    dom, y = (torch.as_tensor(np.asarray(v), device=device).long() for v in train[1:])
    domv, yv = (torch.as_tensor(np.asarray(v), device=device).long() for v in val[1:])
    if len(X) == 0:
        raise ValueError("train: no training samples")
    model = StackedHeads(X.shape[1], n_out, head, seed=seed).to(device)
    tg = _Targets(mappings, model.U, device)
    n_out_t = torch.tensor(n_out, dtype=torch.float32, device=device)
    opt, gen = make_optimizer(model, config), seed_everything(seed)
    sched = make_scheduler(opt, config)
    scores = [HeadScore() for _ in mappings]
    n_domains = len(mappings[0])
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(X), generator=gen).to(device)
        for start in range(0, len(X), config.batch_size):
            idx = order[start : start + config.batch_size]
            out = _loss(model(X[idx]), tg, tg.rows(dom[idx], y[idx]), loss, label_smoothing, n_out_t)
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
        sched.step()
        pooled, per = _validate(model, Xv, domv, yv, tg, n_domains) if len(Xv) else (None, None)
        if not _record(scores, pooled, per, epoch, config.patience):
            break
        if progress is not None:
            progress(epoch, config.epochs)
    return scores


def _record(scores: list[HeadScore], pooled, per, epoch: int, patience: int) -> bool:
    """Update each head's best epoch; False when every head has run out of patience."""
    for s, sc in enumerate(scores):
        sc.epochs_run = epoch
        acc = -1.0 if pooled is None else float(pooled[s])
        if acc > sc.val_acc:
            sc.val_acc, sc.best_epoch, sc.since_best = acc, epoch, 0
            sc.val_acc_by_domain = [] if per is None else [float(v) for v in per[s]]
        else:
            sc.since_best += 1
    return not (patience and all(sc.since_best >= patience for sc in scores))
