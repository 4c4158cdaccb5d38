"""webdataset tar shards (local, remote or `pipe:`) with random access: each consumer reads only its own samples.

At open, every shard gets a member index (its sidecar, the node cache or a header scan, see leanvl.data.shard_index;
remote shards are indexed in parallel threads), so the epoch length is known up front and a raw item is just
(shard, sample number). A sample of a remote shard is one range request over its members (retried; after a shard
failed every retry in this process, its next samples get one try each until a read succeeds again). The epoch
order: shards shuffled with (seed, epoch), then the samples of each run of SHUFFLE_SHARDS consecutive shards
shuffled together (a chunk shuffle that keeps a consumer on few shards at a time). `decode` reads only the byte
ranges of that sample; `caption` reads only its `.txt`.
"""
from __future__ import annotations

import bisect
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

from leanvl.data.remote import (RETRIES, NoRangeSupport, ShardCache, ShardUnreadable, expand_urls, is_ranged,
                                is_remote, read_range)
from leanvl.data.sample import Sample, SkipSample
from leanvl.data.shard_index import shard_index
from leanvl.data.source_base import CAPTION_EXT, IMAGE_EXTS, Source, caption_text, decode_image
from leanvl.data.tar_index import TRUNCATED, index_tar, read_sample, sample_from_span, span
from leanvl.errors import DataError, LeanvlError

SHUFFLE_SHARDS = 4
UNREADABLE = "__unreadable__"
INDEX_THREADS = 16


class ShardSource(Source):
    """Indexed webdataset shards; raw items are (shard number, sample number) pairs."""

    def __init__(self, pattern: str, *, seed: int = 0, shuffle: bool = True, image_size: int = 64,
                 cache: ShardCache | None = None) -> None:
        self.pattern, self.urls, self.seed, self.shuffle = pattern, expand_urls(pattern), seed, shuffle
        self.image_size, self.cache = image_size, cache or ShardCache()
        self.whole: set[str] = set()  # remote URLs whose server ignores Range: read from the node cache instead
        threads = min(INDEX_THREADS, sum(map(is_remote, self.urls)))
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                self.index = list(pool.map(self._index, self.urls))
        else:
            self.index = [self._index(u) for u in self.urls]
        if all(len(x) == 1 and UNREADABLE in x[0] for x in self.index):
            raise LeanvlError(f"--data {pattern}: no shard could be read ({self.index[0][0][UNREADABLE]})")
        self.total = sum(len(x) for x in self.index)
        self._layouts: dict[int, tuple[list[int], list[int]]] = {}
        self._blocks: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._failing: set[int] = set()  # remote shards whose last read failed every retry (in this process)

    def __repr__(self) -> str:
        return self.pattern

    def _index(self, url: str) -> list[dict[str, Any]]:
        try:
            try:
                return shard_index(url, self.cache)
            except NoRangeSupport:
                self.whole.add(url)
                return index_tar(self.cache.local(url))
        except ShardUnreadable as exc:  # counted: the unreachable shard is one unusable item
            return [{"key": f"{os.path.basename(url)}:unreadable", UNREADABLE: str(exc)}]

    def epoch_size(self, epoch: int) -> int:
        return self.total

    def _layout(self, epoch: int) -> tuple[list[int], list[int]]:
        """(shard order, first position of each block of SHUFFLE_SHARDS shards) of an epoch."""
        if epoch not in self._layouts:
            order = list(range(len(self.urls)))
            if self.shuffle:
                random.Random(f"shards/{self.seed}/{epoch}").shuffle(order)
            starts, pos = [], 0
            for b in range(0, len(order), SHUFFLE_SHARDS):
                starts.append(pos)
                pos += sum(len(self.index[s]) for s in order[b:b + SHUFFLE_SHARDS])
            self._layouts = {epoch: (order, starts)}
        return self._layouts[epoch]

    def _block(self, epoch: int, block: int, order: list[int]) -> list[tuple[int, int]]:
        if (epoch, block) not in self._blocks:
            items = [(s, j) for s in order[block * SHUFFLE_SHARDS:(block + 1) * SHUFFLE_SHARDS]
                     for j in range(len(self.index[s]))]
            if self.shuffle:
                random.Random(f"shards/{self.seed}/{epoch}/{block}").shuffle(items)
            self._blocks = {(epoch, block): items}
        return self._blocks[(epoch, block)]

    def at(self, r: int) -> tuple[int, int]:
        if self.total == 0:
            raise DataError(f"data source {self} yielded no items")
        epoch, pos = divmod(r, self.total)
        order, starts = self._layout(epoch)
        block = bisect.bisect_right(starts, pos) - 1
        return self._block(epoch, block, order)[pos - starts[block]]

    def raw(self, epoch: int) -> Iterator[tuple[int, int]]:
        return (self.at(epoch * self.total + p) for p in range(self.total))

    def read(self, raw: tuple[int, int], exts: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The webdataset dict of a raw item (only the members `exts` when given); SkipSample when unusable."""
        shard, j = raw
        entry, url = self.index[shard][j], self.urls[shard]
        if UNREADABLE in entry:
            raise SkipSample("unreadable_shard", entry[UNREADABLE])
        if TRUNCATED in entry:
            raise SkipSample("truncated_tar", entry[TRUNCATED])
        try:
            if not is_ranged(url) or url in self.whole:
                return read_sample(self.cache.local(url), entry, exts)
            start, end = span(entry, exts)
            try:
                data = read_range(url, start, end, 0 if shard in self._failing else RETRIES) if end > start else b""
            except NoRangeSupport:
                self.whole.add(url)  # this process reads the shard from the node cache from now on
                return read_sample(self.cache.local(url), entry, exts)
            self._failing.discard(shard)
            return sample_from_span(entry, data, start, exts)
        except (ShardUnreadable, OSError) as exc:  # a remote read failed every retry (or an evicted pipe: shard)
            self._failing.add(shard)
            raise SkipSample("unreadable_shard", str(exc)) from None

    def key(self, raw: tuple[int, int]) -> str:
        """The sample key of a raw item, from the index (no read)."""
        return os.path.basename(self.index[raw[0]][raw[1]]["key"])

    def caption(self, raw: tuple[int, int]) -> str:
        return caption_text(self.read(raw, (CAPTION_EXT,)).get(CAPTION_EXT))

    def decode(self, raw: tuple[int, int]) -> Sample:
        item = self.read(raw)
        ext = next((e for e in IMAGE_EXTS if e in item), None)
        if ext is None:
            raise SkipSample("missing_image", item["__key__"])
        caption = caption_text(item.get(CAPTION_EXT))
        image = decode_image(item[ext])
        attrs: Any = {}
        if "json" in item:
            try:
                attrs = json.loads(item["json"])
            except ValueError:
                attrs = {}
        return Sample(os.path.basename(item["__key__"]), image, caption, attrs if isinstance(attrs, dict) else {})
