"""CLIP byte-pair encoding with ids identical to open_clip's `SimpleTokenizer.encode`, built for speed.

The vocabulary is open_clip's own file (`open_clip.tokenizer.default_bpe()`, shipped inside the open_clip
package, read offline). The encoding is exactly open_clip's:

1. cleaning: `ftfy.fix_text`, `html.unescape` twice, strip, collapse whitespace runs to one space, lower-case;
2. pre-tokenisation with open_clip's regex (special strings, English contractions, letter runs, single digits,
   other-symbol runs);
3. each piece mapped to byte-level unicode and BPE-merged with the `</w>` end-of-word suffix.

Why it is fast, and why it stays exact:

* Cleaning shortcuts (`leanvl.text.cleaning`): ftfy runs only when it cannot be proven to be a no-op.
* Chunk memo: the regex never matches across whitespace, so the ids of a cleaned caption are the concatenation of
  the ids of its space-separated chunks. Each distinct chunk is encoded once (regex with the `regex` module, exactly
  open_clip's pattern - for ASCII chunks its ASCII restriction with the ~3x faster stdlib `re`; BPE with a Rust
  `tokenizers` BPE model built from open_clip's vocab/merges) and memoised.
  This is the same idea as open_clip's own per-word BPE cache, moved one level up so that the regex, the byte
  mapping and the BPE are all skipped for known chunks. Regex pieces are memoised too, so a new chunk made of known
  pieces (e.g. a new number) costs one regex call. Both memos are bounded (cleared when they reach 1M entries).
* If the Rust BPE cannot be built or fails on some input, that piece uses open_clip's own Python BPE.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import chain

import regex

from leanvl.text.cleaning import clean_chunks

SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
# open_clip's pre-tokenisation pattern (compiled with IGNORECASE, as in open_clip).
PATTERN = SOT_TOKEN + "|" + EOT_TOKEN + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# The same pattern restricted to ASCII input, for the (~3x faster) stdlib `re`: on ASCII, \p{L} is [a-zA-Z], \p{N}
# is [0-9] and `regex`'s \s is [\t\n\v\f\r ] (not \x1c-\x1f, unlike `re`'s \s). Tested equal on random ASCII.
ASCII_PATTERN = (SOT_TOKEN + "|" + EOT_TOKEN
                 + r"""|'s|'t|'re|'ve|'m|'ll|'d|[a-zA-Z]+|[0-9]|[^\t\n\x0b\x0c\r a-zA-Z0-9]+""")
N_MERGES = 49152 - 256 - 2  # open_clip reads merges[1 : 49152 - 256 - 2 + 1]
_MEMO_LIMIT = 1_000_000


def default_bpe_path() -> str:
    """Path of open_clip's CLIP vocabulary file, found without importing open_clip (which pulls in torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip is not installed; it ships the CLIP BPE vocabulary")
    return os.path.join(list(spec.submodule_search_locations)[0], "bpe_simple_vocab_16e6.txt.gz")


@lru_cache(maxsize=4)
def load_merges(bpe_path: str) -> tuple[tuple[str, str], ...]:
    """The merge rules exactly as open_clip reads them from `bpe_path`."""
    with gzip.open(bpe_path) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    return tuple(tuple(line.split()) for line in lines[1 : N_MERGES + 1])  # type: ignore[misc]


def byte_encoder() -> dict[int, str]:
    """open_clip's (= GPT-2's) byte -> printable unicode symbol table, in open_clip's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build_vocab(merges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Token -> id, laid out as open_clip does: bytes, bytes + `</w>`, merges, then the two special tokens."""
    symbols = list(byte_encoder().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT_TOKEN, EOT_TOKEN]
    return {tok: i for i, tok in enumerate(tokens)}


class _Memo(dict):
    """A bounded dict that computes missing values with `fill` (cleared when it reaches `limit` entries)."""

    def __init__(self, fill: Callable[[str], tuple[int, ...]], limit: int) -> None:
        super().__init__()
        self.fill, self.limit = fill, limit

    def __missing__(self, key: str) -> tuple[int, ...]:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.fill(key)
        return value


class ClipBPE:
    """CLIP BPE encoder, id-for-id identical to `open_clip.tokenizer.SimpleTokenizer().encode`."""

    def __init__(self, bpe_path: str | None = None, use_rust: bool = True) -> None:
        self.bpe_path = bpe_path or default_bpe_path()
        merges = load_merges(self.bpe_path)
        self.vocab = build_vocab(merges)
        self.sot_id = self.vocab[SOT_TOKEN]
        self.eot_id = self.vocab[EOT_TOKEN]
        self._special = {SOT_TOKEN: self.sot_id, EOT_TOKEN: self.eot_id}
        self._pattern = regex.compile(PATTERN, regex.IGNORECASE)
        self._ascii_pattern = re.compile(ASCII_PATTERN, re.IGNORECASE)
        self._to_symbols = str.maketrans({chr(b): sym for b, sym in byte_encoder().items()})
        self._rust = _build_rust_bpe(self.vocab, merges) if use_rust else None
        self._reference = None  # open_clip SimpleTokenizer, built only if a fallback is needed
        self.memo = _Memo(self._encode_chunk, _MEMO_LIMIT)  # cleaned chunk -> ids
        self._pieces = _Memo(self._encode_piece, _MEMO_LIMIT)  # regex piece -> ids

    @property
    def uses_rust(self) -> bool:
        """Whether the Rust `tokenizers` BPE is active (else new pieces use open_clip's Python BPE)."""
        return self._rust is not None

    def chunk_ids(self, chunk: str) -> tuple[int, ...]:
        """Ids of one whitespace-free chunk of cleaned text (memoised)."""
        return self.memo[chunk]

    def encode(self, text: str) -> list[int]:
        """All BPE ids of `text` in order, without start/end tokens (= open_clip `SimpleTokenizer.encode`)."""
        return list(chain.from_iterable(map(self.memo.__getitem__, clean_chunks(text))))

    def _encode_chunk(self, chunk: str) -> tuple[int, ...]:
        if chunk.isascii():  # ASCII letters form one regex piece, ASCII digits one piece each
            if chunk.isalpha():
                return self._pieces[chunk]
            pieces = chunk if chunk.isdigit() else self._ascii_pattern.findall(chunk)
        else:
            pieces = self._pattern.findall(chunk)
        return tuple(chain.from_iterable(map(self._pieces.__getitem__, pieces)))

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        if piece in self._special:  # a literal special string maps to its id, as in open_clip
            return (self._special[piece],)
        symbols = piece.encode("utf-8").decode("latin-1").translate(self._to_symbols)
        if self._rust is not None:
            try:
                return tuple(tok.id for tok in self._rust.tokenize(symbols))
            except Exception:  # noqa: BLE001 - any Rust-side failure falls back to open_clip's BPE
                pass
        ref = self.reference()
        return tuple(ref.encoder[tok] for tok in ref.bpe(symbols).split(" "))

    def reference(self):
        """open_clip's `SimpleTokenizer` on the same vocabulary file (the slow path)."""
        if self._reference is None:
            from open_clip.tokenizer import SimpleTokenizer

            self._reference = SimpleTokenizer(bpe_path=self.bpe_path)
        return self._reference


def _build_rust_bpe(vocab: dict[str, int], merges: tuple[tuple[str, str], ...]):
    """The `tokenizers` (Rust) BPE model with open_clip's vocab/merges and the `</w>` end-of-word suffix."""
    try:
        from tokenizers import models

        return models.BPE(vocab, list(merges), end_of_word_suffix="</w>", continuing_subword_prefix="")
    except Exception:  # noqa: BLE001 - no Rust BPE: open_clip's Python BPE does the work instead
        return None
