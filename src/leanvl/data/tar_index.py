"""A member index of one webdataset tar (header scan, no payload read), its sidecar file, and one sample's bytes.

The index groups members into samples exactly as webdataset does (key = path up to the first dot of the basename);
a tar that ends mid-member or mid-header gets one final `truncated` entry standing for the unreadable rest, and the
sample whose member was cut off is folded into it (the skip contract of docs/CONTRACTS.md). The scan works on any
seekable file object (a local file, or an fsspec file doing range reads), so a remote shard is indexed by reading
its headers only. The sidecar `<shard>.idx.json` (written by `leanvl data index` / `data reshard`) stores the same
index with the shard's byte size, so a reader that finds it reads no tar headers at all.
"""
from __future__ import annotations

import json
import os
import tarfile
from typing import Any

TRUNCATED = "__truncated__"
SIDECAR_SUFFIX = ".idx.json"
SIDECAR_FORMAT = "leanvl-tar-index/1"


def split_name(name: str) -> tuple[str, str]:
    """webdataset naming: key = path up to the first dot of the basename, extension = the rest (lower case)."""
    dirname, base = os.path.split(name)
    stem, _, ext = base.partition(".")
    return os.path.join(dirname, stem), ext.lower()


def _partial_header(fh: Any, offset: int) -> bytes | None:
    """The bytes after the last complete member when they are a cut-off header, else None."""
    fh.seek(offset)
    tail = fh.read(1 << 20)
    if len(tail) >= 512 or not tail.strip(b"\0"):
        return None  # a complete (zero) end-of-archive block, or nothing left
    return tail[:100].split(b"\0", 1)[0]


def index_tar(path: str) -> list[dict[str, Any]]:
    """Samples of a local tar as [{'key': k, 'members': {ext: [offset, size]}}] plus a final truncation entry."""
    with open(path, "rb") as fh:
        return index_fileobj(fh, os.path.getsize(path), os.path.basename(path))


def index_fileobj(fh: Any, size: int, name: str) -> list[dict[str, Any]]:
    """The index of the tar in the seekable binary file `fh` of `size` bytes (`name` labels a truncation entry).

    Only headers are read (tarfile seeks over the payloads); a payload running past the end of the file marks the
    truncation."""
    samples: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    reason, pending = "", False
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_name(member.name)
                if os.path.basename(key).startswith("__") or not ext:
                    continue
                if group is not None and group["key"] != key:
                    samples.append(group)
                    group = None
                if group is None:
                    group = {"key": key, "members": {}}
                if member.offset_data + member.size > size:
                    reason, pending = "tar ends inside a member", True
                    break
                group["members"][ext] = [member.offset_data, member.size]
            end = tar.offset
        if not reason:
            partial = _partial_header(fh, end)
            if partial is not None:
                reason = "tar ends inside a member header"
                cut = partial.decode("utf-8", "replace")
                unknown = not cut or "@PaxHeader" in cut or "@LongLink" in cut
                stem = group["key"] + "." if group is not None else ""
                pending = group is not None and (unknown or cut.startswith(stem) or stem.startswith(cut))
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = str(exc) or "truncated"
    if group is not None and not pending:
        samples.append(group)
    if reason:
        samples.append({"key": f"{name}:truncated", TRUNCATED: reason})
    return samples


def read_sample(path: str, entry: dict[str, Any], exts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The webdataset dict ({'__key__', ext: bytes}) of one index entry, reading only its byte ranges (or `exts`)."""
    if TRUNCATED in entry:
        return {"__key__": entry["key"], TRUNCATED: entry[TRUNCATED]}
    out: dict[str, Any] = {"__key__": entry["key"]}
    fd = os.open(path, os.O_RDONLY)
    try:
        for ext, (offset, size) in entry["members"].items():
            if exts is None or ext in exts:
                out[ext] = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    return out


def span(entry: dict[str, Any], exts: tuple[str, ...] | None = None) -> tuple[int, int]:
    """The byte range [start, end) of the tar covering the members `exts` (all when None) of one index entry."""
    parts = [(o, o + n) for e, (o, n) in entry["members"].items() if exts is None or e in exts]
    if not parts:
        return 0, 0
    return min(p[0] for p in parts), max(p[1] for p in parts)


def sample_from_span(entry: dict[str, Any], data: bytes, start: int,
                     exts: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The webdataset dict of one entry from `data`, the tar bytes read from offset `start` (see `span`)."""
    out: dict[str, Any] = {"__key__": entry["key"]}
    for ext, (offset, size) in entry["members"].items():
        if exts is None or ext in exts:
            out[ext] = data[offset - start:offset - start + size]
    return out


def dump_index(samples: list[dict[str, Any]], size: int) -> bytes:
    """The sidecar file content of an index of a tar of `size` bytes."""
    return json.dumps({"format": SIDECAR_FORMAT, "size": size, "samples": samples},
                      separators=(",", ":")).encode()


def load_index(data: bytes, size: int) -> list[dict[str, Any]] | None:
    """The index stored in sidecar bytes, or None when they are not a leanvl index or describe another size."""
    try:
        doc = json.loads(data)
        if doc.get("format") != SIDECAR_FORMAT or doc.get("size") != size:
            return None
        samples = doc["samples"]
        if all(isinstance(s, dict) and ("members" in s or TRUNCATED in s) and "key" in s for s in samples):
            return samples
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None
