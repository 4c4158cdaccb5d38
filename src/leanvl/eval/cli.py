"""`leanvl eval ...`: evaluations of trained encoders (probe; few-shot, zero-shot and retrieval join here)."""
from __future__ import annotations

import argparse
import json
import os

from leanvl.errors import LeanvlError

EVAL_COMMANDS: list = []  # functions `add(eval_subparsers)` contributed by other modules


def write_json(path: str, obj: dict) -> None:
    """Write `obj` to `path` (the --json flag of every eval)."""
    if path:
        try:
            with open(path, "w") as f:
                json.dump(obj, f, indent=2)
        except OSError as exc:
            raise LeanvlError(f"--json {path}: cannot write ({exc.strerror})") from None


def load_encoder_for_eval(ckpt: str):
    """The image encoder of a run directory or a `leanvl export` directory, plus its input size."""
    from leanvl.models.export import load_encoder
    from leanvl.train.pretrain import load_run

    if os.path.isfile(os.path.join(ckpt, "encoder.json")):
        encoder = load_encoder(ckpt)
        return encoder, encoder.image_size
    task, cfg = load_run(ckpt)
    return task.encoder, cfg.image_size


def _probe(args: argparse.Namespace) -> int:
    from leanvl.eval.probe import probe_imagefolder, probe_synthetic

    if not os.path.exists(args.ckpt):
        raise LeanvlError(f"--ckpt {args.ckpt}: no such directory")
    encoder, size = load_encoder_for_eval(args.ckpt)
    if args.data == "synthetic":
        result = probe_synthetic(encoder, size, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    else:
        result = probe_imagefolder(encoder, args.data, size)
    result = {"eval": "probe", "ckpt": args.ckpt, "data": args.data, **result}
    print(json.dumps(result))
    write_json(args.json, result)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `eval` with its sub-commands."""
    ev = sub.add_parser("eval", help="evaluate a trained encoder or model")
    evsub = ev.add_subparsers(dest="eval_command", metavar="EVAL")
    evsub.required = True
    p = evsub.add_parser("probe", help="linear probe (logistic regression) on frozen pooled features")
    p.add_argument("--ckpt", required=True, help="pre-training run directory or `leanvl export` directory")
    p.add_argument("--data", default="synthetic", help="synthetic (attribute tasks) or an ImageFolder root "
                                                      "with train/ and val/ (default: synthetic)")
    p.add_argument("--n-train", type=int, default=2000, help="synthetic: scenes to fit the probe on")
    p.add_argument("--n-test", type=int, default=1000, help="synthetic: held-out scenes to score")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic probe scenes and split")
    p.add_argument("--json", default="", help="also write the result to this JSON file")
    p.set_defaults(func=_probe)
    for add in EVAL_COMMANDS:
        add(evsub)
