"""Linear probe on frozen pooled features: built-in synthetic attributes, or an ImageFolder (train/ + val/)."""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.eval.linear import accuracy, fit_with_sweep

# Probe tasks on synthetic scenes: name -> (which scenes, label of a scene). Shape and colour are probed on
# single-object scenes (the caption names them unambiguously); count on all scenes.
SYNTHETIC_TASKS: dict[str, tuple[Callable[[dict], bool], Callable[[dict], str]]] = {
    "shape": (lambda a: len(a["objects"]) == 1, lambda a: a["objects"][0]["shape"]),
    "color": (lambda a: len(a["objects"]) == 1, lambda a: a["objects"][0]["color"]),
    "count": (lambda a: True, lambda a: str(len(a["objects"]))),
}


@torch.no_grad()
def extract_features(encoder: nn.Module, images: Iterable[torch.Tensor], device: str = "cpu") -> torch.Tensor:
    """Pooled features [N, D] of image batches, encoder in eval mode."""
    encoder.eval().to(device)
    feats = [encoder.forward_pooled(x.to(device)).float().cpu() for x in images]
    return torch.cat(feats) if feats else torch.zeros(0)


def _batched(tensors: list[torch.Tensor], size: int = 256) -> Iterable[torch.Tensor]:
    for i in range(0, len(tensors), size):
        yield torch.stack(tensors[i: i + size])


def synthetic_split(split: str, n: int, image_size: int, seed: int) -> tuple[list[torch.Tensor], list[dict]]:
    """First `n` scenes of a synthetic split with at least n/2 single-object scenes, as eval-transformed tensors."""
    from leanvl.data.synthetic import scene_for_index
    from leanvl.data.transforms import EvalTransform

    transform = EvalTransform(image_size)
    images, attrs, singles, i = [], [], 0, 0
    while len(images) < n or singles < n // 2:
        image, _, a = scene_for_index(seed, split, i, size=image_size)
        i += 1
        single = len(a["objects"]) == 1
        if len(images) >= n and not single:
            continue  # top up single-object scenes only
        images.append(transform(image))
        attrs.append(a)
        singles += single
    return images, attrs


def probe_synthetic(encoder: nn.Module, image_size: int, n_train: int = 2000, n_test: int = 1000,
                    seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Probe top-1 per synthetic task (fit on split 'val', score on 'test'); `top1` = mean over tasks."""
    data = {}
    for split, n in (("val", n_train), ("test", n_test)):
        images, attrs = synthetic_split(split, n, image_size, seed)
        data[split] = (extract_features(encoder, _batched(images), device), attrs)
    out: dict[str, Any] = {}
    for task, (keep, label) in SYNTHETIC_TASKS.items():
        (xtr, atr), (xte, ate) = data["val"], data["test"]
        itr = [i for i, a in enumerate(atr) if keep(a)]
        ite = [i for i, a in enumerate(ate) if keep(a)]
        classes = sorted({label(atr[i]) for i in itr})
        index = {c: k for k, c in enumerate(classes)}
        ytr = torch.tensor([index[label(atr[i])] for i in itr])
        te_known = [i for i in ite if label(ate[i]) in index]
        yte = torch.tensor([index[label(ate[i])] for i in te_known])
        probe = fit_with_sweep(xtr[itr], ytr, seed=seed)
        out[task] = accuracy(probe, xte[te_known], yte)
    out["top1"] = sum(out[t] for t in SYNTHETIC_TASKS) / len(SYNTHETIC_TASKS)
    return out


def probe_imagefolder(encoder: nn.Module, root: str, image_size: int, device: str = "cpu") -> dict[str, Any]:
    """Probe top-1 on an ImageFolder root holding `train/` and `val/` with the same class folders."""
    from torchvision.datasets import ImageFolder

    from leanvl.data.transforms import EvalTransform

    for part in ("train", "val"):
        if not os.path.isdir(os.path.join(root, part)):
            raise LeanvlError(f"--data {root}: expected an ImageFolder root with train/ and val/ (missing {part}/)")
    transform = EvalTransform(image_size)
    sets = {p: ImageFolder(os.path.join(root, p), transform=transform) for p in ("train", "val")}
    if sets["train"].classes != sets["val"].classes:
        raise LeanvlError(f"--data {root}: train/ and val/ have different class folders")
    feats = {}
    for part, ds in sets.items():
        loader = torch.utils.data.DataLoader(ds, batch_size=128)
        feats[part] = (extract_features(encoder, (x for x, _ in loader), device),
                       torch.tensor(ds.targets))
    probe = fit_with_sweep(*feats["train"])
    return {"top1": accuracy(probe, *feats["val"]), "classes": len(sets["train"].classes)}
