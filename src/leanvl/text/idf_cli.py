"""`leanvl data idf`: one pass over a data source -> an IDF table (document counts) for `--idf offline`."""
from __future__ import annotations

import argparse
import itertools
import os

from leanvl.errors import LeanvlError
from leanvl.paths import output_file


def compute_idf_table(spec: str, n: int | None, max_tokens: int | None = None, seed: int = 0,
                      image_size: int = 64) -> dict:
    """Document frequency of every BPE id over one epoch of `spec` (or its first `n` samples)."""
    import torch

    from leanvl.data.sources import SkipSample, open_source
    from leanvl.text.labels import VOCAB_SIZE, encode

    source = open_source(spec, image_size=image_size, seed=seed, split="train")
    items = source.raw(0)
    if n:
        items = itertools.islice(items, n)
    elif source.epoch_size(0) is None:
        raise LeanvlError(f"--data {spec} is endless: give --n, the number of captions to count")
    df = torch.zeros(VOCAB_SIZE, dtype=torch.float64)
    docs, skipped, captions = 0, 0, []

    def flush() -> None:
        for ids in encode(captions, max_tokens=max_tokens):
            df[torch.tensor(ids, dtype=torch.long)] += 1.0
        captions.clear()

    for raw in items:
        try:
            captions.append(source.caption(raw))  # shards: only the .txt member is read, no image decode
        except SkipSample:
            skipped += 1
            continue
        docs += 1
        if len(captions) >= 4096:
            flush()
    flush()
    if docs == 0:
        raise LeanvlError(f"--data {spec}: no usable captions")
    return {"docs": torch.tensor(float(docs), dtype=torch.float64), "df": df, "skipped": skipped}


def _idf(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    if args.n < 0 or args.label_max_tokens < 0:
        raise LeanvlError(f"--n and --label-max-tokens must be >= 0, got {args.n} and {args.label_max_tokens}")
    table = compute_idf_table(args.data, args.n or None, args.label_max_tokens or None, args.seed)
    tmp = args.out + ".tmp"
    save_file({"docs": table["docs"], "df": table["df"]}, tmp)
    os.replace(tmp, args.out)
    used = int((table["df"] > 0).sum())
    print(f"leanvl: IDF table over {int(table['docs'])} captions ({used} distinct ids, "
          f"{table['skipped']} skipped samples) written to {args.out}")
    return 0


def register_data(data_sub: argparse._SubParsersAction) -> None:
    """Add `data idf`."""
    p = data_sub.add_parser("idf", help="count caption subword document frequencies for --idf offline")
    p.add_argument("--data", required=True, help="synthetic | synthetic:N | shard pattern | CSV/TSV path")
    p.add_argument("--out", required=True, type=output_file("--out"), help="output table (safetensors: docs, df)")
    p.add_argument("--n", type=int, default=0, help="count only the first N samples (required for endless sources)")
    p.add_argument("--label-max-tokens", type=int, default=0, help="cap BPE tokens per caption (0 = whole caption)")
    p.add_argument("--seed", type=int, default=0, help="seed of the source (synthetic scenes, shard order)")
    p.set_defaults(func=_idf)
