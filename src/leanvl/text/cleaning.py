"""open_clip's caption cleaning, with exact shortcuts for text that ftfy provably leaves unchanged.

open_clip cleans with `ftfy.fix_text`, `html.unescape` twice, strip, whitespace collapse and lower-case (`clean_text`
below). ftfy is the slowest part of CLIP tokenisation (~20-100 us per caption), and it changes almost no caption, so
`clean_chunks` first tries to PROVE that ftfy is a no-op and only calls it otherwise:

* plain ASCII (printable, tabs/newlines allowed) without `&`: every ftfy fixer needs a non-ASCII character, a
  control character, or an HTML entity to act, so the text is unchanged.
* other text without a line break: `ftfy.fix_text` runs one segment through one round of fixers and stops when a
  round changes nothing. A round is a no-op when (a) there is no `&` (HTML unescape), (b) `ftfy.badness.is_bad` is
  false (the guard ftfy's own `fix_encoding` uses before trying any re-decoding), (c) no character is touched by the
  character-level fixers (C1 controls, ligatures, full width, curly quotes, line breaks, surrogates, terminal
  escapes, control characters) - this set is computed once (~0.3 s) from ftfy's own fixer functions, and (d) the
  text is already NFC. With `&` and no `<`, ftfy's first round unescapes with `ftfy.fixes.unescape_html`; if the
  result passes (b)-(d) and a second unescape changes nothing, ftfy's second round is a no-op and that result is
  ftfy's output. (With `<`, ftfy does not unescape.) The two `html.unescape` calls then run as in open_clip.

Anything else (mojibake, odd controls, nested entities, newlines in non-ASCII text, a different ftfy major version)
takes the full `clean_text`. The ftfy knowledge lives in `leanvl.text.ftfy_fast`: (b) is its windowed `is_bad`
(exact, ~5x faster than ftfy's), (c) its `char_fixer_search`, and `clean_text` calls its `fix_text` (ftfy's own
fixers in ftfy's order, ~2-3x less overhead). Parity with open_clip is covered by tests, including randomised ones.
"""
from __future__ import annotations

import html
import unicodedata
from functools import lru_cache

import ftfy

from leanvl.text import ftfy_fast

WS_TO_SPACE = str.maketrans("\t\n\r", "   ")  # is_plain_ascii: tabs and line breaks are allowed
_MAX_SEGMENT = 100_000  # well below ftfy's max_decode_length: the text is one segment


def clean_text(text: str) -> str:
    """open_clip's 'lower' cleaning: ftfy, html.unescape twice, strip, whitespace collapse, lower-case.

    `ftfy.fix_text` is computed by `leanvl.text.ftfy_fast.fix_text` (same result, less overhead)."""
    text = html.unescape(html.unescape(ftfy_fast.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


def is_plain_ascii(text: str) -> bool:
    """ASCII, printable except tabs/newlines, no `&`: text that ftfy and html.unescape leave unchanged."""
    return text.isascii() and "&" not in text and (text.isprintable() or text.translate(WS_TO_SPACE).isprintable())


def clean_chunks(text: str) -> list[str]:
    """`clean_text(text).split(" ")`, computed through the exact shortcuts when they apply."""
    if is_plain_ascii(text):
        return text.lower().split()
    fixed = basic_clean_if_noop(text)
    if fixed is not None:
        return " ".join(fixed.split()).lower().split(" ")
    return clean_text(text).split(" ")


def basic_clean_if_noop(text: str) -> str | None:
    """open_clip's `basic_clean` minus the final strip (ftfy, html.unescape twice) when ftfy provably does no real
    fixing (see module docstring), else None."""
    checks = _checks()
    if checks is None or "\n" in text or len(text) > _MAX_SEGMENT:
        return None
    unescape_html, unsafe, is_bad = checks
    if "&" in text and "<" not in text:
        text = unescape_html(text)  # ftfy's first round; its second round must then change nothing
        if "&" in text and unescape_html(text) != text:
            return None
    if unsafe(text) or not unicodedata.is_normalized("NFC", text) or is_bad(text):
        return None
    return html.unescape(html.unescape(text)) if "&" in text else text


@lru_cache(maxsize=1)
def _checks():
    """(unescape_html, search for a character some ftfy fixer changes, is_bad), or None if ftfy is not as expected.

    Both searches come from `leanvl.text.ftfy_fast` (exact; see there)."""
    try:
        from ftfy import fixes

        unsafe = ftfy_fast.char_fixer_search()
        if not ftfy.__version__.startswith("6.") or unsafe is None:
            return None
        return fixes.unescape_html, unsafe, ftfy_fast.is_bad
    except Exception:  # noqa: BLE001 - no shortcut: everything goes through ftfy
        return None
