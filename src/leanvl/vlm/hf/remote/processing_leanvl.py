"""LeanvlProcessor: leanvl's image transform and chat-template prompt for an exported leanvl VLM.

`processor(images=[PIL...], text=[question...])` -> BatchFeature with `pixel_values`, left-padded `input_ids` /
`attention_mask` (the chat template's generation prompt around one `<image>` slot per question) and, for QueCC,
`query_input_ids` / `query_attention_mask`. `batch_decode(generated)` returns the answers.
"""
import json
import os

import torch
from transformers import AutoTokenizer, BatchFeature

from .leanvl_chat import query_batch
from .leanvl_generate import prompt_batch
from .leanvl_transforms import EvalTransform

PROCESSOR_CONFIG = "processor_config.json"


class LeanvlProcessor:
    """Tokenizer (with chat template) + leanvl's eval image transform (resize, centre crop, CLIP mean/std)."""

    def __init__(self, tokenizer, image_size: int, needs_query: bool = False) -> None:
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.needs_query = bool(needs_query)
        self.transform = EvalTransform(self.image_size)

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> "LeanvlProcessor":
        """Read the tokenizer and processor_config.json of an export directory."""
        keep = {k: v for k, v in kwargs.items() if k in ("local_files_only", "revision", "cache_dir", "trust_remote_code")}
        tokenizer = AutoTokenizer.from_pretrained(path, **keep)
        with open(os.path.join(path, PROCESSOR_CONFIG)) as f:
            cfg = json.load(f)
        return cls(tokenizer, cfg["image_size"], cfg.get("needs_query", False))

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoProcessor") -> None:
        """Called by AutoProcessor for remote code; the auto_map is already in processor_config.json."""
        cls._auto_class = auto_class

    def __call__(self, images=None, text=None, return_tensors: str = "pt", **kwargs) -> BatchFeature:
        """One image and one question per row (the question without `<image>`; the prompt adds it)."""
        questions = [text] if isinstance(text, str) else list(text)
        images = images if isinstance(images, (list, tuple)) else [images]
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images for {len(questions)} questions; give one image per question")
        batch = prompt_batch(self.tokenizer, questions, with_image=True)
        data = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "pixel_values": torch.stack([self.transform(im.convert("RGB")) for im in images])}
        if self.needs_query:
            q = query_batch(self.tokenizer, questions)
            data["query_input_ids"], data["query_attention_mask"] = q["input_ids"], q["attention_mask"]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, ids, **kwargs) -> list:
        """Answers from generated ids (special tokens dropped, whitespace stripped)."""
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def save_pretrained(self, path: str) -> None:
        """Write the tokenizer and processor_config.json."""
        os.makedirs(path, exist_ok=True)
        self.tokenizer.save_pretrained(path)
        with open(os.path.join(path, PROCESSOR_CONFIG), "w") as f:
            json.dump({"processor_class": "LeanvlProcessor", "image_size": self.image_size,
                       "needs_query": self.needs_query,
                       "auto_map": {"AutoProcessor": "processing_leanvl.LeanvlProcessor"}}, f, indent=2)
