"""Labels and BPE: id parity with open_clip's SimpleTokenizer / tokenize, special ids, truncation, bad input."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest
from open_clip import tokenize
from open_clip.tokenizer import SimpleTokenizer, default_bpe

from leanvl.errors import LeanvlError
from leanvl.text import labels
from leanvl.text.labels import EOT_ID, SOT_ID, SPECIAL_IDS, VOCAB_SIZE, Labeler
import regex

from leanvl.text.tokenizer import ASCII_PATTERN, PATTERN, ClipBPE, default_bpe_path

LONG = " ".join(f"word{i} and the {i}th photo of a cat, dog; bird!" for i in range(60))
CAPTIONS = [
    "A photo of a cat.", "", "   ", "\t\n", "x", "UPPER lower MiXeD",
    "café naïve Zürich São Paulo crème brûlée Æsir piñata", "東京タワーの写真 北京 서울 Москва Ελλάδα",
    "emoji 😀 🎉🎉 ❤️ 👩‍👩‍👧 flags 🇫🇷", "it's we'll they're I'M you'd she'd've",
    "punctuation!?... (brackets) [x] {y} <z> #tag @user a/b c\\d ~!@#$%^*_+=|",
    "numbers 1234567 3.14159 1,000,000 $19.99 50% 1920x1080 ½ ¾ ² ³", "Tom &amp; Jerry &#39;quoted&#39; &quot;x&quot;",
    "&amp;amp;amp; &lt;b&gt;bold&lt;/b&gt; &nbsp;nbsp &eacute;t&eacute;", "<b>html &amp; tags</b> é",
    "mojibake cafÃ© naÃ¯ve donâ€™t Ã©tÃ©", "â€œquoted mojibakeâ€\x9d", "“curly” ‘quotes’ — dashes – …",
    "ligatures ﬁne ﬂow, full width ＡＢＣ１２３", "whitespace   runs\t\ttabs\n\nnewlines\r\n crlf \u3000 ideographic",
    "control\x00chars\x07here\x1b[31mred\x1b[0m", "combining e\u0301 vs é, Angstrom \u212b", "\u00a0nbsp\u00a0edges\u00a0",
    "<start_of_text> literal <end_of_text> x!<start_of_text>y", "İstanbul ǅemal ß straße ﬀ ſ 'ſ", LONG,
    "a" * 300, "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def ref() -> SimpleTokenizer:
    return SimpleTokenizer()


@pytest.fixture(scope="module")
def lab() -> Labeler:
    return Labeler()


def _expected(ref: SimpleTokenizer, caption: str) -> list[int]:
    return sorted(set(ref.encode(caption)) - SPECIAL_IDS)


def test_vocabulary_is_open_clips(ref: SimpleTokenizer) -> None:
    bpe = ClipBPE()
    assert default_bpe_path() == default_bpe()
    assert bpe.vocab == ref.encoder and len(bpe.vocab) == VOCAB_SIZE
    assert (bpe.sot_id, bpe.eot_id) == (SOT_ID, EOT_ID) == (ref.sot_token_id, ref.eot_token_id)
    assert ref.pat.pattern == PATTERN


def test_bpe_encode_matches_open_clip(ref: SimpleTokenizer) -> None:
    bpe = ClipBPE()
    assert bpe.uses_rust
    for caption in CAPTIONS:
        assert bpe.encode(caption) == ref.encode(caption), caption


def test_python_fallback_matches_open_clip(ref: SimpleTokenizer) -> None:
    bpe = ClipBPE(use_rust=False)
    assert not bpe.uses_rust
    for caption in CAPTIONS:
        assert bpe.encode(caption) == ref.encode(caption), caption


def test_labels_parity_varied(ref: SimpleTokenizer, lab: Labeler) -> None:
    for cache in (False, True, True):  # the second cached pass reads the caption cache
        got = lab(CAPTIONS, cache=cache)
        assert got == [_expected(ref, c) for c in CAPTIONS]
    assert len(ref.encode(LONG)) > 300


def test_labels_sorted_unique_no_special(lab: Labeler) -> None:
    for ids in lab(CAPTIONS):
        assert ids == sorted(set(ids))
        assert not SPECIAL_IDS & set(ids)
        assert all(0 < i < VOCAB_SIZE for i in ids)
    assert lab(["", "  "]) == [[], []]


def test_truncation_matches_open_clip_tokenize(lab: Labeler) -> None:
    rows = tokenize(CAPTIONS)
    expected = [sorted(set(r.tolist()) - SPECIAL_IDS) for r in rows]
    assert lab(CAPTIONS, max_tokens=75, cache=False) == expected
    assert lab(CAPTIONS, max_tokens=75) == expected
    # the default keeps the whole caption: more labels than open_clip's 77-token context allows
    assert len(lab([LONG])[0]) > len(expected[CAPTIONS.index(LONG)])


def test_max_tokens_is_a_prefix(ref: SimpleTokenizer, lab: Labeler) -> None:
    full = ref.encode(LONG)
    for n in (1, 5, 76, 200):
        assert lab([LONG], max_tokens=n)[0] == sorted(set(full[:n]) - SPECIAL_IDS)


def _random_caption(rng: random.Random) -> str:
    pieces = ["photo", "Cat", "dog's", "the", "RED", "café", "東京", "😀", "&amp;", "&#39;", "cafÃ©", "“q”", "ﬁ",
              "1999", "3.5", "!!", "?!", "...", "—", "\t", "\n", "  ", "e\u0301", "<end_of_text>", "ＡＢ", "x-y", "'s"]
    out = []
    for _ in range(rng.randint(0, 30)):
        r = rng.random()
        if r < 0.6:
            out.append(rng.choice(pieces))
        elif r < 0.8:
            out.append("".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(1, 8))))
        else:
            out.append("".join(chr(rng.randint(0xA0, 0x2FFF)) for _ in range(rng.randint(1, 4))))
        out.append(rng.choice([" ", " ", "", "  "]))
    return "".join(out)


def test_labels_parity_randomized(ref: SimpleTokenizer) -> None:
    rng = random.Random(1234)
    caps = [_random_caption(rng) for _ in range(3000)]
    lab = Labeler()
    assert lab(caps, cache=False) == [_expected(ref, c) for c in caps]
    rows = tokenize(caps[:500])
    assert lab(caps[:500], max_tokens=75) == [sorted(set(r.tolist()) - SPECIAL_IDS) for r in rows]


def test_module_encode_default(ref: SimpleTokenizer) -> None:
    caps = ["a photo of a cat", "A photo of a CAT!", "a photo of a cat"]
    assert labels.encode(caps) == [_expected(ref, c) for c in caps]
    assert labels.encode(caps, max_tokens=2) == [sorted(ref.encode(c)[:2]) for c in caps]


@pytest.mark.parametrize("bad", ["a single string", None, 3])
def test_bad_captions_raise(bad: object, lab: Labeler) -> None:
    with pytest.raises(LeanvlError):
        lab(bad)  # type: ignore[arg-type]


def test_bad_caption_element_and_max_tokens(lab: Labeler) -> None:
    with pytest.raises(LeanvlError, match="caption 1"):
        lab(["ok", 5], cache=False)  # type: ignore[list-item]
    with pytest.raises(LeanvlError, match="caption 1"):
        lab(["ok", None])  # type: ignore[list-item]
    for bad in (0, -3, 2.5, True):
        with pytest.raises(LeanvlError):
            lab(["a"], max_tokens=bad)  # type: ignore[arg-type]


def test_bad_input_is_one_line_exit_2() -> None:
    code = ("import sys; from leanvl.errors import LeanvlError; from leanvl.text.labels import encode\n"
            "try:\n    encode('x')\nexcept LeanvlError as e:\n    print(e, file=sys.stderr); sys.exit(2)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "captions must be a list" in proc.stderr


def test_ascii_pattern_equals_open_clip_pattern_on_ascii() -> None:
    import re

    full, fast = regex.compile(PATTERN, regex.IGNORECASE), re.compile(ASCII_PATTERN, re.IGNORECASE)
    rng = random.Random(5)
    alphabet = [chr(i) for i in range(128)] + ["'s", "'LL", "'D", "<start_of_text>", "<end_of_text>", "<start_of"]
    for _ in range(50000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert fast.findall(text) == full.findall(text), repr(text)


def test_labels_parity_hard_captions(ref: SimpleTokenizer) -> None:
    """Mojibake, entities, unicode and line breaks inside otherwise plain captions (all cleaning paths)."""
    rng = random.Random(11)
    hard = ["cafÃ©", "naÃ¯ve", "donâ€™t", "â€œhiâ€\x9d", "&amp;", "&amp;amp;", "&lt;3", "&#39;", "café", "東京",
            "“q”", "ﬁne", "½", "\n", " \n ", "\t", "\r\n", "<b>", "Ａ", "😀", "e\u0301", "IMG_123.JPG",
            "$9.99"]
    plain = "a photo of the red cat sitting on a wooden table near Paris".split()
    caps = []
    for _ in range(2000):
        words = [rng.choice(plain) for _ in range(rng.randint(1, 20))]
        for _ in range(rng.randint(0, 3)):
            words.insert(rng.randint(0, len(words)), rng.choice(hard))
        caps.append(" ".join(words))
    lab = Labeler()
    expected = [_expected(ref, c) for c in caps]
    assert lab(caps, cache=False) == expected
    assert lab(caps) == expected and lab(caps) == expected  # fills, then reads the caption cache


def test_caption_cache_duplicates_and_iterables(ref: SimpleTokenizer) -> None:
    lab = Labeler()
    caps = ["a cat", "a dog", "a cat", "", "a cat"]
    expected = [_expected(ref, c) for c in caps]
    assert lab(caps) == expected
    assert lab(iter(caps)) == expected
    assert lab(tuple(caps), max_tokens=1) == [sorted(set(ref.encode(c)[:1]) - SPECIAL_IDS) for c in caps]
    got = lab(caps)
    got[0].append(-1)  # callers may modify the returned lists without touching the cache
    assert lab(caps) == expected
