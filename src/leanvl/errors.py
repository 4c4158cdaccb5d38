"""User-facing errors: anything a user can cause ends the program with exit code 2 and one clear line."""
from __future__ import annotations


class LeanvlError(Exception):
    """An error caused by user input (bad path, flag value, data); printed as one line, exit code 2."""

    exit_code = 2


class DataError(LeanvlError):
    """Bad or unusable data (too many corrupt samples, empty shard list, malformed file)."""

