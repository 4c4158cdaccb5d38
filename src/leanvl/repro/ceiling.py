"""What a compressed visual token can carry for binding questions, independent of LLM training: an MLP reads the
answer from (compressed features of the frozen encoder, the question's named attribute as a one-hot), trained on
train-split scenes and scored on test-split scenes. Compressions: avgpool to 1 token, avgpool to 4 tokens, and the
oracle 1 token (the mean of the patches under the named object's box: what an ideal query-conditioned 1-token
compressor could deliver)."""
from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

COMPRESSIONS = ("avgpool-1", "avgpool-4", "oracle-1")


def _named(attrs: dict[str, Any], question: str) -> tuple[str, dict[str, Any]]:
    """(the named attribute value, the named object) of a binding question about scene `attrs`."""
    for o in attrs["objects"]:
        if question.startswith(f"What color is the {o['shape']}?"):
            return o["shape"], o
        if question.startswith(f"What shape is the {o['color']} object?"):
            return o["color"], o
    raise ValueError(f"no object named in {question!r}")


def binding_set(split: str, n: int, *, size: int, seed: int) -> list[dict[str, Any]]:
    """Up to n binding questions of `split` scenes: image, named value, named object's box, answer."""
    from leanvl.data.synthetic import scene_for_index
    from leanvl.vlm.vqa_data import binding_question

    out: list[dict[str, Any]] = []
    for i in range(n * 4):
        img, _, attrs = scene_for_index(seed, split, i, size=size)
        qa = binding_question(attrs, random.Random(f"ceiling/{split}/{i}"))
        if qa is None:
            continue
        value, obj = _named(attrs, qa["question"])
        out.append({"image": img, "named": value, "bbox": obj["bbox"], "answer": qa["answer"]})
        if len(out) == n:
            break
    return out


def compress(tokens: torch.Tensor, boxes: list[list[int]], image_size: int) -> dict[str, torch.Tensor]:
    """tokens [N, h*w, d] on a square grid -> {compression: features [N, F]} (see COMPRESSIONS)."""
    n, t, d = tokens.shape
    side = int(round(t ** 0.5))
    grid = tokens.reshape(n, side, side, d)
    half, px = side // 2, image_size / side
    oracle = []
    for g, (x0, y0, x1, y1) in zip(grid, boxes):
        r0, c0 = int(y0 // px), int(x0 // px)
        r1, c1 = max(r0 + 1, int(-(-y1 // px))), max(c0 + 1, int(-(-x1 // px)))
        oracle.append(g[r0:r1, c0:c1].reshape(-1, d).mean(0))
    return {"avgpool-1": tokens.mean(1),
            "avgpool-4": grid.reshape(n, 2, half, 2, half, d).mean((2, 4)).flatten(1),
            "oracle-1": torch.stack(oracle)}


def _fit_score(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], classes: int,
               *, epochs: int, seed: int) -> float:
    """Test accuracy of a 2-hidden-layer MLP trained with AdamW on standardised features."""
    (a, ya), (b, yb) = train, test
    mu, sd = a.mean(0), a.std(0) + 1e-5
    a, b = (a - mu) / sd, (b - mu) / sd
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(a.shape[1], 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, classes))
    opt = torch.optim.AdamW(mlp.parameters(), 1e-3, weight_decay=1e-2)
    for _ in range(epochs):
        perm = torch.randperm(len(a), generator=g)
        for j in range(0, len(a), 256):
            idx = perm[j:j + 256]
            loss = nn.functional.cross_entropy(mlp(a[idx]), ya[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((mlp(b).argmax(1) == yb).float().mean())


def ceiling(encoder_dir: str, *, image_size: int, n_train: int, n_test: int, epochs: int,
            seed: int = 0) -> dict[str, Any]:
    """{compression: {value, ci, n}}: MLP test accuracy on binding answers per compression of `encoder_dir`'s
    frozen tokens, plus `chance` (the most frequent test answer's share)."""
    from leanvl.data.transforms import EvalTransform
    from leanvl.models.encoders import load_encoder
    from leanvl.vlm.metrics import wilson_interval
    from leanvl.vlm.vision import VisionTower

    tower, tf = VisionTower(load_encoder(encoder_dir).eval()), EvalTransform(image_size)
    sets = {s: binding_set(s, n, size=image_size, seed=seed) for s, n in (("train", n_train), ("test", n_test))}
    names = sorted({q["named"] for qs in sets.values() for q in qs})
    answers = sorted({q["answer"] for qs in sets.values() for q in qs})
    feats, labels = {}, {}
    for split, qs in sets.items():
        with torch.no_grad():
            tokens, _ = tower(torch.stack([tf(q["image"]) for q in qs]))
        onehot = nn.functional.one_hot(torch.tensor([names.index(q["named"]) for q in qs]), len(names)).float()
        feats[split] = {c: torch.cat([f, onehot * 3.0], 1)
                        for c, f in compress(tokens, [q["bbox"] for q in qs], image_size).items()}
        labels[split] = torch.tensor([answers.index(q["answer"]) for q in qs])
    n = len(labels["test"])
    out: dict[str, Any] = {}
    for c in COMPRESSIONS:
        acc = _fit_score((feats["train"][c], labels["train"]), (feats["test"][c], labels["test"]), len(answers),
                         epochs=epochs, seed=seed)
        out[c] = {"value": acc, "ci": list(wilson_interval(round(acc * n), n)), "n": n}
    top = int(torch.bincount(labels["test"]).max())
    out["chance"] = {"value": top / n, "ci": list(wilson_interval(top, n)), "n": n}
    return out
