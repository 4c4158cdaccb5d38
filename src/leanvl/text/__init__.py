"""Text side of leanvl: CLIP BPE (id-identical to open_clip) and caption -> SuperClass label ids."""
from leanvl.text.labels import EOT_ID, PAD_ID, SOT_ID, SPECIAL_IDS, VOCAB_SIZE, Labeler, encode

__all__ = ["EOT_ID", "PAD_ID", "SOT_ID", "SPECIAL_IDS", "VOCAB_SIZE", "Labeler", "encode"]
