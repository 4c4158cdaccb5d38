"""leanvl.text.ftfy_fast agrees exactly with ftfy: the windowed is_bad, the lean fix_text, the char-fixer search."""
from __future__ import annotations

import random
import re

import ftfy
import pytest
from ftfy import fixes
from ftfy.badness import BADNESS_RE
from ftfy.badness import is_bad as ftfy_is_bad

from leanvl.text import ftfy_fast
from leanvl.text.ftfy_fast import analyse_pattern, char_fixer_search, fix_text, is_bad

MOJIBAKE = ["cafÃ©", "naÃ¯ve", "Ã©tÃ©", "donâ€™t", "â€œhiâ€\x9d", "Ã ", "voilÃ le", "Ã\xa0", "âœ” ok",
            "ГўВЂВ™a", "Ã¢â‚¬â„¢", "×²", "à²", "sÃ³", "ÂÂ", "\x80\x9f", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "ÐºÐ¾Ñ‚"]
EXTRA = ["é", "東京", "😀", "“q”", "ﬁ", "Ａ", "\u00a0", "—", "…", "½", "Æ", "ß", "¢", "€", "™", "°", "e\u0301",
         "&amp;", "&lt;", "<", "&#39;", "&amp;amp;", "\n", "\r\n", "\t", "\x1b[31m", "\x00", "\x07", "\u2028",
         "\ufeff"]


def _triggers() -> list[str]:
    triggers, _ = analyse_pattern(BADNESS_RE)
    assert triggers is not None
    return sorted(triggers)


def test_pattern_analysis_of_badness_re() -> None:
    triggers, width = analyse_pattern(BADNESS_RE)
    assert triggers and all(ord(ch) >= 0x80 for ch in triggers)
    assert 0 < width <= 16
    assert ftfy_fast._fast_is_bad() is not None  # noqa: SLF001 - the fast path is really active


@pytest.mark.parametrize("pattern", [r"é(?=x)", r"\bé", r"é\B", r"é+", r"(?i)é", r"é$", r"a|é", r"(a)\1é"])
def test_pattern_analysis_refuses_what_it_cannot_prove(pattern: str) -> None:
    triggers, width = analyse_pattern(re.compile(pattern))
    assert triggers is None or width > 32


def test_pattern_analysis_simple() -> None:
    assert analyse_pattern(re.compile(r"[a-z]é|ü[0-9]?|^[ÃÂ] ")) == (frozenset("éüÃÂ"), 2)


@pytest.mark.parametrize("density", [0.02, 0.1, 0.5])
def test_windowed_is_bad_equals_ftfy(density: float) -> None:
    rng = random.Random(int(density * 100))
    triggers = _triggers()
    ascii_chars = [chr(c) for c in range(128)] + [" "] * 10 + list("abcxyz")
    for _ in range(30000):
        n = rng.randint(0, 60)
        text = "".join(rng.choice(triggers) if rng.random() < density else rng.choice(ascii_chars) for _ in range(n))
        assert is_bad(text) == ftfy_is_bad(text), repr(text)


def test_windowed_is_bad_at_window_edges() -> None:
    # two trigger characters at every distance (windows apart, touching, overlapping) and at the text's edges
    for left, right in (("Ã", " "), ("é", "¤"), ("Ã", "©"), ("â", "€"), ("¢", "é")):
        for gap in range(0, 20):
            for pad in (0, 1, 5, 13):
                text = "x" * pad + left + "a" * gap + right + "y" * pad
                assert is_bad(text) == ftfy_is_bad(text), repr(text)
    for text in MOJIBAKE:
        for ctx in ("", "a ", "a photo of a ", " word" * 10):
            assert is_bad(ctx + text + ctx) == ftfy_is_bad(ctx + text + ctx), repr(text)


def test_char_fixer_search_no_hit_means_no_change() -> None:
    search = char_fixer_search()
    assert search is not None
    fixers = [getattr(fixes, name) for name in ftfy_fast.CHAR_FIXERS]
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0, 0x300)] + list("東京😀“”‘’ﬁＡ…—\u2028\u3000ｶ")
    alphabet += ["\x1b[31m", "\r\n"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        if not search(text):
            assert all(f(text) == text for f in fixers), repr(text)
    for text in ("“q”", "ﬁ", "Ａ", "\r", "\x1b[31mx", "\x00", "\u2028", "\x85"):
        assert search(text), repr(text)


def _random_text(rng: random.Random) -> str:
    words = ["a", "photo", "of", "the", "Cat", "1999", "$3.50", "it's", " ", " ", "  ", "."] + MOJIBAKE + EXTRA
    return "".join(rng.choice(words) + rng.choice(["", " "]) for _ in range(rng.randint(0, 25)))


def test_fix_text_equals_ftfy_randomized() -> None:
    rng = random.Random(3)
    for _ in range(4000):
        text = _random_text(rng)
        assert fix_text(text) == ftfy.fix_text(text), repr(text)


def test_fix_text_equals_ftfy_cases() -> None:
    cases = MOJIBAKE + EXTRA + [
        "", "\n", "a\nb", "&lt;b&gt; x\n<i>y</i> &amp; z\n&amp;", "x < y &amp; z", "line1 cafÃ©\nline2 &amp;amp;\n",
        "\ud83d\ude00 surrogates \ud800 lone", "mixed Ã© and “curly” and ﬁ\r\nnext", "&eacute;t&eacute; Ã©",
        "ＬＯＵＤ　ＮＯＩＳＥＳ", "\x1b[1mbold\x1b[0m é", "ÃƒÂ© double", "a" * 1000 + "Ã©",
    ]
    for text in cases:
        assert fix_text(text) == ftfy.fix_text(text), repr(text)


TIGHT_PATTERNS = [r"é.{5}x", r"x.{4}é", r"[a-c]{2}ü[a-c]{3}|ö", r"^é|ab[éü]\s?c", r"[^a]é[^b]"]


@pytest.mark.parametrize("pattern", TIGHT_PATTERNS)
def test_windowed_search_is_exact_on_tight_patterns(pattern: str) -> None:
    compiled = re.compile(pattern)
    fast = ftfy_fast.windowed_search(compiled)
    assert fast is not None
    rng = random.Random(len(pattern))
    alphabet = list("abcxyz \n") + ["é", "ü", "ö"]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert fast(text) == bool(compiled.search(text)), (pattern, text)
