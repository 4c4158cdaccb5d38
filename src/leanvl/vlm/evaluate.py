"""VQA evaluation: greedy answers scored with exact match, VQAv2 soft accuracy, ANLS and multiple choice, overall and
per split (reasoning / ocr / a json's own splits) and kind, each with a 95% interval."""
from __future__ import annotations

import itertools
import random
from typing import Any, Iterator

import torch

from leanvl.errors import LeanvlError
from leanvl.vlm.batches import image_transform, open_vlm_source
from leanvl.vlm.chat import IMAGE_PLACEHOLDER
from leanvl.vlm.generate import generate
from leanvl.vlm.scoring import score, summarise
from leanvl.vlm.vqa_data import eval_questions


def _conversation_item(sample: Any) -> dict[str, Any]:
    turns = sample.attrs["conversations"]
    human = next((t["value"] for t in turns if t.get("from") in ("human", "user")), "")
    answer = next((t["value"] for t in turns if t.get("from") in ("gpt", "assistant")), "")
    item = {"image": sample.image, "question": human.replace(IMAGE_PLACEHOLDER, "").strip(), "answer": answer,
            "split": sample.attrs.get("split") or "all", "kind": sample.attrs.get("kind", "")}
    for key in ("answers", "options"):
        if sample.attrs.get(key):
            item[key] = list(sample.attrs[key])
    return item


def _items(source: Any, seed: int) -> Iterator[dict[str, Any]]:
    """One epoch of the source as questions: its own conversations, or built-in questions from scene attrs."""
    from leanvl.data.sample import SkipSample

    for r, raw in enumerate(source.raw(0)):
        try:
            sample = source.decode(raw)
        except SkipSample:
            continue
        if sample.attrs.get("conversations"):
            yield _conversation_item(sample)
        elif sample.attrs.get("objects") is not None:
            for qa in eval_questions(sample.attrs, random.Random(f"vlm-eval/{seed}/{r}")):
                yield {"image": sample.image, **qa}
        else:
            raise LeanvlError(f"{source}: samples have neither conversations nor scene attributes to ask about")


def eval_items(spec: str, *, image_size: int, limit: int | None, seed: int = 0) -> list[dict[str, Any]]:
    """Question/answer/split/image items: a json's or shards' conversations, or built-in questions (test split)."""
    source = open_vlm_source(spec, image_size=image_size, seed=seed, split="test", shuffle=False)
    out = list(itertools.islice(_items(source, seed), limit or 100_000))
    if not out:
        raise LeanvlError(f"--data {spec}: no evaluation questions")
    return out


def accuracy(records: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Summary of scored records (see leanvl.vlm.scoring.summarise): exact match per split, counts, kinds, relaxed,
    and every metric with its 95% interval under `metrics`."""
    return summarise(records, seed)


@torch.no_grad()
def evaluate(model: Any, items: list[dict[str, Any]], *, batch_size: int = 16, with_image: bool = True,
             max_new_tokens: int = 8, progress: bool = False,
             seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy answers for every item, scored by leanvl.vlm.scoring.score; returns (summary dict, per-item records)."""
    transform = image_transform(model.cfg.image_size)
    predictions: list[str] = []
    chunks = range(0, len(items), batch_size)
    if progress:
        from tqdm import tqdm
        chunks = tqdm(chunks, desc="vlm eval", unit="batch")
    for start in chunks:
        chunk = items[start:start + batch_size]
        images = torch.stack([transform(it["image"].convert("RGB")) for it in chunk]) if with_image else None
        answers = generate(model, images, [it["question"] for it in chunk], max_new_tokens=max_new_tokens)
        predictions.extend(answers)
    return score(predictions, items, seed)
