"""`leanvl data index`: write the sidecar index `<shard>.idx.json` of webdataset shards.

With the sidecar next to a shard (local, or uploaded beside a remote one), a reader learns the shard's samples and
their byte ranges from one small file instead of scanning the tar headers; a sidecar whose recorded size differs
from the shard's is ignored (the reader scans instead).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from leanvl.errors import LeanvlError


def run_index(args: argparse.Namespace) -> int:
    """Index every shard of args.data; write each sidecar next to it (local shards) or into args.out."""
    from leanvl.data.remote import ShardCache, expand_urls, is_remote
    from leanvl.data.shard_index import write_index_file
    from leanvl.data.tar_index import SIDECAR_SUFFIX, TRUNCATED
    from leanvl.paths import ensure_writable_dir

    urls = expand_urls(args.data)
    remote = [u for u in urls if is_remote(u)]
    if remote and not args.out:
        raise LeanvlError(f"{remote[0]} is remote: pass --out DIR for its index, then upload DIR's files beside "
                          "the shards")
    for folder in sorted({args.out} if args.out else {os.path.dirname(u) or "." for u in urls}):
        ensure_writable_dir(folder, "--out" if args.out else "--data")
    cache, t0, samples, cut = ShardCache(args.data_cache), time.perf_counter(), 0, 0
    for url in urls:
        entries, size = _index_one(url, cache)
        name = os.path.basename(url.split("?")[0]) + SIDECAR_SUFFIX
        write_index_file(os.path.join(args.out or os.path.dirname(url), name), entries, size)
        samples += sum(TRUNCATED not in e for e in entries)
        cut += sum(TRUNCATED in e for e in entries)
    print(f"indexed {len(urls)} shard(s), {samples} samples ({cut} truncated) in {time.perf_counter() - t0:.1f} s; "
          f"wrote <shard>{SIDECAR_SUFFIX} " + (f"into {args.out}" if args.out else "next to each shard"),
          file=sys.stdout)
    return 0


def _index_one(url: str, cache) -> tuple[list, int]:
    """(index entries, byte size) of one shard; never an existing sidecar of a local shard (it is being rewritten)."""
    from leanvl.data.remote import ShardUnreadable, is_ranged, is_remote, remote_size
    from leanvl.data.shard_index import shard_index
    from leanvl.data.tar_index import index_tar

    try:
        if not is_remote(url):
            return index_tar(url), os.path.getsize(url)
        entries = shard_index(url, cache)
        return entries, remote_size(url) if is_ranged(url) else os.path.getsize(cache.local(url))
    except ShardUnreadable as exc:
        raise LeanvlError(f"cannot index {exc}") from None


def register_data(data_sub: argparse._SubParsersAction) -> None:
    """Add `data index` to the `data` sub-parsers."""
    p = data_sub.add_parser(
        "index", help="write <shard>.idx.json sidecar indexes (readers then skip the tar header scan)",
        description="Index webdataset shards (local or remote) and write one <shard>.idx.json per shard: its "
                    "samples and their byte ranges. Readers use a sidecar that matches the shard's size.")
    p.add_argument("--data", required=True, help="shard pattern (brace expansion), glob or directory of .tar")
    p.add_argument("--out", default="", help="directory for the sidecars (required for remote shards; default: "
                                             "next to each local shard)")
    p.add_argument("--data-cache", default="", help="node cache for remote/pipe: shards (default ~/.cache/leanvl)")
    p.set_defaults(func=run_index)
