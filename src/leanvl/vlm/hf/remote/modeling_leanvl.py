"""LeanvlForConditionalGeneration: a leanvl VLM (encoder -> compressor -> projector -> causal LM) for transformers.

Written by `leanvl vlm export`; the leanvl_*.py files beside it are leanvl's own modules (imports rewritten), so
the maths is the code the model was trained with and leanvl need not be installed (torch, transformers, timm do).
Load with `AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)` and `AutoProcessor` likewise.
"""
from typing import Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_leanvl import LeanvlConfig
from .leanvl_generate import greedy_decode, prefill_batch
from .leanvl_model import VLM, VLMConfig, encoder_for


class LeanvlForConditionalGeneration(PreTrainedModel):
    """Weights live under `vlm.` with leanvl's own names (vlm.encoder, vlm.compressor, vlm.projector, vlm.llm)."""

    config_class = LeanvlConfig
    base_model_prefix = "vlm"
    main_input_name = "input_ids"
    _no_split_modules: list = []

    def __init__(self, config: LeanvlConfig) -> None:
        super().__init__(config)
        llm_cfg = dict(config.llm_config)
        llm = AutoModelForCausalLM.from_config(AutoConfig.for_model(llm_cfg.pop("model_type"), **llm_cfg))
        vcfg = VLMConfig(**config.vlm)
        self.vlm = VLM(vcfg, encoder_for(vcfg), llm, tokenizer=None)
        self.post_init()
        # post_init only looks at direct children; the LLM sits one level down (vlm.llm): register its tied keys
        for name, module in self.vlm.named_children():
            for k, v in (getattr(module, "all_tied_weights_keys", None) or {}).items():
                self.all_tied_weights_keys[f"vlm.{name}.{k}"] = f"vlm.{name}.{v}"

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Every weight comes from model.safetensors; nothing is re-initialised."""

    @property
    def num_visual_tokens(self) -> int:
        """V: visual tokens per image fed to the LLM."""
        return int(self.config.vlm["tokens"])

    def _query(self, query_input_ids, query_attention_mask):
        if not self.vlm.compressor.needs_query:
            return None
        if query_input_ids is None:
            raise ValueError("this model's compressor (quecc) needs query_input_ids from the processor")
        return self.vlm.query_from_ids(query_input_ids, query_attention_mask)

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor,
                pixel_values: torch.FloatTensor, query_input_ids: Optional[torch.LongTensor] = None,
                query_attention_mask: Optional[torch.LongTensor] = None,
                labels: Optional[torch.LongTensor] = None, **kwargs) -> CausalLMOutputWithPast:
        """Logits over the spliced sequence (V visual tokens in place of the `<image>` slot); loss when labels."""
        visual = self.vlm.visual_tokens(pixel_values, None, self._query(query_input_ids, query_attention_mask))
        s = self.vlm.splice(input_ids, attention_mask, visual, labels)
        out = self.vlm.llm(inputs_embeds=s["inputs_embeds"], attention_mask=s["attention_mask"],
                           position_ids=s["position_ids"], labels=s.get("labels"))
        return CausalLMOutputWithPast(loss=out.loss, logits=out.logits)

    @torch.no_grad()
    def generate(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor,
                 pixel_values: torch.FloatTensor, query_input_ids: Optional[torch.LongTensor] = None,
                 query_attention_mask: Optional[torch.LongTensor] = None, max_new_tokens: int = 16,
                 **kwargs) -> torch.LongTensor:
        """Greedy new tokens [B, n] (right-padded with pad_token_id; decode with skip_special_tokens=True)."""
        if kwargs.get("do_sample") or kwargs.get("num_beams", 1) != 1:
            raise ValueError("leanvl export generates greedily only (do_sample=False, num_beams=1)")
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        query = self._query(query_input_ids, query_attention_mask)
        cache, logits, s = prefill_batch(self.vlm, pixel_values, batch, query)
        rows = greedy_decode(self.vlm, cache, logits, s, set(self.config.stop_token_ids),
                             max_new_tokens=max_new_tokens)
        pad = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        width = max([len(r) for r in rows] + [1])
        out = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        return out
