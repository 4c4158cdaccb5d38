"""One name -> entry registry for every pluggable part (encoders, objectives, compressors, LLMs, text towers)."""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

from leanvl.errors import LeanvlError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; unknown and duplicate names are one-line LeanvlErrors.

    `kind` names the entries in messages ("encoder", "compressor"); `flag` (e.g. "--compressor") prefixes them.
    """

    def __init__(self, kind: str, flag: str = "") -> None:
        self.kind, self.flag = kind, flag
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None) -> Any:
        """Add `entry` under `name`; without `entry`, a decorator that adds what it decorates."""
        if entry is None:
            def wrap(obj: T) -> T:
                self.register(name, obj)
                return obj

            return wrap
        if name in self._entries:
            raise LeanvlError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry
        return entry

    def unknown(self, name: str, also: str = "", flag: str = "") -> LeanvlError:
        """The error for a name that is not registered (`also`: what else the caller accepts)."""
        prefix = f"{flag or self.flag}: " if (flag or self.flag) else ""
        choices = ", ".join(self.names()) + (f"; or {also}" if also else "")
        return LeanvlError(f"{prefix}unknown {self.kind} '{name}' (choose from {choices})")

    def get(self, name: str) -> T:
        """The entry registered under `name` (LeanvlError when unknown)."""
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry under `name` with the given arguments (entries are builders or classes)."""
        builder: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return builder(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
