"""Data pipeline throughput and bytes read: the previous streaming reader vs leanvl's indexed engine vs webdataset.

Writes N ~512 px JPEG samples into 4 shards (as img2dataset does), then for 1, 2 and 4 loader workers times one
epoch of decode + TrainTransform(224) batches and counts the bytes read from the shard files (all processes).
The previous reader is the ShardSource of commit a892ae6 (loaded from git). Also prints the shuffle statistic: mean
distance between the original positions of consecutive samples (higher = better mixed).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/data_pipeline.py --n 128
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from leanvl.data import loader, tar_index
from leanvl.data.sample import Sample
from leanvl.data.shards import write_shards
from leanvl.data.sources import open_source
from leanvl.data.transforms import TrainTransform

READ = mp.Value("q", 0)


class _Counting(io.FileIO):
    def read(self, n=-1):
        data = super().read(n)
        with READ.get_lock():
            READ.value += len(data)
        return data

    def readinto(self, b):
        n = super().readinto(b)
        with READ.get_lock():
            READ.value += n or 0
        return n


def counting_open(path, mode="r", *a, **k):
    return io.BufferedReader(_Counting(path, "rb")) if "b" in mode else open(path, mode, *a, **k)


class _CountingOs:
    def __getattr__(self, name):
        return getattr(os, name)

    def pread(self, fd, n, offset):
        data = os.pread(fd, n, offset)
        with READ.get_lock():
            READ.value += len(data)
        return data


def make_shards(root: str, n: int) -> str:
    rng = np.random.default_rng(0)

    def samples():
        for i in range(n):
            arr = (rng.random((512, 512, 3)) * 64 + np.linspace(0, 190, 512)[None, :, None]).astype(np.uint8)
            yield Sample(f"s{i:06d}", Image.fromarray(arr), f"a photo number {i}", {})

    write_shards(samples(), root, shard_size=max(n // 4, 1), image_format="jpg")
    return os.path.join(root, "shard-{000000..000003}.tar")


def old_module(path_in_repo: str, name: str):
    """A module of commit a892ae6 (the previous reader), loaded from git."""
    code = subprocess.run(["git", "show", f"a892ae6:{path_in_repo}"], capture_output=True, text=True,
                          check=True).stdout
    path = os.path.join(tempfile.mkdtemp(), f"{name}.py")
    open(path, "w").write(code)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_loader(loader, source, n, workers, batch=16):
    """Samples through `loader.make_batches` (the previous or the current leanvl loader)."""
    t = TrainTransform(224)
    got = 0
    for b in loader.make_batches(source, batch_size=batch, transform=t, num_workers=workers):
        got += int(b["image"].shape[0])
        if got >= n:
            break
    return got


def run_wds(pattern, n, workers, batch=16):
    import webdataset as wds

    t = TrainTransform(224)
    import random

    ds = (wds.WebDataset(pattern, shardshuffle=False, empty_check=False).decode("pil").to_tuple("jpg")
          .map_tuple(lambda im: t(im, random.Random(0))).batched(batch))
    got = 0
    for x in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers):
        got += int(x[0].shape[0])
        if got >= n:
            break
    return got


def timed(fn, *args):
    READ.value = 0
    t0 = time.perf_counter()
    got = fn(*args)
    return got / (time.perf_counter() - t0), READ.value / max(got, 1)


def shuffle_stat(keys_in_order: list[int]) -> float:
    return float(np.mean(np.abs(np.diff(np.asarray(keys_in_order)))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128, help="samples (4 shards)")
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    root = tempfile.mkdtemp()
    pattern = make_shards(root, args.n)
    size = sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root))
    print(f"{args.n} JPEG samples 512 px, {size / args.n / 1024:.1f} KiB/sample, 4 shards")
    old = old_module("src/leanvl/data/sources.py", "old_sources")
    old.open = counting_open  # module-level name: its read_tar opens shards through the counter
    old_loader = old_module("src/leanvl/data/loader.py", "old_loader")
    tar_index.open, tar_index.os = counting_open, _CountingOs()
    import webdataset.gopen

    webdataset.gopen.open = counting_open
    new = open_source(pattern, seed=0)
    prev = old.ShardSource(pattern, seed=0)
    print("reader            workers  samples/s  bytes read/sample (x sample size)")
    for w in [int(x) for x in args.workers.split(",")]:
        for name, fn, a in (("previous reader", run_loader, (old_loader, prev, args.n, w)),
                            ("leanvl indexed", run_loader, (loader, new, args.n, w)),
                            ("wds.WebDataset", run_wds, (pattern, args.n, w))):
            rate, per = timed(fn, *a)
            print(f"{name:17s} {w:7d}  {rate:9.1f}  {per / 1024:8.1f} KiB ({per / (size / args.n):.2f}x)")
    order_new = [int(new.key(new.at(r))[1:]) for r in range(args.n)]
    order_old = [int(os.path.basename(r["__key__"])[1:]) for r in prev.raw(0)]
    print(f"shuffle: mean |pos(i+1) - pos(i)| in the original order: indexed {shuffle_stat(order_new):.1f}, "
          f"previous buffer {shuffle_stat(order_old):.1f} (uniform random: {args.n / 3:.1f})")


if __name__ == "__main__":
    sys.exit(main())
