"""The ftfy shortcuts of leanvl.text.cleaning agree exactly with open_clip's full cleaning."""
from __future__ import annotations

import random

from leanvl.text.cleaning import basic_clean_if_noop, clean_chunks, clean_text, is_plain_ascii


def _random_text(rng: random.Random, alphabet: list[str]) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_plain_ascii_shortcut_equals_full_cleaning() -> None:
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0, 128)] + [" "] * 20 + ["a", "e", "&", "amp;", "#39;"]
    seen = 0
    for _ in range(5000):
        text = _random_text(rng, alphabet)
        if is_plain_ascii(text):
            seen += 1
        assert [c for c in clean_chunks(text) if c] == [c for c in clean_text(text).split(" ") if c], repr(text)
    assert seen > 500  # the shortcut was really exercised


def test_unicode_shortcut_equals_full_cleaning() -> None:
    rng = random.Random(1)
    alphabet = ([chr(c) for c in range(32, 127)] + [chr(c) for c in range(0x80, 0x300)] + list("東京😀Ωж“”‘’ﬁＡ…—")
                + ["&amp;", "&#39;", "&lt;", "<", "&amp;amp;", "Ã©", "â€™", "e\u0301", "\u00a0", "\u3000", "\n", "\r"])
    taken = 0
    for _ in range(5000):
        text = _random_text(rng, alphabet)
        fast = basic_clean_if_noop(text)
        if fast is not None:
            taken += 1
        assert [c for c in clean_chunks(text) if c] == [c for c in clean_text(text).split(" ") if c], repr(text)
    assert taken > 500


def test_shortcut_refuses_text_ftfy_changes() -> None:
    for text in ("cafÃ©", "“quoted”", "ﬁne", "e\u0301", "ＡＢＣ", "a\x1b[31mred", "x\r\ny é", "&amp;amp; é"):
        fixed = basic_clean_if_noop(text)
        assert fixed is None or fixed == clean_text(text), text
    assert basic_clean_if_noop("cafÃ©") is None and basic_clean_if_noop("“q”") is None
    assert basic_clean_if_noop("café &amp; 東京") == "café & 東京"


def test_clean_text_equals_open_clip_lower_cleaning() -> None:
    """`clean_text` (which uses ftfy_fast.fix_text) against open_clip's own functions (which use ftfy.fix_text)."""
    from open_clip.tokenizer import _clean_lower

    rng = random.Random(2)
    alphabet = [chr(c) for c in range(32, 127)] + [" "] * 10 + list("東京😀“”‘’ﬁＡ…—éÆß")
    alphabet += ["cafÃ©", "donâ€™t", "Ã ", "â€œ", "&amp;", "&amp;amp;", "&lt;", "<", "&#39;", "\n", "\r\n", "\t",
                 "\x1b[31m", "\x00", "\u2028"]
    for _ in range(5000):
        text = _random_text(rng, alphabet)
        assert clean_text(text) == _clean_lower(text), repr(text)
        assert [c for c in clean_chunks(text) if c] == [c for c in _clean_lower(text).split(" ") if c], repr(text)
