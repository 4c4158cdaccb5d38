"""VQA evaluation: normalised exact-match accuracy overall and per split (reasoning / ocr / a json's own splits)."""
from __future__ import annotations

import itertools
import random
from typing import Any, Iterator

import torch

from leanvl.errors import LeanvlError
from leanvl.vlm.batches import image_transform, open_vlm_source
from leanvl.vlm.chat import IMAGE_PLACEHOLDER
from leanvl.vlm.generate import generate
from leanvl.vlm.vqa_data import contains_answer, eval_questions, is_correct


def _conversation_item(sample: Any) -> dict[str, Any]:
    turns = sample.attrs["conversations"]
    human = next((t["value"] for t in turns if t.get("from") in ("human", "user")), "")
    answer = next((t["value"] for t in turns if t.get("from") in ("gpt", "assistant")), "")
    return {"image": sample.image, "question": human.replace(IMAGE_PLACEHOLDER, "").strip(), "answer": answer,
            "split": sample.attrs.get("split") or "all", "kind": sample.attrs.get("kind", "")}


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


def _rates(records: list[dict[str, Any]], key: str, field: str) -> dict[str, float]:
    groups: dict[str, list[bool]] = {}
    for r in records:
        groups.setdefault(r[key], []).append(bool(r[field]))
    return {k: sum(v) / len(v) for k, v in sorted(groups.items())}


def accuracy(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact-match accuracy per split and overall, plus counts, per-kind accuracy and the relaxed (contains) match."""
    out: dict[str, Any] = {"splits": _rates(records, "split", "correct"),
                           "overall": sum(r["correct"] for r in records) / len(records)}
    counts: dict[str, int] = {}
    for r in records:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    out["counts"] = dict(sorted(counts.items()))
    if all(r.get("kind") for r in records):
        out["kinds"] = _rates(records, "kind", "correct")
    out["relaxed"] = {"splits": _rates(records, "split", "contains"),
                      "overall": sum(r["contains"] for r in records) / len(records)}
    return out


@torch.no_grad()
def evaluate(model: Any, items: list[dict[str, Any]], *, batch_size: int = 16, with_image: bool = True,
             max_new_tokens: int = 8, progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Greedy answers for every item; returns (accuracy dict, per-item records)."""
    transform = image_transform(model.cfg.image_size)
    records = []
    chunks = range(0, len(items), batch_size)
    if progress:
        from tqdm import tqdm
        chunks = tqdm(chunks, desc="vlm eval", unit="batch")
    for start in chunks:
        chunk = items[start:start + batch_size]
        images = torch.stack([transform(it["image"].convert("RGB")) for it in chunk]) if with_image else None
        answers = generate(model, images, [it["question"] for it in chunk], max_new_tokens=max_new_tokens)
        for it, pred in zip(chunk, answers):
            records.append({"question": it["question"], "answer": it["answer"], "prediction": pred,
                            "split": it["split"], "kind": it.get("kind", ""),
                            "correct": is_correct(pred, it["answer"]), "contains": contains_answer(pred, it["answer"])})
    return accuracy(records), records
