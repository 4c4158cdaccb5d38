"""Build argparse flags from config dataclasses: one flag per field, its help from the field's metadata.

Declare a flag's help with `opt`:  `steps: int = opt(100, "optimizer steps")` (or `opt(factory=list, help=...)`).
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable


def opt(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field whose `--help` text is `help` (kept in the field's metadata)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def field_help(f: Field) -> str:
    """The help text declared for dataclass field `f` (its name when none was declared)."""
    return f.metadata.get("help") or f.name


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def add_dataclass_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                       skip: tuple[str, ...] = (), overrides: dict[str, Any] | None = None,
                       convert: dict[str, Callable[[Any], str]] | None = None) -> None:
    """Add `--field-name` for every simple field of dataclass `cls` (bool fields become on/off switches).

    `convert[name]` renders a list default as its flag text (e.g. comma-joined); those flags then take a string.
    """
    overrides, convert = overrides or {}, convert or {}
    for f in fields(cls):
        if f.name in skip or f.type in ("dict[str, Any]", dict) or not f.init:
            continue
        default = overrides.get(f.name, _default(f))
        if f.name in convert:
            default = convert[f.name](default)
        flag = "--" + f.name.replace("_", "-")
        text = field_help(f)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=f.name, type=kind, default=default,
                                help=f"{text} (default: {default!r})")


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """Instantiate `cls` from the parsed flags that match its fields."""
    names = {f.name for f in fields(cls) if f.init}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    return cls(**values)
