"""Build argparse flags from config dataclasses (one flag per field; the field's trailing comment is its help)."""
from __future__ import annotations

import argparse
import inspect
import re
from dataclasses import MISSING, fields
from typing import Any

_COMMENT = re.compile(r"^\s+(\w+)\s*:[^=#]*(?:=[^#]*)?#\s*(.+)$")


def field_help(cls: type) -> dict[str, str]:
    """Map field name -> the comment written after it in the class source."""
    helps: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        m = _COMMENT.match(line)
        if m:
            helps[m.group(1)] = m.group(2).strip()
    return helps


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                       overrides: dict[str, Any] | None = None) -> None:
    """Add `--field-name` for every simple field of dataclass `cls` (bool fields become on/off switches)."""
    helps = field_help(cls)
    overrides = overrides or {}
    for f in fields(cls):
        if f.name in skip or f.type in ("dict[str, Any]", dict):
            continue
        default = overrides.get(f.name, f.default if f.default is not MISSING else None)
        flag = "--" + f.name.replace("_", "-")
        text = helps.get(f.name, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=f.name, type=kind, default=default,
                                help=f"{text} (default: {default!r})")


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """Instantiate `cls` from the parsed flags that match its fields."""
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    return cls(**values)
