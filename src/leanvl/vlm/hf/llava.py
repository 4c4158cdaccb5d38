"""`leanvl vlm export --format llava`: a VLM as transformers' own `LlavaForConditionalGeneration` (no remote code).

It maps exactly only when every piece has a LLaVA counterpart: compressor `none` (LLaVA feeds every patch token to
its projector), a single feature layer read before the encoder's final norm (LLaVA reads `hidden_states[layer]`),
and a timm ViT without class/register tokens or pre-norm, i.e. a SigLIP-style tower, whose weights become a
`SiglipVisionModel`. The projector is LLaVA's 2-layer GELU MLP already. The tokenizer gains an `<image>` token (one
new embedding row, zero: LLaVA overwrites it with the image features) that generation_config.json suppresses, so
greedy decoding picks from the same vocabulary as leanvl's. Anything else is refused in one line naming why.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.vlm.hf.files import check_out_dir, write_atomically

IMAGE_TOKEN = "<image>"


def _vit(model: Any) -> Any:
    """The encoder's timm VisionTransformer, or None."""
    backbone = getattr(model.encoder, "backbone", None)
    return backbone if all(hasattr(backbone, a) for a in ("patch_embed", "blocks", "pos_embed")) else None


def _block_issue(block: nn.Module) -> str:
    """Why a timm ViT block is not a SigLIP encoder layer ('' when it is)."""
    attn, mlp = block.attn, block.mlp
    if not all(isinstance(getattr(block, n, None), nn.Identity) for n in ("ls1", "ls2", "drop_path1", "drop_path2")):
        return "its blocks use layer scale or drop path"
    if not (isinstance(getattr(attn, "q_norm", nn.Identity()), nn.Identity) and hasattr(attn, "qkv")):
        return "its attention has q/k norms or no fused qkv"
    if not (isinstance(getattr(mlp, "act", None), nn.GELU) and mlp.act.approximate == "none"
            and isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity) and hasattr(mlp, "fc1")):
        return "its MLP is not fc1 - exact GELU - fc2"
    return ""


def llava_refusal(model: Any) -> str:
    """Why `model` does not map onto LlavaForConditionalGeneration ('' when it does)."""
    cfg = model.cfg
    if cfg.compressor != "none":
        return (f"compressor '{cfg.compressor}' has no LLaVA counterpart (LLaVA feeds every patch token to the "
                f"projector); only 'none' maps")
    if cfg.multi_layers:
        return "multi-layer features (--multi-layers) have no LLaVA counterpart"
    vit = _vit(model)
    if vit is None:
        return f"encoder '{cfg.encoder}' is not a ViT (LLaVA's tower must be a transformers CLIP/SigLIP vision model)"
    if vit.num_prefix_tokens or not isinstance(vit.norm_pre, nn.Identity) or vit.patch_embed.proj.bias is None:
        return (f"encoder '{cfg.encoder}' is not SigLIP-style (it has a class/register token, a pre-norm or no patch "
                f"bias); only class-token-free timm ViTs map, onto SiglipVisionModel")
    issue = next((i for i in map(_block_issue, vit.blocks) if i), "")
    if issue:
        return f"encoder '{cfg.encoder}': {issue}"
    if cfg.feature_layer is None:
        return ("the VLM reads the encoder's final normalised tokens, LLaVA an un-normalised layer: train with "
                "--feature-layer -1 (or -2)")
    return ""


def _vision_config(vit: Any, image_size: int) -> dict[str, Any]:
    b = vit.blocks[0]
    return {"model_type": "siglip_vision_model", "hidden_size": vit.embed_dim, "num_hidden_layers": len(vit.blocks),
            "num_attention_heads": b.attn.num_heads, "intermediate_size": b.mlp.fc1.out_features,
            "image_size": image_size, "patch_size": vit.patch_embed.proj.kernel_size[0], "hidden_act": "gelu",
            "layer_norm_eps": b.norm1.eps, "vision_use_head": False}


def _vision_state(vit: Any, prefix: str) -> dict[str, torch.Tensor]:
    """timm ViT weights under SiglipVisionModel's names (after `prefix`)."""
    out = {"embeddings.patch_embedding.weight": vit.patch_embed.proj.weight,
           "embeddings.patch_embedding.bias": vit.patch_embed.proj.bias,
           "embeddings.position_embedding.weight": vit.pos_embed[0],
           "post_layernorm.weight": vit.norm.weight, "post_layernorm.bias": vit.norm.bias}
    for i, b in enumerate(vit.blocks):
        p = f"encoder.layers.{i}."
        for name, t in zip(("q_proj", "k_proj", "v_proj"), b.attn.qkv.weight.chunk(3)):
            out[p + f"self_attn.{name}.weight"] = t
        for name, t in zip(("q_proj", "k_proj", "v_proj"), b.attn.qkv.bias.chunk(3)):
            out[p + f"self_attn.{name}.bias"] = t
        pairs = {"self_attn.out_proj": b.attn.proj, "layer_norm1": b.norm1, "layer_norm2": b.norm2,
                 "mlp.fc1": b.mlp.fc1, "mlp.fc2": b.mlp.fc2}
        for name, mod in pairs.items():
            out[p + f"{name}.weight"], out[p + f"{name}.bias"] = mod.weight, mod.bias
    return {prefix + k: v.detach().clone() for k, v in out.items()}


def _feature_layer(index: int) -> int:
    """leanvl's block index (output of block i; negative from the last) -> LLaVA's hidden_states index."""
    return index if index < 0 else index + 1


def build_llava(model: Any) -> tuple[Any, Any]:
    """(LlavaForConditionalGeneration, tokenizer with `<image>`) holding `model`'s weights; LeanvlError if it does
    not map."""
    import copy

    from transformers import AutoConfig, LlavaConfig, LlavaForConditionalGeneration

    reason = llava_refusal(model)
    if reason:
        raise LeanvlError(f"--format llava: {reason}")
    vit, llm = _vit(model), model.llm
    tok = copy.deepcopy(model.tokenizer)
    tok.add_tokens([IMAGE_TOKEN], special_tokens=True)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    text = llm.config.to_dict()
    vocab = max(int(text["vocab_size"]), image_id + 1)
    text_config = AutoConfig.for_model(text.pop("model_type"), **{**text, "vocab_size": vocab})
    config = LlavaConfig(vision_config=_vision_config(vit, model.cfg.image_size), text_config=text_config,
                         image_token_id=image_id, projector_hidden_act="gelu",
                         vision_feature_select_strategy="full", multimodal_projector_bias=True,
                         vision_feature_layer=_feature_layer(model.cfg.feature_layer),
                         image_seq_length=model.vision.grid[0] * model.vision.grid[1],
                         tie_word_embeddings=bool(getattr(llm.config, "tie_word_embeddings", False)))
    hf = LlavaForConditionalGeneration(config).eval()
    _load_weights(hf, model, vit, vocab)
    gen = hf.generation_config
    gen.suppress_tokens, gen.eos_token_id, gen.pad_token_id = [image_id], tok.eos_token_id, tok.pad_token_id
    gen.bos_token_id, gen.do_sample = tok.bos_token_id, False
    return hf, tok


def _load_weights(hf: Any, model: Any, vit: Any, vocab: int) -> None:
    """Copy the VLM's tower, projector and LLM (embedding padded with zero rows to `vocab`) into `hf`."""
    tower = hf.model.vision_tower
    prefix = "vision_model." if any(k.startswith("vision_model.") for k in tower.state_dict()) else ""
    missing, unexpected = tower.load_state_dict(_vision_state(vit, prefix), strict=False)
    if [k for k in missing if "head" not in k] or unexpected:
        raise LeanvlError(f"--format llava: tower weights do not map (missing {missing[:2]}, unexpected "
                          f"{unexpected[:2]})")
    net = model.projector.net
    proj = hf.model.multi_modal_projector
    with torch.no_grad():
        for dst, src in ((proj.linear_1, net[0]), (proj.linear_2, net[2])):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        state = {k: v for k, v in model.llm.state_dict().items()}
        emb_key = next(k for k in state if k.endswith("embed_tokens.weight"))
        emb = state[emb_key]
        state[emb_key] = torch.cat([emb, emb.new_zeros(vocab - emb.shape[0], emb.shape[1])])
        head = state.pop("lm_head.weight", None)
        inner = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("model.")}
        hf.model.language_model.load_state_dict(inner, strict=True)
        if head is not None and not hf.config.tie_word_embeddings:
            hf.lm_head.weight.copy_(torch.cat([head, head.new_zeros(vocab - head.shape[0], head.shape[1])]))
    hf.tie_weights()


def _processor(model: Any, tok: Any) -> Any:
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from leanvl.data.transforms import CLIP_MEAN, CLIP_STD

    s = model.cfg.image_size
    images = CLIPImageProcessorPil(size={"shortest_edge": s}, crop_size={"height": s, "width": s},
                                   image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    tok.padding_side = tok.init_kwargs["padding_side"] = "left"   # generation batches are left-padded
    return LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=_vit(model).patch_embed.proj.kernel_size[0],
                          vision_feature_select_strategy="full", chat_template=tok.chat_template,
                          image_token=IMAGE_TOKEN)


def export_llava(model: Any, out: str) -> dict[str, Any]:
    """Write `model` as a LlavaForConditionalGeneration directory `out` (atomically; no remote code)."""
    check_out_dir(out)
    hf, tok = build_llava(model.cpu().eval())

    def write(tmp: str) -> None:
        hf.save_pretrained(tmp)
        _processor(model, tok).save_pretrained(tmp)

    write_atomically(out, write)
    with open(os.path.join(out, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    return {"out": out, "architecture": arch, "compressor": "none", "visual_tokens": hf.config.image_seq_length,
            "vision_tower": "SiglipVisionModel", "image_token_id": hf.config.image_token_id}
