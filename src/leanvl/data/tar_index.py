"""A member index of one webdataset tar (header scan, no payload read) and reading one sample's byte ranges.

The index groups members into samples exactly as webdataset does (key = path up to the first dot of the basename);
a tar that ends mid-member or mid-header gets one final `truncated` entry standing for the unreadable rest, and the
sample whose member was cut off is folded into it (the skip contract of docs/CONTRACTS.md).
"""
from __future__ import annotations

import os
import tarfile
from typing import Any

TRUNCATED = "__truncated__"


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
    """Samples of a local tar as [{'key': k, 'members': {ext: [offset, size]}}] plus a final truncation entry.

    Only headers are read (tarfile seeks over the payloads); a payload running past the end of the file marks the
    truncation."""
    samples: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    reason, pending = "", False
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as fh:
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
                    name = partial.decode("utf-8", "replace")
                    unknown = not name or "@PaxHeader" in name or "@LongLink" in name
                    stem = group["key"] + "." if group is not None else ""
                    pending = group is not None and (unknown or name.startswith(stem) or stem.startswith(name))
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = str(exc) or "truncated"
    if group is not None and not pending:
        samples.append(group)
    if reason:
        samples.append({"key": f"{os.path.basename(path)}:truncated", TRUNCATED: reason})
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
