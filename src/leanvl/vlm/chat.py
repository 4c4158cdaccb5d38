"""Chat formatting with the tokenizer's chat template, the `<image>` slot, and the assistant-only label mask.

A conversation is LLaVA's list of turns `[{"from": "human"|"gpt", "value": str}, ...]`. The whole conversation is
rendered once by the chat template; each assistant answer's character span is located by rendering the prefix
with `add_generation_prompt=True`, and tokens are labelled by their character offsets. Any disagreement between
the expected and the tokenised boundaries raises LeanvlError instead of silently training on nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leanvl.errors import LeanvlError

IMAGE_PLACEHOLDER = "<image>"
IMAGE_TOKEN_ID = -200   # marks the slot the visual tokens replace (LLaVA's convention)
IGNORE_INDEX = -100
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class Encoded:
    """Token ids with one IMAGE_TOKEN_ID per image, labels (IGNORE_INDEX except assistant tokens), first question."""

    input_ids: list[int]
    labels: list[int]
    question: str


def to_messages(conversations: list[dict], n_images: int = 1) -> list[dict]:
    """LLaVA turns -> chat-template messages; validates roles and the `<image>` placeholder count."""
    if not isinstance(conversations, list) or not conversations:
        raise LeanvlError("conversation is empty or not a list of turns")
    messages = []
    for turn in conversations:
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise LeanvlError(f"conversation turn needs 'from' and 'value': {str(turn)[:80]}")
        role = _ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise LeanvlError(f"unknown conversation role {turn['from']!r} (use human/gpt)")
        messages.append({"role": role, "content": str(turn["value"])})
    if not any(m["role"] == "assistant" for m in messages):
        raise LeanvlError("conversation has no assistant (gpt) turn to learn from")
    found = sum(m["content"].count(IMAGE_PLACEHOLDER) for m in messages)
    if found != n_images:
        raise LeanvlError(f"conversation has {found} {IMAGE_PLACEHOLDER} placeholders for {n_images} image(s)")
    return messages


def first_question(messages: list[dict]) -> str:
    """The text of the first user turn without the image placeholder (QueCC's query text)."""
    for m in messages:
        if m["role"] == "user":
            return m["content"].replace(IMAGE_PLACEHOLDER, "").strip()
    return ""


def _render(tokenizer: Any, messages: list[dict], generation: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def assistant_spans(tokenizer: Any, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of every assistant turn (answer + end-of-turn marker)."""
    text = _render(tokenizer, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], True)
        upto = _render(tokenizer, messages[: i + 1], False)
        if not (text.startswith(upto) and upto.startswith(prefix)):
            raise LeanvlError("chat template is not prefix-stable: cannot locate the assistant answer boundaries")
        if m["content"].strip() not in upto[len(prefix):]:
            raise LeanvlError(f"assistant answer {m['content'][:40]!r} not found after the prompt in the template")
        spans.append((len(prefix), len(upto)))
    return text, spans


def _label_segment(offsets: list[tuple[int, int]], base: int, spans: list[tuple[int, int]]) -> list[int]:
    """Index of the assistant span holding each token (-1: prompt); a token straddling a boundary raises."""
    owner = []
    for s, e in offsets:
        s, e = s + base, e + base
        hit = -1
        for j, (a, b) in enumerate(spans):
            if s < a < e or s < b < e:
                raise LeanvlError(f"tokenisation boundary mismatch: a token spans chars {s}-{e} across the "
                                  f"prompt/answer boundary {a}-{b}; the label mask would be wrong")
            if a <= s < b:
                hit = j
        owner.append(hit)
    return owner


def encode_conversation(tokenizer: Any, conversations: list[dict], *, n_images: int = 1) -> Encoded:
    """Render with the chat template, tokenise around `<image>`, and label only assistant tokens."""
    messages = to_messages(conversations, n_images)
    text, spans = assistant_spans(tokenizer, messages)
    ids: list[int] = []
    labels: list[int] = []
    labelled_per_span = [0] * len(spans)
    pos = 0
    for k, segment in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if k > 0:
            ids.append(IMAGE_TOKEN_ID)
            labels.append(IGNORE_INDEX)
        if segment:
            enc = tokenizer(segment, add_special_tokens=False, return_offsets_mapping=True)
            owners = _label_segment(enc["offset_mapping"], pos, spans)
            for tid, owner in zip(enc["input_ids"], owners):
                ids.append(tid)
                labels.append(tid if owner >= 0 else IGNORE_INDEX)
                if owner >= 0:
                    labelled_per_span[owner] += 1
        pos += len(segment) + len(IMAGE_PLACEHOLDER)
    if any(n == 0 for n in labelled_per_span):
        raise LeanvlError("an assistant answer got no label tokens (tokeniser/template mismatch); refusing a zero loss")
    return Encoded(input_ids=ids, labels=labels, question=first_question(messages))


def encode_prompt(tokenizer: Any, question: str, *, with_image: bool = True) -> list[int]:
    """Token ids of a single-turn generation prompt (`<image>\\n` + question when with_image) for inference."""
    content = f"{IMAGE_PLACEHOLDER}\n{question}" if with_image else question
    text = _render(tokenizer, [{"role": "user", "content": content}], True)
    ids: list[int] = []
    for k, segment in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if k > 0:
            ids.append(IMAGE_TOKEN_ID)
        if segment:
            ids.extend(tokenizer(segment, add_special_tokens=False)["input_ids"])
    return ids


def query_batch(tokenizer: Any, questions: list[str]) -> dict[str, Any]:
    """QueCC's query text as right-padded `input_ids` / `attention_mask` (no special tokens)."""
    return tokenizer(questions, add_special_tokens=False, padding=True, return_tensors="pt", padding_side="right")


def collate(encoded: list[Encoded], pad_id: int, *, side: str = "right") -> dict[str, Any]:
    """Pad a list of Encoded into `input_ids`, `labels`, `attention_mask` LongTensors plus `question` strings."""
    import torch

    if not encoded:
        raise LeanvlError("cannot collate an empty batch of conversations")
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, e in enumerate(encoded):
        n = len(e.input_ids)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, sl] = torch.tensor(e.input_ids)
        labels[i, sl] = torch.tensor(e.labels)
        mask[i, sl] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "question": [e.question for e in encoded]}
