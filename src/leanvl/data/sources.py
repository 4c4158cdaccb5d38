"""Data sources: the built-in synthetic scenes, webdataset tar shards and CSV/TSV files, behind one interface.

A Source has `raw(epoch)` (cheap, undecoded items, deterministic for (seed, epoch)) and `decode(raw) -> Sample`
(raising SkipSample(reason) for a bad item). The raw stream is the concatenation of epochs 0, 1, 2, ...;
`stream(start)` walks it from a raw index, skipping whole epochs without reading them once their length is known.

Spec strings accepted by `open_source`:
  `synthetic` (infinite) | `synthetic:N` (N samples, cycled) | a shard pattern with brace expansion or globs,
  e.g. `dir/shard-{000000..000099}.tar`, or a directory of *.tar | a `.csv`/`.tsv` file, optionally followed by
  `#image=COL,caption=COL` to name its columns (otherwise detected: filepath/image/path/..., caption/title/text/...).
`split` selects the synthetic split; for shards and CSV it is ignored (point the spec at the split's files).
`image_size` is the synthetic render size; real images keep their size (the transform resizes them).
"""
from __future__ import annotations

import abc

import csv
import glob
import io
import itertools
import json
import os
import random
import tarfile
from collections.abc import Iterator
from typing import Any

from PIL import Image

from leanvl.data import synthetic
from leanvl.data.sample import Sample, SkipSample
from leanvl.errors import DataError, LeanvlError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXT = "txt"
IMAGE_COLUMNS = ("filepath", "image", "image_path", "img", "path", "file", "filename", "file_name")
CAPTION_COLUMNS = ("caption", "title", "text", "captions", "description", "alt", "alt_text")
SHUFFLE_BUFFER = 256


class Source(abc.ABC):
    """Base class: subclasses define `raw(epoch)` and `decode(raw)`; `epoch_size(epoch)` may return None."""

    image_size: int = synthetic.DEFAULT_SIZE

    @abc.abstractmethod
    def raw(self, epoch: int) -> Iterator[Any]:
        """Cheap, undecoded items of `epoch` in a deterministic order."""

    @abc.abstractmethod
    def decode(self, raw: Any) -> Sample:
        """The Sample of a raw item; SkipSample(reason) for a bad one."""

    def epoch_size(self, epoch: int) -> int | None:
        """Number of raw items in `epoch` when known without reading it, else None."""
        return None

    def stream(self, start: int = 0) -> Iterator[tuple[int, Any]]:
        """(raw index, raw item) pairs of the endless epoch concatenation, from raw index `start` on."""
        base = 0
        for epoch in itertools.count():
            size = self.epoch_size(epoch)
            if size is not None and base + size <= start:
                base += size
                continue
            n = 0
            for n, item in enumerate(self.raw(epoch), start=1):
                if base + n - 1 >= start:
                    yield base + n - 1, item
            if n == 0:
                raise DataError(f"data source {self} yielded no items")
            base += n


class SyntheticSource(Source):
    """Procedural scenes; raw items are sample indices (infinite, or `n` indices re-shuffled every epoch)."""

    def __init__(self, n: int | None = None, *, image_size: int = synthetic.DEFAULT_SIZE, seed: int = 0,
                 split: str = "train", word_fraction: float = synthetic.DEFAULT_WORD_FRACTION,
                 shuffle: bool = True) -> None:
        synthetic.check_params(image_size, split, word_fraction)
        if n is not None and n < 1:
            raise LeanvlError(f"synthetic:N needs N >= 1, got {n}")
        self.n, self.image_size, self.seed, self.split = n, image_size, seed, split
        self.word_fraction, self.shuffle = word_fraction, shuffle

    def __repr__(self) -> str:
        return f"synthetic:{self.n}" if self.n else "synthetic"

    def epoch_size(self, epoch: int) -> int | None:
        return self.n

    def raw(self, epoch: int) -> Iterator[int]:
        if self.n is None:
            return itertools.count()
        order = list(range(self.n))
        if self.shuffle:
            random.Random(f"synthetic-epoch/{self.seed}/{epoch}").shuffle(order)
        return iter(order)

    def stream(self, start: int = 0) -> Iterator[tuple[int, Any]]:
        if self.n is None:  # random access: no need to walk the indices before `start`
            return ((i, i) for i in itertools.count(start))
        return super().stream(start)

    def decode(self, raw: int) -> Sample:
        image, caption, attrs = synthetic.scene_for_index(self.seed, self.split, raw, size=self.image_size,
                                                          word_fraction=self.word_fraction)
        return Sample(synthetic.synthetic_key(self.seed, self.split, raw), image, caption, attrs)


def decode_image(data: bytes | None, path: str | None = None) -> Image.Image:
    """Decode image bytes (or a file) fully into RGB; SkipSample('undecodable_image') on any decoder error."""
    try:
        with Image.open(io.BytesIO(data) if path is None else path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SkipSample("undecodable_image", str(exc)) from None


def _caption(text: str | bytes | None) -> str:
    if text is None:
        raise SkipSample("missing_caption")
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    if not text:
        raise SkipSample("empty_caption")
    return text


def expand_shards(pattern: str) -> list[str]:
    """Shard paths of a brace/glob pattern or a directory (its *.tar, sorted); LeanvlError when none exist."""
    from braceexpand import braceexpand

    if not pattern.strip():
        raise LeanvlError("empty data spec")
    if os.path.isdir(pattern):
        found = sorted(glob.glob(os.path.join(pattern, "*.tar")))
        if not found:
            raise LeanvlError(f"no .tar shards in directory {pattern}")
        return found
    paths: list[str] = []
    for part in braceexpand(pattern):
        if any(c in part for c in "*?["):
            paths.extend(sorted(glob.glob(part)))
        else:
            paths.append(part)
    if not paths:
        raise LeanvlError(f"shard pattern {pattern!r} matches no files")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise LeanvlError(f"shard not found: {missing[0]}" + (f" ({len(missing)} of {len(paths)} missing)"
                                                             if len(paths) > 1 else ""))
    return paths


def _split_name(name: str) -> tuple[str, str]:
    """webdataset naming: key = path up to the first dot of the basename, extension = the rest (lower case)."""
    dirname, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return os.path.join(dirname, stem), ext.lower()


def _partial_header(path: str, offset: int) -> bytes | None:
    """The bytes after the last complete member of an uncompressed tar when they are a cut-off header, else None."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        tail = fh.read(1 << 20)
    if len(tail) >= 512 or not tail.strip(b"\0"):
        return None  # a complete (zero) end-of-archive block, or nothing left
    return tail[:100].split(b"\0", 1)[0]


def read_tar(path: str) -> Iterator[dict[str, Any]]:
    """Group a tar's members into webdataset samples ({'__key__', '__url__', ext: bytes}), in file order.

    A tar that ends mid-member yields what was complete, then one item with '__truncated__' set (the unreadable
    rest, counted once); the sample whose member was cut off is folded into that item."""
    group: dict[str, Any] | None = None
    reason = ""
    try:
        with open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = _split_name(member.name)
                if os.path.basename(key).startswith("__") or not ext:
                    continue
                if group is not None and group["__key__"] != key:
                    yield group
                    group = None
                if group is None:
                    group = {"__key__": key, "__url__": path}
                group["__pending__"] = key
                group[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
                del group["__pending__"]
            # tarfile ends silently at a header cut short after the first member: look at the bytes left over
            partial = _partial_header(path, tar.offset) if getattr(tar.fileobj, "comptype", "") == "tar" else None
            if partial is not None:
                reason = "tar ends inside a member header"
                name = partial.decode("utf-8", "replace")
                unknown = not name or "@PaxHeader" in name or "@LongLink" in name
                stem = group["__key__"] + "." if group is not None else ""
                if group is not None and (unknown or name.startswith(stem) or stem.startswith(name)):
                    group["__pending__"] = group["__key__"]  # possibly incomplete: fold it into the truncation
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = str(exc) or "truncated"
    if group is not None and "__pending__" not in group:
        yield group
    if reason:
        yield {"__key__": f"{path}:truncated", "__url__": path, "__truncated__": reason}


def _seeded_buffer_shuffle(items: Iterator[Any], rng: random.Random, size: int) -> Iterator[Any]:
    """Deterministic bounded-memory shuffle (a fill-then-swap buffer, as webdataset's shuffle stage)."""
    buf: list[Any] = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            j = rng.randrange(len(buf))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


class ShardSource(Source):
    """webdataset tar shards; per epoch the shard order is shuffled with (seed, epoch), items in a seeded buffer."""

    def __init__(self, pattern: str, *, seed: int = 0, shuffle: bool = True, image_size: int = 64) -> None:
        self.pattern, self.urls, self.seed, self.shuffle = pattern, expand_shards(pattern), seed, shuffle
        self.image_size = image_size
        self._epoch_len: int | None = None

    def __repr__(self) -> str:
        return self.pattern

    def epoch_size(self, epoch: int) -> int | None:
        return self._epoch_len  # known after one full pass in this process (every epoch has the same length)

    def raw(self, epoch: int) -> Iterator[dict[str, Any]]:
        urls = list(self.urls)
        if not self.shuffle:
            items: Iterator[dict[str, Any]] = itertools.chain.from_iterable(read_tar(u) for u in urls)
            yield from self._counted(items)
            return
        rng = random.Random(f"shards/{self.seed}/{epoch}")
        rng.shuffle(urls)
        items = itertools.chain.from_iterable(read_tar(u) for u in urls)
        yield from self._counted(_seeded_buffer_shuffle(items, rng, SHUFFLE_BUFFER))

    def _counted(self, items: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        n = 0
        for n, item in enumerate(items, start=1):
            yield item
        self._epoch_len = n

    def decode(self, raw: dict[str, Any]) -> Sample:
        if "__truncated__" in raw:
            raise SkipSample("truncated_tar", raw["__truncated__"])
        ext = next((e for e in IMAGE_EXTS if e in raw), None)
        if ext is None:
            raise SkipSample("missing_image", raw["__key__"])
        caption = _caption(raw.get(CAPTION_EXT))
        image = decode_image(raw[ext])
        attrs: dict[str, Any] = {}
        if "json" in raw:
            try:
                attrs = json.loads(raw["json"])
            except ValueError:
                attrs = {}
        return Sample(os.path.basename(raw["__key__"]), image, caption, attrs if isinstance(attrs, dict) else {})


def _pick_column(header: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: str) -> str:
    lower = {h.strip().lower(): h for h in header}
    if wanted is not None:
        if wanted in header:
            return wanted
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        raise LeanvlError(f"{path}: no {what} column {wanted!r} (columns: {', '.join(header)})")
    for name in candidates:
        if name in lower:
            return lower[name]
    raise LeanvlError(f"{path}: cannot find the {what} column among {', '.join(header)}; "
                      f"name it with '{path}#{what}=COLUMN'")


def _parse_overrides(text: str, spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        name, eq, value = part.partition("=")
        if not eq or name.strip() not in ("image", "caption") or not value.strip():
            raise LeanvlError(f"bad column override {part!r} in {spec!r}; use '#image=COL,caption=COL'")
        out[name.strip()] = value.strip()
    return out


class CsvSource(Source):
    """A CSV (comma) or TSV (tab) file with an image-path column (relative to the file) and a caption column."""

    def __init__(self, path: str, *, image_column: str | None = None, caption_column: str | None = None,
                 seed: int = 0, shuffle: bool = True, image_size: int = 64) -> None:
        if not os.path.isfile(path):
            raise LeanvlError(f"data file not found: {path}")
        self.path, self.seed, self.shuffle, self.image_size = path, seed, shuffle, image_size
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh, delimiter=delimiter)
                header = list(reader.fieldnames or [])
                if not header:
                    raise LeanvlError(f"{path}: empty file (no header row)")
                img_col = _pick_column(header, image_column, IMAGE_COLUMNS, "image", path)
                cap_col = _pick_column(header, caption_column, CAPTION_COLUMNS, "caption", path)
                root = os.path.dirname(os.path.abspath(path))
                self.rows = [(r.get(img_col), r.get(cap_col), root, n) for n, r in enumerate(reader)]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise LeanvlError(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file ({exc})")
        if not self.rows:
            raise LeanvlError(f"{path}: no data rows")

    def __repr__(self) -> str:
        return self.path

    def epoch_size(self, epoch: int) -> int | None:
        return len(self.rows)

    def raw(self, epoch: int) -> Iterator[tuple[str | None, str | None, str, int]]:
        rows = list(self.rows)
        if self.shuffle:
            random.Random(f"csv/{self.seed}/{epoch}").shuffle(rows)
        return iter(rows)

    def decode(self, raw: tuple[str | None, str | None, str, int]) -> Sample:
        rel, caption, root, n = raw
        if rel is None or not rel.strip():
            raise SkipSample("missing_image", f"row {n}")
        full = os.path.join(root, rel.strip())
        if not os.path.isfile(full):
            raise SkipSample("missing_image", full)
        text = _caption(caption)
        return Sample(f"row{n:09d}", decode_image(None, path=full), text, {})


def open_source(spec: str, *, image_size: int = synthetic.DEFAULT_SIZE, seed: int = 0, split: str = "train",
                shuffle: bool = True, word_fraction: float = synthetic.DEFAULT_WORD_FRACTION,
                image_column: str | None = None, caption_column: str | None = None) -> Source:
    """Open a data spec (see module docstring) as a Source; LeanvlError (one line) for anything unusable."""
    spec = os.path.expanduser(spec.strip())
    if spec == "synthetic" or spec.startswith("synthetic:"):
        n = None
        if spec != "synthetic":
            try:
                n = int(spec.split(":", 1)[1])
            except ValueError:
                raise LeanvlError(f"bad synthetic spec {spec!r}; use 'synthetic' or 'synthetic:N'") from None
        return SyntheticSource(n, image_size=image_size, seed=seed, split=split, word_fraction=word_fraction,
                               shuffle=shuffle)
    path, _, overrides = spec.partition("#")
    if path.lower().endswith((".csv", ".tsv")):
        cols = _parse_overrides(overrides, spec)
        return CsvSource(path, image_column=cols.get("image", image_column),
                         caption_column=cols.get("caption", caption_column), seed=seed, shuffle=shuffle,
                         image_size=image_size)
    return ShardSource(spec, seed=seed, shuffle=shuffle, image_size=image_size)
