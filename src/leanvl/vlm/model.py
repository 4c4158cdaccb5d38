"""The VLM: vision tower -> compressor -> projector -> causal LM, with `<image>` slots filled by visual tokens.

`VLM.forward(batch) -> {"loss", "tokens"}` is also the task the shared trainer optimises: batch has `image`
[B,3,S,S], `input_ids`/`labels`/`attention_mask` [B,L] with one IMAGE_TOKEN_ID per row, and `question` strings
(QueCC's query text). Everything needed to rebuild it is saved beside the weights (see `leanvl.vlm.io`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.vlm.feature_cache import active as active_feature_cache
from leanvl.vlm.chat import IGNORE_INDEX, IMAGE_TOKEN_ID, query_batch
from leanvl.vlm.compressors import create_compressor
from leanvl.vlm.projector import Projector
from leanvl.vlm.vision import VisionTower

PARTS = ("encoder", "compressor", "projector", "llm")


def check_parts(parts: set[str]) -> set[str]:
    """`parts` when each is one of PARTS; LeanvlError naming the unknown ones otherwise."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise LeanvlError(f"--freeze: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    return set(parts)


@dataclass
class VLMConfig:
    """What a VLM is made of; saved as vlm.json with every checkpoint."""

    llm: str = "tiny"
    encoder: str = "leanvl_convnet"
    image_size: int = 64
    compressor: str = "avgpool"
    tokens: int = 4
    feature_layer: int | None = None          # None: the encoder's final tokens; -2: second-to-last layer
    multi_layers: list[int] = field(default_factory=list)  # TokenPacker/QueCC keys (empty: single-level)
    encoder_config: dict[str, Any] = field(default_factory=dict)  # Encoder.config() for rebuilding
    lora: dict[str, Any] = field(default_factory=dict)  # LoRA adapters on the LLM ({} = none; see leanvl.vlm.lora)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def encoder_for(cfg: VLMConfig) -> nn.Module:
    """The (randomly initialised) encoder architecture saved in `cfg.encoder_config`."""
    from leanvl.models.encoders import create_encoder

    enc = cfg.encoder_config or {"name": cfg.encoder}
    return create_encoder(enc["name"], image_size=enc.get("image_size", cfg.image_size),
                          build_kwargs=enc.get("build_kwargs"))


class VLM(nn.Module):
    """LLaVA-style model; `frozen` parts get requires_grad=False (a frozen encoder also stays in eval mode)."""

    def __init__(self, cfg: VLMConfig, encoder: nn.Module, llm: Any, tokenizer: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.vision = VisionTower(encoder, cfg.feature_layer, cfg.multi_layers or None)
        self.llm = llm
        self.tokenizer = tokenizer
        width = llm.get_input_embeddings().weight.shape[1]
        self.compressor = create_compressor(cfg.compressor, grid=self.vision.grid, tokens=cfg.tokens,
                                            dim=self.vision.dim, multi_dim=self.vision.multi_dim, query_dim=width)
        self.projector = Projector(self.compressor.out_dim, width)
        self.frozen: set[str] = set()

    # ----- freezing ----------------------------------------------------------------------------------------------
    def set_frozen(self, parts: set[str]) -> None:
        """Freeze exactly `parts` (subset of PARTS); the rest train."""
        self.frozen = check_parts(parts)
        for name in PARTS:
            for p in getattr(self, name).parameters():
                p.requires_grad_(name not in self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> "VLM":
        super().train(mode)
        if "encoder" in self.frozen:
            self.encoder.eval()
        return self

    def set_grad_checkpointing(self, enable: bool) -> None:
        """Recompute the vision encoder's activations in backward (trainer hook)."""
        self.encoder.set_grad_checkpointing(enable)

    # ----- pieces ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def query_embedding(self, questions: list[str]) -> torch.Tensor:
        """QueCC's query: the LLM's final hidden state at the last non-pad token of each question (text only)."""
        tok = query_batch(self.tokenizer, questions)
        return self.query_from_ids(tok["input_ids"], tok["attention_mask"])

    @torch.no_grad()
    def query_from_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """QueCC's query from right-padded question token ids [B, Lq] and their mask."""
        device = self.llm.get_input_embeddings().weight.device
        ids, mask = ids.to(device), mask.to(device)
        if ids.shape[1] == 0 or bool((mask.sum(1) == 0).any()):
            raise LeanvlError("QueCC needs a non-empty question for every image")
        hidden = self.llm.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        last = mask.sum(1) - 1
        return hidden[torch.arange(ids.shape[0], device=device), last].float()

    def visual_tokens(self, images: torch.Tensor, questions: list[str] | None = None,
                      query: torch.Tensor | None = None) -> torch.Tensor:
        """images [B,3,S,S] -> projected visual tokens [B, V, llm width] (QueCC: `query` or the `questions`)."""
        # --cache-features: batches encoded before by these weights (feature_cache.py), for an encoder that does
        # not learn here (eval mode, and frozen or under no_grad)
        fixed = not self.encoder.training and ("encoder" in self.frozen or not torch.is_grad_enabled())
        cache = active_feature_cache() if fixed else None
        if "encoder" in self.frozen or cache is not None:
            with torch.no_grad():
                x, m = self.vision(images) if cache is None else cache.features(self.vision, images)
        else:
            x, m = self.vision(images)
        if self.compressor.needs_query and query is None:
            if questions is None or len(questions) != images.shape[0]:
                raise LeanvlError("QueCC needs one question per image")
            query = self.query_embedding(list(questions))
        return self.projector(self.compressor(x, m, query))

    def splice(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, visual: torch.Tensor,
               labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Replace each row's single IMAGE_TOKEN_ID by its V visual tokens: embeds, mask, labels, position ids."""
        b, length = input_ids.shape
        v = visual.shape[1]
        is_img = input_ids == IMAGE_TOKEN_ID
        if not bool((is_img.sum(1) == 1).all()):
            raise LeanvlError("every sequence must hold exactly one <image> slot for its one image")
        pos = is_img.float().argmax(1, keepdim=True)                          # [B,1]
        j = torch.arange(length - 1 + v, device=input_ids.device).unsqueeze(0)  # [1, L']
        in_vis = (j >= pos) & (j < pos + v)
        text_idx = torch.where(j < pos, j, j - v + 1).clamp(0, length - 1)
        vis_idx = (j - pos).clamp(0, v - 1)
        text = self.llm.get_input_embeddings()(input_ids.clamp(min=0))
        embeds = torch.where(in_vis.unsqueeze(-1),
                             torch.gather(visual.to(text.dtype), 1, vis_idx.unsqueeze(-1).expand(-1, -1, text.shape[-1])),
                             torch.gather(text, 1, text_idx.unsqueeze(-1).expand(-1, -1, text.shape[-1])))
        mask = torch.where(in_vis, torch.ones_like(text_idx), torch.gather(attention_mask, 1, text_idx))
        out = {"inputs_embeds": embeds, "attention_mask": mask,
               "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}
        if labels is not None:
            out["labels"] = torch.where(in_vis, torch.full_like(text_idx, IGNORE_INDEX),
                                        torch.gather(labels, 1, text_idx))
        return out

    # ----- objective ---------------------------------------------------------------------------------------------
    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        """LLM logits over the spliced sequence (for tests and scoring)."""
        visual = self.visual_tokens(batch["image"], batch.get("question"))
        s = self.splice(batch["input_ids"], batch["attention_mask"], visual)
        return self.llm(inputs_embeds=s["inputs_embeds"], attention_mask=s["attention_mask"],
                        position_ids=s["position_ids"]).logits

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Next-token cross-entropy on assistant tokens only."""
        visual = self.visual_tokens(batch["image"], batch.get("question"))
        s = self.splice(batch["input_ids"], batch["attention_mask"], visual, batch["labels"])
        logits = self.llm(inputs_embeds=s["inputs_embeds"], attention_mask=s["attention_mask"],
                          position_ids=s["position_ids"]).logits
        target = s["labels"][:, 1:]
        n = (target != IGNORE_INDEX).sum()
        if int(n) == 0:
            raise LeanvlError("batch has no answer tokens to learn from (all labels masked)")
        loss = nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), target.flatten(),
                                           ignore_index=IGNORE_INDEX, reduction="sum") / n
        return {"loss": loss, "answer_tokens": n.float()}
