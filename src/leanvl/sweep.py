"""`leanvl sweep`: the inference-optimal study end to end — train a grid of VLMs over LLM size x visual-token count,
evaluate each on the reasoning and OCR splits, fit error = A·N^-α·V^-β + D per split, and plan.

Every cell trains with the same budget (steps x batch) through the shared trainer, into `DIR/cells/<llm>-v<V>/`;
finished cells are rows of `DIR/results.csv` and are skipped on a rerun; an interrupted cell resumes from its last
checkpoint. `DIR/sweep.json` records the settings: a rerun with other settings is refused unless `--overwrite`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from leanvl.cliutil import opt
from leanvl.errors import LeanvlError
from leanvl.paths import ensure_writable_dir, output_dir

COLUMNS = ["cell", "llm", "llm_params", "llm_params_b", "visual_tokens", "task", "accuracy", "n_questions",
           "accuracy_lo", "accuracy_hi", "text_tokens", "steps", "batch_size", "train_wall_s", "eval_wall_s"]


@dataclass
class SweepSettings:
    """What the sweep trains and evaluates (saved as DIR/sweep.json); its fields are the command's flags."""

    llm_sizes: list[str] = opt(factory=lambda: ["tiny", "small", "base", "large"], help="comma list of LLM sizes")
    tokens: list[int] = opt(factory=lambda: [1, 4, 16, 64], help="comma list of visual-token counts (each must "
                                                                 "tile the encoder grid)")
    compressor: str = opt("quecc", "none | avgpool | tokenpacker | quecc")
    encoder: str = opt("leanvl_convnet", "vision encoder (name or `leanvl export` dir; frozen)")
    image_size: int = opt(64, "input resolution")
    multi_layers: str = opt("1,2,3", "comma list of encoder layers for TokenPacker/QueCC keys (other compressors "
                                     "use the final tokens only)")
    data: str = opt("synthetic", "training/eval data: synthetic (built-in VQA) or a LLaVA json")
    steps: int = opt(200, "optimizer steps per cell (same for every cell)")
    batch_size: int = opt(32, "batch size per cell")
    lr: float = opt(1e-3, "peak learning rate")
    eval_limit: int = opt(300, "questions evaluated per cell")
    seed: int = opt(0, "seed for every cell")
    num_workers: int = opt(0, "data-loading workers per cell")


LIST_FLAGS = {"llm_sizes": (str, "--llm-sizes"), "tokens": (int, "--tokens")}


def _csv_list(text: str, kind: type, flag: str) -> list:
    try:
        items = [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LeanvlError(f"{flag}: expected a comma-separated list, got {text!r}") from None
    if not items:
        raise LeanvlError(f"{flag}: empty list")
    return items


def validate(s: SweepSettings) -> None:
    """LeanvlError for an unknown LLM size or a token count that does not tile the encoder grid."""
    from leanvl.models import create_encoder
    from leanvl.vlm.compressors import create_compressor
    from leanvl.vlm.llm import LLMS, LOCAL_LLM

    for name in s.llm_sizes:
        if name not in LLMS and not os.path.isdir(name):
            raise LLMS.unknown(name, also=LOCAL_LLM, flag="--llm-sizes")
    if len(set(s.llm_sizes)) < 2 or len(set(s.tokens)) < 2:
        raise LeanvlError("a sweep needs at least 2 LLM sizes and 2 token counts to fit the law")
    if s.steps < 1 or s.batch_size < 1 or s.eval_limit < 1:
        raise LeanvlError("--steps, --batch-size and --eval-limit must be >= 1")
    check_cell_values(s)
    grid = create_encoder(s.encoder, image_size=s.image_size).grid
    for v in s.tokens:
        create_compressor(s.compressor, grid=grid, tokens=v, dim=8, multi_dim=8, query_dim=8)


def check_cell_values(s: SweepSettings) -> None:
    """The values every cell trains and evaluates with, checked as `vlm train` checks them (milliseconds)."""
    from leanvl import preflight
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import VLMTrainArgs, parse_layers

    TrainConfig(out="-", steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=s.seed,
                num_workers=s.num_workers).validate()
    parse_layers(s.multi_layers)
    preflight.items(s.eval_limit, "--eval-limit")
    preflight.data_spec(s.data)
    for v in s.tokens:
        VLMTrainArgs(llm=s.llm_sizes[0], encoder=s.encoder, image_size=s.image_size, compressor=s.compressor,
                     tokens=v, data=s.data).validate()


SWEEP_ENTRIES = ("cells", "results.csv", "plots", "summary.json", "summary.md")


def prepare_dir(out: str, s: Any, overwrite: bool, *, name: str = "sweep.json",
                entries: tuple[str, ...] = SWEEP_ENTRIES, what: str = "a sweep") -> None:
    """Create DIR, or check that it holds `what` with the same settings `s` (a dataclass or dict) saved as
    DIR/`name`; with `overwrite`, remove its `entries` and start over."""
    settings = s if isinstance(s, dict) else asdict(s)
    path = os.path.join(out, name)
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            saved = json.load(f)
        if saved != settings:
            diff = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
            raise LeanvlError(f"{out} holds {what} with other settings ({', '.join(diff)}); "
                              f"use another --out or pass --overwrite")
    elif os.path.exists(path):
        from leanvl.train.run_dir import remove_entries

        remove_entries(out, entries)
    ensure_writable_dir(out)
    with open(path + ".tmp", "w") as f:
        json.dump(settings, f, indent=2)
    os.replace(path + ".tmp", path)


def read_rows(out: str) -> list[dict[str, str]]:
    """Rows of DIR/results.csv (empty when absent)."""
    path = os.path.join(out, "results.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(out: str, rows: list[dict[str, Any]]) -> None:
    """Add rows to DIR/results.csv atomically (rewrite to a temp file, then rename)."""
    path = os.path.join(out, "results.csv")
    old = read_rows(out)
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(old + rows)
    os.replace(path + ".tmp", path)


def train_cell(s: SweepSettings, llm: str, v: int, cell_dir: str) -> float:
    """Train one (LLM, tokens) cell through the shared trainer (resuming its last checkpoint); returns wall s."""
    from leanvl.vlm.train import VLMTrainArgs

    args = VLMTrainArgs(llm=llm, encoder=s.encoder, image_size=s.image_size, compressor=s.compressor, tokens=v,
                        multi_layers=s.multi_layers if s.compressor in ("quecc", "tokenpacker") else "",
                        data=s.data, stage=2, freeze="encoder")
    return train_resumable(args, cell_dir, steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=s.seed,
                           num_workers=s.num_workers)


def train_resumable(args: Any, cell_dir: str, *, steps: int, batch_size: int, lr: float, seed: int,
                    num_workers: int = 0, device: str = "auto") -> float:
    """`vlm train` of VLMTrainArgs `args` into `cell_dir` with checkpoints every quarter, resuming the latest one
    (the per-cell training of `leanvl sweep` and `leanvl repro`); returns wall seconds."""
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import run_train

    tcfg = TrainConfig(out=cell_dir, steps=steps, batch_size=batch_size, lr=lr, warmup=max(1, steps // 20),
                       weight_decay=0.0, save_every=max(1, steps // 4), keep=1, seed=seed, resume="latest",
                       progress=False, log_every=max(1, steps // 10), num_workers=num_workers, device=device)
    t0 = time.time()
    run_train(args, tcfg)
    return time.time() - t0


def eval_cell(s: SweepSettings, llm: str, v: int, cell_dir: str, train_s: float) -> list[dict[str, Any]]:
    """Evaluate a trained cell per split; one results row per split (accuracy with its 95% Wilson interval)."""
    import statistics

    from leanvl.vlm.evaluate import eval_items, evaluate
    from leanvl.vlm.io import load_vlm
    from leanvl.vlm.llm import count_params

    t0 = time.time()
    model = load_vlm(cell_dir)
    items = eval_items(s.data, image_size=s.image_size, limit=s.eval_limit, seed=s.seed)
    acc, _ = evaluate(model, items, batch_size=32)
    q = statistics.mean(len(model.tokenizer(it["question"])["input_ids"]) for it in items)
    n = count_params(model.llm)
    wall = time.time() - t0
    ci = acc["metrics"]["exact_match"]["splits"]
    return [{"cell": f"{llm}-v{v}", "llm": llm, "llm_params": n, "llm_params_b": n / 1e9, "visual_tokens": v,
             "task": split, "accuracy": round(a, 6), "n_questions": acc["counts"][split],
             "accuracy_lo": round(ci[split]["ci"][0], 6), "accuracy_hi": round(ci[split]["ci"][1], 6),
             "text_tokens": round(q, 2), "steps": s.steps, "batch_size": s.batch_size,
             "train_wall_s": round(train_s, 1), "eval_wall_s": round(wall, 1)}
            for split, a in acc["splits"].items()]


def heldout_loss(model: Any, items: list[dict[str, Any]], *, batch_size: int = 32) -> dict[str, Any]:
    """Mean answer-token cross-entropy (the training loss) of a trained VLM on fixed held-out question items
    (`leanvl.vlm.evaluate.eval_items`), overall and per split: {"all": x, "<split>": x, "answer_tokens": n}."""
    import torch

    from leanvl.vlm.batches import image_transform
    from leanvl.vlm.chat import collate, encode_conversation
    from leanvl.vlm.vqa_data import conversation

    if not items:
        raise LeanvlError("held-out loss: no question items")
    transform = image_transform(model.cfg.image_size)
    was_training = model.training
    model.eval()
    sums: dict[str, list[float]] = {}
    for split in sorted({it.get("split") or "all" for it in items}):
        part = [it for it in items if (it.get("split") or "all") == split]
        for start in range(0, len(part), batch_size):
            chunk = part[start:start + batch_size]
            batch = collate([encode_conversation(model.tokenizer, conversation(it["question"], it["answer"]))
                             for it in chunk], model.tokenizer.pad_token_id)
            batch["image"] = torch.stack([transform(it["image"].convert("RGB")) for it in chunk])
            with torch.no_grad():
                res = model(batch)
            n = float(res["answer_tokens"])
            acc = sums.setdefault(split, [0.0, 0.0])
            acc[0] += float(res["loss"]) * n
            acc[1] += n
    model.train(was_training)
    total = sum(v[0] for v in sums.values()) / sum(v[1] for v in sums.values())
    return {"all": round(total, 5), **{k: round(v[0] / v[1], 5) for k, v in sums.items()},
            "answer_tokens": int(sum(v[1] for v in sums.values()))}


def run_cells(s: SweepSettings, out: str) -> list[dict[str, str]]:
    """Train and evaluate every cell not yet in results.csv; returns all rows."""
    from tqdm.auto import tqdm

    done = {r["cell"] for r in read_rows(out)}
    cells = [(llm, v) for llm in s.llm_sizes for v in s.tokens]
    bar = tqdm(cells, desc="sweep cells", unit="cell")
    for llm, v in bar:
        name = f"{llm}-v{v}"
        bar.set_postfix(cell=name)
        if name in done:
            continue
        cell_dir = os.path.join(out, "cells", name)
        train_s = train_cell(s, llm, v, cell_dir)
        append_rows(out, eval_cell(s, llm, v, cell_dir, train_s))
    return read_rows(out)


def settings_from_args(args: argparse.Namespace) -> SweepSettings:
    """SweepSettings from the parsed flags (comma lists parsed, LeanvlError on a malformed one)."""
    from leanvl.cliutil import dataclass_from_args

    lists = {name: _csv_list(getattr(args, name), kind, flag) for name, (kind, flag) in LIST_FLAGS.items()}
    return dataclass_from_args(SweepSettings, args, **lists)


def _sweep(args: argparse.Namespace) -> int:
    from leanvl.sweep_report import report

    from leanvl import preflight
    from leanvl.vlm import feature_cache

    s = settings_from_args(args)
    preflight.count(args.bootstrap, "--bootstrap", 0, preflight.MAX_ITEMS)
    preflight.number(args.budget_gflops, "--budget-gflops", lo=0)
    validate(s)
    with feature_cache.from_flags(args) as cache:
        prepare_dir(args.out, s, args.overwrite)
        rows = run_cells(s, args.out)
    print(report(rows, args.out, budget_gflops=args.budget_gflops, n_boot=args.bootstrap))
    if cache is not None:
        print(f"leanvl sweep: {cache.summary()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sweep`."""
    from leanvl.cliutil import add_dataclass_args
    from leanvl.vlm import feature_cache

    p = sub.add_parser("sweep", help="train a VLM grid (LLM size x visual tokens), fit the scaling law per split, plan")
    add_dataclass_args(p, SweepSettings, convert={name: lambda v: ",".join(map(str, v)) for name in LIST_FLAGS})
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the fit intervals")
    p.add_argument("--budget-gflops", type=float, default=0.0, help="planning budget (default: the cost of the "
                   "second-largest LLM at the largest token count)")
    p.add_argument("--out", required=True, type=output_dir("--out"),
                   help="sweep directory (results.csv, cells/, plots/, summary.*)")
    p.add_argument("--overwrite", action="store_true", help="replace a sweep with other settings in --out")
    feature_cache.add_flags(p)
    p.set_defaults(func=_sweep)
