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

Mappings may be dense arrays or scipy.sparse matrices (``UniversalTaxonomy.sparse_mappings``);
both go through the same sparse code, so they give bit-identical targets, scores and heads.
Nothing here holds a dense (K_a, U) mapping or (N, U) targets for a whole set: targets are
gathered per batch and evaluation streams the logits in chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import sparse
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
    "as_sparse_mapping",
]

EVAL_ELEMENTS = 1 << 24  # logits held at once while evaluating: chunks of EVAL_ELEMENTS // U rows


def _eval_rows(n_universal: int) -> int:
    """Rows per evaluation chunk: (rows, U) float64 scores stay near 128 MB whatever U is."""
    return max(1, EVAL_ELEMENTS // max(1, int(n_universal)))


INFERENCE_RULES = ("probs", "logits")  # the choices of config universal.inference


def as_sparse_mapping(M: object, name: str = "M_a") -> sparse.csr_array:
    """A checked mapping M_a (K_a, U), dense or scipy.sparse, as a float64 CSR array with sorted
    indices and no explicit zeros. ValueError if it is not 2-D, has a negative or non-finite
    entry, or a class row maps to no universal class."""
    if sparse.issparse(M):
        if M.ndim != 2:
            raise ValueError(f"{name} must be (K_a, U), got shape {M.shape}")
        out = sparse.csr_array(M, dtype=np.float64, copy=True)
    else:
        arr = np.asarray(M, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be (K_a, U), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or (arr < 0).any():
            raise ValueError(f"{name} must be finite and non-negative")
        out = sparse.csr_array(arr)
    out.sum_duplicates()
    if not np.all(np.isfinite(out.data)) or (out.data < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    out.eliminate_zeros()
    out.sort_indices()
    empty = np.flatnonzero(np.diff(out.indptr) == 0)
    if empty.size:
        raise ValueError(f"{name}: class row(s) {empty.tolist()} map to no universal class")
    return out


def _normalised_rows(M: sparse.csr_array) -> sparse.csr_array:
    """M with every row divided by its sum (rows summed in stored order)."""
    sums = np.add.reduceat(M.data, M.indptr[:-1])  # no empty rows (as_sparse_mapping)
    out = M.copy()
    out.data = M.data / np.repeat(sums, np.diff(M.indptr))
    return out


def soft_targets(M_a: object, labels: np.ndarray) -> np.ndarray | sparse.csr_array:
    """Targets (N, U): row n = M_a[labels[n]] / sum(M_a[labels[n]]); every row sums to 1.
    Dense for a dense M_a, CSR for a sparse one (same values)."""
    M = as_sparse_mapping(M_a)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= M.shape[0]):
        raise ValueError(f"labels must be in [0, {M.shape[0]}), got range [{labels.min()}, {labels.max()}]")
    rows = _normalised_rows(M)[labels]
    return rows if sparse.issparse(M_a) else rows.toarray()


def domain_predictions(p: np.ndarray, M_a: object) -> np.ndarray:
    """Domain-a class scores d (N, K_a) = (M_a p) per sample, from universal probs p (N, U);
    M_a dense or scipy.sparse (K_a, U)."""
    p = np.asarray(p, dtype=np.float64)
    shape = M_a.shape if sparse.issparse(M_a) else np.shape(M_a)
    if p.ndim != 2 or len(shape) != 2 or p.shape[1] != shape[1]:
        raise ValueError(f"p (N, U) and M_a (K_a, U) disagree: shapes {p.shape} and {tuple(shape)}")
    M = sparse.csr_array(M_a, dtype=np.float64) if sparse.issparse(M_a) else sparse.csr_array(np.asarray(M_a, float))
    M.sum_duplicates()
    M.sort_indices()
    return np.ascontiguousarray((M @ p.T).T)


def check_inference(rule: object) -> str:
    """``rule`` if it is one of INFERENCE_RULES, else ValueError naming it."""
    if rule not in INFERENCE_RULES:
        raise ValueError(f"inference must be one of {', '.join(INFERENCE_RULES)}; got {rule!r}")
    return rule


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def domain_scores(logits: np.ndarray, M_a: object, *, inference: str = "probs") -> np.ndarray:
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


def _gather_rows(
    crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, rows: torch.Tensor, width: int
) -> torch.Tensor:
    """Dense (B, width) rows ``rows`` (B,) of the CSR matrix (crow, col, val)."""
    start, n = crow[rows], crow[rows + 1] - crow[rows]
    total = int(n.sum())
    which = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), n, output_size=total)
    first = torch.cumsum(n, 0) - n
    pos = torch.arange(total, device=rows.device) - first[which] + start[which]
    out = torch.zeros((len(rows), width), dtype=val.dtype, device=val.device)
    out[which, col[pos]] = val[pos]
    return out


class UniversalObjective:
    """Loss and correctness for batches (logits (B, U), domain (B,), label (B,)).

    Stacks all domains' mappings (dense or scipy.sparse) into one sparse (sum K_a, U) matrix so
    a mixed batch is handled without Python loops over samples; a batch's targets (B, U) are
    gathered from it, and its scores (B, sum K_a) are one sparse product.
    """

    def __init__(
        self,
        mappings: Sequence[object],
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
        mats = [as_sparse_mapping(M, f"mappings[{a}]") for a, M in enumerate(mappings)]
        widths = {M.shape[1] for M in mats}
        if len(widths) != 1:
            raise ValueError(f"all mappings need the same number U of universal classes, got {sorted(widths)}")
        self.loss, self.label_smoothing = loss, label_smoothing
        self.n_universal = widths.pop()
        sizes = [M.shape[0] for M in mats]
        self.sizes = sizes
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(sizes)[:-1]]), device=device)
        stacked = sparse.vstack(mats, format="csr")
        stacked.sort_indices()
        as_t = lambda a, dt: torch.tensor(np.asarray(a), dtype=dt, device=device)  # noqa: E731
        self.crow, self.col = as_t(stacked.indptr, torch.int64), as_t(stacked.indices, torch.int64)
        self.values = as_t(stacked.data, torch.float32)  # M's stored entries
        self.target_values = as_t(_normalised_rows(stacked).data, torch.float32)  # normalised target rows
        row = torch.repeat_interleave(torch.arange(stacked.shape[0], device=device), torch.diff(self.crow))
        self.M = torch.sparse_coo_tensor(
            torch.stack([row, self.col]), self.values, stacked.shape, is_coalesced=True, check_invariants=False
        )  # (sum K, U), sparse COO (stable, CPU and CUDA)
        owner = np.repeat(np.arange(len(mats)), sizes)
        self.owner = torch.tensor(owner, device=device)  # (sum K,) domain of each row

    def _rows(self, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.offsets[domain.long()] + label.long()

    def targets(self, rows: torch.Tensor) -> torch.Tensor:
        """Soft targets (B, U) of the stacked class rows ``rows`` (B,)."""
        return _gather_rows(self.crow, self.col, self.target_values, rows, self.n_universal)

    def loss_fn(self, logits: torch.Tensor, domain: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        rows = self._rows(domain, label)
        if self.loss == "soft":
            return soft_loss(logits, self.targets(rows), label_smoothing=self.label_smoothing)
        return partial_loss(logits, _gather_rows(self.crow, self.col, self.values, rows, self.n_universal))

    def domain_scores(self, logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(B, sum K) scores d = M p (or M z with inference "logits"), -inf outside each sample's
        own domain."""
        z = logits.float()
        s = torch.softmax(z, dim=1) if self.inference == "probs" else z
        with torch.autocast(device_type=s.device.type, enabled=False):  # sparse kernels want float32
            d = torch.sparse.mm(self.M, s.T.contiguous()).T  # (B, sum K)
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
    mappings: Sequence[object],
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
    ``mappings``: M_a (K_a, U) per domain, dense or scipy.sparse (identical results).

    Validation accuracy (used for the checkpoint) is the domain accuracy of ``d_a = M_a p``
    (``M_a z`` with ``inference="logits"``).
    """
    device = torch.device(device)
    obj = UniversalObjective(mappings, loss=loss, label_smoothing=label_smoothing, inference=inference, device=device)
    for name, dom, y in (("train", domain_train, y_train), ("val", domain_val, y_val)):
        dom, y = np.asarray(dom), np.asarray(y)
        if dom.size and (dom.min() < 0 or dom.max() >= len(mappings)):
            raise ValueError(f"{name}: domain ids must be in [0, {len(mappings)}), got max {dom.max()}")
        sizes = np.array(obj.sizes)
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


def _rule_hits(
    logits: np.ndarray, domain: np.ndarray, y: np.ndarray, mats: Sequence[sparse.csr_array], inference: str
) -> tuple[np.ndarray, np.ndarray]:
    """(hits, totals) per domain of argmax_i d_a on one chunk of logits (n, U)."""
    hits, totals = np.zeros(len(mats), np.int64), np.zeros(len(mats), np.int64)
    for a, M in enumerate(mats):
        sel = domain == a
        if sel.any():
            pred = domain_scores(logits[sel], M, inference=inference).argmax(axis=1)
            hits[a], totals[a] = int((pred == y[sel]).sum()), int(sel.sum())
    return hits, totals


def _accuracies(hits: np.ndarray, totals: np.ndarray) -> dict[int, float]:
    return {a: float(h / t) if t else float("nan") for a, (h, t) in enumerate(zip(hits, totals))}


def rule_accuracies(
    logits: np.ndarray,
    domain: np.ndarray,
    y: np.ndarray,
    mappings: Sequence[object],
    *,
    inference: str = "probs",
) -> dict[int, float]:
    """Per-domain accuracy ``{a: acc}`` of argmax_i d_a (``domain_scores`` under ``inference``)
    from universal logits (N, U), domain (N,) and labels (N,) (NaN for a domain without images);
    mappings dense or scipy.sparse."""
    domain, y = np.asarray(domain), np.asarray(y)
    check_inference(inference)
    mats = [as_sparse_mapping(M, f"mappings[{a}]") for a, M in enumerate(mappings)]
    hits, totals = np.zeros(len(mats), np.int64), np.zeros(len(mats), np.int64)
    step = _eval_rows(mats[0].shape[1] if mats else 1)
    for start in range(0, len(y), step):
        part = slice(start, start + step)
        h, t = _rule_hits(np.asarray(logits[part]), domain[part], y[part], mats, inference)
        hits, totals = hits + h, totals + t
    return _accuracies(hits, totals)


def evaluate_universal(
    model: nn.Module,
    X: np.ndarray,
    domain: np.ndarray,
    y: np.ndarray,
    mappings: Sequence[object],
    *,
    device: torch.device | str = "cpu",
    inference: str = "probs",
) -> dict[int, float]:
    """Per-domain accuracy ``{a: acc}`` of argmax_i (M_a p)_i (or (M_a z)_i with
    ``inference="logits"``) against the labels (NaN if no images). Streams: X (N, D) (an array
    or a memory map) is read and scored EVAL_ELEMENTS // U rows at a time, never (N, U) logits
    at once."""
    check_inference(inference)
    domain, y = np.asarray(domain), np.asarray(y)
    mats = [as_sparse_mapping(M, f"mappings[{a}]") for a, M in enumerate(mappings)]
    hits, totals = np.zeros(len(mats), np.int64), np.zeros(len(mats), np.int64)
    step = _eval_rows(mats[0].shape[1] if mats else 1)
    for start in range(0, len(y), step):
        part = slice(start, start + step)
        z = predict_logits(model, X[part], device=device)
        h, t = _rule_hits(z, domain[part], y[part], mats, inference)
        hits, totals = hits + h, totals + t
    return _accuracies(hits, totals)
