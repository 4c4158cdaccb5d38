"""Image<->text retrieval recall (R@1, R@5) on held-out captioned images, for models with a text tower.

Image i and caption i form the only correct pair. The rank of the correct item is 1 + the number of candidates
scoring strictly higher (ties, e.g. two scenes with the same caption, resolve in favour of the correct item).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def correct_ranks(sim: torch.Tensor) -> torch.Tensor:
    """For a square similarity matrix (queries x candidates, pair i<->i correct): 1-based rank of each match."""
    target = sim.diagonal().unsqueeze(1)
    return (sim > target).sum(1) + 1


def recall_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """image->text and text->image recall@k of paired, normalised embeddings; `mean_r1` averages both R@1."""
    sim = image_emb.float() @ text_emb.float().T
    ranks = {"i2t": correct_ranks(sim), "t2i": correct_ranks(sim.T)}
    out = {f"{d}_r{k}": float((r <= k).double().mean()) for d, r in ranks.items() for k in ks}
    out["mean_r1"] = (out["i2t_r1"] + out["t2i_r1"]) / 2
    return out


@torch.no_grad()
def retrieval_synthetic(model: nn.Module, image_size: int, n: int = 500, seed: int = 0,
                        batch_size: int = 256) -> dict[str, Any]:
    """Recall on the first `n` scenes of the held-out synthetic split 'test' with their own captions."""
    from leanvl.data.synthetic import scene_for_index
    from leanvl.data.transforms import EvalTransform
    from leanvl.eval.zeroshot import image_embeddings

    transform = EvalTransform(image_size)
    images, captions = [], []
    for i in range(n):
        image, caption, _ = scene_for_index(seed, "test", i, size=image_size)
        images.append(transform(image))
        captions.append(caption)
    model.eval()
    img = image_embeddings(model, (torch.stack(images[i: i + batch_size]) for i in range(0, n, batch_size)))
    txt = torch.cat([nn.functional.normalize(model.encode_text(captions[i: i + batch_size]).float(), dim=-1)
                     for i in range(0, n, batch_size)])
    return {"n": n, "chance_r1": 1.0 / n, **recall_metrics(img, txt)}
