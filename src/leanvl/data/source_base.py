"""The Source interface every data source implements, and the decoding helpers sources share."""
from __future__ import annotations

import abc
import contextvars
import itertools
import io
import random
from collections.abc import Iterator
from typing import Any

from PIL import Image

from leanvl.data import synthetic
from leanvl.data.sample import Sample, SkipSample
from leanvl.errors import DataError, LeanvlError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
CAPTION_EXT = "txt"


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

    def at(self, r: int) -> Any:
        """The raw item at raw index `r` of the epoch concatenation (random access; needs a known epoch size)."""
        size = self.epoch_size(r)
        if size is None:
            raise DataError(f"data source {self} has no random access (unknown epoch size)")
        if size == 0:
            raise DataError(f"data source {self} yielded no items")
        epoch, pos = divmod(r, size)
        cached = getattr(self, "_at_cache", None)
        if cached is None or cached[0] != epoch:
            cached = self._at_cache = (epoch, list(self.raw(epoch)))
        if not cached[1]:
            raise DataError(f"data source {self} yielded no items")
        return cached[1][pos]

    def caption(self, raw: Any) -> str:
        """Only the caption of a raw item (sources override this to skip the image); SkipSample when unusable."""
        return self.decode(raw).caption

    def stream(self, start: int = 0) -> Iterator[tuple[int, Any]]:
        """(raw index, raw item) pairs of the endless epoch concatenation, from raw index `start` on."""
        base = 0
        for epoch in itertools.count():
            size = self.epoch_size(epoch)
            if size == 0:
                raise DataError(f"data source {self} yielded no items")
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



class WrappedSource(Source):
    """A Source over `base` that changes only how items decode: raw items, epoch sizes, random access, captions and
    the stream are the base's own (so a base's fast `stream`/`at` is kept). Subclasses override `decode`."""

    def __init__(self, base: Source) -> None:
        self.base = base

    def raw(self, epoch: int) -> Iterator[Any]:
        return self.base.raw(epoch)

    def epoch_size(self, epoch: int) -> int | None:
        return self.base.epoch_size(epoch)

    def at(self, r: int) -> Any:
        return self.base.at(r)

    def caption(self, raw: Any) -> str:
        return self.base.caption(raw)

    def stream(self, start: int = 0) -> Iterator[tuple[int, Any]]:
        return self.base.stream(start)

    def decode(self, raw: Any) -> Sample:
        return self.base.decode(raw)

# Set by leanvl.data.encoded (`--decode gpu`): JPEG bytes come back header-parsed only, pixels left for the device.
KEEP_JPEG: contextvars.ContextVar[bool] = contextvars.ContextVar("leanvl_keep_jpeg", default=False)


JPEG_KEY = "leanvl_jpeg"  # PIL `info` entry holding the undecoded bytes
DEVICE_MODES = ("RGB", "L")  # JPEG colour modes the device decoder reads


def open_jpeg(data: bytes) -> Image.Image | None:
    """A header-parsed JPEG carrying its bytes (pixels not decoded), or None when the device path cannot take it."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        img = Image.open(io.BytesIO(data))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SkipSample("undecodable_image", str(exc)) from None
    if img.format != "JPEG" or img.mode not in DEVICE_MODES or min(img.size) < 1:
        return None
    img.info[JPEG_KEY] = data
    return img


def decode_image(data: bytes | None, path: str | None = None) -> Image.Image:
    """Decode image bytes (or a file) fully into RGB; SkipSample('undecodable_image') on any decoder error."""
    if data is not None and KEEP_JPEG.get():
        kept = open_jpeg(data)
        if kept is not None:
            return kept
    try:
        with Image.open(io.BytesIO(data) if path is None else path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SkipSample("undecodable_image", str(exc)) from None


def caption_text(text: str | bytes | None) -> str:
    if text is None:
        raise SkipSample("missing_caption")
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    if not text:
        raise SkipSample("empty_caption")
    return text
