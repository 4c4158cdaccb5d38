"""Peak memory (and time) of classifier head + loss, forward + backward: dense K-hot target vs leanvl's sparse path
vs the fused chunked head + CE (`--head-chunk`). Vocab 49,408, width 768, ~12 labels per caption.

    .venv/bin/python benchmarks/loss_memory.py                    # CPU: fp32, peak RSS per case (fresh process)
    python benchmarks/loss_memory.py                              # GPU: bf16 autocast, max_memory_allocated

Each case runs in its own process (on CPU with glibc's mmap threshold at 1 MiB, so that RSS follows the live
tensors), so one case's allocator state cannot hide another's peak. Prints MB above the
inputs + weights (already allocated before the step) and the ratio to the dense target.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

VOCAB, WIDTH, PER_CAPTION = 49408, 768, 12
KINDS = ("dense", "sparse", "chunked")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(kind: str, batch: int, chunk: int) -> dict:
    """One forward + backward of head + loss; peak memory above what the inputs and weights already use."""
    import torch
    import torch.nn.functional as F

    from leanvl.objectives.chunked_ce import chunked_head_ce
    from leanvl.objectives.superclass import row_index, softmax_ce_sparse

    torch.set_num_threads(1)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    fc = torch.nn.Linear(WIDTH, VOCAB).to(dev)
    h = torch.randn(batch, WIDTH, generator=g).to(dev).requires_grad_(True)
    ids = torch.cat([torch.randperm(VOCAB - 3, generator=g)[:PER_CAPTION].sort().values + 1 for _ in range(batch)])
    ids = ids.to(dev)
    rows = row_index(torch.arange(0, batch * PER_CAPTION + 1, PER_CAPTION, device=dev))
    weights = torch.ones(ids.shape, dtype=torch.float32, device=dev)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_mb()
    t0 = time.perf_counter()
    with autocast:
        if kind == "dense":
            target = torch.zeros(batch, VOCAB, device=dev)
            target[rows, ids] = 1.0 / PER_CAPTION
            loss = F.cross_entropy(fc(h).float(), target)
        elif kind == "sparse":
            loss = softmax_ce_sparse(fc(h), ids, rows, weights)[0]
        else:
            loss = chunked_head_ce(h, fc, ids, rows, weights, chunk)[0]
    loss.backward()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return {"kind": kind, "batch": batch, "device": dev.type, "peak_mb": peak, "seconds": time.perf_counter() - t0,
            "loss": float(loss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="256,1024,4096")
    ap.add_argument("--chunk", type=int, default=256, help="rows per chunk of the fused head + CE")
    ap.add_argument("--case", default="", help=argparse.SUPPRESS)  # internal: KIND,BATCH in a child process
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.case:
        kind, batch = args.case.split(",")
        print(json.dumps(run_case(kind, int(batch), args.chunk)))
        return
    # glibc: every block >= 1 MiB is its own mapping, returned on free, so RSS follows live tensors (CPU peak)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        res = {}
        for kind in KINDS:
            out = subprocess.run([sys.executable, __file__, "--case", f"{kind},{batch}", "--chunk", str(args.chunk)],
                                 capture_output=True, text=True, check=True, env=env)
            res[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(res)
        d, s, c = (res[k] for k in KINDS)
        print(f"batch {batch:5d} ({d['device']}): dense {d['peak_mb']:8.1f} MB {d['seconds']:6.2f} s | "
              f"sparse {s['peak_mb']:8.1f} MB {s['seconds']:6.2f} s | chunked({args.chunk}) {c['peak_mb']:8.1f} MB "
              f"{c['seconds']:6.2f} s | chunked/dense memory {c['peak_mb'] / d['peak_mb']:.2f}x, "
              f"sparse/dense {s['peak_mb'] / d['peak_mb']:.2f}x; losses {d['loss']:.4f} {s['loss']:.4f} {c['loss']:.4f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
