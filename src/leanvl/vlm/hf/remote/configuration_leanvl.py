"""LeanvlConfig: the leanvl VLM description (`vlm`) and the LLM's own config (`llm_config`) of an exported model.

Written by `leanvl vlm export` beside modeling_leanvl.py; loaded with `AutoConfig.from_pretrained(DIR,
trust_remote_code=True)`.
"""
from transformers import PretrainedConfig


class LeanvlConfig(PretrainedConfig):
    """`vlm`: VLMConfig fields (encoder, compressor, tokens, layers, image size); `llm_config`: the causal LM's
    config dict (with `model_type`); `stop_token_ids`: ids that end an answer; `image_token_id`: the `<image>` slot."""

    model_type = "leanvl"

    def __init__(self, vlm: dict | None = None, llm_config: dict | None = None,
                 stop_token_ids: list | None = None, image_token_id: int = -200, **kwargs) -> None:
        self.vlm = dict(vlm or {})
        self.llm_config = dict(llm_config or {})
        self.stop_token_ids = list(stop_token_ids or [])
        self.image_token_id = image_token_id
        super().__init__(**kwargs)
