"""`leanvl data reshard`: rewrite webdataset shards or a CSV as shards whose images are pre-resized.

Every image whose longer side exceeds `--max-side S` is resized (aspect kept, longer side = S, Lanczos after a
libjpeg DCT-domain `draft` for JPEGs) and re-encoded as JPEG (`--quality`); images already <= S are copied
byte-for-byte with their original extension. Keys, captions and every other member (`.json`, ...) are kept, in the
input order (no shuffle, no training transform). Items the trainer would skip (see `leanvl.data.sample.SKIP_REASONS`)
are dropped and counted. EXIF orientation is not applied, exactly as the training decoder does not apply it.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from PIL import Image

from leanvl.errors import LeanvlError
from leanvl.paths import output_dir

MAX_QUALITY = 100


def resize_bytes(data: bytes, max_side: int, quality: int) -> tuple[bytes, bool]:
    """(image bytes with longer side <= max_side, whether they were re-encoded as JPEG); SkipSample if undecodable."""
    from leanvl.data.sample import SkipSample

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            longer = max(width, height)
            if longer <= max_side:
                img.verify()  # a header that parses but a body that does not still counts as undecodable
                return data, False
            size = (max(1, round(width * max_side / longer)), max(1, round(height * max_side / longer)))
            if img.format == "JPEG":
                img.draft("RGB", size)  # decode at the largest 1/k scale still >= size
            out = img.convert("RGB" if img.mode not in ("L", "RGB") else img.mode)
            out = out.resize(size, Image.LANCZOS)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise SkipSample("undecodable_image", str(exc)) from None
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), True


def _shard_items(source: Any, max_side: int, quality: int, skipped: Counter) -> Iterator[dict[str, Any]]:
    from leanvl.data.sample import SkipSample
    from leanvl.data.source_base import CAPTION_EXT, IMAGE_EXTS, caption_text

    in_order = ((shard, j) for shard, entries in enumerate(source.index) for j in range(len(entries)))
    for item_at in in_order:  # every sample in shard order (remote ones by range reads)
        try:
            raw = source.read(item_at)
            ext = next((e for e in IMAGE_EXTS if e in raw), None)
            if ext is None:
                raise SkipSample("missing_image", raw["__key__"])
            caption_text(raw.get(CAPTION_EXT))
            data, resized = resize_bytes(raw[ext], max_side, quality)
        except SkipSample as exc:
            skipped[exc.reason] += 1
            continue
        item = {k: v for k, v in raw.items() if k not in ("__url__", ext)}
        item["__key__"] = os.path.basename(raw["__key__"])
        item["jpg" if resized else ext] = data
        yield item


def _csv_items(source: Any, max_side: int, quality: int, skipped: Counter) -> Iterator[dict[str, Any]]:
    from leanvl.data.sample import SkipSample
    from leanvl.data.source_base import caption_text

    for rel, caption, root, n in source.raw(0):
        try:
            full = os.path.join(root, (rel or "").strip())
            if not rel or not rel.strip() or not os.path.isfile(full):
                raise SkipSample("missing_image", f"row {n}")
            text = caption_text(caption)
            with open(full, "rb") as fh:
                data, resized = resize_bytes(fh.read(), max_side, quality)
        except SkipSample as exc:
            skipped[exc.reason] += 1
            continue
        ext = "jpg" if resized else os.path.splitext(full)[1].lower().lstrip(".") or "jpg"
        yield {"__key__": f"row{n:09d}", ext: data, "txt": text.encode("utf-8")}


def _check_args(args: argparse.Namespace) -> None:
    if args.max_side < 1:
        raise LeanvlError(f"--max-side must be >= 1, got {args.max_side}")
    if args.shard_size < 1:
        raise LeanvlError(f"--shard-size must be >= 1, got {args.shard_size}")
    if not 1 <= args.quality <= MAX_QUALITY:
        raise LeanvlError(f"--quality must be in 1..{MAX_QUALITY}, got {args.quality}")
    if args.data.strip().startswith("synthetic"):
        raise LeanvlError("data reshard reads shards or a CSV; write synthetic data with `leanvl data synth`")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise LeanvlError(f"--out {args.out} exists and is not a directory")
    if os.path.isdir(args.out):
        existing = [f for f in os.listdir(args.out) if f.startswith("shard-") and f.endswith(".tar")]
        if existing:
            raise LeanvlError(f"{args.out} already holds {len(existing)} shard(s); choose an empty --out")


def run_reshard(args: argparse.Namespace) -> int:
    """Rewrite args.data into args.out with images of longer side <= args.max_side; prints counts and the pattern."""
    from leanvl.data.shard_index import write_sidecars
    from leanvl.data.shards import shard_pattern, write_encoded
    from leanvl.data.sources import CsvSource, open_source
    from leanvl.paths import ensure_writable_dir

    _check_args(args)
    source = open_source(args.data, shuffle=False)
    inputs = {os.path.realpath(os.path.dirname(u)) for u in getattr(source, "urls", [])}
    if os.path.realpath(args.out) in inputs:
        raise LeanvlError(f"--out {args.out} is the input's directory; write the resized shards elsewhere")
    ensure_writable_dir(args.out)
    skipped: Counter = Counter()
    make = _csv_items if isinstance(source, CsvSource) else _shard_items
    counted: list[int] = [0]

    def items() -> Iterator[dict[str, Any]]:
        for counted[0], item in enumerate(make(source, args.max_side, args.quality, skipped), start=1):
            yield item

    t0 = time.perf_counter()
    paths = write_encoded(items(), args.out, shard_size=args.shard_size)
    write_sidecars(paths)
    dt = time.perf_counter() - t0
    if not paths:
        raise LeanvlError(f"--data {args.data} has no usable samples (skipped: {dict(skipped) or 'none'})")
    drop = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"
    print(f"wrote {counted[0]} samples in {len(paths)} shard(s) ({counted[0] / max(dt, 1e-9):.0f} samples/s), "
          f"skipped: {drop}; read them with --data '{shard_pattern(args.out, len(paths))}'", file=sys.stdout)
    return 0


def register_data(data_sub: argparse._SubParsersAction) -> None:
    """Add `data reshard` to the `data` sub-parsers."""
    p = data_sub.add_parser(
        "reshard", help="rewrite shards/CSV with images resized to a maximum side",
        description="Rewrite webdataset shards or a CSV as webdataset shards whose images have their longer side "
                    "<= --max-side (aspect kept, JPEG re-encoded; smaller images copied byte-for-byte). Keys, "
                    "captions and other members are kept.")
    p.add_argument("--data", required=True, help="input: shard pattern, directory of .tar, or .csv/.tsv file")
    p.add_argument("--out", required=True, type=output_dir("--out"),
                   help="output directory (created; must hold no shard-*.tar yet)")
    p.add_argument("--max-side", type=int, required=True, help="longest image side in pixels after resizing")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per output shard (default 1000)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of re-encoded images (default 95)")
    p.set_defaults(func=run_reshard)
