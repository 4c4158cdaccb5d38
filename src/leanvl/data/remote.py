"""Shard locations: local paths, remote URLs (fsspec: http(s), s3, gs, ...) and webdataset's `pipe:CMD`.

Remote shards are fetched whole into a per-node cache directory through wids' locked download (`download_and_open`,
one `flock` per shard), so however many ranks and workers of a node need a shard, it is downloaded once. A failed
or cut-off transfer is retried with back-off, then reported as ShardUnreadable. The cache keeps the most recently
used files within its byte budget (wids' `keep_most_recent_files`).
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import time

from leanvl.errors import LeanvlError

RETRIES = 3
BACKOFF_S = 0.2
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "leanvl", "shards")


class ShardUnreadable(Exception):
    """A shard could not be fetched after all retries."""


def is_remote(url: str) -> bool:
    """True for `pipe:` and URLs with a scheme other than file://."""
    return url.startswith("pipe:") or ("://" in url and not url.startswith("file://"))


def expand_urls(pattern: str) -> list[str]:
    """Brace-expand a shard pattern; local parts also take globs and directories (their *.tar, sorted)."""
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
        if not is_remote(part) and any(c in part for c in "*?["):
            paths.extend(sorted(glob.glob(part)))
        else:
            paths.append(part[len("file://"):] if part.startswith("file://") else part)
    if not paths:
        raise LeanvlError(f"shard pattern {pattern!r} matches no files")
    missing = [p for p in paths if not is_remote(p) and not os.path.isfile(p)]
    if missing:
        raise LeanvlError(f"shard not found: {missing[0]}" + (f" ({len(missing)} of {len(paths)} missing)"
                                                             if len(paths) > 1 else ""))
    return paths


def _copy_remote(url: str, local: str) -> None:
    """One transfer of `url` into `local` (fsspec, or the shell command of a pipe: URL)."""
    if url.startswith("pipe:"):
        with open(local, "wb") as out:
            done = subprocess.run(url[5:], shell=True, stdout=out, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise OSError(f"command failed ({done.returncode}): {done.stderr.decode(errors='replace')[-200:]}")
        return
    import fsspec

    options = {"block_size": 0} if url.startswith(("http://", "https://")) else {}  # http: stream, no range reads
    with fsspec.open(url, "rb", **options) as src, open(local, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def fetch_with_retries(url: str, local: str, retries: int = RETRIES) -> None:
    """Download `url` to `local` atomically (temp name + rename), retrying; ShardUnreadable after the last try."""
    tmp = f"{local}.part-{os.getpid()}"
    last = ""
    for attempt in range(retries + 1):
        try:
            _copy_remote(url, tmp)
            os.replace(tmp, local)
            return
        except Exception as exc:  # noqa: BLE001 - any transport error (aiohttp, botocore, OSError) is retried
            last = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if os.path.exists(tmp):
                os.remove(tmp)
            if attempt < retries:
                time.sleep(BACKOFF_S * 2 ** attempt)
    raise ShardUnreadable(f"{url}: {last}")


class ShardCache:
    """Node-local cache of remote shards; `local(url)` is a readable local path (the url itself when local)."""

    def __init__(self, root: str = "", max_bytes: int = 100 * 2**30) -> None:
        self.root, self.max_bytes = root or DEFAULT_CACHE, max_bytes
        if max_bytes < 1:
            raise LeanvlError(f"--data-cache-gb must be > 0, got {max_bytes / 2**30:g}")

    def path_for(self, url: str) -> str:
        name = os.path.basename(url.split("?")[0].rstrip("/")) or "shard"
        digest = hashlib.sha1(url.encode()).hexdigest()[:16]
        name = name[-80:].replace(" ", "_").replace("|", "_")
        return os.path.join(self.root, f"{digest}-{name}" + ("" if name.endswith(".tar") else ".tar"))

    def local(self, url: str) -> str:
        """Fetch `url` once per node (flock'd), trim the cache to its budget, return the local file."""
        if not is_remote(url):
            return url
        from wids.wids_cleanup import keep_most_recent_files
        from wids.wids_dl import download_and_open

        os.makedirs(self.root, exist_ok=True)
        target = self.path_for(url)
        handlers = {scheme: fetch_with_retries for scheme in ("pipe", "http", "https", "s3", "gs", "hf", "gcs")}
        if os.path.exists(target):
            os.utime(target)  # most recently used
            return target
        scheme = "pipe" if url.startswith("pipe:") else url.split("://", 1)[0]
        if scheme not in handlers:
            handlers[scheme] = fetch_with_retries
        # make room first (least recently used shards go), so the shard being fetched is never the one removed
        keep_most_recent_files(os.path.join(self.root, "*.tar"), maxsize=self.max_bytes, maxfiles=10**9)
        try:
            download_and_open(url, target, handlers=handlers).close()
        except ShardUnreadable:
            raise
        except OSError as exc:
            raise LeanvlError(f"--data-cache {self.root}: cannot write there ({exc})") from None
        return target
