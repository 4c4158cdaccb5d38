"""`make demo`: SuperClass pre-training on the built-in synthetic scenes on CPU, then a linear probe of the trained
encoder against the same architecture randomly initialised. Prints a table; writes demo.json + demo.md in the run.

  python -m leanvl.demo [--steps 400] [--batch-size 64] [--model leanvl_convnet] [--out runs/demo-...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from leanvl.errors import LeanvlError
from leanvl.paths import output_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m leanvl.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=int(os.environ.get("LEANVL_DEMO_STEPS", 500)),
                    help="pre-training steps (default 500, or $LEANVL_DEMO_STEPS)")
    ap.add_argument("--batch-size", type=int, default=64, help="batch size")
    ap.add_argument("--model", default="leanvl_convnet", help="encoder (a small CNN learns within a CPU budget)")
    ap.add_argument("--image-size", type=int, default=64, help="synthetic scene size in pixels")
    ap.add_argument("--probe-train", type=int, default=1500, help="scenes to fit each probe on")
    ap.add_argument("--probe-test", type=int, default=800, help="held-out scenes to score each probe on")
    ap.add_argument("--out", default="", type=output_dir("--out"),
                    help="run directory (default: runs/demo-<timestamp>)")
    return ap.parse_args(argv)


def run_demo(args: argparse.Namespace) -> dict:
    """Pre-train, probe trained vs random init, return the results dict."""
    import torch

    from leanvl.eval.probe import probe_synthetic
    from leanvl.models import create_encoder
    from leanvl.train.config import TrainConfig
    from leanvl.pretrain import run_pretrain
    from leanvl.pretrain_config import PretrainConfig

    out = args.out or os.path.join("runs", time.strftime("demo-%Y%m%d-%H%M%S"))
    cfg = PretrainConfig(objective="superclass", data="synthetic", model=args.model, image_size=args.image_size)
    tcfg = TrainConfig(out=out, steps=args.steps, batch_size=args.batch_size, lr=2e-3, warmup=max(1, args.steps // 20),
                       weight_decay=0.05, save_every=max(1, args.steps // 2), log_every=10, seed=0)
    print(f"leanvl demo: SuperClass pre-training of {args.model} on synthetic scenes, {args.steps} steps x "
          f"batch {args.batch_size} ({torch.get_num_threads()} CPU threads) -> {out}", flush=True)
    t0 = time.time()
    result = run_pretrain(cfg, tcfg)
    train_s = time.time() - t0
    trained = probe_synthetic(_encoder_of(out), args.image_size, args.probe_train, args.probe_test)
    torch.manual_seed(tcfg.seed)
    random_init = probe_synthetic(create_encoder(args.model, image_size=args.image_size), args.image_size,
                                  args.probe_train, args.probe_test)
    total_s = time.time() - t0
    return {"run_dir": out, "model": args.model, "steps": result.step, "batch_size": args.batch_size,
            "loss_first": _first_loss(out), "loss_last": result.last.get("loss"),
            "images_per_s": result.images_per_s, "train_s": train_s, "train_and_eval_s": total_s,
            "peak_rss_mb": result.peak_memory_mb, "skipped": result.data.get("skipped", 0),
            "samples_seen": result.data.get("raw", 0), "probe": {"trained": trained, "random_init": random_init}}


def _encoder_of(run_dir: str):
    from leanvl.pretrain import load_run

    task, _ = load_run(run_dir)
    return task.encoder


def _first_loss(run_dir: str) -> float | None:
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        first = f.readline()
    return json.loads(first).get("loss") if first else None


def table(res: dict) -> str:
    """The demo's result as a markdown table."""
    tr, rnd = res["probe"]["trained"], res["probe"]["random_init"]
    lines = ["| probe task (linear, frozen features) | random init | SuperClass-trained |", "|---|---|---|"]
    for task in ("shape", "color", "count", "top1"):
        name = "**mean top-1**" if task == "top1" else task
        lines.append(f"| {name} | {rnd[task] * 100:.1f}% | {tr[task] * 100:.1f}% |")
    lines += ["", f"steps {res['steps']} x batch {res['batch_size']}, loss {res['loss_first']:.3f} (step "
              f"{min(10, res['steps'])}) -> {res['loss_last']:.3f}, {res['images_per_s']:.0f} images/s, "
              f"train {res['train_s']:.0f} s, train+eval {res['train_and_eval_s']:.0f} s, "
              f"peak RSS {res['peak_rss_mb']:.0f} MB, skipped samples {res['skipped']} of {res['samples_seen']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        res = run_demo(parse_args(argv))
    except LeanvlError as exc:
        print(f"leanvl: error: {exc}", file=sys.stderr)
        return 2
    text = table(res)
    print("\n" + text)
    with open(os.path.join(res["run_dir"], "demo.json"), "w") as f:
        json.dump(res, f, indent=2)
    with open(os.path.join(res["run_dir"], "demo.md"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
