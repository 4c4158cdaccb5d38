"""The CLI's one error boundary: which exceptions the user caused (one line, exit 2) and which are bugs."""
from __future__ import annotations

import json
import pickle


def one_line(text: object) -> str:
    """The line of an exception text that says what happened (a re-raised worker error: its last line)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1] if any("Traceback" in ln for ln in lines) else lines[0]


def _os_message(exc: OSError) -> str:
    what = exc.strerror or one_line(exc) or type(exc).__name__
    return f"{what} ({exc.filename})" if exc.filename is not None else what


def user_error_message(exc: BaseException) -> str | None:
    """One line for an exception that is not a LeanvlError but that the user caused (files, I/O, offline hub,
    refused pickles, malformed JSON or safetensors, out of memory); None for anything else: a bug in leanvl."""
    module = type(exc).__module__ or ""
    if module.startswith("huggingface_hub") or type(exc).__name__ == "OfflineModeIsEnabled":
        return f"model hub not reachable or file missing ({one_line(exc)[:200]}); give a local path instead"
    if isinstance(exc, OSError):
        return _os_message(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg} at line {exc.lineno})"
    if type(exc).__name__ == "SafetensorError":
        return f"unreadable safetensors file: {one_line(exc)[:200]}"
    if isinstance(exc, pickle.UnpicklingError):
        return f"refused to load a pickled file (leanvl never unpickles arbitrary objects): {one_line(exc)[:160]}"
    if isinstance(exc, UnicodeDecodeError):
        return f"a text file is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "out of memory: lower --batch-size (or use --accum-freq, --grad-checkpointing, --precision bf16)"
    return None
