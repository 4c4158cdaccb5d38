"""VLM training data: a Source (synthetic scenes, LLaVA json, shards, CSV) -> conversations -> tokenised batches.

Which conversation a sample trains on: its own LLaVA `conversations` when it has them; for synthetic scenes
(attrs with `objects`) a built-in VQA question at stage 2 or the caption at stage 1; otherwise its caption.
The choice is a pure function of (seed, raw index), so resumed runs see exactly the same batches.
"""
from __future__ import annotations

import functools
import os
import random
from typing import Any, Callable, Iterator

import torch

from leanvl.data.sample import Sample, SkipSample
from leanvl.data.source_base import WrappedSource
from leanvl.data.sources import Source, SyntheticSource, decode_image
from leanvl.errors import DataError, LeanvlError
from leanvl.vlm.chat import collate, encode_conversation
from leanvl.vlm.vqa_data import caption_conversation, conversation, questions_for, read_llava_json

STAGES = (1, 2)


def check_stage(stage: int) -> int:
    """`stage` when it is 1 (captions) or 2 (instructions); LeanvlError otherwise."""
    if stage not in STAGES:
        raise LeanvlError(f"--stage must be 1 or 2, got {stage}")
    return stage


def image_transform(size: int) -> Callable[[Any], torch.Tensor]:
    """Resize + centre crop to `size`, CLIP mean/std (leanvl.data.transforms.EvalTransform)."""
    from leanvl.data.transforms import EvalTransform

    return EvalTransform(size)


class LlavaJsonSource(Source):
    """LLaVA json as a leanvl Source: raw items are entry indices (re-shuffled per epoch with the seed)."""

    def __init__(self, path: str, *, seed: int = 0, shuffle: bool = True, image_size: int = 64) -> None:
        self.entries, self.root = read_llava_json(path)
        self.path, self.seed, self.shuffle, self.image_size = path, seed, shuffle, image_size
        missing = [e["image"] for e in self.entries if not os.path.isfile(os.path.join(self.root, e["image"]))]
        if missing:
            raise DataError(f"{path}: {len(missing)} image file(s) missing, e.g. {missing[0]}")

    def __repr__(self) -> str:
        return self.path

    def epoch_size(self, epoch: int) -> int:
        return len(self.entries)

    def raw(self, epoch: int) -> Iterator[int]:
        order = list(range(len(self.entries)))
        if self.shuffle:
            random.Random(f"llava-epoch/{self.seed}/{epoch}").shuffle(order)
        return iter(order)

    def decode(self, raw: int) -> Sample:
        entry = self.entries[raw]
        if not any(t["from"] in ("gpt", "assistant") and t["value"].strip() for t in entry["conversations"]):
            raise SkipSample("no_turns")  # nothing to train on: no (non-empty) answer turn
        image = decode_image(None, path=os.path.join(self.root, entry["image"]))
        answers = [t.get("value", "") for t in entry["conversations"] if t.get("from") in ("gpt", "assistant")]
        attrs = {"conversations": entry["conversations"], "split": entry.get("split", "all"),
                 "kind": entry.get("kind", "")}
        attrs.update({k: entry[k] for k in ("answers", "options") if k in entry})
        return Sample(str(entry.get("id", raw)), image, answers[0] if answers else "", attrs)


QUESTION_SETS = ("binding", "ocr")


class QuestionSetSource(WrappedSource):
    """A synthetic Source whose scenes ask the named built-in question set (`synthetic+binding`): every sample's
    attrs get `questions` = the set's name (see leanvl.vlm.vqa_data)."""

    def __init__(self, base: Source, questions: str) -> None:
        super().__init__(base)
        self.questions = questions

    def __repr__(self) -> str:
        return f"{self.base!r}+{self.questions}"

    def decode(self, raw: Any) -> Sample:
        sample = self.base.decode(raw)
        sample.attrs["questions"] = self.questions
        return sample


class OcrGridSource(QuestionSetSource):
    """`synthetic+ocr`: scene i is a letter grid when synthetic.is_ocr_grid(seed, split, i), else the base's own
    scene, tagged `questions` = "ocr" (see leanvl.vlm.vqa_data)."""

    def __init__(self, base: Any) -> None:
        super().__init__(base, "ocr")

    def _grid(self, raw: Any) -> tuple[Any, str, dict[str, Any]] | None:
        from leanvl.data import synthetic

        b = self.base
        if not synthetic.is_ocr_grid(b.seed, b.split, raw):
            return None
        return synthetic.ocr_grid_for_index(b.seed, b.split, raw, size=b.image_size)

    def caption(self, raw: Any) -> str:
        grid = self._grid(raw)
        return grid[1] if grid else self.base.caption(raw)

    def decode(self, raw: Any) -> Sample:
        grid = self._grid(raw)
        if grid is None:
            return super().decode(raw)
        from leanvl.data import synthetic

        image, caption, attrs = grid
        attrs["questions"] = self.questions
        return Sample(synthetic.synthetic_key(self.base.seed, self.base.split, raw), image, caption, attrs)


def open_vlm_source(spec: str, *, image_size: int, seed: int = 0, split: str = "train", shuffle: bool = True,
                    cache: Any = None):
    """`synthetic[:N]` (optionally `+binding` or `+ocr`: that question set), a LLaVA `.json`, shards (local or remote,
    `cache`: a ShardCache) or CSV as a Source."""
    base, _, questions = spec.rpartition("+")
    if base.startswith("synthetic") and questions:
        if questions not in QUESTION_SETS:
            raise LeanvlError(f"--data {spec}: unknown question set '{questions}' (choose from "
                              f"{', '.join(QUESTION_SETS)})")
        source = open_vlm_source(base, image_size=image_size, seed=seed, split=split, shuffle=shuffle)
        if questions == "ocr" and not isinstance(source, SyntheticSource):
            raise LeanvlError(f"--data {spec}: +ocr applies to synthetic or synthetic:N only")
        return OcrGridSource(source) if questions == "ocr" else QuestionSetSource(source, questions)
    if spec.lower().endswith(".json"):
        return LlavaJsonSource(spec, seed=seed, shuffle=shuffle, image_size=image_size)
    from leanvl.data.sources import open_source

    return open_source(spec, image_size=image_size, seed=seed, split=split, shuffle=shuffle, cache=cache)


def conversation_for(caption: str, attrs: dict[str, Any], stage: int, rng: random.Random) -> list[dict]:
    """The conversation one sample trains on (see module docstring)."""
    if attrs.get("conversations"):
        return attrs["conversations"]
    if attrs.get("objects") is not None and stage == 2:
        qa = questions_for(attrs, rng)
        return conversation(qa["question"], qa["answer"])
    return caption_conversation(caption)


def tokenize_batch(batch: dict[str, Any], tokenizer: Any, *, stage: int, seed: int) -> dict[str, Any]:
    """Add `input_ids`, `labels`, `attention_mask`, `question` to a make_batches batch."""
    if len(batch["index"]) == 0:
        return batch
    encoded = []
    for idx, caption, attrs in zip(batch["index"].tolist(), batch["caption"], batch["attrs"]):
        rng = random.Random(f"vlm-conv/{seed}/{idx}")
        encoded.append(encode_conversation(tokenizer, conversation_for(caption, attrs, stage, rng)))
    batch.update(collate(encoded, tokenizer.pad_token_id))
    return batch


class _Transform:
    """The VLM's image transform as a picklable (img, rng) callable (it ignores the rng)."""

    def __init__(self, base: Callable[[Any], torch.Tensor]) -> None:
        self.base = base

    def __call__(self, img: Any, rng: random.Random) -> torch.Tensor:
        return self.base(img.convert("RGB"))


def vlm_batches(source: Any, tokenizer: Any, *, batch_size: int, image_size: int, stage: int, seed: int = 0,
                num_workers: int = 0) -> Callable[[int], Iterator[dict[str, Any]]]:
    """`batches(start_microbatch)` for the shared trainer."""
    from leanvl.data.loader import make_batches

    check_stage(stage)
    base = image_transform(image_size)

    hook = functools.partial(tokenize_batch, tokenizer=tokenizer, stage=stage, seed=seed)

    def batches(start: int) -> Iterator[dict[str, Any]]:  # start: samples consumed by all ranks
        from leanvl.train import distributed as dist

        return make_batches(source, batch_size=batch_size, transform=_Transform(base), seed=seed, start=start,
                            stride=dist.world_size(), offset=dist.rank(), num_workers=num_workers,
                            batch_hook=hook)  # tokenization and chat templating run in the loader workers

    return batches
