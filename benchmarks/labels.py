"""Benchmark: caption -> labels on ONE CPU core, leanvl vs open_clip's SimpleTokenizer, same run, same captions.

    .venv/bin/python benchmarks/labels.py [--n 100000] [--seed 0]

open_clip's side is `sorted(set(SimpleTokenizer().encode(c)) - {0, 49406, 49407})`, i.e. the same labels. Both
tokenizers start cold (fresh instances: open_clip's per-word BPE cache and leanvl's chunk memo both fill during the
run). The three are timed interleaved, batch by batch, so they share the machine's load. leanvl is timed without and with its whole-caption cache. Ids are checked identical on every caption, and the
`max_tokens=75` variant against `open_clip.tokenize` (context 77) on a subset.
"""
from __future__ import annotations

import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

SPECIAL = {0, 49406, 49407}


_ADJ = ("red blue green yellow black white orange purple pink brown grey golden silver wooden metal vintage modern "
        "old new small large tiny huge beautiful cute funny happy sad bright dark sunny rainy snowy cozy rustic "
        "elegant minimalist colorful abstract aerial close-up blurry sharp luxury cheap handmade organic").split()
_NOUN = ("cat dog horse bird car truck bicycle house building bridge tree flower mountain river lake beach ocean "
         "city street road table chair sofa bed lamp kitchen bathroom garden park forest desert island boat ship "
         "airplane train pizza burger salad cake coffee tea wine beer shirt dress jacket shoes bag watch ring "
         "necklace phone laptop camera guitar piano book painting poster logo icon pattern texture background "
         "woman man girl boy child baby family couple team crowd portrait wedding party concert festival").split()
_VERB = ("sitting standing running walking jumping playing eating drinking reading sleeping flying swimming "
         "driving smiling looking holding wearing riding").split()
_PREP = "on in near under above beside behind with at across".split()
_PLACE = ("paris london new-york tokyo berlin rome sydney toronto chicago los angeles barcelona amsterdam "
          "san francisco dubai singapore").split()
_SYL = "ka lo mi ra ten vu zen ix or bel tor qua ny spe dex fin gar hol jo ku".split()
_UNICODE = ("café", "naïve", "Zürich", "São Paulo", "crème brûlée", "東京タワー", "北京", "서울", "Москва", "😀", "🎉🎉",
            "❤️", "日本の夏", "Ελλάδα", "½ price", "—", "“quoted”", "piñata", "Æsir", "ﬁne ligature")
_ENTITY = ("&amp;", "&#39;", "&quot;", "&lt;3", "&nbsp;", "&amp;amp;")
_MOJIBAKE = ("cafÃ©", "naÃ¯ve", "Ã©tÃ©", "donâ€™t", "â€œhiâ€\x9d")
_TEMPLATES = (
    "a photo of a {adj} {noun} {prep} the {noun2}",
    "{Adj} {noun} {verb} {prep} a {adj2} {noun2}",
    "{brand} {Noun} - {adj} {noun2} | Size {size}",
    "{noun} in {place}, {year}",
    "IMG_{num}.JPG",
    "{adj} {noun} #{noun2} #{adj2} #{place}",
    "{Brand}'s {adj} {noun} for ${price} ({num} reviews)",
    "Stock Photo: {adj} {noun} {verb} near {place} {w}x{h}",
    "{noun} {noun2} {noun} {noun2} {adj} {adj2} {brand} {num}",
    "it's a {adj} {noun}! we'll {verb} {prep} the {noun2}...",
)


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 4)))


def _fill(rng: random.Random, template: str) -> str:
    words = {
        "adj": rng.choice(_ADJ), "adj2": rng.choice(_ADJ), "noun": rng.choice(_NOUN), "noun2": rng.choice(_NOUN),
        "verb": rng.choice(_VERB), "prep": rng.choice(_PREP), "place": rng.choice(_PLACE),
        "brand": _brand(rng), "size": rng.choice("S M L XL XXL".split()), "year": str(rng.randint(1950, 2024)),
        "num": str(rng.randint(0, 99999)), "price": f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
        "w": str(rng.choice((640, 1024, 1920))), "h": str(rng.choice((480, 768, 1080))),
    }
    words.update(Adj=words["adj"].capitalize(), Noun=words["noun"].capitalize(), Brand=words["brand"].capitalize())
    return template.format(**words)


def make_captions(n: int, seed: int = 0, dup_share: float = 0.1, hard_share: float = 0.08) -> list[str]:
    """`n` captions: ~`dup_share` exact repeats of earlier ones, ~`hard_share` with unicode / entities / mojibake."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < dup_share:
            out.append(out[rng.randrange(max(0, len(out) - 5000), len(out))])
            continue
        text = _fill(rng, rng.choice(_TEMPLATES))
        if rng.random() < 0.15:  # long captions: several sentences
            text += ". " + ". ".join(_fill(rng, rng.choice(_TEMPLATES)) for _ in range(rng.randint(2, 12)))
        if rng.random() < hard_share:
            extra = rng.choice((_UNICODE, _UNICODE, _ENTITY, _MOJIBAKE))
            pos = rng.randint(0, len(text))
            text = text[:pos] + " " + rng.choice(extra) + " " + text[pos:]
        if rng.random() < 0.05:
            text = "  " + text.replace(" ", rng.choice(("  ", "\t", " \n "))) + " "
        out.append(text)
    return out


def _pin_one_core() -> str:
    import torch

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity)"


def _interleaved(fns: list, captions: list[str], batch: int) -> tuple[list[list[list[int]]], list[float]]:
    """Run every fn on each batch in turn, so that all of them see the same machine load; total seconds each."""
    outs: list[list[list[int]]] = [[] for _ in fns]
    secs = [0.0] * len(fns)
    for i in range(0, len(captions), batch):
        chunk = captions[i : i + batch]
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[k].extend(fn(chunk))
            secs[k] += time.perf_counter() - t0
    return outs, secs


def main() -> None:
    """Run the benchmark and print captions/s, ratios and the identity check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of captions")
    parser.add_argument("--seed", type=int, default=0, help="caption generator seed")
    parser.add_argument("--batch", type=int, default=256, help="captions per encode() call")
    parser.add_argument("--sequential", action="store_true",
                        help="time each tokenizer over all captions in turn instead of interleaving batches")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after set-up, so full collections skip torch/open_clip/caption objects")
    args = parser.parse_args()
    print(_pin_one_core())

    from open_clip import tokenize
    from open_clip.tokenizer import SimpleTokenizer

    from leanvl.text.labels import Labeler
    from leanvl.text.cleaning import basic_clean_if_noop, is_plain_ascii

    caps = make_captions(args.n, seed=args.seed)
    n_unique = len(set(caps))
    n_other = sum(not is_plain_ascii(c) for c in caps)
    n_full_clean = sum(not is_plain_ascii(c) and basic_clean_if_noop(c) is None for c in caps)
    n_words = sum(len(c.split()) for c in caps)
    print(f"captions: {len(caps)}, unique {n_unique} (duplicate rate {1 - n_unique / len(caps):.1%}), "
          f"mean {n_words / len(caps):.1f} words; {n_other / len(caps):.1%} not plain ASCII, "
          f"{n_full_clean / len(caps):.1%} need the full ftfy cleaning")

    st = SimpleTokenizer()
    lab, lab_c = Labeler(), Labeler()
    for one in (lab, lab_c):  # one-time set-up (ftfy no-op checks), like open_clip's constructor
        one(["warm-up: café"], cache=False)
    if args.gc_freeze:  # set-up objects (torch, open_clip, the captions) leave the collector's young generations
        gc.collect()
        gc.freeze()
    fns = [lambda b: [sorted(set(st.encode(c)) - SPECIAL) for c in b], lambda b: lab(b, cache=False),
           lambda b: lab_c(b, cache=True)]
    if args.sequential:
        runs = [_interleaved([fn], caps, args.batch) for fn in fns]
        (ref, got, got_c), (t_ref, t_nc, t_c) = [r[0][0] for r in runs], [r[1][0] for r in runs]
    else:
        (ref, got, got_c), (t_ref, t_nc, t_c) = _interleaved(fns, caps, args.batch)
    print("timing:", "sequential" if args.sequential else "interleaved batch by batch",
          "| gc.freeze() after set-up" if args.gc_freeze else "")
    print(f"rust BPE active: {lab.bpe.uses_rust}; distinct chunks memoised: {len(lab.bpe.memo)}")

    mismatches = sum(a != b for a, b in zip(ref, got)) + sum(a != b for a, b in zip(ref, got_c))
    sub = caps[:5000]
    tok75 = tokenize(sub)
    ref75 = [sorted(set(row.tolist()) - SPECIAL) for row in tok75]
    mismatches75 = sum(a != b for a, b in zip(ref75, lab(sub, max_tokens=75, cache=False)))
    n = len(caps)
    print(f"open_clip SimpleTokenizer.encode + sort-unique: {n / t_ref:12,.0f} captions/s  ({t_ref:.2f} s)")
    print(f"leanvl labels.encode, no caption cache:         {n / t_nc:12,.0f} captions/s  ({t_nc:.2f} s)  "
          f"ratio {t_ref / t_nc:.1f}x")
    print(f"leanvl labels.encode, caption cache:            {n / t_c:12,.0f} captions/s  ({t_c:.2f} s)  "
          f"ratio {t_ref / t_c:.1f}x")
    print(f"ids identical on all {n} captions (both modes): {mismatches == 0} ({mismatches} mismatches); "
          f"max_tokens=75 vs open_clip.tokenize on {len(sub)}: {mismatches75 == 0}")
    if mismatches or mismatches75:
        sys.exit(1)


if __name__ == "__main__":
    main()
