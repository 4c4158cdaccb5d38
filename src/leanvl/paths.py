"""Output-directory checks shared by every command that writes one."""
from __future__ import annotations

import os

from leanvl.errors import LeanvlError


def ensure_writable_dir(path: str, flag: str = "--out") -> None:
    """Create directory `path` if needed and prove it is writable; LeanvlError (one line) otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise LeanvlError(f"{flag} {path}: exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".leanvl-write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise LeanvlError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
