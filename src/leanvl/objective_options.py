"""Each objective's own options (a dataclass per objective; torch-free so the CLI can read them cheaply).

`OBJECTIVE_OPTIONS` maps an objective name to its options class; the CLI shows each class's fields under the
objective's heading in `--help`, and config.json stores the chosen objective's options nested under `options`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError
from leanvl.registry import Registry

OBJECTIVE_OPTIONS: Registry[type] = Registry("objective", flag="--objective")
IDF_MODES = ("online", "offline", "none")
LOSSES = ("softmax", "bce")


def check_superclass(idf: str, loss: str, head_chunk: int, has_table: bool) -> None:
    """LeanvlError naming the first bad SuperClass setting."""
    if idf not in IDF_MODES:
        raise LeanvlError(f"--idf must be one of {', '.join(IDF_MODES)}, got '{idf}'")
    if loss not in LOSSES:
        raise LeanvlError(f"--loss must be one of {', '.join(LOSSES)}, got '{loss}'")
    if head_chunk < 0 or (head_chunk and loss != "softmax"):
        raise LeanvlError(f"--head-chunk must be >= 0 and needs --loss softmax, got {head_chunk} with {loss}")
    if has_table and idf != "offline":
        raise LeanvlError(f"--idf-table is read only with --idf offline, got --idf {idf}")
    if idf == "offline" and not has_table:
        raise LeanvlError("--idf offline needs --idf-table FILE (write one with `leanvl data idf`)")


class ObjectiveOptions:
    """Base of every objective's options: `validate()` before anything is written; `locked_encoder()` names a run
    or export whose image encoder the wiring loads (frozen) instead of building `--model` ('' = build it)."""

    def validate(self) -> None:
        """LeanvlError naming the first bad value (nothing to check by default)."""

    def locked_encoder(self) -> str:
        """Path of the encoder to lock ('' = build a fresh one)."""
        return ""


@OBJECTIVE_OPTIONS.register("superclass")
@dataclass
class SuperClassOptions(ObjectiveOptions):
    """SuperClass: IDF-weighted K-hot classification over caption subwords."""

    idf: str = opt("online", "superclass IDF weighting: online | offline | none")
    idf_table: str = opt("", "IDF table from `leanvl data idf` (for --idf offline)")
    loss: str = opt("softmax", "superclass loss: softmax (soft-target CE) | bce")
    head_chunk: int = opt(0, "superclass: head + loss fused, N rows at a time, no B x V activations (0 = off)")

    def validate(self) -> None:
        """LeanvlError naming the first bad value."""
        check_superclass(self.idf, self.loss, self.head_chunk, has_table=bool(self.idf_table))


@OBJECTIVE_OPTIONS.register("clip")
@dataclass
class ClipOptions(ObjectiveOptions):
    """CLIP: image encoder and open_clip text tower trained together."""

    text_model: str = opt("leanvl-text-tiny", "clip/siglip/lit: open_clip model config whose text tower is used "
                                              "(random init)")
    clip_local_loss: bool = opt(True, "clip/lit under DDP: each rank scores its own images against all gathered "
                                      "texts")


@OBJECTIVE_OPTIONS.register("siglip")
@dataclass
class SigLipOptions(ObjectiveOptions):
    """SigLIP: the CLIP towers with open_clip's sigmoid loss (learnable temperature and bias)."""

    text_model: str = opt("leanvl-text-tiny", "clip/siglip/lit: open_clip model config whose text tower is used "
                                              "(random init)")
    siglip_init_scale: float = opt(math.log(10), "siglip: initial log temperature t' (scale exp(t'); paper: "
                                                 "log 10)")
    siglip_init_bias: float = opt(-10.0, "siglip: initial logit bias b (paper: -10)")

    def validate(self) -> None:
        """LeanvlError for a non-finite initialisation."""
        if not (math.isfinite(self.siglip_init_scale) and math.isfinite(self.siglip_init_bias)):
            raise LeanvlError("--siglip-init-scale and --siglip-init-bias must be finite numbers")


@OBJECTIVE_OPTIONS.register("lit")
@dataclass
class LitOptions(ClipOptions):
    """LiT: a text tower trained against a locked image encoder (the clip options apply too)."""

    lit_encoder: str = opt("", "lit: run directory or export of the image encoder to lock")
    lit_unlock: int = opt(0, "lit: unlock the last N blocks of the locked image encoder")

    def validate(self) -> None:
        """LeanvlError when no encoder to lock is given."""
        if not self.lit_encoder:
            raise LeanvlError("--objective lit needs --lit-encoder RUN_DIR (or a `leanvl export` directory)")
        if self.lit_unlock < 0:
            raise LeanvlError(f"--lit-unlock must be >= 0, got {self.lit_unlock}")

    def locked_encoder(self) -> str:
        """The run directory or export whose image encoder the wiring loads and locks."""
        return self.lit_encoder
