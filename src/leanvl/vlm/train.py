"""`vlm train` wiring: VLM flags -> model + frozen parts + data -> the shared trainer (no second training loop)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError

if TYPE_CHECKING:  # torch-free at import time, so `leanvl --help` stays quick
    from leanvl.vlm.model import VLM, VLMConfig


@dataclass
class VLMTrainArgs:
    """What VLM to train on what data. Each field's `opt` help is its `--help`."""

    llm: str = opt("tiny", "LLM: tiny | small | base | large | smollm2-135m | local HF model directory")
    encoder: str = opt("leanvl_convnet", "vision encoder: leanvl built-in, timm name, open_clip:NAME, or `leanvl export` dir")
    encoder_weights: str = opt("", "local weights file for a timm/open_clip encoder ('' = as built)")
    image_size: int = opt(64, "input resolution")
    compressor: str = opt("quecc", "none | avgpool | tokenpacker | quecc")
    tokens: int = opt(4, "visual tokens fed to the LLM (must tile the encoder grid)")
    feature_layer: str = opt("", "encoder layer for the single-level features ('' = final, -2 = second-to-last)")
    multi_layers: str = opt("", "comma list of encoder layers for TokenPacker/QueCC keys ('' = single-level)")
    data: str = opt("synthetic", "synthetic | synthetic:N (built-in VQA) | LLaVA .json | shards | .csv")
    stage: int = opt(2, "1: captions, trains compressor+projector; 2: instructions (adds the LLM)")
    freeze: str = opt("", "comma list of parts to freeze (encoder,compressor,projector,llm; 'none'); '' = stage default")
    init: str = opt("", "start from the weights of a VLM run/checkpoint (e.g. stage 1 -> stage 2)")
    eval_data: str = opt("", "--eval-every questions: '' = built-in synthetic VQA test split, or a LLaVA .json")
    eval_limit: int = opt(64, "--eval-every: held-out questions per evaluation")
    eval_lmms_tasks: str = opt("", "--eval-every: also score these lmms-eval tasks (e.g. leanvl_vqa_reasoning)")
    data_weights: str = opt("", "mixture weights of a --data 'A::B' mixture, e.g. 1::3 ('' = equal)")
    resampled: bool = opt(False, "draw shards with replacement (open_clip's --dataset-resampled)")
    samples_per_epoch: int = opt(0, "virtual epoch length in samples (0 = one pass over the data)")
    data_cache: str = opt("", "node cache: remote shard indexes + whole pipe: shards ('' = ~/.cache/leanvl/shards)")
    data_cache_gb: float = opt(100.0, "size bound of --data-cache's pipe: shards in GiB (least recently used go)")
    lora: int = opt(0, "LoRA rank for the LLM (peft; 0 = off): base LLM frozen, adapters train")
    lora_alpha: float = opt(0.0, "LoRA alpha (0 = 2 x rank)")
    lora_targets: str = opt("", "comma list of LLM linear layers to adapt ('' = q,k,v,o,gate,up,down _proj)")


def parse_layers(text: str) -> list[int]:
    """'1,2,-1' -> [1, 2, -1]; LeanvlError on anything else."""
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LeanvlError(f"bad layer list {text!r}; use comma-separated integers like 1,2,-1") from None


def frozen_parts(args: VLMTrainArgs) -> set[str]:
    """Parts to freeze: --freeze, else stage 1 -> encoder+llm, stage 2 -> encoder (LLaVA's recipe)."""
    from leanvl.vlm.batches import check_stage
    from leanvl.vlm.model import check_parts

    check_stage(args.stage)
    if not args.freeze:
        return {"encoder", "llm"} if args.stage == 1 else {"encoder"}
    if args.freeze.strip() == "none":
        return set()
    return check_parts({p.strip() for p in args.freeze.split(",") if p.strip()})


def vlm_config(args: VLMTrainArgs) -> VLMConfig:
    """The VLMConfig of the flags."""
    layer = parse_layers(args.feature_layer)
    if len(layer) > 1:
        raise LeanvlError("--feature-layer takes one layer index")
    from leanvl.vlm.model import VLMConfig

    return VLMConfig(llm=args.llm, encoder=args.encoder, image_size=args.image_size, compressor=args.compressor,
                     tokens=args.tokens, feature_layer=layer[0] if layer else None,
                     multi_layers=parse_layers(args.multi_layers))


def _init_from(model: VLM, path: str) -> None:
    from leanvl.train.dcp import load_any_weights
    from leanvl.vlm.io import _is_tied, resolve_checkpoint

    _, weights = resolve_checkpoint(path)
    missing, unexpected = load_any_weights(model, weights)
    missing = [k for k in missing if not _is_tied(model, k)]
    if missing or unexpected:
        raise LeanvlError(f"--init {path}: weights do not fit this VLM (missing {len(missing)} keys, e.g. "
                          f"{missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})")


def run_train(args: VLMTrainArgs, tcfg: Any) -> Any:
    """Build the VLM, write its spec to RUN/vlm, and train it with `leanvl.train.loop.train`."""
    from leanvl.train import distributed as dist
    from leanvl.train.identity import check_same_run
    from leanvl.train.loop import seed_everything, train
    from leanvl.train.run_dir import check_run_dir, write_json_atomic
    from leanvl.vlm.batches import open_vlm_source, vlm_batches
    from leanvl.vlm.io import SPEC_DIR, build_vlm, save_spec
    from leanvl.vlm.lora import apply_lora, lora_spec, trainable_counts

    tcfg.validate()
    frozen = frozen_parts(args)
    lora = lora_spec(args.lora, args.lora_alpha, args.lora_targets)
    tcfg.extra = {"vlm": asdict(args), "frozen": sorted(frozen)}
    check_run_dir(tcfg)  # refuse an existing (or, resuming, a different) run before the VLM spec is written into it
    check_same_run(tcfg)
    seed_everything(tcfg.seed)
    model = build_vlm(vlm_config(args), encoder_pretrained=args.encoder_weights or None, seed=tcfg.seed)
    from leanvl.data.mixture import data_options, open_data

    source = open_data(args.data, image_size=model.cfg.image_size, seed=tcfg.seed, opener=open_vlm_source,
                       **data_options(args))
    if args.init:
        _init_from(model, args.init)
    model.set_frozen(frozen)
    apply_lora(model, lora)
    evaluator = None
    if tcfg.eval_every:
        from leanvl.vlm.inloop import vlm_evaluator

        evaluator = vlm_evaluator(model, data=args.eval_data, limit=args.eval_limit, seed=tcfg.seed,
                                  batch_size=tcfg.batch_size, lmms_tasks=args.eval_lmms_tasks)
    batches = vlm_batches(source, model.tokenizer, batch_size=tcfg.batch_size, image_size=model.cfg.image_size,
                          stage=args.stage, seed=tcfg.seed, num_workers=tcfg.num_workers)
    counts = trainable_counts(model)  # before FSDP turns the parameters into shards
    result = train(model, batches, tcfg, evaluator,
                   before_run=lambda: save_spec(model, os.path.join(tcfg.out, SPEC_DIR)))
    if dist.is_main():
        write_json_atomic(os.path.join(tcfg.out, "result.json"), {**asdict(result), "trainable": counts})
    return result
