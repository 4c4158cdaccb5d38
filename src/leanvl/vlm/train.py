"""`vlm train` wiring: VLM flags -> model + frozen parts + data -> the shared trainer (no second training loop)."""
from __future__ import annotations

import os
import re
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

    def validate(self) -> "VLMTrainArgs":
        """LeanvlError naming the first bad value; names and paths are looked up, nothing is built or read."""
        from leanvl import preflight
        from leanvl.vlm.compressors import COMPRESSORS

        preflight.llm_name(self.llm)
        preflight.encoder_name(self.encoder, "--encoder")
        preflight.weights_file(self.encoder_weights, "--encoder-weights")
        preflight.count(self.image_size, "--image-size", 8, MAX_IMAGE_SIZE)
        if self.compressor not in COMPRESSORS:
            raise COMPRESSORS.unknown(self.compressor)
        preflight.count(self.tokens, "--tokens", 1, self.image_size**2)  # the exact tiling is checked at build
        if self.eval_data:
            preflight.data_spec(self.eval_data, "--eval-data")
        preflight.items(self.eval_limit, "--eval-limit")
        check_task_names(self.eval_lmms_tasks, "--eval-lmms-tasks")
        preflight.cache_dir(self.data_cache)
        preflight.count(self.lora, "--lora", 0, MAX_LORA_RANK)
        preflight.number(self.lora_alpha, "--lora-alpha", lo=0)
        check_layer_names(self.lora_targets, "--lora-targets")
        return self


MAX_IMAGE_SIZE = 1024
MAX_LORA_RANK = 4096


def check_task_names(text: str, flag: str) -> None:
    """LeanvlError unless every comma-separated entry looks like an lmms-eval task name (letters, digits, _ . -)."""
    bad = [t for t in text.split(",") if t.strip() and not re.fullmatch(r"[\w.-]+", t.strip())]
    if bad:
        raise LeanvlError(f"{flag}: {bad[0]!r} is not a task name (letters, digits, _ . - only)")


def check_layer_names(text: str, flag: str) -> None:
    """LeanvlError unless every comma-separated entry is a module name (a Python identifier)."""
    bad = [t for t in text.split(",") if t.strip() and not t.strip().isidentifier()]
    if bad:
        raise LeanvlError(f"{flag}: {bad[0]!r} is not a layer name like q_proj")


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
    """Validate everything, open the data, build the VLM, and train it with `leanvl.train.loop.train` (the VLM
    spec is written to RUN/vlm once the run starts)."""
    from leanvl import preflight
    from leanvl.train import distributed as dist
    from leanvl.train.identity import check_same_run
    from leanvl.train.loop import seed_everything, train
    from leanvl.train.run_dir import check_run_dir, write_json_atomic
    from leanvl.vlm.io import SPEC_DIR, build_vlm, resolve_checkpoint, save_spec
    from leanvl.vlm.lora import apply_lora, lora_spec, trainable_counts

    tcfg.validate()
    args.validate()
    frozen = frozen_parts(args)
    lora = lora_spec(args.lora, args.lora_alpha, args.lora_targets)
    vcfg = vlm_config(args)
    tcfg.extra = {"vlm": asdict(args), "frozen": sorted(frozen)}
    check_run_dir(tcfg)  # refuse an existing (or, resuming, a different) run before the VLM spec is written into it
    check_same_run(tcfg)
    preflight.device(tcfg.device)
    preflight.resume(tcfg, "vlm")
    if args.init:
        resolve_checkpoint(args.init)  # reads only: a bad --init fails before the model is built
    source = _open_source(args, tcfg.seed, encoder_image_size(args))  # bad data fails before the model is built
    seed_everything(tcfg.seed)
    model = build_vlm(vcfg, encoder_pretrained=args.encoder_weights or None, seed=tcfg.seed)
    if model.cfg.image_size != encoder_image_size(args):
        source = _open_source(args, tcfg.seed, model.cfg.image_size)
    if args.init:
        _init_from(model, args.init)
    model.set_frozen(frozen)
    apply_lora(model, lora)
    evaluator = None
    if tcfg.eval_every:
        from leanvl.vlm.inloop import vlm_evaluator

        evaluator = vlm_evaluator(model, data=args.eval_data, limit=args.eval_limit, seed=tcfg.seed,
                                  batch_size=tcfg.batch_size, lmms_tasks=args.eval_lmms_tasks)
    from leanvl.vlm.batches import vlm_batches

    batches = vlm_batches(source, model.tokenizer, batch_size=tcfg.batch_size, image_size=model.cfg.image_size,
                          stage=args.stage, seed=tcfg.seed, num_workers=tcfg.num_workers)
    counts = trainable_counts(model)  # before FSDP turns the parameters into shards
    result = train(model, batches, tcfg, evaluator,
                   before_run=lambda: save_spec(model, os.path.join(tcfg.out, SPEC_DIR)))
    if dist.is_main():
        write_json_atomic(os.path.join(tcfg.out, "result.json"), {**asdict(result), "trainable": counts})
    return result


def encoder_image_size(args: VLMTrainArgs) -> int:
    """The input size the VLM will have: a `leanvl export` directory's own size, else --image-size."""
    import json

    path = os.path.join(args.encoder, "encoder.json")
    if os.path.isfile(path):
        try:
            with open(path) as f:
                return int(json.load(f)["image_size"])
        except (OSError, ValueError, KeyError, TypeError):
            raise LeanvlError(f"--encoder {args.encoder}: encoder.json is unreadable") from None
    return args.image_size


def _open_source(args: VLMTrainArgs, seed: int, image_size: int) -> Any:
    from leanvl.data.mixture import data_options, open_data
    from leanvl.vlm.batches import open_vlm_source

    return open_data(args.data, image_size=image_size, seed=seed, opener=open_vlm_source, **data_options(args))
