"""Shard locations: local paths, remote URLs (fsspec: http(s), s3, gs, hf, ...) and webdataset's `pipe:CMD`.

A URL that fsspec opens (any protocol with range reads: http(s) servers that honour `Range`, s3, gs, hf, ...) is
read in place: `read_range` fetches the byte range of one sample, `open_ranged` a file whose reads are small range
requests (for a header scan). Every remote transfer is retried with back-off (`with_retries`), then reported as
ShardUnreadable. `pipe:CMD` shards cannot be read by range: they are fetched whole into a per-node cache directory
through wids' locked download (`download_and_open`, one `flock` per shard), so however many ranks and workers of a
node need one, it is run once; the cache keeps the most recently used files within its byte budget (wids'
`keep_most_recent_files`). The cache also keeps the member index of every remote shard (see shard_index).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from leanvl.errors import LeanvlError

RETRIES = 3
BACKOFF_S = 0.2
HEADER_READAHEAD = 4096  # bytes fetched past each tar header in a remote header scan (covers small members)
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "leanvl", "shards")
T = TypeVar("T")


class ShardUnreadable(Exception):
    """A shard could not be fetched after all retries."""


class NoRangeSupport(ShardUnreadable):
    """The server answered a range request with the whole object (e.g. `python -m http.server`): not retried; the
    reader falls back to fetching the shard whole into the node cache."""


def is_remote(url: str) -> bool:
    """True for `pipe:` and URLs with a scheme other than file://."""
    return url.startswith("pipe:") or ("://" in url and not url.startswith("file://"))


def is_ranged(url: str) -> bool:
    """True for remote URLs read in place by range requests (everything remote but `pipe:`)."""
    return is_remote(url) and not url.startswith("pipe:")


def sidecar_url(url: str, suffix: str) -> str:
    """The URL of a shard's sidecar file: `suffix` appended to the path (before any `?query`)."""
    path, sep, query = url.partition("?")
    return f"{path}{suffix}{sep}{query}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def with_retries(fn: Callable[[], T], what: str, retries: int = RETRIES) -> T:
    """fn() retried with exponential back-off on any error; ShardUnreadable('what: last error') after the last try."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except NoRangeSupport:
            raise
        except Exception as exc:  # noqa: BLE001 - any transport error (aiohttp, botocore, OSError) is retried
            last = f"{type(exc).__name__}: {_first_line(exc)}"
            if attempt < retries:
                time.sleep(BACKOFF_S * 2 ** attempt)
    raise ShardUnreadable(f"{what}: {last}")


def remote_size(url: str, retries: int = RETRIES) -> int:
    """Byte size of a remote object (one metadata request, retried)."""
    from fsspec.core import url_to_fs

    def size() -> int:
        fs, path = url_to_fs(url)
        return int(fs.size(path))

    return with_retries(size, url, retries)


def read_range(url: str, start: int, end: int, retries: int = RETRIES) -> bytes:
    """Bytes [start, end) of a remote object in one range request (retried; a short answer counts as an error)."""
    from fsspec.core import url_to_fs

    def fetch() -> bytes:
        fs, path = url_to_fs(url)
        data = fs.cat_file(path, start=start, end=end)
        if len(data) > end - start:
            raise NoRangeSupport(f"{url}: the server ignores Range requests")
        if len(data) != end - start:
            raise OSError(f"asked for {end - start} bytes at {start}, got {len(data)} (no Range support?)")
        return data

    return with_retries(fetch, url, retries)


def read_optional(url: str, retries: int = RETRIES) -> bytes | None:
    """The whole (small) remote object, or None when it does not exist; ShardUnreadable on transport errors."""
    from fsspec.core import url_to_fs

    def fetch() -> bytes | None:
        fs, path = url_to_fs(url)
        try:
            return fs.cat_file(path)
        except FileNotFoundError:
            return None

    return with_retries(fetch, url, retries)


class RemoteReadError(Exception):
    """A transport error inside a ranged file read (kept apart from OSError, which the tar scan reads as damage)."""


class _RangedReader:
    """Minimal seekable binary reader over an fsspec file whose transport errors become RemoteReadError."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def read(self, n: int = -1) -> bytes:
        try:
            return self.fh.read(n)
        except ValueError as exc:  # fsspec's HTTPFile: "The HTTP server doesn't appear to support range requests"
            if "range requests" in str(exc):
                raise NoRangeSupport(f"{self.fh.path}: the server ignores Range requests") from None
            raise RemoteReadError(_first_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - aiohttp / botocore / OSError alike
            raise RemoteReadError(_first_line(exc)) from None

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()


@contextlib.contextmanager
def open_ranged(url: str, size: int) -> Iterator[_RangedReader]:
    """A reader of a remote object whose reads are range requests of the asked bytes + HEADER_READAHEAD."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url)
    with fs.open(path, "rb", block_size=HEADER_READAHEAD, cache_type="readahead", size=size) as fh:
        yield _RangedReader(fh)


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

    def once() -> None:
        try:
            _copy_remote(url, tmp)
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    with_retries(once, url, retries)


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

    def index_path(self, url: str, size: int) -> str:
        """Where the member index of the remote shard `url` of `size` bytes is kept on this node."""
        digest = hashlib.sha1(f"{url}\0{size}".encode()).hexdigest()[:16]
        name = os.path.basename(url.split("?")[0].rstrip("/"))[-80:].replace(" ", "_").replace("|", "_")
        return os.path.join(self.root, "index", f"{digest}-{name}.idx.json")

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
