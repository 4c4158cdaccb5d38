"""Fuzz check (not a benchmark): leanvl caption cleaning, ftfy_fast.fix_text and ftfy_fast.is_bad vs open_clip / ftfy.

    .venv/bin/python benchmarks/fuzz_cleaning.py SEED N     # e.g. 2 300000; prints the number of mismatches
"""
import random, sys
from open_clip.tokenizer import basic_clean, whitespace_clean
from leanvl.text.cleaning import clean_text, clean_chunks
from leanvl.text import ftfy_fast
import ftfy
rng = random.Random(int(sys.argv[1]))
pieces = ["café", "naïve", "Ã©", "â€™", "â€œ", "Ã", "Â", "\x9d", "\x81", "&amp;", "&lt;", "&#39;", "&quot;", "&nbsp;", "&amp;amp;",
          "<b>", "</b>", "<", ">", "\n", "\r\n", "\t", "  ", "\x1b[31m", "\x00", "\x07", "ﬁ", "Ｆｕｌｌ", "“", "”", "‘", "’",
          "東京", "😀", "e\u0301", "\ud800", "\u200b", "\xa0", "Ð", "Ñ", "Ã¼", "Ã¶", "ÃƒÂ©", "Ã¢â‚¬â„¢", "ç", "Ç", "Ø", "\u2028",
          "a", "b", "word", " ", "IMG_0001.JPG", "it's", "we'll", "$9.99", "#tag", "—", "…", "½", "™", "©", "®", "°", "µ", "ß"]
bad = 0
for i in range(int(sys.argv[2])):
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 25)))
    try:
        ref = whitespace_clean(basic_clean(text)).lower()
    except Exception as e:
        continue
    got = clean_text(text)
    if got != ref or clean_chunks(text) != ref.split(" ") and ref != "":
        bad += 1
        if bad < 5: print("MISMATCH", repr(text), repr(ref), repr(got), clean_chunks(text))
    if ftfy_fast.fix_text(text) != ftfy.fix_text(text):
        bad += 1
        if bad < 5: print("FIX MISMATCH", repr(text))
    if ftfy_fast.is_bad(text) != ftfy.badness.is_bad(text):
        bad += 1
        if bad < 5: print("BAD MISMATCH", repr(text))
print("seed", sys.argv[1], "mismatches", bad)
