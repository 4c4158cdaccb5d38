"""Image-encoder pre-training wiring (SuperClass, CLIP, LiT): encoder + objective + data -> the shared trainer,
and loading a finished run back. The VLM's counterpart is `leanvl.vlm.train`."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Iterator

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.pretrain_config import PretrainConfig
from leanvl.train import distributed as dist
from leanvl.train.checkpoint import newest_valid
from leanvl.train.config import TrainConfig
from leanvl.train.loop import TrainResult, seed_everything, train
from leanvl.train.run_dir import CONFIG, check_run_dir, write_json_atomic


def make_labeler(max_tokens: int):
    """Caption list -> sorted unique BPE ids per caption (special ids excluded)."""
    from leanvl.text.labels import encode

    def labeler(captions: list[str]) -> list[list[int]]:
        return encode(captions, max_tokens=max_tokens or None)

    return labeler


def make_batch_fn(cfg: PretrainConfig, tcfg: TrainConfig, split: str = "train"):
    """`batches(start)` for the trainer: this rank's micro-batches of the configured source from `start` on."""
    from leanvl.data.loader import make_batches
    from leanvl.data.mixture import data_options, open_data
    from leanvl.data.transforms import TrainTransform

    source = open_data(cfg.data, image_size=cfg.image_size, seed=tcfg.seed, split=split, **data_options(cfg))
    transform = TrainTransform(cfg.image_size)
    labeler = make_labeler(cfg.label_max_tokens)
    rank, world = dist.rank(), dist.world_size()
    decoder = device_decoder(cfg, tcfg)
    if decoder is not None:  # --decode gpu: workers ship JPEG bytes + crop boxes (leanvl.data.encoded)
        from leanvl.data.encoded import EncodedSource, EncodedTrainTransform

        source, transform = EncodedSource(source), EncodedTrainTransform(transform)

    def batches(start: int) -> Iterator[dict]:  # start: samples consumed by all ranks
        stream = make_batches(source, batch_size=tcfg.batch_size, transform=transform, labeler=labeler,
                              seed=tcfg.seed, start=start, stride=world, offset=rank, num_workers=tcfg.num_workers)
        return stream if decoder is None else map(decoder, stream)

    return batches


def device_decoder(cfg: PretrainConfig, tcfg: TrainConfig):
    """The `--decode gpu` batch hook, decoding on this process's training device (cuda:LOCAL_RANK), else None."""
    if cfg.decode != "gpu":
        return None
    from leanvl.data.encoded import DeviceDecoder
    from leanvl.train.loop import resolve_device

    return DeviceDecoder(cfg.image_size, resolve_device(tcfg.device))


def load_locked_encoder(path: str, image_size: int) -> nn.Module:
    """The image encoder of a pre-training run directory or a `leanvl export` directory (for LiT)."""
    from leanvl.models.export import CONFIG as EXPORT_CONFIG
    from leanvl.models.export import load_encoder

    if not os.path.isdir(path):
        raise LeanvlError(f"--lit-encoder {path}: no such directory (give a run directory or a `leanvl export`)")
    encoder = load_encoder(path) if os.path.isfile(os.path.join(path, EXPORT_CONFIG)) else load_run(path)[0].encoder
    size = getattr(encoder, "image_size", image_size)
    if size != image_size:
        raise LeanvlError(f"--image-size {image_size} differs from the locked encoder's {size}px; "
                          f"pass --image-size {size}")
    return encoder


def build_encoder(cfg: PretrainConfig) -> nn.Module:
    """The image encoder the objective wraps: the locked one it names, else `--model` built fresh."""
    from leanvl.models import create_encoder

    locked = cfg.options.locked_encoder()
    if locked:
        return load_locked_encoder(locked, cfg.image_size)
    return create_encoder(cfg.model, image_size=cfg.image_size, pretrained=cfg.pretrained or None)


def build_task(cfg: PretrainConfig) -> nn.Module:
    """The objective module (with its encoder) for `cfg`, set up for this process's rank and world size."""
    from leanvl.objectives import World, build_objective

    world = World(rank=dist.rank(), size=dist.world_size(), all_reduce_sum=dist.all_reduce_sum)
    return build_objective(cfg.objective, build_encoder(cfg), cfg.options, world)


def make_evaluator(cfg: PretrainConfig, tcfg: TrainConfig):
    """The in-loop evaluator of `--eval-every` (None when off): k-NN, and zero-shot + retrieval for text towers."""
    if not tcfg.eval_every:
        return None
    from leanvl.eval.inloop import PretrainEvaluator

    return PretrainEvaluator(cfg.image_size, n=cfg.eval_n, seed=tcfg.seed)


def run_pretrain(cfg: PretrainConfig, tcfg: TrainConfig) -> TrainResult:
    """Pre-train as configured; writes RUN/config.json, checkpoints, metrics.jsonl and RUN/result.json."""
    cfg.validate()
    tcfg.validate()
    check_run_dir(tcfg)  # a bad --out, --device, --resume or (below) data option fails before the model is built
    from leanvl import preflight

    preflight.device(tcfg.device)
    preflight.resume(tcfg, "pretrain")
    batches = make_batch_fn(cfg, tcfg)
    seed_everything(tcfg.seed)
    task = build_task(cfg)
    tcfg.extra = {"pretrain": cfg.to_dict()}
    result = train(task, batches, tcfg, evaluator=make_evaluator(cfg, tcfg))
    if dist.is_main():
        summary = asdict(result)
        summary["params"] = sum(p.numel() for p in task.parameters())
        write_json_atomic(os.path.join(tcfg.out, "result.json"), summary)
    return result


def load_run(run_dir: str, device: str = "cpu") -> tuple[nn.Module, PretrainConfig]:
    """Rebuild the objective module of a pre-training run from its config and newest checkpoint (eval mode)."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise LeanvlError(f"--ckpt {run_dir}: not a leanvl run directory (no {CONFIG})")
    try:
        with open(path) as f:
            saved = json.load(f)
        pre = saved.get("extra", {}).get("pretrain")
    except (OSError, ValueError, AttributeError):
        raise LeanvlError(f"--ckpt {run_dir}: {CONFIG} is unreadable") from None
    if pre is None:
        raise LeanvlError(f"--ckpt {run_dir}: not a pre-training run")
    cfg = PretrainConfig.from_dict(pre)
    found = newest_valid(run_dir)
    if not found:
        raise LeanvlError(f"--ckpt {run_dir}: the run has no valid checkpoint")
    task = build_task(cfg)
    from leanvl.train.dcp import load_any_weights, weights_path

    missing, unexpected = load_any_weights(task, weights_path(found))  # single file or FSDP shards
    if missing or unexpected:
        raise LeanvlError(f"--ckpt {run_dir}: checkpoint does not match its config")
    return task.to(torch.device(device)).eval(), cfg
