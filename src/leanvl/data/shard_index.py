"""The member index of one shard, found the cheapest way: its sidecar, this node's cache, or a header scan.

Local shards: the sidecar `<shard>.idx.json` when it matches the shard's size, else a header scan of the file.
Remote shards (read by range): this node's cached index (keyed by URL and size), else the remote sidecar, else a
header scan by range requests (headers + HEADER_READAHEAD bytes each, never the payloads), retried as one unit. One
process per node builds a remote index (an `flock` on the cache entry); the others wait and read the cached copy.
`pipe:` shards are fetched whole into the node cache and scanned there.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import Any

from leanvl.data.remote import (ShardCache, is_remote, open_ranged, read_optional, remote_size, sidecar_url,
                                with_retries)
from leanvl.data.tar_index import SIDECAR_SUFFIX, dump_index, index_fileobj, index_tar, load_index


def shard_index(url: str, cache: ShardCache) -> list[dict[str, Any]]:
    """The index entries of the shard at `url` (see tar_index.index_fileobj); ShardUnreadable when unreachable."""
    if url.startswith("pipe:"):
        return index_tar(cache.local(url))
    if not is_remote(url):
        return _local_index(url)
    return _remote_index(url, cache)


def _read_index_file(path: str, size: int) -> list[dict[str, Any]] | None:
    try:
        with open(path, "rb") as fh:
            return load_index(fh.read(), size)
    except OSError:
        return None


def _local_index(path: str) -> list[dict[str, Any]]:
    found = _read_index_file(path + SIDECAR_SUFFIX, os.path.getsize(path))
    return found if found is not None else index_tar(path)


def _scan(url: str, size: int) -> list[dict[str, Any]]:
    with open_ranged(url, size) as fh:
        return index_fileobj(fh, size, os.path.basename(url.split("?")[0]))


def _build_remote(url: str, size: int) -> list[dict[str, Any]]:
    data = read_optional(sidecar_url(url, SIDECAR_SUFFIX))
    found = load_index(data, size) if data is not None else None
    return found if found is not None else with_retries(lambda: _scan(url, size), url)


@contextlib.contextmanager
def _node_lock(path: str) -> Iterator[bool]:
    """An exclusive flock on `path` (True), or no lock (False) where the cache directory is not writable."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)


def _remote_index(url: str, cache: ShardCache) -> list[dict[str, Any]]:
    size = remote_size(url)
    cached = cache.index_path(url, size)
    found = _read_index_file(cached, size)
    if found is not None:
        return found
    with _node_lock(cached + ".lock") as locked:
        found = _read_index_file(cached, size) if locked else None
        if found is None:
            found = _build_remote(url, size)
            if locked:
                with contextlib.suppress(OSError):
                    write_index_file(cached, found, size)
    return found


def write_index_file(path: str, samples: list[dict[str, Any]], size: int) -> None:
    """Write the index of a shard of `size` bytes to `path` atomically (temp name + rename)."""
    tmp = f"{path}.part-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(dump_index(samples, size))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_sidecars(paths: list[str], out_dir: str = "") -> list[str]:
    """Index each local shard and write `<shard>.idx.json` next to it (or into `out_dir`); returns the files."""
    written = []
    for path in paths:
        target = os.path.join(out_dir or os.path.dirname(path), os.path.basename(path) + SIDECAR_SUFFIX)
        write_index_file(target, index_tar(path), os.path.getsize(path))
        written.append(target)
    return written
