"""Caption -> SuperClass labels: the sorted unique CLIP BPE ids of the caption, special ids excluded.

Ids are open_clip's (its own vocabulary file, offline) and identical to `SimpleTokenizer().encode` followed by
sort-unique; see `leanvl.text.tokenizer` for how the encoder stays exact while being fast.

Excluded ids: 49406 (start of text), 49407 (end of text) and 0 (padding in open_clip's `tokenize` output; as a
vocabulary entry it is the bare byte piece '!', which therefore never becomes a label). A caption that literally
contains '<start_of_text>' yields the start id in open_clip; it is excluded like the others.

Truncation (a deliberate choice): by default the WHOLE caption is used. The labels are a bag of subwords, and CLIP's
77-token context is a limit of the text tower, not of a classification target, so cutting a long caption would only
throw supervision away. `max_tokens=N` keeps the first N BPE tokens before sort-unique; `max_tokens=75` reproduces
exactly the ids that open_clip's `tokenize` (context 77 = start + 75 + end) keeps.

Cache: besides the per-chunk memo of the encoder, results of whole captions are cached (bounded, cleared when full)
so repeated captions cost a dict lookup; `encode(..., cache=False)` bypasses it.
"""
from __future__ import annotations

from itertools import chain

from leanvl.errors import LeanvlError
from leanvl.text.cleaning import WS_TO_SPACE, clean_chunks
from leanvl.text.tokenizer import ClipBPE

VOCAB_SIZE = 49408
PAD_ID = 0
SOT_ID = 49406
EOT_ID = 49407
SPECIAL_IDS = frozenset({PAD_ID, SOT_ID, EOT_ID})
CONTEXT_LENGTH = 77  # open_clip's text context, start and end tokens included
_CAPTION_CACHE_LIMIT = 500_000


class Labeler:
    """Encodes captions into label id lists; holds the BPE encoder and the caption cache."""

    def __init__(self, bpe: ClipBPE | None = None) -> None:
        self.bpe = bpe or ClipBPE()
        if self.bpe.sot_id != SOT_ID or self.bpe.eot_id != EOT_ID or len(self.bpe.vocab) != VOCAB_SIZE:
            raise LeanvlError(f"unexpected CLIP vocabulary in {self.bpe.bpe_path} (size {len(self.bpe.vocab)})")
        self._caches: dict[int | None, dict[str, tuple[int, ...]]] = {}  # max_tokens -> caption -> labels

    def __call__(self, captions: list[str], max_tokens: int | None = None, *, cache: bool = True) -> list[list[int]]:
        """Sorted unique label ids for each caption (see module docstring)."""
        _check_args(captions, max_tokens)
        captions = captions if isinstance(captions, list) else list(captions)
        try:
            if not cache:
                return self._encode(captions, max_tokens)
            return self._cached(captions, max_tokens)
        except (AttributeError, TypeError) as exc:
            bad = next((i for i, c in enumerate(captions) if not isinstance(c, str)), None)
            if bad is None:
                raise
            raise LeanvlError(f"caption {bad} is {type(captions[bad]).__name__}, expected str") from exc

    def _encode(self, captions: list[str], max_tokens: int | None) -> list[list[int]]:
        """Labels without the caption cache: whole captions, or their first `max_tokens` BPE tokens."""
        if max_tokens is None:
            return self._whole(captions)
        lookup = self.bpe.memo.__getitem__  # chunk -> ids, encoding (and memoising) unseen chunks

        def truncated(caption: str) -> list[int]:
            ids: list[int] = []
            for chunk in clean_chunks(caption):
                ids.extend(lookup(chunk))
                if len(ids) >= max_tokens:
                    break
            return sorted(set(ids[:max_tokens]).difference(SPECIAL_IDS))

        return list(map(truncated, captions))

    def _whole(self, captions: list[str]) -> list[list[int]]:
        """Labels of whole captions: the hot loop, with `clean_chunks`'s plain-ASCII test inlined."""
        lookup = self.bpe.memo.__getitem__  # chunk -> ids, encoding (and memoising) unseen chunks
        ws, out = WS_TO_SPACE, []
        append = out.append
        for caption in captions:
            plain = caption.isascii() and "&" not in caption  # = is_plain_ascii(caption), inlined
            if plain and (caption.isprintable() or caption.translate(ws).isprintable()):
                chunks = caption.lower().split()  # = clean_chunks(caption) for plain ASCII
            else:
                chunks = clean_chunks(caption)
            ids = sorted(set(chain.from_iterable(map(lookup, chunks))))
            if ids and (ids[0] == PAD_ID or ids[-1] >= SOT_ID):  # rare: filter the special ids
                ids = [i for i in ids if i not in SPECIAL_IDS]
            append(ids)
        return out

    def _cached(self, captions: list[str], max_tokens: int | None) -> list[list[int]]:
        """Labels through the caption cache (one dict per `max_tokens`); the misses are encoded together."""
        cache = self._caches.setdefault(max_tokens, {})
        hits = list(map(cache.get, captions))
        if None not in hits:
            return list(map(list, hits))
        missing = [i for i, hit in enumerate(hits) if hit is None]
        texts = [captions[i] for i in missing]
        fresh = self._encode(texts, max_tokens)
        if sum(map(len, self._caches.values())) + len(missing) > _CAPTION_CACHE_LIMIT:
            for one_cache in self._caches.values():
                one_cache.clear()
        for i, text, ids in zip(missing, texts, fresh):
            hits[i] = cache[text] = tuple(ids)
        return list(map(list, hits))


def _check_args(captions: list[str], max_tokens: int | None) -> None:
    if isinstance(captions, str) or not hasattr(captions, "__iter__"):
        raise LeanvlError(f"captions must be a list of strings, got {type(captions).__name__}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise LeanvlError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")


_DEFAULT: Labeler | None = None


def default_labeler() -> Labeler:
    """The process-wide labeler (built on first use, ~0.5 s)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Labeler()
    return _DEFAULT


def encode(captions: list[str], max_tokens: int | None = None, *, cache: bool = True) -> list[list[int]]:
    """Caption -> sorted unique CLIP BPE ids, special ids (0, 49406, 49407) excluded; whole caption by default."""
    return default_labeler()(captions, max_tokens, cache=cache)
