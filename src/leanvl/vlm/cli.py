"""`leanvl vlm train | ask | eval | export | lmms-task | bench`."""
from __future__ import annotations

import argparse
import json
import os

from leanvl.errors import LeanvlError
from leanvl.paths import output_dir, output_file


def _train(args: argparse.Namespace) -> int:
    from leanvl.cliutil import dataclass_from_args
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import VLMTrainArgs, run_train

    from leanvl.train.distributed import is_main

    result = run_train(dataclass_from_args(VLMTrainArgs, args), dataclass_from_args(TrainConfig, args))
    if not is_main():
        return 0
    print(json.dumps({"step": result.step, "loss": round(result.last.get("loss", float("nan")), 4),
                      "samples_per_s": round(result.images_per_s, 2), "wall_s": round(result.wall_s, 1),
                      f"peak_memory_mb_{result.peak_memory_kind}": round(result.peak_memory_mb, 1),
                      "skipped": result.data.get("skipped", 0), "run_dir": result.run_dir}))
    return 0


def _ask(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image, UnidentifiedImageError

    from leanvl.vlm.batches import image_transform
    from leanvl.vlm.generate import generate
    from leanvl.vlm.io import load_vlm

    from leanvl import preflight

    if not args.question.strip():
        raise LeanvlError("the question is empty")
    preflight.count(args.max_new_tokens, "--max-new-tokens", 1, preflight.MAX_NEW_TOKENS)
    try:
        image = Image.open(args.image).convert("RGB")
    except FileNotFoundError:
        raise LeanvlError(f"--image {args.image}: no such file") from None
    except (UnidentifiedImageError, OSError):
        raise LeanvlError(f"--image {args.image}: not a readable image") from None
    model = load_vlm(args.ckpt)
    pixels = image_transform(model.cfg.image_size)(image).unsqueeze(0)
    with torch.no_grad():
        answer = generate(model, pixels, [args.question], max_new_tokens=args.max_new_tokens)[0]
    print(answer)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from leanvl.vlm.evaluate import eval_items, evaluate
    from leanvl.vlm.io import load_vlm

    check_eval_args(args)
    model = load_vlm(args.ckpt)
    items = eval_items(args.data, image_size=model.cfg.image_size, limit=args.limit, seed=args.seed)
    if args.lmms_tasks:
        return _eval_lmms(args, model, items)
    result, records = evaluate(model, items, batch_size=args.batch_size, with_image=not args.no_image,
                               max_new_tokens=args.max_new_tokens, progress=True, seed=args.seed)
    result["with_image"] = not args.no_image
    from leanvl.vlm.scoring import format_table

    print(format_table(result["metrics"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**result, "records": records} if args.records else result, f, indent=2)
    print(json.dumps(result))
    return 0


def check_eval_args(args: argparse.Namespace) -> None:
    """Every `vlm eval` value, checked before the VLM is loaded (milliseconds)."""
    from leanvl import preflight
    from leanvl.vlm.train import check_task_names

    if args.limit is not None:
        preflight.items(args.limit, "--limit")
    preflight.batch(args.batch_size)
    preflight.count(args.max_new_tokens, "--max-new-tokens", 1, preflight.MAX_NEW_TOKENS)
    preflight.seed(args.seed)
    preflight.data_spec(args.data)
    check_task_names(args.lmms_tasks, "--lmms-tasks")
    if args.lmms_include:
        preflight.existing(args.lmms_include, "--lmms-include", kind="dir")


def _export(args: argparse.Namespace) -> int:
    from leanvl.vlm.hf.export import run_export

    print(json.dumps(run_export(args.ckpt, args.out, merge=args.merge_lora, fmt=args.format)))
    return 0


def _eval_lmms(args: argparse.Namespace, model, items: list) -> int:
    from leanvl.vlm.lmms.run import parse_tasks, run_lmms, run_local_tasks

    tasks = parse_tasks(args.lmms_tasks)
    kw = {"batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    if args.lmms_include:
        result = run_lmms(model, tasks, include_path=args.lmms_include, limit=args.limit, **kw)
    else:
        result = run_local_tasks(model, items, tasks, **kw)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))
    return 0


def _lmms_task(args: argparse.Namespace) -> int:
    from leanvl.paths import ensure_writable_dir
    from leanvl.vlm.evaluate import eval_items
    from leanvl.vlm.lmms.tasks import write_tasks

    if args.limit < 1:
        raise LeanvlError(f"--limit must be >= 1, got {args.limit}")
    items = eval_items(args.data, image_size=args.size, limit=args.limit, seed=args.seed)
    ensure_writable_dir(args.out, flag="--out")
    tasks = write_tasks(items, args.out, max_new_tokens=args.max_new_tokens)
    print(json.dumps({"include_path": os.path.abspath(args.out), "tasks": tasks}))
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LeanvlError(f"{flag} {text!r}: use comma-separated integers like 1,4,16") from None


def check_bench_args(args: argparse.Namespace) -> None:
    """Upper bounds of the `vlm bench` sizes (BenchGrid checks the lower ones): a huge grid or width would only
    hang allocating its stand-in tensors."""
    from leanvl import preflight

    bounds = [("--grid", args.grid, 1, 1024), ("--vision-dim", args.vision_dim, 1, 65536),
              ("--levels", args.levels, 1, 64), ("--repeats", args.repeats, 1, 100_000),
              ("--decode-tokens", args.decode_tokens, 0, preflight.MAX_NEW_TOKENS)]
    for flag, value, lo, hi in bounds:
        preflight.count(value, flag, lo, hi)
    for flag, text, lo, hi in (("--tokens", args.tokens, 1, args.grid**2), ("--text-tokens", args.text_tokens, 0,
                               2**20), ("--batch", args.batch, 1, preflight.MAX_BATCH)):
        for value in _int_list(text, flag):
            preflight.count(value, flag, lo, hi)
    if args.device != "auto":
        preflight.device(args.device)


def _bench(args: argparse.Namespace) -> int:
    from leanvl.vlm.bench import format_rows, summarise, view_rows
    from leanvl.vlm.bench_grid import BenchGrid, run_grid

    check_bench_args(args)
    spec = BenchGrid(llms=[t.strip() for t in args.llm.split(",") if t.strip()],
                     visual_tokens=_int_list(args.tokens, "--tokens"),
                     text_tokens=_int_list(args.text_tokens, "--text-tokens"),
                     batches=_int_list(args.batch, "--batch"), decode_tokens=args.decode_tokens,
                     repeats=args.repeats, compressor=args.compressor, grid=args.grid, vision_dim=args.vision_dim,
                     levels=args.levels, device=args.device, dtype=args.dtype, cuda_graphs=args.cuda_graphs)
    cells = run_grid(spec, args.table or None)
    groups = []
    for name, q, b in ((n, q, b) for n in spec.llms for q in spec.text_tokens for b in spec.batches):
        rows = view_rows([c for c in cells if (c["llm"], c["text_tokens"], c["batch"]) == (name, q, b)])
        summary = summarise(rows)
        groups.append({"llm": name, "compressor": args.compressor, "text_tokens": q, "batch": b, "rows": rows,
                       "summary": summary})
        c0 = cells[0]
        print(f"LLM {name}: {rows[0]['llm_params']:,} non-embedding params; Q = {q} text tokens; {b} request(s); "
              f"compressor {args.compressor} on a {args.grid}x{args.grid}x{args.vision_dim} grid; "
              f"{c0['device']}, {c0['dtype']}")
        print(format_rows(rows))
        print(f"{summary['tokens_many']} -> {summary['tokens_few']} tokens: prefill "
              f"{summary['measured_speedup']:.2f}x faster, FLOPs predict {summary['predicted_speedup']:.2f}x "
              f"({summary['share_of_predicted']:.0%}); compressor = {summary['compressor_share_at_few']:.0%} of the "
              f"prefill at {summary['tokens_few']} tokens")
    if args.table:
        print(f"latency table: {args.table} ({len(cells)} cell(s) of this grid)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(groups[0] if len(groups) == 1 else {"groups": groups}, f, indent=2)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from leanvl.cliutil import add_dataclass_args
    from leanvl.train.config import TrainConfig
    from leanvl.vlm.train import VLMTrainArgs

    p = sub.add_parser("train", help="train a VLM (encoder -> compressor -> projector -> LLM) with the shared trainer",
                       description="Train a LLaVA-style VLM on built-in VQA, a LLaVA json, or caption shards.")
    add_dataclass_args(p, VLMTrainArgs)
    add_dataclass_args(p, TrainConfig, overrides={"lr": 1e-3, "weight_decay": 0.0, "batch_size": 16})
    p.set_defaults(func=_train)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `vlm` with train | ask | eval | bench."""
    vlm = subparsers.add_parser("vlm", help="few-token LLaVA-style VLMs: train, ask, eval, bench",
                                description="LLaVA-style VLMs with visual-token compressors.")
    sub = vlm.add_subparsers(dest="vlm_command", metavar="VLM_COMMAND", parser_class=type(vlm))
    sub.required = True
    _add_train(sub)
    a = sub.add_parser("ask", help="answer a question about an image (greedy, KV cache)")
    a.add_argument("--ckpt", required=True, help="VLM run directory, step directory, or saved VLM directory")
    a.add_argument("--image", required=True, help="image file")
    a.add_argument("question", help="the question to ask")
    a.add_argument("--max-new-tokens", type=int, default=32, help="answer length limit (default 32)")
    a.set_defaults(func=_ask)
    e = sub.add_parser("eval", help="VQA metrics (exact match, VQAv2 soft accuracy, ANLS, multiple choice) "
                                    "per split and kind, with 95%% intervals")
    e.add_argument("--ckpt", required=True, help="VLM run directory, step directory, or saved VLM directory")
    e.add_argument("--data", default="synthetic", help="synthetic[:N] (built-in VQA, test split) or a LLaVA .json")
    e.add_argument("--limit", type=int, default=200, help="evaluate at most K questions (default 200)")
    e.add_argument("--json", default="", type=output_file("--json"), help="also write the result JSON to this file")
    e.add_argument("--records", action="store_true", help="include every question/prediction in --json")
    e.add_argument("--no-image", action="store_true", help="ask the same LLM without the image (text-only baseline)")
    e.add_argument("--batch-size", type=int, default=16, help="questions per generation batch (default 16)")
    e.add_argument("--max-new-tokens", type=int, default=8, help="answer length limit (default 8)")
    e.add_argument("--seed", type=int, default=0, help="seed of the built-in question stream (default 0)")
    e.add_argument("--lmms-tasks", default="", help="score these lmms-eval tasks instead (comma list; the local "
                   "leanvl_vqa_reasoning,leanvl_vqa_ocr are built from --data unless --lmms-include is given)")
    e.add_argument("--lmms-include", default="", help="lmms-eval --include_path for --lmms-tasks (task yaml dir)")
    e.set_defaults(func=_eval)
    t = sub.add_parser("lmms-task", help="write local lmms-eval tasks (leanvl_vqa_<split>) from VQA questions",
                       description="Write the questions `vlm eval` asks as lmms-eval tasks (yaml + jsonl + images); "
                                   "use the directory as lmms-eval's --include_path.")
    t.add_argument("--out", required=True, type=output_dir("--out"), help="task directory to write")
    t.add_argument("--data", default="synthetic", help="synthetic[:N] (built-in VQA, test split) or a LLaVA .json")
    t.add_argument("--limit", type=int, default=200, help="at most K questions (default 200)")
    t.add_argument("--size", type=int, default=64, help="synthetic image side (default 64; use the VLM's size)")
    t.add_argument("--seed", type=int, default=0, help="seed of the built-in question stream (default 0)")
    t.add_argument("--max-new-tokens", type=int, default=8, help="answer length limit in the task (default 8)")
    t.set_defaults(func=_lmms_task)
    x = sub.add_parser("export", help="write a transformers trust_remote_code model + processor directory",
                       description="Export a VLM for AutoModelForCausalLM / AutoProcessor.from_pretrained(DIR, "
                                   "trust_remote_code=True); leanvl need not be installed to load it.")
    x.add_argument("--ckpt", required=True, help="VLM run directory, step directory, or saved VLM directory")
    x.add_argument("--out", required=True, type=output_dir("--out"), help="new (or empty) output directory")
    x.add_argument("--merge-lora", action="store_true", help="merge the checkpoint's peft LoRA adapters first")
    x.add_argument("--format", choices=["leanvl", "llava"], default="leanvl",
                   help="leanvl: trust_remote_code model (every VLM); llava: transformers' own "
                        "LlavaForConditionalGeneration (compressor none + a SigLIP-style ViT read at --feature-layer)")
    x.set_defaults(func=_export)
    b = sub.add_parser("bench", help="latency table: prefill, compressor, query pass, decode per LLM x V x Q x batch",
                       description="Time LLM prefill, compressor, QueCC query pass and decode on random inputs over "
                                   "a grid; --table writes (and resumes) a latency table for `scaling plan --latency`.")
    b.add_argument("--llm", default="tiny", help="comma list of LLMs: built-in names, smollm2-135m, model "
                                                 "directories, or HF config.json files (random init) (default tiny)")
    b.add_argument("--tokens", default="1,4,16,36,144,576", help="comma list of visual-token counts V")
    b.add_argument("--compressor", default="quecc", help="compressor to time (default quecc)")
    b.add_argument("--text-tokens", default="32", help="comma list of text-token counts Q (default 32)")
    b.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default 5)")
    b.add_argument("--batch", default="1", help="comma list of concurrent requests per prefill (default 1)")
    b.add_argument("--decode-tokens", type=int, default=0,
                   help="also time K greedy decode steps after the prefill and report ms per token (default 0: off)")
    b.add_argument("--grid", type=int, default=24, help="vision grid side (default 24, CLIP ViT-L/14-336)")
    b.add_argument("--vision-dim", type=int, default=1024, help="vision feature width (default 1024)")
    b.add_argument("--levels", type=int, default=4, help="multi-level feature layers for keys (default 4)")
    b.add_argument("--device", default="auto", help="torch device: auto (cuda when available), cpu, cuda, cuda:N")
    b.add_argument("--dtype", default="auto", help="auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, "
                                                   "float16")
    b.add_argument("--cuda-graphs", action="store_true",
                   help="replay prefill, compressor and query pass from captured CUDA graphs (CUDA only)")
    b.add_argument("--table", default="", type=output_file("--table"),
                   help="latency table to write and resume (*.json or *.csv; finished "
                        "cells are skipped); schema in leanvl.scaling.latency_table")
    b.add_argument("--json", default="", type=output_file("--json"),
                   help="also write the rows (and per-group summary) as JSON to this file")
    b.set_defaults(func=_bench)
