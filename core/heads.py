"""Fully connected classification heads on backbone features, and their model files.

A model file is a ``torch.save`` of plain data only (a state_dict of tensors plus str/int/float
metadata), so it loads with ``torch.load(path, weights_only=True)``. Two formats: a head alone
(``unitax-head-v1``, the frozen-feature protocol) and a whole fine-tuned network, backbone +
head (``unitax-network-v1``, :mod:`core.finetune`); :func:`load_model` reads both.
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
    """``depth`` Linear layers: in_dim -> width -> ... -> width -> n_out, or in_dim -> widths[0]
    -> ... -> widths[-1] -> n_out.

    Optional dropout on the input (``input_dropout``); between layers: activation (skipped for
    ``"none"``, as in the thesis, which makes the stack one linear map), then dropout.
    ``features(x)`` returns the input of the last layer (the universal feature used for the
    embedding plot). The thesis's baseline head is ``widths=(1024, 512, 256, 128),
    input_dropout=0.5, dropout=0.2, activation="none"``; its universal head ``widths=(1024,),
    dropout=0.0, activation="none"`` (core.config.HEAD_PRESETS).
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
        widths: tuple[int, ...] | list[int] | None = None,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {list(ACTIVATIONS)}")
        hidden = [width] * (depth - 1) if widths is None else list(widths)
        sizes = [("in_dim", in_dim), ("n_out", n_out), ("depth", depth), ("width", width)]
        for name, value in sizes + [(f"widths[{i}]", w) for i, w in enumerate(hidden)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if widths is not None and depth != len(hidden) + 1:
            raise ValueError(f"depth must be len(widths) + 1 = {len(hidden) + 1}, got {depth!r}")
        for name, value in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.hparams = {
            "in_dim": in_dim,
            "n_out": n_out,
            "depth": depth,
            "width": width,
            "dropout": float(dropout),
            "activation": activation,
            "widths": None if widths is None else list(hidden),
            "input_dropout": float(input_dropout),
        }
        dims = [in_dim] + hidden
        body: list[nn.Module] = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
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
        in_dim,
        n_out,
        depth=config.depth,
        width=config.width,
        dropout=config.dropout,
        activation=config.activation,
        widths=None if config.widths is None else tuple(config.widths),
        input_dropout=config.input_dropout,
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


def save_model(path: str | os.PathLike, model: nn.Module, **metadata: Any) -> Path:
    """Save hparams + state_dict (CPU tensors) + plain ``metadata`` (str/int/float/lists/dicts).

    ``model`` is an :class:`MLPHead`, or a fine-tuned network (:class:`core.finetune.FinetunedNet`:
    anything with a ``payload()`` giving its format, architecture and weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "payload"):
        payload = {**model.payload(), "metadata": _plain(metadata, "metadata")}
    else:
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


def load_model(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a model file with ``weights_only=True``; return (model in eval mode, metadata).

    A head file gives an :class:`MLPHead` (input: features (N, D)); a network file gives a
    :class:`core.finetune.FinetunedNet` (input: images (N, 3, H, W) in [0, 1])."""
    from core.signals import Cancelled

    try:
        payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    except (FileNotFoundError, Cancelled):  # a cancel while loading is a cancel, not a damaged file
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ValueError(f"{os.fspath(path)!r} is unreadable ({str(exc).splitlines()[0][:120]})") from None
    if isinstance(payload, dict) and payload.get("format") == "unitax-network-v1":
        from core.finetune import network_from_payload  # a fine-tuned backbone + head

        try:
            model = network_from_payload(payload)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise ValueError(f"{os.fspath(path)!r} is not a valid unitax network file ({exc})") from None
        return model.eval(), payload.get("metadata", {})
    if not isinstance(payload, dict) or payload.get("format") != "unitax-head-v1":
        raise ValueError(f"{os.fspath(path)!r} is not a unitax head model file")
    try:
        model = MLPHead(**payload["hparams"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)!r} is not a valid unitax head model file ({exc})") from None
    model.eval()
    return model, payload.get("metadata", {})
