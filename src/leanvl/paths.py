"""Paths the user names for outputs: checked before any long work (at parse time for `type=` flags)."""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import Callable

from leanvl.errors import LeanvlError


def ensure_writable_dir(path: str, flag: str = "--out") -> None:
    """Create directory `path` if needed and prove it is writable; LeanvlError (one line) otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise LeanvlError(f"{flag} {path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise LeanvlError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    _probe_write(path, f"{flag} {path}")


def _nearest_existing(path: str) -> str:
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    return probe


def check_dir_creatable(path: str, flag: str = "--out") -> None:
    """LeanvlError unless directory `path` exists writable or could be created: its nearest existing ancestor is
    a directory that takes a new file (proved with a probe file, removed at once; nothing else is created)."""
    probe = _nearest_existing(path)
    if not os.path.isdir(probe):
        where = "" if probe == os.path.abspath(path) else f"{probe} "
        raise LeanvlError(f"{flag} {path}: {where}exists and is not a directory")
    _probe_write(probe, f"{flag} {path}")


def _probe_write(directory: str, what: str) -> None:
    """LeanvlError naming `what` unless a new file can be created in `directory` (the probe is removed)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".leanvl-write-test-")
        os.close(fd)
        os.remove(name)
    except OSError as exc:
        raise LeanvlError(f"{what}: cannot write in {directory} ({exc.strerror or exc})") from None


def check_file_writable(path: str, flag: str) -> None:
    """LeanvlError unless file `path` could be written: it is not a directory, its directory exists and takes a
    new file, and an existing file is writable. An existing file is not touched."""
    if os.path.isdir(path):
        raise LeanvlError(f"{flag} {path}: is a directory, expected a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise LeanvlError(f"{flag} {path}: directory {parent} does not exist")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise LeanvlError(f"{flag} {path}: not writable")
    _probe_write(parent, f"{flag} {path}")


def _arg_type(check: Callable[[str, str], None], flag: str) -> Callable[[str], str]:
    def output_path(value: str) -> str:
        if value:
            try:
                check(value, flag)
            except LeanvlError as exc:  # argparse prefixes "argument FLAG: "
                raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from None
        return value

    return output_path


def output_file(flag: str) -> Callable[[str], str]:
    """argparse `type=` for an output file flag: checked when the command line is parsed, before any work; nothing
    is left behind and an existing file is not touched ('' passes: no output)."""
    return _arg_type(check_file_writable, flag)


def output_dir(flag: str) -> Callable[[str], str]:
    """argparse `type=` for an output directory flag (checked at parse time; no directory is created)."""
    return _arg_type(check_dir_creatable, flag)
