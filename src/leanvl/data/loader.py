"""Exact, resumable micro-batches from a Source, independent of the number of loader workers; skip accounting.

Positions are raw samples of the source's stream (the concatenation of its epochs). A consumer (one rank) starting
at sample `start` gets micro-batches k = 0, 1, ... covering raw items [start + (k*stride + offset)*B, +B): with
stride = world size and offset = rank, one optimizer step of accumulation A covers A*stride*B consecutive samples,
so a position counted in samples survives changes of batch size, accumulation and world size. With W workers,
worker w builds the k with k % W == w and torch's DataLoader (batch_size=None, in-order) interleaves them
round-robin, so the sequence never depends on W. Workers fetch their items by random access (`Source.at`), so each
sample is read by exactly one worker of one rank.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import torch

from leanvl.data.sample import SkipSample
from leanvl.data.sources import Source
from leanvl.errors import DataError, LeanvlError

Transform = Callable[[Any, random.Random], torch.Tensor]
Labeler = Callable[[list[str]], list[list[int]]]
BatchHook = Callable[[dict[str, Any]], dict[str, Any]]


def transform_rng(seed: int, raw_index: int) -> random.Random:
    """The augmentation RNG of one raw item: a function of (seed, raw index) only, so resumes are exact."""
    return random.Random(seed * 1_000_003 + raw_index)


def _collate(items: list[tuple[int, Any]], skipped: Counter, batch_size: int, labeler: Labeler | None,
             empty_size: int) -> dict[str, Any]:
    """items: (raw index, (tensor, Sample)) in stream order -> the batch dict of docs/CONTRACTS.md; with a
    labeler, items whose caption encodes to no label id are dropped and counted as `no_label_ids`."""
    ids: list[list[int]] = []
    if labeler is not None and items:
        ids = labeler([s.caption for _, (_, s) in items])
        kept = [(item, row) for item, row in zip(items, ids) if row]
        if len(kept) < len(items):
            skipped = skipped + Counter(no_label_ids=len(items) - len(kept))
        items, ids = [item for item, _ in kept], [row for _, row in kept]
    captions = [s.caption for _, (_, s) in items]
    if items:
        tensors = [t for _, (t, _) in items]
        # `--decode gpu` ships undecoded JPEGs (1-D uint8, leanvl.data.encoded): a list, decoded on the device
        image = tensors if any(t.dim() == 1 for t in tensors) else torch.stack(tensors)
    else:
        image = torch.zeros((0, 3, empty_size, empty_size))
    batch: dict[str, Any] = {
        "image": image,
        "caption": captions,
        "attrs": [s.attrs for _, (_, s) in items],
        "index": torch.tensor([i for i, _ in items], dtype=torch.long),
        "key": [s.key for _, (_, s) in items],
        "skipped": dict(skipped),
        "raw_count": batch_size,
    }
    if labeler is not None:
        batch["label_ids"] = torch.tensor([i for row in ids for i in row], dtype=torch.long)
        offsets = [0]
        for row in ids:
            offsets.append(offsets[-1] + len(row))
        batch["label_offsets"] = torch.tensor(offsets, dtype=torch.long)
    return batch


class _Batches(torch.utils.data.IterableDataset):
    """Yields this worker's share (k % W == w) of the consumer's micro-batches (see the module docstring)."""

    def __init__(self, source: Source, batch_size: int, transform: Transform, labeler: Labeler | None,
                 seed: int, start: int, stride: int, offset: int, hook: BatchHook | None) -> None:
        super().__init__()
        self.source, self.batch_size, self.transform, self.labeler = source, batch_size, transform, labeler
        self.seed, self.start, self.stride, self.offset, self.hook = seed, start, stride, offset, hook

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        workers, me = (info.num_workers, info.id) if info is not None else (1, 0)
        B = self.batch_size
        empty_size = getattr(self.source, "image_size", 64)
        for k in itertools.count(me, workers):
            first = self.start + (k * self.stride + self.offset) * B
            items, skipped = [], Counter()
            for r in range(first, first + B):
                try:
                    sample = self.source.decode(self.source.at(r))
                    items.append((r, (self.transform(sample.image, transform_rng(self.seed, r)), sample)))
                except SkipSample as exc:
                    skipped[exc.reason] += 1
            batch = _collate(items, skipped, B, self.labeler, empty_size)
            if items and isinstance(batch["image"], torch.Tensor):
                empty_size = int(batch["image"].shape[-1])
            yield self.hook(batch) if self.hook is not None else batch


def make_batches(source: Source, *, batch_size: int, transform: Transform, labeler: Labeler | None = None,
                 seed: int = 0, start: int = 0, stride: int = 1, offset: int = 0, num_workers: int = 0,
                 batch_hook: BatchHook | None = None) -> Iterator[dict[str, Any]]:
    """Endless micro-batches k = 0, 1, ... of `source` covering raw samples [start + (k*stride + offset)*B, +B).

    `start` counts raw samples (all consumers together). Items whose decode raises SkipSample are dropped and counted
    in the batch's `skipped`, so a batch may hold fewer than `batch_size` images; an all-bad batch has `image` of
    shape [0, 3, S, S] with S from this worker's previous batch (else `source.image_size`). `batch_hook(batch)`
    (picklable; e.g. the VLM's tokenizer) runs in the worker after collation. `num_workers` changes speed only."""
    if batch_size < 1:
        raise LeanvlError(f"batch size must be >= 1, got {batch_size}")
    if stride < 1 or not 0 <= offset < stride or start < 0 or num_workers < 0:
        raise LeanvlError(f"bad batch position: start={start} stride={stride} offset={offset} "
                          f"num_workers={num_workers}")
    dataset = _Batches(source, batch_size, transform, labeler, seed, start, stride, offset, batch_hook)
    if num_workers == 0:
        yield from dataset
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)  # in order by default
    try:
        yield from loader
    except LeanvlError as exc:  # re-raised from a worker with its traceback in the text: keep the one-line message
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise type(exc)(lines[-1].split(": ", 1)[-1] if lines else "data loader worker failed") from None


class DataStats:
    """Running count of raw and skipped items; `check()` stops a run whose bad fraction exceeds the limit."""

    def __init__(self, max_bad_fraction: float = 0.1, min_raw: int = 100) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise LeanvlError(f"max bad fraction must be in [0, 1], got {max_bad_fraction}")
        self.max_bad_fraction, self.min_raw = max_bad_fraction, min_raw
        self.raw, self.by_reason = 0, Counter()

    @property
    def skipped(self) -> int:
        return sum(self.by_reason.values())

    def update(self, batch: dict[str, Any]) -> None:
        """Add one batch's raw_count and skipped counts."""
        self.raw += int(batch["raw_count"])
        self.by_reason.update({k: int(v) for k, v in batch["skipped"].items() if v})

    def reasons(self) -> str:
        """'reason=count, ...' of every skip so far ('none' when nothing was skipped)."""
        return ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason.items())) or "none"

    def check_step(self, micro: list[dict[str, Any]], step: int) -> None:
        """DataError when the micro-batches of optimizer step `step` (1-based) hold no usable sample at all,
        naming the skip reasons so far (from the first step on, whatever --nan-policy says)."""
        if micro and not any(len(b["index"]) for b in micro):
            raise DataError(f"step {step}: no usable sample in its {sum(int(b['raw_count']) for b in micro)} raw "
                            f"items (skipped so far: {self.reasons()})")

    def check(self, final: bool = False) -> None:
        """DataError once at least `min_raw` items (any number when `final`, at the end of a run) were seen and
        more than `max_bad_fraction` of them were bad."""
        if (final or self.raw >= self.min_raw) and self.skipped > self.max_bad_fraction * self.raw:
            reasons = self.reasons()
            raise DataError(f"{self.skipped} of {self.raw} samples ({100 * self.skipped / self.raw:.1f}%) were "
                            f"unusable, above the {100 * self.max_bad_fraction:g}% limit ({reasons})")

    def as_dict(self) -> dict[str, Any]:
        """{"raw": n, "skipped": n, "by_reason": {reason: n}} (JSON-ready; for metrics and checkpoints)."""
        return {"raw": self.raw, "skipped": self.skipped, "by_reason": dict(sorted(self.by_reason.items()))}

    def load(self, state: dict[str, Any]) -> None:
        """Restore counts saved with `as_dict()` (e.g. on resume)."""
        self.raw = int(state.get("raw", 0))
        self.by_reason = Counter({k: int(v) for k, v in state.get("by_reason", {}).items() if int(v)})
