"""Count the CUDA host syncs of a `leanvl pretrain` run with `torch.cuda.set_sync_debug_mode("warn")` (issue #17).

Every synchronising CUDA call (`.item()`, a device->host copy, an op with a data-dependent output size, ...) warns;
each warning is charged to "log/checkpoint step" when the trainer's read-back code is on the stack (log_values,
flush_nonfinite, save, Speedometer reads, setup and teardown), else to "inside a step". The goal is zero inside steps.

  python benchmarks/gpu_sync_check.py -- --data 'shards/{00000..00019}.tar' --decode gpu --steps 30 --out /tmp/sync
  python benchmarks/gpu_sync_check.py --json sync.json -- ...   # also write the counts and the top call sites
"""
from __future__ import annotations

import argparse
import collections
import json
import traceback
import warnings
from pathlib import Path

LOG_SIDE = {"log_values", "flush_nonfinite", "save", "_read", "overall_rate", "scalars", "restore", "memory_plan",
            "peak_memory", "preempt_requested", "run_pretrain", "__init__", "record_flops"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="")
    ap.add_argument("pretrain", nargs=argparse.REMAINDER, help="-- then `leanvl pretrain` flags")
    args = ap.parse_args()
    flags = [a for a in args.pretrain if a != "--"]
    import torch

    from leanvl.cli import main as cli

    if not torch.cuda.is_available():
        raise SystemExit("gpu_sync_check.py: needs a CUDA device (the CPU check is tests/train/test_no_host_sync.py)")

    counts: collections.Counter = collections.Counter()
    sites: collections.Counter = collections.Counter()
    original = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if "synchronizing" not in str(message):
            return original(message, category, filename, lineno, file, line)
        stack = traceback.extract_stack()[:-1]
        where = "log/checkpoint step" if any(f.name in LOG_SIDE for f in stack) else "inside a step"
        counts[where] += 1
        leanvl = [f for f in stack if "leanvl" in f.filename]
        site = leanvl[-1] if leanvl else stack[-1]
        sites[f"{where}: {site.filename.rsplit('/', 2)[-1]}:{site.lineno} {site.name}"] += 1
        return None

    warnings.showwarning = record
    warnings.simplefilter("always")
    torch.cuda.set_sync_debug_mode("warn")
    rc = cli(["pretrain", *flags])
    torch.cuda.set_sync_debug_mode("default")
    result = {"rc": rc, "syncs": dict(counts), "top_sites": dict(sites.most_common(15))}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
