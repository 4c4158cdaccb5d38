"""Data pipeline throughput and bytes read: the previous streaming reader, leanvl's indexed engine (local files and
HTTP range reads), webdataset's plain `WebDataset` pipeline and litdata (a second engine, when installed).

Writes N ~512 px JPEG samples into 4 shards (as img2dataset does) with their `.idx.json` sidecars, then for 1, 2
and 4 loader workers times one epoch of decode + TrainTransform(224) batches of 16 and counts the bytes read per
sample: at the file reads of every process for local readers, at a local HTTP server (bytes it sent) for the
engine over HTTP. litdata reads its own chunk format (converted once with `litdata.optimize`; conversion time is
printed, not counted) and its bytes are not counted. The previous reader is the ShardSource of commit a892ae6
(loaded from git). Also prints the shuffle statistic: mean distance between the original positions of consecutive
samples (higher = better mixed).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/data_pipeline.py --n 96
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
from leanvl.data.remote import ShardCache
from leanvl.data.sample import Sample
from leanvl.data.shard_index import write_sidecars
from leanvl.data.shards import write_shards
from leanvl.data.sources import open_source
from leanvl.data.transforms import TrainTransform

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.data.servers import http_server  # noqa: E402 (the byte-counting HTTP server of the tests)

READ = mp.Value("q", 0)
DECODED = mp.Value("q", 0)


class CountingTransform(TrainTransform):
    """TrainTransform(224) counting the samples it is applied to in every process (prefetched ones included)."""

    def __init__(self) -> None:
        super().__init__(224)

    def __call__(self, img, rng):
        with DECODED.get_lock():
            DECODED.value += 1
        return super().__call__(img, rng)


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

    write_sidecars(write_shards(samples(), root, shard_size=max(n // 4, 1), image_format="jpg"))
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
    t = CountingTransform()
    got = 0
    for b in loader.make_batches(source, batch_size=batch, transform=t, num_workers=workers):
        got += int(b["image"].shape[0])
        if got >= n:
            break
    return got


def run_wds(pattern, n, workers, batch=16):
    import webdataset as wds

    t = CountingTransform()
    import random

    ds = (wds.WebDataset(pattern, shardshuffle=False, empty_check=False).decode("pil").to_tuple("jpg")
          .map_tuple(lambda im: t(im, random.Random(0))).batched(batch))
    got = 0
    for x in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers):
        got += int(x[0].shape[0])
        if got >= n:
            break
    return got


def litdata_dir(pattern: str, root: str) -> str | None:
    """The shards converted to litdata's chunk format (None when litdata is not installed)."""
    try:
        import litdata
    except ImportError:
        return None
    from leanvl.data.tar_index import read_sample

    src = open_source(pattern, shuffle=False)
    items = [(src.urls[s], e) for s in range(len(src.urls)) for e in src.index[s]]
    out = os.path.join(root, "litdata")
    t0 = time.perf_counter()
    litdata.optimize(lambda it: {k: v for k, v in read_sample(*it).items() if k in ("jpg", "txt")}, items,
                     output_dir=out, chunk_bytes="16MB", num_workers=1, verbose=False, start_method="fork")
    print(f"litdata.optimize: {len(items)} samples in {time.perf_counter() - t0:.1f} s")
    return out


def run_litdata(out, n, workers, batch=16):
    from litdata import StreamingDataLoader, StreamingDataset

    t = CountingTransform()
    import random

    def item(x):
        return t(Image.open(io.BytesIO(x["jpg"])).convert("RGB"), random.Random(0))

    ds = StreamingDataset(out, shuffle=True, seed=0, cache_dir=tempfile.mkdtemp(), transform=item)
    got = 0
    for x in StreamingDataLoader(ds, batch_size=batch, num_workers=workers):
        got += int(x.shape[0])
        if got >= n:
            break
    return got


def timed(fn, *args, server=None):
    """(samples consumed per second, bytes read per sample decoded: the loader's prefetch reads past the stop)."""
    READ.value = DECODED.value = 0
    sent0 = server.bytes_sent if server is not None else 0
    t0 = time.perf_counter()
    got = fn(*args)
    rate = got / (time.perf_counter() - t0)
    time.sleep(0.5)  # let exiting workers finish their counts
    read = READ.value + (server.bytes_sent - sent0 if server is not None else 0)
    return rate, read / max(DECODED.value, 1)


def shuffle_stat(keys_in_order: list[int]) -> float:
    return float(np.mean(np.abs(np.diff(np.asarray(keys_in_order)))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128, help="samples (4 shards)")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--readers", default="previous,engine,http,wds,litdata", help="comma-separated subset")
    args = ap.parse_args()
    root = tempfile.mkdtemp()
    pattern = make_shards(root, args.n)
    size = sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root) if f.endswith(".tar"))
    print(f"{args.n} JPEG samples 512 px, {size / args.n / 1024:.1f} KiB/sample, 4 shards")
    old = old_module("src/leanvl/data/sources.py", "old_sources")
    old.open = counting_open  # module-level name: its read_tar opens shards through the counter
    old_loader = old_module("src/leanvl/data/loader.py", "old_loader")
    tar_index.open, tar_index.os = counting_open, _CountingOs()
    new = open_source(pattern, seed=0)
    prev = old.ShardSource(pattern, seed=0)
    lit = litdata_dir(pattern, root) if "litdata" in args.readers else None
    with http_server(root) as server:
        http = open_source(f"{server.url}/{os.path.basename(pattern)}", seed=0, cache=ShardCache(tempfile.mkdtemp()))
        index_bytes, uncounted = server.bytes_sent, "not counted"
        print(f"HTTP index: {index_bytes} bytes for 4 shards (sidecars)")
        cells = {"previous": ("previous reader", run_loader, lambda w: (old_loader, prev, args.n, w), None),
                 "engine": ("leanvl engine", run_loader, lambda w: (loader, new, args.n, w), None),
                 "http": ("leanvl engine HTTP", run_loader, lambda w: (loader, http, args.n, w), server),
                 "wds": ("wds.WebDataset HTTP", run_wds,
                         lambda w: (f"{server.url}/{os.path.basename(pattern)}", args.n, w), server),
                 "litdata": ("litdata", run_litdata, lambda w: (lit, args.n, w), uncounted)}
        print("reader              workers  samples/s  bytes read/sample (x sample size)")
        for w in [int(x) for x in args.workers.split(",")]:
            for key in args.readers.split(","):
                name, fn, make, counter = cells[key]
                if key == "litdata" and lit is None:
                    print(f"{name:19s} {w:7d}  not installed")
                    continue
                rate, per = timed(fn, *make(w), server=counter if counter is server else None)
                reads = uncounted if counter == uncounted else f"{per / 1024:8.1f} KiB ({per / (size / args.n):.2f}x)"
                print(f"{name:19s} {w:7d}  {rate:9.1f}  {reads}", flush=True)
    order_new = [int(new.key(new.at(r))[1:]) for r in range(args.n)]
    order_old = [int(os.path.basename(r["__key__"])[1:]) for r in prev.raw(0)]
    print(f"shuffle: mean |pos(i+1) - pos(i)| in the original order: indexed {shuffle_stat(order_new):.1f}, "
          f"previous buffer {shuffle_stat(order_old):.1f} (uniform random: {args.n / 3:.1f})")


if __name__ == "__main__":
    sys.exit(main())
