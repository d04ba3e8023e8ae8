"""The universal model (docs/architecture.md): one head over universal classes, trained on all domains.

A sample is (features x, domain a, label i). With the taxonomy's mapping ``M_a`` (K_a, U):
  target      t = M_a[i, :] / sum(M_a[i, :])                          (U,), sums to 1
  loss soft   cross-entropy with t (optionally label-smoothed: (1 - eps) t + eps / U)
  loss partial -log sum_{u: M_a[i, u] > 0} p_u                         (Bevandić et al.)
  prediction  d_a = M_a p  (p = softmax of the universal logits z; inference "probs", the default)
              d_a = M_a z  (the raw logits; inference "logits", as the thesis's code does)
              class argmax over K_a. The two rules can disagree: the logits rule adds scores that
              may be negative, so a class mapped to several universal classes is not favoured
              the way summed probabilities favour it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.config import HeadConfig, TrainConfig
from core.heads import build_head
from core.training import EpochProgress, TrainResult, fit, predict_logits

__all__ = [
    "soft_targets",
    "domain_predictions",
    "soft_loss",
    "partial_loss",
    "LOSSES",
    "UniversalObjective",
    "train_universal",
    "evaluate_universal",
    "universal_probs",
    "INFERENCE_RULES",
    "check_inference",
    "domain_scores",
    "rule_accuracies",
]

INFERENCE_RULES = ("probs", "logits")  # the choices of config universal.inference


def _check_mapping(M: np.ndarray, name: str = "M_a") -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ValueError(f"{name} must be (K_a, U), got shape {M.shape}")
    if not np.all(np.isfinite(M)) or (M < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    empty = np.flatnonzero(M.sum(axis=1) <= 0)
    if empty.size:
        raise ValueError(f"{name}: class row(s) {empty.tolist()} map to no universal class")
    return M


def soft_targets(M_a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Targets (N, U): row n = M_a[labels[n]] / sum(M_a[labels[n]]); every row sums to 1."""
    M = _check_mapping(M_a)
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= M.shape[0]):
        raise ValueError(f"labels must be in [0, {M.shape[0]}), got range [{labels.min()}, {labels.max()}]")
    rows = M / M.sum(axis=1, keepdims=True)
    return rows[labels]


def domain_predictions(p: np.ndarray, M_a: np.ndarray) -> np.ndarray:
    """Domain-a class scores d (N, K_a) = (M_a p) per sample, from universal probs p (N, U)."""
    p = np.asarray(p, dtype=np.float64)
    M = np.asarray(M_a, dtype=np.float64)
    if p.ndim != 2 or M.ndim != 2 or p.shape[1] != M.shape[1]:
        raise ValueError(f"p (N, U) and M_a (K_a, U) disagree: shapes {p.shape} and {M.shape}")
    return p @ M.T


def check_inference(rule: object) -> str:
    """``rule`` if it is one of INFERENCE_RULES, else ValueError naming it."""
    if rule not in INFERENCE_RULES:
        raise ValueError(f"inference must be one of {', '.join(INFERENCE_RULES)}; got {rule!r}")
    return rule


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def domain_scores(logits: np.ndarray, M_a: np.ndarray, *, inference: str = "probs") -> np.ndarray:
    """Domain-a class scores d (N, K_a) from universal logits z (N, U): ``softmax(z) M_a^T``
    (``inference="probs"``) or ``z M_a^T`` (``"logits"``)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be (N, U), got shape {z.shape}")
    return domain_predictions(_softmax(z) if check_inference(inference) == "probs" else z, M_a)


def soft_loss(logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of logits (B, U) against soft targets (B, U)."""
    if label_smoothing:
        targets = (1.0 - label_smoothing) * targets + label_smoothing / targets.shape[1]
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def partial_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of -log sum_{u in mask} p_u; logits (B, U), mask (B, U) > 0 marks allowed classes."""
    logp = torch.log_softmax(logits, dim=1)
    masked = logp.masked_fill(mask <= 0, float("-inf"))
    return -torch.logsumexp(masked, dim=1).mean()


LOSSES = {"soft": soft_loss, "partial": partial_loss}


class UniversalObjective:
    """Loss and correctness for batches (logits (B, U), domain (B,), label (B,)).

    Stacks all domains' mappings into one (sum K_a, U) matrix so a mixed batch is handled
    without Python loops over samples.
    """

    def __init__(
        self,
        mappings: Sequence[np.ndarray],
        *,
        loss: str = "soft",
        label_smoothing: float = 0.0,
        inference: str = "probs",
        device: torch.device | str = "cpu",
    ):
        self.inference = check_inference(inference)
        if loss not in LOSSES:
            raise ValueError(f"loss {loss!r} is not one of {sorted(LOSSES)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        mats = [_check_mapping(M, f"mappings[{a}]") for a, M in enumerate(mappings)]
        widths = {M.shape[1] for M in mats}
        if len(widths) != 1:
            raise ValueError(f"all mappings need the same number U of universal classes, got {sorted(widths)}")
        self.loss, self.label_smoothing = loss, label_smoothing
        self.n_universal = widths.pop()
        sizes = [M.shape[0] for M in mats]
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), device=device)
        stacked = np.concatenate(mats)
        self.M = torch.tensor(stacked, dtype=torch.float32, device=device)  # (sum K, U)
        self.T = self.M / self.M.sum(dim=1, keepdim=True)  # normalised target rows
        owner = np.repeat(np.arange(len(mats)), sizes)
        self.owner = torch.tensor(owner, device=device)  # (sum K,) domain of each row

    def _rows(self, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.offsets[domain.long()] + label.long()

    def loss_fn(self, logits: torch.Tensor, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        rows = self._rows(domain, label)
        if self.loss == "soft":
            return soft_loss(logits, self.T[rows], label_smoothing=self.label_smoothing)
        return partial_loss(logits, self.M[rows])

    def domain_scores(self, logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(B, sum K) scores d = M p (or M z with inference "logits"), -inf outside each sample's
        own domain."""
        z = logits.float()
        d = (torch.softmax(z, dim=1) if self.inference == "probs" else z) @ self.M.T
        return d.masked_fill(self.owner[None, :] != domain.long()[:, None], float("-inf"))

    def correct_fn(self, logits: torch.Tensor, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.domain_scores(logits, domain).argmax(dim=1) == self._rows(domain, label)


def train_universal(
    X_train: np.ndarray,
    domain_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    domain_val: np.ndarray,
    y_val: np.ndarray,
    mappings: Sequence[np.ndarray],
    *,
    head: HeadConfig | None = None,
    train: TrainConfig | None = None,
    loss: str = "soft",
    label_smoothing: float = 0.0,
    inference: str = "probs",
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[EpochProgress], None] | None = None,
) -> TrainResult:
    """Train a universal head on the union of all domains (X (N, D), domain (N,), label (N,)).

    Validation accuracy (used for the checkpoint) is the domain accuracy of ``d_a = M_a p``
    (``M_a z`` with ``inference="logits"``).
    """
    device = torch.device(device)
    obj = UniversalObjective(mappings, loss=loss, label_smoothing=label_smoothing, inference=inference, device=device)
    for name, dom, y in (("train", domain_train, y_train), ("val", domain_val, y_val)):
        dom, y = np.asarray(dom), np.asarray(y)
        if dom.size and (dom.min() < 0 or dom.max() >= len(mappings)):
            raise ValueError(f"{name}: domain ids must be in [0, {len(mappings)}), got max {dom.max()}")
        sizes = np.array([np.asarray(M).shape[0] for M in mappings])
        if y.size and ((y < 0).any() or (y >= sizes[dom]).any()):
            raise ValueError(f"{name}: a label is outside its domain's class range")
    torch.manual_seed(int(seed))
    model = build_head(int(np.asarray(X_train).shape[1]), obj.n_universal, head or HeadConfig(depth=2))
    return fit(
        model,
        (X_train, np.asarray(domain_train, np.int64), np.asarray(y_train, np.int64)),
        (X_val, np.asarray(domain_val, np.int64), np.asarray(y_val, np.int64)),
        loss_fn=obj.loss_fn,
        correct_fn=obj.correct_fn,
        config=train,
        seed=seed,
        device=device,
        progress=progress,
    )


def universal_probs(model: nn.Module, X: np.ndarray, *, device: torch.device | str = "cpu") -> np.ndarray:
    """Universal class probabilities p (N, U)."""
    logits = torch.from_numpy(predict_logits(model, X, device=device))
    return torch.softmax(logits, dim=1).numpy()


def rule_accuracies(
    logits: np.ndarray,
    domain: np.ndarray,
    y: np.ndarray,
    mappings: Sequence[np.ndarray],
    *,
    inference: str = "probs",
) -> dict[int, float]:
    """Per-domain accuracy ``{a: acc}`` of argmax_i d_a (``domain_scores`` under ``inference``)
    from universal logits (N, U), domain (N,) and labels (N,) (NaN for a domain without images)."""
    domain, y = np.asarray(domain), np.asarray(y)
    out = {}
    for a, M in enumerate(mappings):
        sel = domain == a
        if not sel.any():
            out[a] = float("nan")
            continue
        pred = domain_scores(logits[sel], M, inference=inference).argmax(axis=1)
        out[a] = float((pred == y[sel]).mean())
    return out


def evaluate_universal(
    model: nn.Module,
    X: np.ndarray,
    domain: np.ndarray,
    y: np.ndarray,
    mappings: Sequence[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    inference: str = "probs",
) -> dict[int, float]:
    """Per-domain accuracy ``{a: acc}`` of argmax_i (M_a p)_i (or (M_a z)_i with
    ``inference="logits"``) against the labels (NaN if no images)."""
    check_inference(inference)
    return rule_accuracies(predict_logits(model, X, device=device), domain, y, mappings, inference=inference)
