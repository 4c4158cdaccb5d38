"""`leanvl pretrain` (SuperClass / CLIP / LiT through the one trainer) and `leanvl export`."""
from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields

from leanvl.cliutil import add_dataclass_args, dataclass_from_args
from leanvl.errors import LeanvlError
from leanvl.objective_options import OBJECTIVE_OPTIONS
from leanvl.paths import output_dir
from leanvl.pretrain_config import PretrainConfig
from leanvl.train.config import TrainConfig


def _pretrain(args: argparse.Namespace) -> int:
    from leanvl.pretrain import run_pretrain
    from leanvl.train.distributed import is_main

    options = dataclass_from_args(OBJECTIVE_OPTIONS.get(args.objective), args)
    reject_foreign_options(args)
    result = run_pretrain(dataclass_from_args(PretrainConfig, args, options=options),
                          dataclass_from_args(TrainConfig, args))
    if not is_main():
        return 0
    data = result.data
    print(json.dumps({"step": result.step, "loss": round(result.last.get("loss", float("nan")), 4),
                      "images_per_s": round(result.images_per_s, 1), "wall_s": round(result.wall_s, 1),
                      f"peak_memory_mb_{result.peak_memory_kind}": round(result.peak_memory_mb, 1),
                      "skipped": data.get("skipped", 0), "skipped_by_reason": data.get("by_reason", {}),
                      "run_dir": result.run_dir}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from leanvl.models.export import save_encoder
    from leanvl.pretrain import load_run

    task, _ = load_run(args.ckpt)
    save_encoder(task.encoder, args.out)
    print(f"leanvl: encoder '{task.encoder.name}' written to {args.out} (model.safetensors + encoder.json)")
    return 0


def reject_foreign_options(args: argparse.Namespace) -> None:
    """LeanvlError naming a flag of another objective's options that was set: it would be silently ignored."""
    own = {f.name for f in fields(OBJECTIVE_OPTIONS.get(args.objective))}
    for name in OBJECTIVE_OPTIONS:
        for f in fields(OBJECTIVE_OPTIONS.get(name)):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            if f.name not in own and getattr(args, f.name, default) != default:
                raise LeanvlError(f"--{f.name.replace('_', '-')} is a {name} option; it does nothing with "
                                  f"--objective {args.objective}")


def add_objective_groups(parser: argparse.ArgumentParser) -> None:
    """One argument group per objective with the options it adds (fields inherited from another's are shown once)."""
    seen: set[str] = set()
    for name in OBJECTIVE_OPTIONS:
        options_cls = OBJECTIVE_OPTIONS.get(name)
        shown = tuple(f.name for f in fields(options_cls) if f.name in seen)
        group = parser.add_argument_group(f"{name} options", (options_cls.__doc__ or "").strip())
        add_dataclass_args(group, options_cls, skip=shown)
        seen.update(f.name for f in fields(options_cls))


def register(sub: argparse._SubParsersAction) -> None:
    """Add `pretrain` and `export`."""
    p = sub.add_parser("pretrain", help="pre-train an image encoder (superclass, clip, siglip, lit)",
                       description="Pre-train an image encoder with one of leanvl's objectives.")
    add_dataclass_args(p, PretrainConfig, skip=("options",))
    add_objective_groups(p)
    add_dataclass_args(p.add_argument_group("training"), TrainConfig, overrides={"lr": 1e-3, "warmup": 10})
    p.set_defaults(func=_pretrain)
    e = sub.add_parser("export", help="write a run's image encoder as safetensors + JSON config")
    e.add_argument("--ckpt", required=True, help="pre-training run directory (its newest checkpoint is used)")
    e.add_argument("--out", required=True, type=output_dir("--out"),
                   help="directory to write model.safetensors and encoder.json into")
    e.set_defaults(func=_export)
