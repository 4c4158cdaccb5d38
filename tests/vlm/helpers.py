"""Shared helpers for the VLM tests: the built-in tiny LLM and small VLMs on the leanvl convnet (8x8 grid)."""
import torch

from leanvl.vlm.chat import collate, encode_conversation
from leanvl.vlm.io import build_vlm
from leanvl.vlm.model import VLMConfig
from leanvl.vlm.vqa_data import conversation


def make_vlm(compressor: str, tokens: int, **kw):
    multi = [1, 2, 3] if compressor in ("tokenpacker", "quecc") else []
    model = build_vlm(VLMConfig(llm="tiny", encoder="leanvl_convnet", image_size=64, compressor=compressor,
                                tokens=tokens, multi_layers=multi, **kw), seed=0)
    model.set_frozen({"encoder"})
    return model


def fixed_batch(tokenizer, n: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    qa = [("What color is the star?", "red"), ("How many shapes are there?", "3"),
          ("What word is written in the image?", "house"), ("Is there a blue circle?", "no")]
    enc = [encode_conversation(tokenizer, conversation(*qa[i % len(qa)])) for i in range(n)]
    batch = collate(enc, tokenizer.pad_token_id)
    batch["image"] = torch.randn(n, 3, 64, 64, generator=g)
    return batch


def tiny_tokenizer():
    from leanvl.vlm.llm import byte_tokenizer, prepare_tokenizer

    return prepare_tokenizer(byte_tokenizer())
