"""`leanvl data ...`: data tools. This module owns `data synth`; other areas add their own `data` sub-commands.

Extending: a module listed in DATA_COMMAND_MODULES (e.g. `leanvl.text.idf_cli` for `data idf`,
`leanvl.vlm.data_cli` for `data vqa`) defines `register_data(data_subparsers)`, which adds its sub-parser to the
`data` sub-parsers object and sets `func` with `set_defaults`, exactly like a top-level `register`.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from leanvl.errors import LeanvlError
from leanvl.paths import ensure_writable_dir, output_dir

DATA_COMMAND_MODULES = [
    "leanvl.text.idf_cli",   # data idf
    "leanvl.vlm.data_cli",   # data vqa
    "leanvl.data.reshard",   # data reshard
    "leanvl.data.index_cli", # data index
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data` with its sub-commands to the top-level `leanvl` sub-parsers."""
    data = subparsers.add_parser("data", help="data tools: write synthetic shards, ...",
                                 description="Data tools.")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND",
                                   parser_class=type(data))
    data_sub.required = True
    _register_synth(data_sub)
    for name in DATA_COMMAND_MODULES:
        importlib.import_module(name).register_data(data_sub)


def _register_synth(data_sub: argparse._SubParsersAction) -> None:
    from leanvl.data import synthetic as syn

    p = data_sub.add_parser(
        "synth", help="write built-in synthetic scenes as webdataset tar shards",
        description="Render N synthetic scenes (shapes, colours, sizes, positions, sometimes a word) and write them "
                    "as webdataset shards: <key>.png + <key>.txt caption + <key>.json attributes.")
    p.add_argument("--out", required=True, type=output_dir("--out"),
                   help="output directory for the shards (created if missing)")
    p.add_argument("--n", type=int, required=True, help="number of samples to write")
    p.add_argument("--size", type=int, default=syn.DEFAULT_SIZE,
                   help=f"image side in pixels, {syn.MIN_SIZE}..{syn.MAX_SIZE} (default {syn.DEFAULT_SIZE})")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the scene stream (default 0)")
    p.add_argument("--split", default="train", choices=syn.SPLITS,
                   help="which split's seed stream to render (default train)")
    p.add_argument("--word-fraction", type=float, default=syn.DEFAULT_WORD_FRACTION,
                   help=f"share of images that also show a word (default {syn.DEFAULT_WORD_FRACTION})")
    p.add_argument("--image-format", default="png", choices=("png", "jpg", "webp"),
                   help="image encoding inside the shards (default png, lossless)")
    p.add_argument("--overwrite", action="store_true", help="replace shards already present in --out")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Write args.n synthetic samples as shards into args.out and print the brace pattern that reads them back."""
    from leanvl.data import synthetic as syn
    from leanvl.data.sample import Sample
    from leanvl.data.shards import shard_pattern, write_shards

    if args.n < 1:
        raise LeanvlError(f"--n must be >= 1, got {args.n}")
    if args.shard_size < 1:
        raise LeanvlError(f"--shard-size must be >= 1, got {args.shard_size}")
    syn.check_params(args.size, args.split, args.word_fraction)
    if os.path.isdir(args.out) and not args.overwrite:
        existing = [f for f in os.listdir(args.out) if f.startswith("shard-") and f.endswith(".tar")]
        if existing:
            raise LeanvlError(f"{args.out} already holds {len(existing)} shard(s); pass --overwrite to replace them")
    ensure_writable_dir(args.out)
    if args.overwrite:
        for f in os.listdir(args.out):
            if f.startswith("shard-") and f.endswith(".tar"):
                os.remove(os.path.join(args.out, f))

    def samples():
        for i in range(args.n):
            image, caption, attrs = syn.scene_for_index(args.seed, args.split, i, size=args.size,
                                                        word_fraction=args.word_fraction)
            yield Sample(syn.synthetic_key(args.seed, args.split, i), image, caption, attrs)

    t0 = time.perf_counter()
    paths = write_shards(samples(), args.out, shard_size=args.shard_size, image_format=args.image_format)
    dt = time.perf_counter() - t0
    print(f"wrote {args.n} samples in {len(paths)} shard(s) ({args.n / max(dt, 1e-9):.0f} samples/s); "
          f"read them with --data '{shard_pattern(args.out, len(paths))}'", file=sys.stdout)
    return 0
