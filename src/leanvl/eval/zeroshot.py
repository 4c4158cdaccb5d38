"""Zero-shot classification with a model that has a text tower (CLIP, or LiT on any encoder).

Each class gets the mean of its L2-normalised prompt embeddings (a template ensemble), renormalised; an image is
assigned the class whose embedding has the highest cosine similarity with its image embedding.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from leanvl.errors import LeanvlError


def require_text_tower(model: nn.Module, ckpt: str) -> None:
    """LeanvlError unless `model` can embed both images and text."""
    if not (hasattr(model, "encode_text") and hasattr(model, "encode_image")):
        raise LeanvlError(f"--ckpt {ckpt}: this model has no text tower; train one against its image encoder with "
                          f"`leanvl pretrain --objective lit --lit-encoder {ckpt} ...` and evaluate that run")


@torch.no_grad()
def class_embeddings(model: nn.Module, classnames: list[str], templates: Iterable[str],
                     chunk: int = 512) -> torch.Tensor:
    """[C, E]: per class, the renormalised mean of its prompts' normalised text embeddings."""
    templates = list(templates)
    prompts = [t.format(name) for name in classnames for t in templates]
    emb = torch.cat([nn.functional.normalize(model.encode_text(prompts[i: i + chunk]).float(), dim=-1)
                     for i in range(0, len(prompts), chunk)])
    emb = emb.view(len(classnames), len(templates), -1).mean(1)
    return nn.functional.normalize(emb, dim=-1)


@torch.no_grad()
def image_embeddings(model: nn.Module, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """[N, E] normalised image embeddings of image batches (model in eval mode)."""
    model.eval()
    out = [nn.functional.normalize(model.encode_image(x).float(), dim=-1) for x in batches]
    return torch.cat(out) if out else torch.zeros(0)


def zeroshot_accuracy(model: nn.Module, batches: Iterable[torch.Tensor], labels: torch.Tensor,
                      classnames: list[str], templates: Iterable[str]) -> float:
    """Top-1 zero-shot accuracy of `model` on images (in batches) with integer `labels` indexing `classnames`."""
    if not classnames:
        raise LeanvlError("zero-shot needs class names")
    classes = class_embeddings(model, classnames, templates)
    images = image_embeddings(model, batches)
    pred = (images @ classes.T).argmax(1)
    return float((pred == labels).double().mean())


def synthetic_zeroshot_labels(attrs: list[dict]) -> dict[str, tuple[list[int], torch.Tensor, list[str], tuple]]:
    """Per built-in task: (rows of `attrs` it scores, their class labels, class names, templates)."""
    from leanvl.eval.classnames import synthetic_tasks
    from leanvl.eval.probe import SYNTHETIC_TASKS

    out = {}
    for task, (classnames, templates) in synthetic_tasks().items():
        keep, label = SYNTHETIC_TASKS[task]
        index = {c: k for k, c in enumerate(classnames)}
        rows = [i for i, a in enumerate(attrs) if keep(a) and label(a) in index]
        out[task] = (rows, torch.tensor([index[label(attrs[i])] for i in rows]), classnames, templates)
    return out


def zeroshot_synthetic(model: nn.Module, image_size: int, n_test: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Zero-shot top-1 per built-in task on held-out synthetic scenes (split 'test'); `top1` = mean over tasks."""
    from leanvl.eval.classnames import synthetic_tasks
    from leanvl.eval.probe import _batched, synthetic_split

    images, attrs = synthetic_split("test", n_test, image_size, seed)
    out: dict[str, Any] = {}
    for task, (rows, labels, classnames, templates) in synthetic_zeroshot_labels(attrs).items():
        out[task] = zeroshot_accuracy(model, _batched([images[i] for i in rows]), labels, classnames, templates)
        out[f"{task}_chance"] = 1.0 / len(classnames)
    tasks = list(synthetic_tasks())
    out["top1"] = sum(out[t] for t in tasks) / len(tasks)
    return out
