"""Export directories: refuse an occupied --out, and write a directory atomically (all of it or nothing)."""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from leanvl.errors import LeanvlError


def check_out_dir(out: str) -> None:
    """Refuse an --out that exists and is not empty (an export never overwrites)."""
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise LeanvlError(f"--out {out} already exists and is not empty; choose a new directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise LeanvlError(f"--out {out}: parent directory {parent} does not exist or is not writable")


def write_atomically(out: str, write: Callable[[str], Any]) -> Any:
    """Run `write(tmp_dir)` and move the directory into place as `out`; nothing is left behind on failure."""
    tmp = os.path.abspath(out).rstrip("/") + ".tmp-export"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        result = write(tmp)
        if os.path.isdir(out):
            os.rmdir(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
