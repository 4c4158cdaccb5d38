"""`leanvl data vqa`: write the built-in VQA (reasoning + OCR questions on synthetic scenes) as LLaVA json or shards."""
from __future__ import annotations

import argparse
import os
import random
from typing import Any, Iterator

from leanvl.errors import LeanvlError
from leanvl.paths import ensure_writable_dir, output_dir


def vqa_entries(n: int, *, split: str, size: int, seed: int) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(image, LLaVA entry) for every question of the first n scenes of `split` (eval questions: one reasoning,
    plus OCR when the scene shows a word); entries carry `split` (reasoning|ocr), `kind` and scene `attrs`."""
    from leanvl.data.synthetic import scene_for_index, synthetic_key
    from leanvl.vlm.vqa_data import conversation, eval_questions

    for i in range(n):
        image, _, attrs = scene_for_index(seed, split, i, size=size)
        key = synthetic_key(seed, split, i)
        for j, qa in enumerate(eval_questions(attrs, random.Random(f"vlm-eval/{seed}/{i}"))):
            yield image, {"id": f"{key}-q{j}", "image": f"images/{key}.png", "split": qa["split"],
                          "kind": qa["kind"], "conversations": conversation(qa["question"], qa["answer"])}


def run_vqa(args: argparse.Namespace) -> int:
    """Write args.n scenes' questions to args.out as vqa.json + images/ (or webdataset shards)."""
    from leanvl.data.synthetic import check_params
    from leanvl.vlm.vqa_data import write_llava_json

    if args.n < 1:
        raise LeanvlError(f"--n must be >= 1, got {args.n}")
    check_params(args.size, args.split, 0.3)
    ensure_writable_dir(os.path.join(args.out, "images"), flag="--out")
    entries = list(vqa_entries(args.n, split=args.split, size=args.size, seed=args.seed))
    if args.format == "shards":
        from leanvl.data.sample import Sample
        from leanvl.data.shards import shard_pattern, write_shards

        samples = (Sample(e["id"], img, e["conversations"][1]["value"],
                          {"conversations": e["conversations"], "split": e["split"], "kind": e["kind"]})
                   for img, e in entries)
        paths = write_shards(samples, args.out, shard_size=args.shard_size, prefix="vqa")
        print(f"wrote {len(entries)} questions in {len(paths)} shard(s): {shard_pattern(args.out, len(paths), 'vqa')}")
        return 0
    for img, e in entries:
        path = os.path.join(args.out, e["image"])
        if not os.path.exists(path):
            img.save(path)
    target = os.path.join(args.out, "vqa.json")
    write_llava_json([e for _, e in entries], target)
    counts = {s: sum(e["split"] == s for _, e in entries) for s in ("reasoning", "ocr")}
    print(f"wrote {len(entries)} questions ({counts['reasoning']} reasoning, {counts['ocr']} ocr) on {args.n} "
          f"images: {target}")
    return 0


def register_data(data_sub: argparse._SubParsersAction) -> None:
    """Add `data vqa` to the `leanvl data` sub-commands (hook called by leanvl.data.cli)."""
    p = data_sub.add_parser("vqa", help="write the built-in VQA (reasoning + OCR) as LLaVA json + images or shards",
                            description="Render synthetic scenes and write their questions (colour, shape, count, "
                                        "relative position, existence -> split reasoning; the word -> split ocr).")
    p.add_argument("--out", required=True, type=output_dir("--out"),
                   help="output directory (vqa.json + images/, or vqa-*.tar shards)")
    p.add_argument("--n", type=int, default=200, help="number of scenes (default 200)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="scene split (default test)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    p.add_argument("--format", default="json", choices=("json", "shards"), help="json + images, or shards")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard with --format shards")
    p.set_defaults(func=run_vqa)


register_data_commands = register_data  # name used in the work order
