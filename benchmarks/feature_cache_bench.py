"""--cache-features A/B on what `leanvl repro` runs: `train_eval_vlm` (train + evaluate one VLM cell on the
recipe's frozen SuperClass encoder), two cells in a row, without and then with the cache, in one process.
The second cell with the cache reads every batch from it. Prints CPU seconds per cell and whether the cached
cells' losses and accuracies equal the uncached ones.

usage: OMP_NUM_THREADS=1 python benchmarks/feature_cache_bench.py ENCODER_EXPORT_DIR [STEPS]
(ENCODER_EXPORT_DIR: a recipe's DIR/cells/encoder/export, e.g. from `leanvl repro quecc`.) Run on a quiet box."""
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

import torch

from leanvl.repro.cells import train_eval_vlm
from leanvl.vlm.feature_cache import caching

CELLS = (("avgpool", 1), ("quecc-gate", 4))


def run(root: str, s: dict, cache: bool) -> list:
    rows = []
    with caching() if cache else contextlib.nullcontext():
        for comp, tok in CELLS:
            t0, c0 = time.time(), time.process_time()
            row = train_eval_vlm(os.path.join(root, "cells", f"{comp}-v{tok}"), s, compressor=comp, tokens=tok)
            losses = [json.loads(line)["loss"] for line in open(os.path.join(root, "cells", f"{comp}-v{tok}",
                                                                              "metrics.jsonl"))]
            rows.append({"cell": f"{comp}-v{tok}", "cpu_s": time.process_time() - c0, "wall_s": time.time() - t0,
                         "losses": losses, "kinds": row["kinds"], "splits": row["splits"]})
    return rows


def main() -> None:
    encoder, steps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
    torch.set_num_threads(1)
    s = {"image_size": 64, "llm": "small", "data": "synthetic+binding", "steps": steps, "batch_size": 32,
         "lr": 1e-3, "seed": 0, "device": "cpu", "eval_limit": 400}
    results = {}
    for mode in ("warm-up", "no cache", "cache"):  # warm-up: first-call costs (imports, lazy init) off the A/B
        root = tempfile.mkdtemp(prefix="fcb-")
        shutil.copytree(encoder, os.path.join(root, "cells", "encoder", "export"))
        results[mode] = run(root, {**s, "steps": 2, "eval_limit": 8} if mode == "warm-up" else s, mode == "cache")
        shutil.rmtree(root)
    print(f"{steps} steps x 32 per cell, small LLM, synthetic+binding, 400 eval questions, 1 thread")
    print("| cell | CPU s, no cache | CPU s, cache | ratio | same losses and accuracies |")
    print("|---|---|---|---|---|")
    for a, b in zip(results["no cache"], results["cache"]):
        same = a["losses"] == b["losses"] and a["kinds"] == b["kinds"] and a["splits"] == b["splits"]
        print(f"| {a['cell']} | {a['cpu_s']:.1f} | {b['cpu_s']:.1f} | {b['cpu_s'] / a['cpu_s']:.2f} | {same} |")


if __name__ == "__main__":
    main()
