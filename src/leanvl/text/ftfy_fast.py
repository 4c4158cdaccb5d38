"""Exact, faster stand-ins for the two ftfy 6 functions open_clip's cleaning depends on.

* `is_bad(text)` == `ftfy.badness.is_bad(text)`. ftfy's heuristic is one big regex (`BADNESS_RE`) searched over the
  whole text, ~0.2 us per character. We prove from the parsed pattern (at set-up, with `re`'s own parser) that
  every match (a) is at most `W` characters long and (b) contains a character of a set `S` of non-ASCII
  "trigger" characters, and (c) that the pattern has no look-around or boundary assertion (only `^`, which can make
  a window match spuriously but never hide a match). Then a match exists iff one exists in a window of
  `W - 1` characters either side of some trigger, so only those short windows are searched; text without a trigger
  is not bad at all (one character-class scan). If any of (a)-(c) cannot be proven, the original is used.
* `fix_text(text)` == `ftfy.fix_text(text)` with the default configuration: the same segment loop and the same
  fixer functions in the same order as `ftfy.fix_text` / `fix_and_explain` / `fix_encoding` (ftfy 6.x, checked
  at set-up), minus the per-call configuration objects, and with the `is_bad` above as the guard that ftfy's
  `_fix_encoding_one_step_and_explain` checks first (when it is true, that ftfy function does the step itself).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import ftfy

_SUPPORTED = ("6.",)  # ftfy major version whose control flow `fix_text` below mirrors
_MAX_WIDTH = 32  # refuse patterns with longer (or unbounded) matches: the windows would not pay off
CHAR_FIXERS = ("fix_c1_controls", "fix_latin_ligatures", "fix_character_width", "uncurl_quotes",
                "fix_line_breaks", "fix_surrogates", "remove_terminal_escapes", "remove_control_chars")


def is_bad(text: str) -> bool:
    """`ftfy.badness.is_bad(text)`, searching only around the characters every mojibake match needs."""
    fast = _fast_is_bad()
    return fast(text) if fast is not None else ftfy.badness.is_bad(text)


def fix_text(text: str) -> str:
    """`ftfy.fix_text(text)` with ftfy's default configuration, computed with less overhead."""
    parts = _fix_parts()
    if parts is None or len(text) > parts[0]:
        return ftfy.fix_text(text)
    max_len, unescape_html, fixers, one_step, config = parts
    out, pos, unescape = [], 0, True
    while pos < len(text):  # ftfy's segments: lines, each fixed on its own
        end = text.find("\n", pos) + 1 or len(text)
        segment = text[pos:end]
        if "<" in segment:  # ftfy stops unescaping HTML from the first segment with a '<' on
            unescape = False
        out.append(_fix_segment(segment, unescape, unescape_html, fixers, one_step, config))
        pos = end
    return "".join(out)


def _fix_segment(text: str, unescape: bool, unescape_html, fixers, one_step, config) -> str:
    """`ftfy.fix_and_explain(text, config).text` for one segment (default config, explain off)."""
    bad, touches = is_bad, char_fixer_search()
    while True:
        orig = text
        if unescape:
            text = unescape_html(text)
        while True:  # ftfy.fix_encoding: one step at a time until nothing changes
            prev = text
            if text and bad(text):  # else ftfy's one step returns the text unchanged
                text = one_step(text, config).text
            if text == prev:
                break
        if touches(text):  # else every character-level fixer leaves the text as it is
            for fixer in fixers:
                text = fixer(text)
        text = unicodedata.normalize("NFC", text)
        if text == orig:
            return text


@lru_cache(maxsize=1)
def _fix_parts():
    """(max segment length, unescape_html, char fixers, ftfy's one encoding step, config) or None if ftfy differs."""
    try:
        if not ftfy.__version__.startswith(_SUPPORTED):
            return None
        config = ftfy.TextFixerConfig(explain=False)
        flags = ("fix_encoding",) + CHAR_FIXERS
        if config.unescape_html != "auto" or config.normalization != "NFC":
            return None
        if not all(getattr(config, f) for f in flags):
            return None
        if char_fixer_search() is None:
            return None
        fixers = tuple(ftfy.FIXERS[name] for name in CHAR_FIXERS)
        one_step = ftfy._fix_encoding_one_step_and_explain  # noqa: SLF001 - mirrored control flow, version-checked
        return config.max_decode_length, ftfy.FIXERS["unescape_html"], fixers, one_step, config
    except Exception:  # noqa: BLE001 - anything unexpected: plain ftfy.fix_text
        return None


@lru_cache(maxsize=1)
def char_fixer_search() -> Callable[[str], object] | None:
    """`search(text)`: a match iff `text` has a character that one of ftfy's character-level fixers changes (found
    once, ~0.3 s, by bisecting code point blocks with ftfy's own fixers; ESC, which starts terminal escapes, and the
    surrogates are added by hand). Without such a character, every one of those fixers returns the text unchanged.
    None if the fixers cannot be found."""
    try:
        from ftfy import fixes

        fixers = [getattr(fixes, name) for name in CHAR_FIXERS]
        unsafe = _unsafe_chars(fixers) | {"\x1b"} | set(map(chr, range(0xD800, 0xE000)))
        return re.compile(char_class(unsafe)).search
    except Exception:  # noqa: BLE001
        return None


def _unsafe_chars(fixers) -> set[str]:
    """Every code point that one of the `fixers` changes (found by bisecting blocks)."""
    unsafe: set[str] = set()

    def visit(lo: int, hi: int) -> None:
        block = "".join(map(chr, range(lo, hi)))
        if all(f(block) == block for f in fixers):
            return
        if hi - lo == 1:
            unsafe.add(block)
            return
        mid = (lo + hi) // 2
        visit(lo, mid)
        visit(mid, hi)

    for start in range(0, 0x110000, 4096):
        if not 0xD800 <= start < 0xE000:
            visit(start, start + 4096)
    return unsafe


@lru_cache(maxsize=1)
def _fast_is_bad() -> Callable[[str], bool] | None:
    """The windowed `is_bad`, or None when the pattern's properties cannot be proven."""
    try:
        from ftfy.badness import BADNESS_RE

        return windowed_search(BADNESS_RE)
    except Exception:  # noqa: BLE001
        return None


def windowed_search(pattern: re.Pattern) -> Callable[[str], bool] | None:
    """`text -> bool(pattern.search(text))`, searching only windows around trigger characters (see module
    docstring); None when `analyse_pattern` cannot prove that this is exact."""
    triggers, width = analyse_pattern(pattern)
    if triggers is None or not 0 < width <= _MAX_WIDTH:
        return None
    find_trigger = re.compile(char_class(triggers)).finditer
    search = pattern.search
    before, after = width - 1, width

    def fast(text: str) -> bool:
        lo = hi = -1
        for m in find_trigger(text):
            p = m.start()
            if hi < 0 or p - before > hi:  # a window apart from the current one: search that one first
                if hi >= 0 and search(text, lo, hi):
                    return True
                lo = max(0, p - before)
            hi = p + after
        return hi >= 0 and search(text, lo, hi) is not None

    return fast


def analyse_pattern(pattern: re.Pattern) -> tuple[frozenset[str] | None, int]:
    """(trigger characters every match contains, or None if unproven; maximum match width) of a `re` pattern."""
    from re import _constants as c, _parser  # noqa: PLC2701 - re's own parser, the source of truth for `re`

    if pattern.flags & (re.IGNORECASE | re.LOCALE) or not isinstance(pattern.pattern, str):
        return None, 0
    parsed = _parser.parse(pattern.pattern, pattern.flags)
    width = parsed.getwidth()[1]
    allowed_at = {c.AT_BEGINNING, c.AT_BEGINNING_STRING}

    def safe(items) -> bool:
        for op, av in items:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                continue
            if op == c.AT and av in allowed_at:
                continue
            if op == c.BRANCH and all(safe(b) for b in av[1]):
                continue
            if op == c.SUBPATTERN and not av[1] & re.IGNORECASE and safe(av[-1]):
                continue
            if op in (c.MAX_REPEAT, c.MIN_REPEAT) and safe(av[2]):
                continue
            return False
        return True

    def required(items) -> frozenset[str] | None:
        """Characters of which every match of `items` contains one (None if no such non-ASCII set is found)."""
        for op, av in items:
            found = None
            if op == c.LITERAL and av >= 0x80:
                found = frozenset(chr(av))
            elif op == c.IN:
                found = _set_chars(av, c)
            elif op == c.BRANCH:
                subs = [required(b) for b in av[1]]
                found = None if None in subs else frozenset().union(*subs)
            elif op == c.SUBPATTERN:
                found = required(av[-1])
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1:
                found = required(av[2])
            if found is not None:
                return found
        return None

    return (required(parsed) if safe(parsed) else None), width


def _set_chars(items, c) -> frozenset[str] | None:
    """The characters of a `[...]` set made only of non-ASCII literals and ranges, else None."""
    chars: set[str] = set()
    for op, av in items:
        if op == c.LITERAL and av >= 0x80:
            chars.add(chr(av))
        elif op == c.RANGE and av[0] >= 0x80:
            chars.update(map(chr, range(av[0], av[1] + 1)))
        else:
            return None
    return frozenset(chars)


def char_class(chars: frozenset[str] | set[str]) -> str:
    """A character class matching exactly `chars` (code point ranges, escaped)."""
    points = sorted(map(ord, chars))
    parts, i = [], 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        parts.append(f"\\U{points[i]:08x}" + (f"-\\U{points[j]:08x}" if j > i else ""))
        i = j + 1
    return "[" + "".join(parts) + "]"
