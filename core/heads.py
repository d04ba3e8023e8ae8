"""Fully connected classification heads on cached backbone features, and their model files.

A model file is a ``torch.save`` of plain data only (a state_dict of tensors plus str/int/float
metadata), so it loads with ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.config import ACTIVATIONS, HeadConfig

__all__ = ["MLPHead", "build_head", "save_model", "load_model", "count_parameters"]

_ACT = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLPHead(nn.Module):
    """``depth`` Linear layers: in_dim -> width -> ... -> width -> n_out.

    Between layers: activation (skipped for ``"none"``, as in the thesis, which makes the stack
    one linear map), then dropout. ``features(x)`` returns the input of the last layer (the
    universal feature used for the embedding plot).
    """

    def __init__(
        self,
        in_dim: int,
        n_out: int,
        *,
        depth: int = 2,
        width: int = 256,
        dropout: float = 0.2,
        activation: str = "relu",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {list(ACTIVATIONS)}")
        for name, value in (("in_dim", in_dim), ("n_out", n_out), ("depth", depth), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.hparams = {
            "in_dim": in_dim,
            "n_out": n_out,
            "depth": depth,
            "width": width,
            "dropout": float(dropout),
            "activation": activation,
        }
        dims = [in_dim] + [width] * (depth - 1)
        body: list[nn.Module] = []
        for i in range(depth - 1):
            if i > 0 and dropout > 0:
                body.append(nn.Dropout(dropout))
            body.append(nn.Linear(dims[i], dims[i + 1]))
            if activation != "none":
                body.append(_ACT[activation]())
        if depth > 1 and dropout > 0:
            body.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*body)
        self.out = nn.Linear(dims[-1], n_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N, width) (or (N, in_dim) for depth 1)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> logits (N, n_out)."""
        return self.out(self.body(x))


def build_head(in_dim: int, n_out: int, config: HeadConfig | None = None) -> MLPHead:
    """An :class:`MLPHead` from a :class:`HeadConfig` (default config if None)."""
    config = config or HeadConfig()
    return MLPHead(
        in_dim, n_out, depth=config.depth, width=config.width, dropout=config.dropout, activation=config.activation
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _plain(value: Any, path: str) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{path}.{k}") for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    raise TypeError(f"metadata {path}: {type(value).__name__} cannot be stored in a weights_only model file")


def save_model(path: str | os.PathLike, model: MLPHead, **metadata: Any) -> Path:
    """Save hparams + state_dict (CPU tensors) + plain ``metadata`` (str/int/float/lists/dicts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "unitax-head-v1",
        "hparams": dict(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": _plain(metadata, "metadata"),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> tuple[MLPHead, dict]:
    """Load a model file with ``weights_only=True``; return (model in eval mode, metadata)."""
    try:
        payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ValueError(f"{os.fspath(path)!r} is unreadable ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != "unitax-head-v1":
        raise ValueError(f"{os.fspath(path)!r} is not a unitax head model file")
    try:
        model = MLPHead(**payload["hparams"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a valid unitax head model file ({exc})") from None
    model.eval()
    return model, payload.get("metadata", {})
