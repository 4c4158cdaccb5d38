"""`pretrain --eval-every`: the evaluator the trainer calls during pre-training (leanvl.train.evaluate's hook).

Every objective: k-NN top-1 of the encoder's pooled features on held-out synthetic scenes (fit on split 'val',
scored on split 'test'; the training stream is split 'train'). Models with a text tower (CLIP, SigLIP, LiT) also:
zero-shot top-1 on the built-in synthetic tasks and image<->text retrieval recall on the test scenes. The scenes
are rendered once and reused; evaluation runs on rank 0 (other ranks return nothing and wait at the barrier).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanvl.eval.knn import knn_accuracy
from leanvl.train import distributed as dist


def _param_of(module: nn.Module) -> torch.Tensor:
    return next(p for p in module.parameters() if p.is_floating_point())


class PretrainEvaluator:
    """evaluator(task, step) -> {"knn_top1", "knn_<task>", and for text towers "zeroshot_top1", "retrieval_*"}."""

    def __init__(self, image_size: int, n: int = 300, seed: int = 0, batch_size: int = 128) -> None:
        self.image_size, self.n, self.seed, self.batch_size = image_size, n, seed, batch_size
        self.data: dict[str, tuple[torch.Tensor, list[dict], list[str]]] = {}

    def scenes(self, split: str) -> tuple[torch.Tensor, list[dict], list[str]]:
        """(images [n,3,S,S], attrs, captions) of the first n held-out scenes of `split` (rendered once)."""
        if split not in self.data:
            from leanvl.data.synthetic import scene_for_index
            from leanvl.data.transforms import EvalTransform

            transform = EvalTransform(self.image_size)
            rows = [scene_for_index(self.seed, split, i, size=self.image_size) for i in range(self.n)]
            self.data[split] = (torch.stack([transform(im) for im, _, _ in rows]), [a for _, _, a in rows],
                                [c for _, c, _ in rows])
        return self.data[split]

    def _batches(self, images: torch.Tensor, like: torch.Tensor):
        for i in range(0, len(images), self.batch_size):
            yield images[i: i + self.batch_size].to(like.device, like.dtype)

    def features(self, task: nn.Module, images: torch.Tensor) -> torch.Tensor:
        like = _param_of(task.encoder)
        return torch.cat([task.encoder.forward_pooled(x).float().cpu() for x in self._batches(images, like)])

    def knn(self, task: nn.Module) -> dict[str, float]:
        from leanvl.eval.probe import SYNTHETIC_TASKS

        (xtr, atr, _), (xte, ate, _) = self.scenes("val"), self.scenes("test")
        ftr, fte = self.features(task, xtr), self.features(task, xte)
        out = {}
        for name, (keep, label) in SYNTHETIC_TASKS.items():
            itr = [i for i, a in enumerate(atr) if keep(a)]
            index = {c: k for k, c in enumerate(sorted({label(atr[i]) for i in itr}))}
            ite = [i for i, a in enumerate(ate) if keep(a) and label(a) in index]
            ytr = torch.tensor([index[label(atr[i])] for i in itr])
            yte = torch.tensor([index[label(ate[i])] for i in ite])
            out[f"knn_{name}"] = knn_accuracy(ftr[itr], ytr, fte[ite], yte)
        out["knn_top1"] = sum(out[f"knn_{t}"] for t in SYNTHETIC_TASKS) / len(SYNTHETIC_TASKS)
        return out

    def text_metrics(self, task: nn.Module) -> dict[str, float]:
        from leanvl.eval.retrieval import recall_metrics
        from leanvl.eval.zeroshot import class_embeddings, synthetic_zeroshot_labels

        images, attrs, captions = self.scenes("test")
        like = _param_of(task.encoder)
        img = torch.cat([nn.functional.normalize(task.encode_image(x).float(), dim=-1).cpu()
                         for x in self._batches(images, like)])
        out: dict[str, float] = {}
        tasks = synthetic_zeroshot_labels(attrs)
        for name, (rows, labels, classnames, templates) in tasks.items():
            classes = class_embeddings(task, classnames, templates).cpu()
            out[f"zeroshot_{name}"] = float(((img[rows] @ classes.T).argmax(1) == labels).double().mean())
        out["zeroshot_top1"] = sum(out[f"zeroshot_{t}"] for t in tasks) / len(tasks)
        txt = torch.cat([task.encode_text(captions[i: i + self.batch_size]).float().cpu()
                         for i in range(0, len(captions), self.batch_size)])
        out.update({f"retrieval_{k}": v for k, v in recall_metrics(img, nn.functional.normalize(txt, dim=-1)).items()})
        return out

    def __call__(self, task: nn.Module, step: int) -> dict[str, Any]:
        if not dist.is_main():
            return {}
        out = self.knn(task)
        if hasattr(task, "encode_text") and hasattr(task, "encode_image"):
            out.update(self.text_metrics(task))
        return out
