"""Greedy decoding with a KV cache: one prefill over [text, visual tokens, text], then one token per step."""
from __future__ import annotations

import inspect
import time
from typing import Any

import torch

from leanvl.vlm.chat import collate, encode_prompt, Encoded


def prompt_batch(tokenizer: Any, questions: list[str], with_image: bool = True) -> dict[str, Any]:
    """Left-padded generation prompts (`input_ids`, `attention_mask`, ...) for `questions`."""
    enc = [Encoded(ids, [0] * len(ids), q) for q in questions
           for ids in [encode_prompt(tokenizer, q, with_image=with_image)]]
    return collate(enc, tokenizer.pad_token_id, side="left")


def _cache_name(llm: Any) -> str:
    """The KV-cache keyword of this transformers version (`cache` in 5.x, `past_key_values` before)."""
    return "cache" if "cache" in inspect.signature(llm.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    return getattr(out, "cache", None) if getattr(out, "cache", None) is not None else out.past_key_values


def stop_ids(tokenizer: Any) -> set[int]:
    """Token ids that end an answer: eos and the common end-of-turn markers the tokenizer knows."""
    ids = {tokenizer.eos_token_id}
    for name in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(name)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
            ids.add(tid)
    return {i for i in ids if i is not None}


@torch.no_grad()
def prefill_batch(model: Any, images: torch.Tensor | None, batch: dict[str, Any],
                  query: torch.Tensor | None = None) -> tuple[Any, torch.Tensor, dict]:
    """Run a prompt batch (visual tokens spliced in when images is given); returns (cache, last logits, spliced).
    QueCC's query is `query` when given, else computed from `batch["question"]`."""
    device = model.llm.get_input_embeddings().weight.device
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if images is not None:
        visual = model.visual_tokens(images.to(device), batch.get("question"), query)
        s = model.splice(batch["input_ids"], batch["attention_mask"], visual)
    else:
        mask = batch["attention_mask"]
        s = {"inputs_embeds": model.llm.get_input_embeddings()(batch["input_ids"]), "attention_mask": mask,
             "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}
    out = model.llm(**s, use_cache=True)
    return _cache_of(out), out.logits[:, -1], s


@torch.no_grad()
def prefill(model: Any, images: torch.Tensor | None, questions: list[str]) -> tuple[Any, torch.Tensor, dict]:
    """Run the prompt (with the image's visual tokens when images is given); returns (cache, logits, spliced)."""
    return prefill_batch(model, images, prompt_batch(model.tokenizer, questions, images is not None))


@torch.no_grad()
def greedy_decode(model: Any, cache: Any, logits: torch.Tensor, s: dict, stops: set[int], *,
                  max_new_tokens: int = 16, use_cache: bool = True) -> list[list[int]]:
    """Greedy new token ids per row after a prefill (stop tokens excluded)."""
    mask, pos = s["attention_mask"], s["position_ids"][:, -1:]
    embeds = s["inputs_embeds"]
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=mask.device)
    out: list[list[int]] = [[] for _ in range(logits.shape[0])]
    for _ in range(max_new_tokens):
        nxt = logits.argmax(-1)
        for i, t in enumerate(nxt.tolist()):
            if not done[i]:
                if t in stops:
                    done[i] = True
                else:
                    out[i].append(t)
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        pos = pos + 1
        new = model.llm.get_input_embeddings()(nxt.unsqueeze(1))
        if use_cache:
            res = model.llm(inputs_embeds=new, attention_mask=mask, position_ids=pos, use_cache=True,
                            **{_cache_name(model.llm): cache})
            cache = _cache_of(res)
        else:  # reference path: recompute the whole sequence (for tests)
            embeds = torch.cat([embeds, new], 1)
            res = model.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0))
        logits = res.logits[:, -1]
    return out


@torch.no_grad()
def generate(model: Any, images: torch.Tensor | None, questions: list[str], *, max_new_tokens: int = 16,
             use_cache: bool = True, timings: dict[str, float] | None = None) -> list[str]:
    """Greedy answers to `questions` (one per image; images=None asks the LLM text-only); `timings` (when given)
    gets `prefill_s`, the measured wall time of the prefill (encoder, compressor, projector, LLM prompt pass)."""
    tok = model.tokenizer
    t0 = time.perf_counter()
    cache, logits, s = prefill(model, images, questions)
    if timings is not None:
        if logits.is_cuda:
            torch.cuda.synchronize(logits.device)
        timings["prefill_s"] = time.perf_counter() - t0
    out = greedy_decode(model, cache, logits, s, stop_ids(tok), max_new_tokens=max_new_tokens, use_cache=use_cache)
    return [tok.decode(ids, skip_special_tokens=True).strip() for ids in out]
