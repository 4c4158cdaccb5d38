"""Writing samples as standard webdataset tar shards: `<key>.png|jpg` + `<key>.txt` caption + `<key>.json` attrs.

Shards are written with webdataset's TarWriter (fixed mtime/owner, so equal samples give byte-identical shards) to a
temporary name and renamed when complete, so a reader never sees a half-written shard.
"""
from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable

from leanvl.data.sample import Sample
from leanvl.errors import LeanvlError

IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


def encode_sample(sample: Sample, image_format: str = "png") -> dict[str, bytes | str]:
    """The webdataset dict of one sample, every member already encoded to bytes."""
    buf = io.BytesIO()
    options = {"quality": 95} if image_format in ("jpg", "webp") else {}
    sample.image.convert("RGB").save(buf, format=IMAGE_FORMATS[image_format], **options)
    return {
        "__key__": sample.key,
        image_format: buf.getvalue(),
        "txt": sample.caption.encode("utf-8"),
        "json": json.dumps(sample.attrs, sort_keys=True).encode("utf-8"),
    }


def shard_pattern(out_dir: str, n_shards: int, prefix: str = "shard") -> str:
    """The brace pattern naming all shards written to out_dir, e.g. 'out/shard-{000000..000003}.tar'."""
    last = max(n_shards - 1, 0)
    return os.path.join(out_dir, f"{prefix}-{{000000..{last:06d}}}.tar")


def write_shards(samples: Iterable[Sample], out_dir: str, *, shard_size: int = 1000, image_format: str = "png",
                 prefix: str = "shard") -> list[str]:
    """Write samples into out_dir/<prefix>-000000.tar, ... with `shard_size` samples each; returns the paths."""
    if image_format not in IMAGE_FORMATS:
        raise LeanvlError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    return write_encoded((encode_sample(s, image_format) for s in samples), out_dir, shard_size=shard_size,
                         prefix=prefix)


def write_encoded(items: Iterable[dict[str, bytes | str]], out_dir: str, *, shard_size: int = 1000,
                  prefix: str = "shard") -> list[str]:
    """Write already-encoded webdataset dicts ('__key__' + ext: bytes) as shards, like `write_shards`."""
    import webdataset as wds

    if shard_size < 1:
        raise LeanvlError(f"shard size must be >= 1, got {shard_size}")
    os.makedirs(out_dir, exist_ok=True)
    paths: list[str] = []
    writer, fh, count, tmp = None, None, 0, ""

    def close() -> None:
        if writer is not None:
            writer.close()  # closes fh too
            os.replace(tmp, paths[-1])

    try:
        for item in items:
            if writer is None or count == shard_size:
                close()
                paths.append(os.path.join(out_dir, f"{prefix}-{len(paths):06d}.tar"))
                tmp = paths[-1] + ".tmp"
                fh = open(tmp, "wb")
                writer, count = wds.TarWriter(fh, encoder=False, mtime=0, user="leanvl", group="leanvl"), 0
            writer.write(item)
            count += 1
        close()
        writer = None
    finally:
        if writer is not None:  # interrupted mid-shard: leave no partial shard behind
            writer.close()
            if os.path.exists(tmp):
                os.remove(tmp)
    return paths
