"""Weighted mixtures (`A::B` with weights `1::3`), resampling (shards drawn with replacement, open_clip's
`--dataset-resampled`) and fixed-length epochs (`--samples-per-epoch N`), all with random access by raw index.

Mixture: integer weights w_c (P = sum) split the stream into blocks of P positions; block q is a seeded permutation
of w_c slots per component, so component c gets exactly w_c / P of every block, and the k-th slot of c in the
stream is item k of c's own stream (its own epochs). Resampled: each virtual epoch is a seeded sequence of shard
visits drawn with replacement (weighted by nothing: uniform, as open_clip), each visit yielding that shard's samples
in a seeded order. Everything is a pure function of (seed, raw index).
"""
from __future__ import annotations

import bisect
import random
from fractions import Fraction
from math import lcm
from typing import Any, Iterator

from leanvl.data.sample import Sample
from leanvl.data.sources import Source
from leanvl.errors import LeanvlError


def parse_weights(text: str, n: int) -> list[int]:
    """'1::3' -> [1, 3] (floats become the smallest integer ratio); '' -> equal weights."""
    if not text:
        return [1] * n
    parts = text.split("::")
    try:
        fracs = [Fraction(p.strip()).limit_denominator(1000) for p in parts]
    except (ValueError, ZeroDivisionError):
        raise LeanvlError(f"--data-weights {text!r}: use numbers separated by '::', e.g. 1::3") from None
    if len(fracs) != n:
        raise LeanvlError(f"--data-weights gives {len(fracs)} weights for {n} data sets")
    if any(f < 0 for f in fracs) or not any(fracs):
        raise LeanvlError(f"--data-weights {text!r}: weights must be >= 0 and not all 0")
    scale = lcm(*(f.denominator for f in fracs))
    return [int(f * scale) for f in fracs]


class MixtureSource(Source):
    """Components interleaved by integer weights; raw items are (component, component raw item)."""

    def __init__(self, sources: list[Source], weights: list[int], seed: int = 0) -> None:
        self.sources, self.weights, self.seed = sources, weights, seed
        self.period = sum(weights)
        self.image_size = sources[0].image_size
        self._cache: tuple[int, list[int]] | None = None

    def __repr__(self) -> str:
        return "::".join(map(repr, self.sources))

    def _pattern(self, q: int) -> list[int]:
        if self._cache is None or self._cache[0] != q:
            slots = [c for c, w in enumerate(self.weights) for _ in range(w)]
            random.Random(f"mixture/{self.seed}/{q}").shuffle(slots)
            self._cache = (q, slots)
        return self._cache[1]

    def at(self, r: int) -> tuple[int, Any]:
        q, t = divmod(r, self.period)
        pattern = self._pattern(q)
        c = pattern[t]
        return c, self.sources[c].at(q * self.weights[c] + pattern[:t].count(c))

    def raw(self, epoch: int) -> Iterator[tuple[int, Any]]:
        if epoch:
            raise LeanvlError("a data mixture has no epochs; read it by position")
        r = 0
        while True:
            yield self.at(r)
            r += 1

    def decode(self, raw: tuple[int, Any]) -> Sample:
        return self.sources[raw[0]].decode(raw[1])

    def caption(self, raw: tuple[int, Any]) -> str:
        return self.sources[raw[0]].caption(raw[1])


class _Derived(Source):
    """A view of another source with epochs of `n` items: reads through, subclasses define `at`."""

    source: Source
    n: int

    def epoch_size(self, epoch: int) -> int:
        return self.n

    def raw(self, epoch: int) -> Iterator[Any]:
        return (self.at(epoch * self.n + p) for p in range(self.n))

    def decode(self, raw: Any) -> Sample:
        return self.source.decode(raw)

    def caption(self, raw: Any) -> str:
        return self.source.caption(raw)


class ResampledSource(_Derived):
    """Virtual epochs of `n` samples: shards (or single items) drawn with replacement, their samples shuffled."""

    def __init__(self, source: Source, n: int, seed: int = 0) -> None:
        self.source, self.n, self.seed, self.image_size = source, n, seed, source.image_size
        index = getattr(source, "index", None)
        size = source.epoch_size(0)
        if index is None and size is None:
            raise LeanvlError(f"--resampled needs a finite data set, not {source}")
        self.groups = [len(x) for x in index] if index is not None else [1] * size
        self._cache: tuple[int, list[int], list[int]] | None = None

    def __repr__(self) -> str:
        return f"resampled({self.source!r})"

    def _visits(self, epoch: int) -> tuple[list[int], list[int]]:
        if self._cache is None or self._cache[0] != epoch:
            rng = random.Random(f"resampled/{self.seed}/{epoch}")
            shards, starts, pos = [], [], 0
            while pos < self.n:
                s = rng.randrange(len(self.groups))
                shards.append(s)
                starts.append(pos)
                pos += self.groups[s]
            self._cache = (epoch, shards, starts)
        return self._cache[1], self._cache[2]

    def at(self, r: int) -> Any:
        epoch, pos = divmod(r, self.n)
        shards, starts = self._visits(epoch)
        v = bisect.bisect_right(starts, pos) - 1
        s, j = shards[v], pos - starts[v]
        order = list(range(self.groups[s]))
        random.Random(f"resampled/{self.seed}/{epoch}/{v}").shuffle(order)
        if hasattr(self.source, "index"):
            return s, order[j]
        return self.source.at(s)  # single items: item s of the source's epoch 0


class EpochView(_Derived):
    """Epoch e = the first `n` raw items of the source's epoch e (open_clip's `--train-num-samples`)."""

    def __init__(self, source: Source, n: int) -> None:
        size = source.epoch_size(0)
        if size is None or n > size:
            raise LeanvlError(f"--samples-per-epoch {n} exceeds the data set ({size} samples); add --resampled")
        self.source, self.n, self.size, self.image_size = source, n, size, source.image_size

    def __repr__(self) -> str:
        return repr(self.source)

    def at(self, r: int) -> Any:
        epoch, pos = divmod(r, self.n)
        return self.source.at(epoch * self.size + pos)


def data_options(cfg: Any) -> dict[str, Any]:
    """The data-engine flags of a config (mixture weights, resampling, epoch length, remote cache) for open_data."""
    return {"weights": cfg.data_weights, "resampled": cfg.resampled, "samples_per_epoch": cfg.samples_per_epoch,
            "cache_dir": cfg.data_cache, "cache_gb": cfg.data_cache_gb}


def open_data(spec: str, *, weights: str = "", resampled: bool = False, samples_per_epoch: int = 0,
              cache_dir: str = "", cache_gb: float = 100.0, opener: Any = None, **kwargs: Any) -> Source:
    """Open `A::B::...` (each part a spec for `opener`, default open_source) with the mixture/resampling options."""
    from leanvl.data.remote import ShardCache
    from leanvl.data.sources import open_source

    if samples_per_epoch < 0:
        raise LeanvlError(f"--samples-per-epoch must be >= 0, got {samples_per_epoch}")
    if not 0 < cache_gb < float("inf"):  # NaN fails too
        raise LeanvlError(f"--data-cache-gb must be a finite number > 0, got {cache_gb}")
    opener = opener or open_source
    parts = [p for p in spec.split("::")]
    if any(not p.strip() for p in parts):
        raise LeanvlError(f"--data {spec!r}: empty part in a '::' mixture")
    ints = parse_weights(weights, len(parts))
    cache = ShardCache(cache_dir, int(cache_gb * 2**30))
    seed = kwargs.get("seed", 0)
    sources = []
    for n, part in enumerate(parts):
        part_seed = seed + 7919 * n if len(parts) > 1 else seed
        src = opener(part, **{**kwargs, "seed": part_seed}, cache=cache)
        if resampled:
            src = ResampledSource(src, samples_per_epoch or src.epoch_size(0) or 0, seed=seed + n)
        elif samples_per_epoch:
            src = EpochView(src, samples_per_epoch)
        sources.append(src)
    if len(sources) == 1:
        return sources[0]
    return MixtureSource([s for s, w in zip(sources, ints) if w], [w for w in ints if w], seed=seed)
