"""Benchmark: JPEG decode + RandomResizedCrop(224) + normalise on ONE CPU core, leanvl vs open_clip, same run.

    .venv/bin/python benchmarks/image_pipeline.py [--n 32] [--rounds 3] [--size 224]

Writes `--n` deterministic natural-ish JPEGs (gradients, shapes, texture noise; 1024-1600 px sides) to a temporary
directory, reads their bytes into memory, then times `Image.open(bytes)` + transform for leanvl's `TrainTransform`
and open_clip's `image_transform(size, is_train=True)`, interleaved image by image. Equivalence of the outputs:
(1) per-channel mean/std over the whole set for both pipelines (their random crops differ, so these agree only
statistically); (2) paired, same crop: leanvl's draft path vs torchvision's full-resolution `resized_crop` (what
open_clip computes) with the very same crop parameters, mean absolute difference in normalised units.
"""
from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_jpeg(path: Path, seed: int) -> None:
    """A deterministic natural-ish image: smooth colour gradient, random shapes, blur, texture noise."""
    rs = np.random.RandomState(seed)
    w, h = int(rs.randint(1024, 1601)), int(rs.randint(1024, 1601))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rs.rand(3) * 255, rs.rand(3) * 255
    t = (xx / w * rs.rand() + yy / h * (1 - rs.rand()))[..., None]
    img = Image.fromarray((c0 * (1 - t) + c1 * t).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rs.randint(5, 25)):
        x0, y0 = int(rs.randint(0, w)), int(rs.randint(0, h))
        x1, y1 = x0 + int(rs.randint(20, w // 2)), y0 + int(rs.randint(20, h // 2))
        fill = tuple(int(v) for v in rs.randint(0, 256, 3))
        (draw.ellipse if rs.rand() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(float(rs.uniform(0.5, 3.0))))
    noise = rs.normal(0, rs.uniform(2, 12), (h, w, 3))
    arr = (np.asarray(img, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, "JPEG", quality=int(rs.randint(80, 96)))


def _stats(outs: list) -> tuple[np.ndarray, np.ndarray]:
    import torch

    x = torch.stack(outs).double()
    return x.mean(dim=(0, 2, 3)).numpy(), x.std(dim=(0, 2, 3)).numpy()


def _paired_check(blobs: list[bytes], size: int) -> tuple[float, float, float]:
    """Same crop params: leanvl draft path vs torchvision full-resolution resized_crop + normalise."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    from leanvl.data.transforms import CLIP_MEAN, CLIP_STD, TrainTransform, crop_params

    ours = TrainTransform(size)
    diffs, mean_diffs, std_ratios = [], [], []
    for i, blob in enumerate(blobs):
        a = ours(Image.open(io.BytesIO(blob)), random.Random(i))
        full = Image.open(io.BytesIO(blob)).convert("RGB")
        top, left, h, w = crop_params(*full.size, random.Random(i))
        ref = F.resized_crop(full, top, left, h, w, [size, size], InterpolationMode.BICUBIC)
        b = F.normalize(F.to_tensor(ref), CLIP_MEAN, CLIP_STD)
        diffs.append((a - b).abs().mean().item())
        mean_diffs.append((a.mean(dim=(1, 2)) - b.mean(dim=(1, 2))).abs().max().item())
        std_ratios.append((a.std(dim=(1, 2)) / b.std(dim=(1, 2))).mean().item())
    return float(np.mean(diffs)), float(np.max(mean_diffs)), float(np.mean(std_ratios))


def main() -> None:
    """Generate the JPEGs, time both pipelines, print images/s, the ratio and the statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="number of JPEGs")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the set")
    parser.add_argument("--size", type=int, default=224, help="output side")
    args = parser.parse_args()

    import torch
    from open_clip import image_transform

    from leanvl.data.transforms import TrainTransform

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"img{i:03d}.jpg" for i in range(args.n)]
        for i, p in enumerate(paths):
            make_jpeg(p, seed=i)
        blobs = [p.read_bytes() for p in paths]
    sizes = [Image.open(io.BytesIO(b)).size for b in blobs]
    print(f"{len(blobs)} JPEGs, sides {min(min(s) for s in sizes)}-{max(max(s) for s in sizes)} px, "
          f"{sum(map(len, blobs)) / len(blobs) / 1024:.0f} KiB mean; torch threads 1, one core")

    oc = image_transform(args.size, is_train=True)
    ours = TrainTransform(args.size)
    torch.manual_seed(0)
    t_oc = t_ours = 0.0
    out_oc, out_ours = [], []
    for r in range(args.rounds):
        for i, blob in enumerate(blobs):
            t0 = time.perf_counter()
            a = oc(Image.open(io.BytesIO(blob)))
            t1 = time.perf_counter()
            b = ours(Image.open(io.BytesIO(blob)), random.Random(r * 1_000_003 + i))
            t2 = time.perf_counter()
            t_oc += t1 - t0
            t_ours += t2 - t1
            out_oc.append(a)
            out_ours.append(b)
    n = len(out_oc)
    print(f"open_clip image_transform(is_train=True): {n / t_oc:8.1f} images/s")
    print(f"leanvl TrainTransform:                    {n / t_ours:8.1f} images/s   ratio {t_oc / t_ours:.2f}x")
    (m_oc, s_oc), (m_us, s_us) = _stats(out_oc), _stats(out_ours)
    print(f"per-channel mean  open_clip {np.round(m_oc, 4)}  leanvl {np.round(m_us, 4)}  "
          f"max |diff| {np.abs(m_oc - m_us).max():.4f}")
    print(f"per-channel std   open_clip {np.round(s_oc, 4)}  leanvl {np.round(s_us, 4)}  "
          f"max |diff| {np.abs(s_oc - s_us).max():.4f}")
    mad, worst_mean, std_ratio = _paired_check(blobs, args.size)
    print(f"same crop, leanvl draft path vs torchvision full-resolution resized_crop: mean |diff| {mad:.4f} "
          f"(normalised units; 1 grey level ~ {1 / 255 / 0.27:.4f}), worst per-image channel-mean diff "
          f"{worst_mean:.4f}, mean per-image std ratio {std_ratio:.4f}")


if __name__ == "__main__":
    main()
