"""`leanvl eval ...`: evaluations of trained encoders and models: probe, fewshot, zeroshot, retrieval."""
from __future__ import annotations

import argparse
import json
import os

from leanvl.errors import LeanvlError
from leanvl.paths import output_file

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
    from leanvl.pretrain import load_run

    if os.path.isfile(os.path.join(ckpt, "encoder.json")):
        encoder = load_encoder(ckpt)
        return encoder, encoder.image_size
    task, cfg = load_run(ckpt)
    return task.encoder, cfg.image_size


def load_text_model(ckpt: str):
    """(model with encode_image/encode_text, its image size) from a CLIP or LiT run directory."""
    from leanvl.eval.zeroshot import require_text_tower
    from leanvl.pretrain import load_run

    if not os.path.exists(ckpt):
        raise LeanvlError(f"--ckpt {ckpt}: no such directory")
    if os.path.isfile(os.path.join(ckpt, "encoder.json")):
        raise LeanvlError(f"--ckpt {ckpt}: an exported image encoder has no text tower; train one with "
                          f"`leanvl pretrain --objective lit --lit-encoder {ckpt} ...` and evaluate that run")
    task, cfg = load_run(ckpt)
    require_text_tower(task, ckpt)
    return task, cfg.image_size


def _report(name: str, args: argparse.Namespace, result: dict) -> int:
    result = {"eval": name, "ckpt": args.ckpt, **({"data": args.data} if hasattr(args, "data") else {}), **result}
    print(json.dumps(result))
    write_json(args.json, result)
    return 0


def _check_args(args: argparse.Namespace, data_kind: str = "any") -> None:
    """Every value of an eval's flags, checked before the checkpoint is loaded (milliseconds)."""
    from leanvl import preflight

    for name in ("n_train", "n_test"):
        if hasattr(args, name):
            preflight.items(getattr(args, name), f"--{name.replace('_', '-')}")
    for name in ("k", "seeds"):
        if hasattr(args, name):
            preflight.count(getattr(args, name), f"--{name}", 1, MAX_SHOTS)
    preflight.seed(args.seed)
    preflight.data_spec(args.data, kind=data_kind)
    if getattr(args, "classnames", "") or getattr(args, "templates", ""):
        from leanvl.eval.realdata import read_templates

        if args.data == "synthetic":
            raise LeanvlError("--classnames/--templates apply to real data; synthetic tasks have built-in classes")
        if args.classnames and args.classnames != "imagenet":
            preflight.existing(args.classnames, "--classnames", kind="file")
        if args.templates:
            read_templates(args.templates)  # a small text file: every line needs its '{}'
    if not os.path.exists(args.ckpt):
        raise LeanvlError(f"--ckpt {args.ckpt}: no such directory")


MAX_SHOTS = 10_000  # --k shots per class and --seeds repetitions


def _zeroshot(args: argparse.Namespace) -> int:
    from leanvl.eval.realdata import zeroshot_real
    from leanvl.eval.zeroshot import zeroshot_synthetic

    _check_args(args)
    model, size = load_text_model(args.ckpt)
    if args.data == "synthetic":
        return _report("zeroshot", args, zeroshot_synthetic(model, size, n_test=args.n_test, seed=args.seed))
    return _report("zeroshot", args, zeroshot_real(model, args.data, size, args.classnames, args.templates))


def _fewshot(args: argparse.Namespace) -> int:
    from leanvl.eval.fewshot import fewshot_imagefolder, fewshot_synthetic

    _check_args(args, data_kind="dir")
    encoder, size = load_encoder_for_eval(args.ckpt)
    if args.data == "synthetic":
        result = fewshot_synthetic(encoder, size, k=args.k, seeds=args.seeds, n_train=args.n_train,
                                   n_test=args.n_test, seed=args.seed)
    else:
        result = fewshot_imagefolder(encoder, args.data, size, k=args.k, seeds=args.seeds)
    return _report("fewshot", args, result)


def _retrieval(args: argparse.Namespace) -> int:
    from leanvl.eval.realdata import retrieval_real
    from leanvl.eval.retrieval import retrieval_synthetic

    from leanvl import preflight

    _check_args(args)
    if args.data != "synthetic":
        model, size = load_text_model(args.ckpt)
        return _report("retrieval", args, retrieval_real(model, args.data, size))
    if args.n < 5:
        raise LeanvlError(f"--n must be >= 5 (R@5 needs 5 candidates), got {args.n}")
    preflight.items(args.n, "--n")
    model, size = load_text_model(args.ckpt)
    return _report("retrieval", args, retrieval_synthetic(model, size, n=args.n, seed=args.seed))


def _add_text_evals(evsub: argparse._SubParsersAction) -> None:
    """`eval fewshot`, `eval zeroshot`, `eval retrieval`."""
    f = evsub.add_parser("fewshot", help="k-shot logistic regression on frozen pooled features (mean/std over seeds)")
    f.add_argument("--ckpt", required=True, help="pre-training run directory or `leanvl export` directory")
    f.add_argument("--data", default="synthetic", help="synthetic (attribute tasks) or an ImageFolder root "
                                                      "with train/ (shots) and val/ (default: synthetic)")
    f.add_argument("--k", type=int, default=10, help="examples per class (default: 10)")
    f.add_argument("--seeds", type=int, default=3, help="repetitions with different shots (default: 3)")
    f.add_argument("--n-train", type=int, default=2000, help="synthetic: pool of scenes the shots are drawn from")
    f.add_argument("--n-test", type=int, default=1000, help="synthetic: held-out scenes to score")
    f.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    f.add_argument("--json", default="", type=output_file("--json"), help="also write the result to this JSON file")
    f.set_defaults(func=_fewshot)
    z = evsub.add_parser("zeroshot", help="zero-shot classification with prompt-template ensembles "
                                         "(CLIP or LiT runs)")
    z.add_argument("--ckpt", required=True, help="CLIP or LiT pre-training run directory")
    z.add_argument("--data", default="synthetic", help="synthetic (shape and colour of single-object scenes), "
                                                      "an ImageFolder root (val/ used when present) or webdataset "
                                                      "shards with .cls labels")
    z.add_argument("--classnames", default="", help="'imagenet' (open_clip's ImageNet names + OpenAI templates; "
                                                    "folders by WordNet id, index or name) or a file with one name "
                                                    "per class folder / .cls id (default: folder names)")
    z.add_argument("--templates", default="", help="file of prompt templates, one per line with {} for the class "
                                                   "(default: OpenAI's 80 for imagenet, else 9 generic ones)")
    z.add_argument("--n-test", type=int, default=1000, help="synthetic: held-out scenes to score")
    z.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    z.add_argument("--json", default="", type=output_file("--json"), help="also write the result to this JSON file")
    z.set_defaults(func=_zeroshot)
    r = evsub.add_parser("retrieval", help="image->text and text->image recall (synthetic: R@1/5; real data: "
                                          "R@1/5/10) for CLIP, SigLIP or LiT runs")
    r.add_argument("--ckpt", required=True, help="CLIP or LiT pre-training run directory")
    r.add_argument("--data", default="synthetic", help="synthetic, a CSV/TSV of image,caption rows (several rows "
                                                      "per image = several captions) or shards with .txt captions "
                                                      "(one per line)")
    r.add_argument("--n", type=int, default=500, help="held-out image-caption pairs to rank among (default: 500)")
    r.add_argument("--seed", type=int, default=0, help="seed of the synthetic scenes")
    r.add_argument("--json", default="", type=output_file("--json"), help="also write the result to this JSON file")
    r.set_defaults(func=_retrieval)


EVAL_COMMANDS.append(_add_text_evals)


def _probe(args: argparse.Namespace) -> int:
    from leanvl.eval.probe import probe_imagefolder, probe_synthetic

    _check_args(args, data_kind="dir")
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
    p.add_argument("--json", default="", type=output_file("--json"), help="also write the result to this JSON file")
    p.set_defaults(func=_probe)
    for add in EVAL_COMMANDS:
        add(evsub)
