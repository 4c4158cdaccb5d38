"""Public label API: `leanvl.labels.encode(captions) -> list[list[int]]` (sorted unique CLIP BPE ids, no specials).

See `leanvl.text.labels` for the implementation and the truncation policy (whole caption by default;
`max_tokens=75` reproduces open_clip's 77-token context).
"""
from leanvl.text.labels import SPECIAL_IDS, VOCAB_SIZE, encode

__all__ = ["encode", "VOCAB_SIZE", "SPECIAL_IDS"]
