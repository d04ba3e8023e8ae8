"""Classify one image with a finished run: universal top-k and each domain's top-k.

The image goes through the run's backbone once; the universal head gives ``p`` (U,), and each
domain's prediction is ``d_a = M_a p`` (docs/architecture.md, universal model). Model files load with weights_only=True.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["load_image", "predict_features", "predict_image"]


def load_image(image: str | os.PathLike | np.ndarray, *, size: int) -> np.ndarray:
    """An image path or array (H, W[, C]) -> uint8 (size, size, 3), RGB, resized (bilinear)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        pil = Image.fromarray(arr[..., :3] if arr.shape[2] != 1 else arr[..., 0]).convert("RGB")
    else:
        path = Path(image)
        if path.is_dir():
            raise ValueError(f"image {os.fspath(image)!r} is a folder, not an image file")
        if not path.is_file():
            raise FileNotFoundError(f"image {os.fspath(image)!r} does not exist")
        from core.sources import decode_image  # same decoding as the feature pipeline (16-bit, RGBA, ...)

        try:
            pil = Image.fromarray(decode_image(path))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ValueError(f"{os.fspath(image)!r} is not a readable image: {exc}") from exc
    return np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _topk(scores: np.ndarray, names: list[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [(names[i], float(scores[i])) for i in order]


def predict_features(
    feature: np.ndarray,
    model,
    mappings: list,  # (K_a, U) per domain, dense or scipy.sparse
    universal_names: list[str],
    class_names: list[list[str]],
    domain_names: list[str],
    *,
    top_k: int = 5,
) -> dict:
    """From one feature vector (D,) (for a fine-tuned network: one image (3, H, W) in [0, 1]):
    {"universal": [(name, p)], "domains": {name: [(class, d)]}}."""
    import torch

    from core.universal import domain_predictions

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    with torch.no_grad():
        logits = model(torch.as_tensor(np.asarray(feature, np.float32)[None]))
    p = torch.softmax(logits.float(), dim=1).numpy()[0]
    out = {"universal": _topk(p, universal_names, top_k), "domains": {}}
    for a, M in enumerate(mappings):
        out["domains"][domain_names[a]] = _topk(domain_predictions(p[None], M)[0], class_names[a], top_k)
    return out


def predict_image(
    run, image: str | os.PathLike | np.ndarray, *, method: str | None = None, top_k: int = 5, device: str | None = None
) -> dict:
    """Universal top-k and each domain's top-k for one image, with a finished run's models.

    ``run`` is a run id, a run folder or a :class:`core.runs.Run`; ``method`` the selection
    method folder (default: the first with a universal model).
    """
    import torch

    from core.backbones import load_backbone
    from core.device import pick_device
    from core.heads import load_model
    from core.runs import Run, open_run

    run = run if isinstance(run, Run) else open_run(run)
    available = run.methods_with_model()
    if not available:
        raise ValueError(f"run {run.id!r} has no universal model yet (state {run.status()['state']})")
    method = method or available[0]
    if method not in available:
        raise ValueError(f"method {method!r} has no universal model in run {run.id!r}; available: {available}")
    model, meta = load_model(run.universal_model_path(method))
    tax = run.taxonomy(method)
    cfg = run.config
    size = int(meta.get("image_size") or cfg["features"]["image_size"])
    img = load_image(image, size=size)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255.0
    if hasattr(model, "backbone"):  # a fine-tuned network (features.mode finetune): it reads the image itself
        feat = x[0].numpy()
    else:
        backbone = load_backbone(meta.get("backbone") or cfg["features"]["backbone"])
        dev = pick_device(device)
        backbone_model = backbone.to(dev) if hasattr(backbone, "to") else backbone
        with torch.no_grad():
            feat = backbone_model.features(x.to(dev)).float().cpu().numpy()[0]
    out = predict_features(
        feat,
        model,
        tax.sparse_mappings,
        list(tax.names),
        [d["class_names"] for d in run.domains()],
        run.domain_names(),
        top_k=top_k,
    )
    out["method"] = method
    return out
