"""`leanvl compare`: SuperClass vs CLIP vs SigLIP on the same data order, batch and image encoder, then LiT for the
SuperClass encoder, all at the same budget: `--budget steps` (equal optimizer steps), `--budget seconds` (equal
training wall-clock per run, `pretrain --max-seconds`) or `--budget cpu-seconds` (equal training CPU time of each
process, `--max-seconds-clock cpu`: fair on a shared box); then the same evaluations for all (probe, k-shot,
zero-shot, retrieval).

Each training runs in a fresh `leanvl pretrain` subprocess, so that its peak memory (peak RSS on CPU, CUDA max
allocated on GPU) is its own. Evaluations run in this process on held-out synthetic scenes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from leanvl.compare_config import CompareConfig
from leanvl.errors import LeanvlError

RUNS = ("superclass", "clip", "siglip", "lit")
STEP_CAP = 10**9  # --budget seconds: steps never end a run, the clock does


def pretrain_argv(cfg: CompareConfig, objective: str, resume: bool = False, eval_every: int = 0,
                  eval_n: int = 300) -> list[str]:
    """`leanvl pretrain` arguments of one run of the comparison (identical except objective and LiT encoder);
    `resume` continues an interrupted run (`--resume latest`, checkpoints every 50 steps) instead of replacing it;
    `eval_every` > 0 adds the in-loop evaluation (`--eval-every`: k-NN, and zero-shot for text towers, on `eval_n`
    scenes per split)."""
    timed = cfg.budget != "steps"
    argv = ["pretrain", "--objective", objective, "--data", cfg.data, "--steps", str(STEP_CAP if timed else cfg.steps),
            "--batch-size", str(cfg.batch_size), "--model", cfg.model, "--image-size", str(cfg.image_size),
            "--text-model", cfg.text_model, "--lr", repr(cfg.lr), "--warmup", str(cfg.warmup),
            "--seed", str(cfg.seed), "--device", cfg.device, "--precision", cfg.precision,
            "--out", os.path.join(cfg.out, objective), "--no-progress",
            "--log-every", str(5 if timed else max(1, cfg.steps // 50))]
    argv += ["--resume", "latest", "--save-every", "50"] if resume else ["--overwrite"]
    if timed:
        argv += ["--max-seconds", repr(cfg.seconds)]
    if cfg.budget == "cpu-seconds":
        argv += ["--max-seconds-clock", "cpu"]
    if eval_every:
        argv += ["--eval-every", str(eval_every), "--eval-n", str(eval_n)]
    if objective == "lit":
        argv += ["--lit-encoder", os.path.join(cfg.out, "superclass")]
    return argv


def run_training(cfg: CompareConfig, objective: str, resume: bool = False, eval_every: int = 0,
                 in_process: bool = False, eval_n: int = 300) -> dict[str, Any]:
    """Train one objective in a fresh process (or, `in_process`, in this one: no start-up, but peak memory is then
    this process's); returns its RUN/result.json plus the training's wall and CPU seconds (`process_wall_s`,
    `process_cpu_s`: start-up, in-loop evaluation and checkpoints included)."""
    argv = pretrain_argv(cfg, objective, resume, eval_every, eval_n)
    started = time.time()
    if in_process:
        code, err, cpu = _train_here(argv)
    else:
        code, err, cpu = _train_subprocess(argv)
    wall = time.time() - started
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()] or ["(no output)"]
        raise LeanvlError(f"{objective} training failed (exit {code}): {lines[-1]}")
    with open(os.path.join(cfg.out, objective, "result.json")) as f:
        result = json.load(f)
    return {**result, "process_wall_s": round(wall, 1), "process_cpu_s": round(cpu, 1)}


def _train_subprocess(argv: list[str]) -> tuple[int, str, float]:
    """(exit code, stderr, CPU seconds) of `leanvl ARGV` in a child process."""
    import resource

    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "leanvl.cli", *argv], env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc.returncode, proc.stderr, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _train_here(argv: list[str]) -> tuple[int, str, float]:
    """(exit code, stderr, CPU seconds of this process) of `leanvl ARGV` run in this process."""
    import contextlib
    import io

    from leanvl.cli import main

    err, out = io.StringIO(), io.StringIO()
    cpu = time.process_time()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    if code == 130:  # Ctrl-C inside the training: stop the caller too (the checkpoints stay for a resume)
        raise KeyboardInterrupt
    return code, err.getvalue(), time.process_time() - cpu


def loss_curve(run_dir: str) -> list[tuple[int, float]]:
    """(step, loss) pairs from RUN/metrics.jsonl."""
    points = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                points.append((int(row["step"]), float(row["loss"])))
    return points


def eval_curve(run_dir: str) -> list[dict[str, float]]:
    """The in-loop evaluations of RUN/metrics.jsonl (`--eval-every`): one {step, eval/...} dict per evaluation."""
    points = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line) if line.strip() else {}
            evals = {k: float(v) for k, v in row.items() if k.startswith("eval/")}
            if evals:
                points.append({"step": int(row["step"]), **evals})
    return points


def evaluate_runs(cfg: CompareConfig) -> dict[str, dict[str, Any]]:
    """Probe and k-shot of both encoders; zero-shot and retrieval of CLIP and of LiT (SuperClass's encoder)."""
    import torch

    from leanvl.eval.fewshot import fewshot_synthetic, single_thread
    from leanvl.eval.probe import probe_synthetic
    from leanvl.eval.retrieval import retrieval_synthetic
    from leanvl.eval.zeroshot import zeroshot_synthetic
    from leanvl.pretrain import load_run

    n_tr, n_te, size = cfg.eval_train, cfg.eval_test, cfg.image_size
    evals: dict[str, dict[str, Any]] = {}
    for name in RUNS:
        task, _ = load_run(os.path.join(cfg.out, name))
        ev: dict[str, Any] = {"trainable_params": sum(p.numel() for p in task.parameters() if p.requires_grad),
                              "encoder_params": sum(p.numel() for p in task.encoder.parameters())}
        with torch.no_grad(), single_thread():  # small solver ops: 2 threads were ~15x slower on a busy CPU
            if name != "lit":  # LiT's encoder is SuperClass's, locked: same features
                ev["probe"] = probe_synthetic(task.encoder, size, n_train=n_tr, n_test=n_te, seed=cfg.seed)
                ev["fewshot"] = fewshot_synthetic(task.encoder, size, k=cfg.k, n_train=n_tr, n_test=n_te,
                                                  seed=cfg.seed)
            if hasattr(task, "encode_text"):
                ev["zeroshot"] = zeroshot_synthetic(task, size, n_test=n_te, seed=cfg.seed)
                ev["retrieval"] = retrieval_synthetic(task, size, n=min(n_te, 500), seed=cfg.seed)
        evals[name] = ev
    return evals


def summarise(cfg: CompareConfig, trained: dict[str, dict], evals: dict[str, dict]) -> dict[str, Any]:
    """The comparison JSON: {"objectives": {"superclass": {...}, "clip": {...}}, "setup": {...}}."""
    def train_part(name: str) -> dict[str, Any]:
        r = trained[name]
        return {"images_per_s": r["images_per_s"], "peak_memory_mb": r["peak_memory_mb"],
                "peak_memory_kind": r["peak_memory_kind"], "wall_s": r["wall_s"], "params": r["params"],
                "trainable_params": evals[name]["trainable_params"], "encoder_params": evals[name]["encoder_params"],
                "final_loss": r.get("last", {}).get("loss"), "steps": r["step"], "train_s": r.get("train_s"),
                "loss_curve": loss_curve(os.path.join(cfg.out, name)),
                "target_entropy": r.get("last", {}).get("target_entropy"),  # SuperClass: its batch's loss floor
                "process_wall_s": r.get("process_wall_s"), "process_cpu_s": r.get("process_cpu_s"),
                "eval_curve": eval_curve(os.path.join(cfg.out, name))}

    objectives: dict[str, Any] = {}
    for name, zs_from in (("superclass", "lit"), ("clip", "clip"), ("siglip", "siglip")):
        ev, zs = evals[name], evals[zs_from]
        objectives[name] = {**train_part(name), "probe_top1": ev["probe"]["top1"], "probe": ev["probe"],
                            "fewshot_top1": ev["fewshot"]["top1"], "fewshot_top1_std": ev["fewshot"]["top1_std"],
                            "fewshot": ev["fewshot"], "zeroshot_top1": zs["zeroshot"]["top1"],
                            "zeroshot": zs["zeroshot"], "retrieval_mean_r1": zs["retrieval"]["mean_r1"],
                            "retrieval": zs["retrieval"], "zeroshot_via": "lit" if zs_from == "lit" else "own"}
    objectives["superclass"]["lit"] = train_part("lit")
    return {"objectives": objectives, "setup": {**asdict(cfg), "machine": machine_name(cfg.device)}}


def machine_name(device: str) -> str:
    """GPU name, or CPU model and core count."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = ""
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return f"CPU{' ' + model if model else ''}, {os.cpu_count()} logical cores"


def run_compare(cfg: CompareConfig) -> dict[str, Any]:
    """Train the three runs, evaluate, write OUT/compare.{json,md,png}; returns the comparison dict."""
    from leanvl.compare_report import markdown_table, write_report

    cfg.validate()
    os.makedirs(cfg.out, exist_ok=True)
    trained = {}
    for name in RUNS:
        started = time.time()
        budget = {"steps": f"{cfg.steps} steps", "seconds": f"{cfg.seconds:g} s"}.get(cfg.budget,
                                                                                 f"{cfg.seconds:g} CPU s")
        print(f"leanvl compare: training {name} ({budget}, batch {cfg.batch_size}) ...", file=sys.stderr)
        trained[name] = run_training(cfg, name)
        print(f"leanvl compare: {name} done in {time.time() - started:.0f} s", file=sys.stderr)
    print("leanvl compare: evaluating ...", file=sys.stderr)
    result = summarise(cfg, trained, evaluate_runs(cfg))
    write_report(result, cfg.out, cfg.json)
    print(markdown_table(result))
    return result


def _compare(args: argparse.Namespace) -> int:
    from leanvl.cliutil import dataclass_from_args

    run_compare(dataclass_from_args(CompareConfig, args))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `compare`."""
    from leanvl.cliutil import add_dataclass_args

    p = sub.add_parser("compare", help="SuperClass vs CLIP vs SigLIP side by side (+ LiT zero-shot), same data "
                                       "and budget (steps or seconds)",
                       description="Train SuperClass, CLIP and SigLIP with identical data order, batch and encoder "
                                   "for the same number of steps (--budget steps) or the same training wall-clock "
                                   "(--budget seconds), then LiT on the SuperClass encoder, evaluate all, and report "
                                   "accuracy, speed and memory side by side (table, markdown, PNG, JSON).")
    add_dataclass_args(p, CompareConfig)
    p.set_defaults(func=_compare)
