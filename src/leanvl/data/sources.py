"""Data sources: the built-in synthetic scenes, webdataset tar shards and CSV/TSV files, behind one interface.

A Source has `raw(epoch)` (cheap, undecoded items, deterministic for (seed, epoch)) and `decode(raw) -> Sample`
(raising SkipSample(reason) for a bad item). The raw stream is the concatenation of epochs 0, 1, 2, ...;
`stream(start)` walks it from a raw index, skipping whole epochs without reading them once their length is known.

Spec strings accepted by `open_source`:
  `synthetic` (infinite) | `synthetic:N` (N samples, cycled) | a shard pattern with brace expansion or globs,
  e.g. `dir/shard-{000000..000099}.tar`, or a directory of *.tar | a `.csv`/`.tsv` file, optionally followed by
  `#image=COL,caption=COL` to name its columns (otherwise detected: filepath/image/path/..., caption/title/text/...).
  Shard patterns may be remote (`https://`, `s3://`, `gs://`, ... through fsspec, or `pipe:CMD`): see remote.py.
`split` selects the synthetic split; for shards and CSV it is ignored (point the spec at the split's files).
`image_size` is the synthetic render size; real images keep their size (the transform resizes them).
"""
from __future__ import annotations

import abc

import csv
import io
import itertools
import os
import random
from collections.abc import Iterator
from typing import Any

from PIL import Image

from leanvl.data import synthetic
from leanvl.data.sample import Sample, SkipSample
from leanvl.data.remote import expand_urls as expand_shards  # noqa: F401 (the shard-pattern expansion)
from leanvl.data.source_base import CAPTION_EXT, IMAGE_EXTS, Source, caption_text, decode_image  # noqa: F401
from leanvl.errors import DataError, LeanvlError

IMAGE_COLUMNS = ("filepath", "image", "image_path", "img", "path", "file", "filename", "file_name")
CAPTION_COLUMNS = ("caption", "title", "text", "captions", "description", "alt", "alt_text")


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

    def at(self, r: int) -> int:
        return r if self.n is None else super().at(r)

    def caption(self, raw: int) -> str:
        return synthetic.scene_for_index(self.seed, self.split, raw, size=self.image_size,
                                         word_fraction=self.word_fraction)[1]

    def decode(self, raw: int) -> Sample:
        image, caption, attrs = synthetic.scene_for_index(self.seed, self.split, raw, size=self.image_size,
                                                          word_fraction=self.word_fraction)
        return Sample(synthetic.synthetic_key(self.seed, self.split, raw), image, caption, attrs)


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

    def caption(self, raw: tuple[str | None, str | None, str, int]) -> str:
        return caption_text(raw[1])

    def decode(self, raw: tuple[str | None, str | None, str, int]) -> Sample:
        rel, caption, root, n = raw
        if rel is None or not rel.strip():
            raise SkipSample("missing_image", f"row {n}")
        full = os.path.join(root, rel.strip())
        if not os.path.isfile(full):
            raise SkipSample("missing_image", full)
        text = caption_text(caption)
        return Sample(f"row{n:09d}", decode_image(None, path=full), text, {})


def open_source(spec: str, *, image_size: int = synthetic.DEFAULT_SIZE, seed: int = 0, split: str = "train",
                shuffle: bool = True, word_fraction: float = synthetic.DEFAULT_WORD_FRACTION,
                image_column: str | None = None, caption_column: str | None = None, cache: Any = None) -> Source:
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
    from leanvl.data.shard_source import ShardSource

    return ShardSource(spec, seed=seed, shuffle=shuffle, image_size=image_size, cache=cache)
