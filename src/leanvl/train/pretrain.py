"""Image-encoder pre-training (SuperClass, CLIP, LiT): config, data wiring, and loading a finished run back."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any, Iterator

import torch
from torch import nn

from leanvl.errors import LeanvlError
from leanvl.train import distributed as dist
from leanvl.train.checkpoint import checkpoint_dirs
from leanvl.train.config import PretrainConfig, TrainConfig
from leanvl.train.loop import TrainResult, seed_everything, train
from leanvl.train.run_dir import CONFIG, write_json_atomic


def make_labeler(max_tokens: int):
    """Caption list -> sorted unique BPE ids per caption (special ids excluded)."""
    from leanvl.text.labels import encode

    def labeler(captions: list[str]) -> list[list[int]]:
        return encode(captions, max_tokens=max_tokens or None)

    return labeler


def make_batch_fn(cfg: PretrainConfig, tcfg: TrainConfig, split: str = "train"):
    """`batches(start)` for the trainer: this rank's micro-batches of the configured source from `start` on."""
    from leanvl.data.loader import make_batches
    from leanvl.data.sources import open_source
    from leanvl.data.transforms import TrainTransform

    source = open_source(cfg.data, image_size=cfg.image_size, seed=tcfg.seed, split=split)
    transform = TrainTransform(cfg.image_size)
    labeler = make_labeler(cfg.label_max_tokens)
    rank, world = dist.rank(), dist.world_size()

    def batches(start: int) -> Iterator[dict]:
        return make_batches(source, batch_size=tcfg.batch_size, transform=transform, labeler=labeler,
                            seed=tcfg.seed, start=start, stride=world, offset=rank, num_workers=tcfg.num_workers)

    return batches


def build_task(cfg: PretrainConfig) -> nn.Module:
    """The objective module (with its encoder) for `cfg`."""
    from leanvl.objectives import build_objective

    return build_objective(cfg.objective, cfg)


def run_pretrain(cfg: PretrainConfig, tcfg: TrainConfig) -> TrainResult:
    """Pre-train as configured; writes RUN/config.json, checkpoints, metrics.jsonl and RUN/result.json."""
    cfg.validate()
    tcfg.validate()
    seed_everything(tcfg.seed)
    task = build_task(cfg)
    batches = make_batch_fn(cfg, tcfg)
    tcfg.extra = {"pretrain": asdict(cfg)}
    result = train(task, batches, tcfg)
    if dist.is_main():
        summary = {k: v for k, v in asdict(result).items()}
        summary["params"] = sum(p.numel() for p in task.parameters())
        write_json_atomic(os.path.join(tcfg.out, "result.json"), summary)
    return result


def load_run(run_dir: str, device: str = "cpu") -> tuple[nn.Module, PretrainConfig]:
    """Rebuild the objective module of a pre-training run from its config and newest checkpoint (eval mode)."""
    from leanvl.train.dcp import load_weights, weights_path

    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise LeanvlError(f"--ckpt {run_dir}: not a leanvl run directory (no {CONFIG})")
    with open(path) as f:
        saved = json.load(f)
    pre = saved.get("extra", {}).get("pretrain")
    if pre is None:
        raise LeanvlError(f"--ckpt {run_dir}: not a pre-training run")
    cfg = PretrainConfig(**{k: v for k, v in pre.items() if k in PretrainConfig.__dataclass_fields__})
    found = checkpoint_dirs(run_dir)
    if not found:
        raise LeanvlError(f"--ckpt {run_dir}: the run has no checkpoint yet")
    task = build_task(cfg)
    missing, unexpected = load_weights(weights_path(found[-1]), task)  # single file or FSDP shards
    if missing or unexpected:
        raise LeanvlError(f"--ckpt {run_dir}: checkpoint does not match its config")
    return task.to(torch.device(device)).eval(), cfg


def config_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a dict (for JSON)."""
    return asdict(cfg)
