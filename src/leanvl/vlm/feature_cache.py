"""`--cache-features`: a process-wide, opt-in cache of a frozen vision tower's outputs.

The cells of a VLM grid (`leanvl repro`, `leanvl sweep`) train on the same frozen encoder with the same seed, so
they encode the same image batches in the same order. A hit returns what the encoder computed for exactly that
batch before. The key is a digest of the encoder's weights and buffers, the layers read, the autocast state and
the batch's bytes, so the training is bit-identical to a run without the cache. Only batches are cached, not
single images: a batch mixing images seen in different batches is recomputed. An encoder in training mode is
never cached. The digest reads the batch on the host (on a GPU, one copy per step).
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # torch is imported where used: the CLI registers these flags without it
    import torch

Features = tuple["torch.Tensor", "torch.Tensor"]


class FeatureCache:
    """Vision-tower outputs per (encoder, layers, batch) key, up to `max_bytes` (later batches are not stored)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.store: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.bytes = 0
        self.hits = self.misses = self.full = 0

    def features(self, tower: Any, images: torch.Tensor) -> Features:
        """`tower(images)`, or its stored result for the same encoder weights, layers and image bytes."""
        key = (tower_key(tower), batch_digest(images))
        got = self.store.get(key)
        if got is not None:
            self.hits += 1
            x = got[0].clone()
            return x, (x if got[1] is None else got[1].clone())
        self.misses += 1
        x, m = tower(images)
        size = x.numel() * x.element_size() + (0 if m is x else m.numel() * m.element_size())
        if self.bytes + size <= self.max_bytes:
            self.store[key] = (x.detach().clone(), None if m is x else m.detach().clone())
            self.bytes += size
        else:
            self.full += 1
        return x, m

    def stats(self) -> dict[str, Any]:
        """Hits, misses, batches not stored (cache full) and bytes held."""
        return {"hits": self.hits, "misses": self.misses, "not_stored": self.full, "bytes": self.bytes}

    def summary(self) -> str:
        """One line on what the cache did."""
        return (f"--cache-features: {self.hits} batches from the cache, {self.misses} encoded, "
                f"{self.bytes / 2**30:.2f} GiB held")


_ACTIVE: FeatureCache | None = None


def active() -> FeatureCache | None:
    """The cache in use in this process (None: caching is off)."""
    return _ACTIVE


@contextlib.contextmanager
def caching(max_gb: float = 4.0) -> Iterator[FeatureCache]:
    """Cache frozen vision features inside this block (nested blocks share the outer cache)."""
    global _ACTIVE
    if _ACTIVE is not None:
        yield _ACTIVE
        return
    _ACTIVE = FeatureCache(int(max_gb * 2**30))
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = None


def add_flags(parser: Any) -> None:
    """`--cache-features` and `--cache-gb` on an argparse parser (`leanvl repro`, `leanvl sweep`)."""
    parser.add_argument("--cache-features", action="store_true",
                        help="reuse the frozen encoder's features of batches an earlier cell encoded (same results)")
    parser.add_argument("--cache-gb", type=float, default=4.0, help="--cache-features: most memory the cache holds")


def from_flags(args: Any) -> contextlib.AbstractContextManager:
    """The cache the flags ask for (`caching(args.cache_gb)`), or a context yielding None; LeanvlError for a bad
    --cache-gb."""
    from leanvl.errors import LeanvlError

    if not (0 < args.cache_gb < float("inf")):  # checked with or without --cache-features: no silent bad value
        raise LeanvlError(f"--cache-gb must be a positive number, got {args.cache_gb}")
    return caching(args.cache_gb) if args.cache_features else contextlib.nullcontext(None)


def batch_digest(images: torch.Tensor) -> tuple:
    """The exact identity of an image batch: shape, dtype, device and a digest of its bytes."""
    return (tuple(images.shape), str(images.dtype), str(images.device),
            hashlib.blake2b(_bytes(images), digest_size=16).hexdigest())


def _bytes(t: torch.Tensor) -> bytes:
    import torch

    flat = t.detach().contiguous().cpu().reshape(-1)
    return (flat if flat.dtype == torch.uint8 else flat.view(torch.uint8)).numpy().tobytes()


def _weights_digest(module: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(module.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(_bytes(t))
    return h.hexdigest()


def tower_key(tower: Any) -> tuple:
    """(weights digest, layers read, autocast state) of a VisionTower; the digest is recomputed whenever a
    parameter or buffer was written in place since (torch's tensor version counters)."""
    import torch

    enc = tower.encoder
    version = sum(t._version for t in itertools.chain(enc.parameters(), enc.buffers()))
    memo = getattr(tower, "_cache_digest", None)
    if memo is None or memo[0] != version:
        memo = (version, _weights_digest(enc))
        tower._cache_digest = memo
    device = next(enc.parameters()).device.type
    autocast = (torch.is_autocast_enabled(device), str(torch.get_autocast_dtype(device)))
    return (memo[1], tower.feature_layer, tuple(tower.multi_layers or ()), autocast)
