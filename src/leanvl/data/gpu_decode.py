"""Batched JPEG decode + RandomResizedCrop + CLIP normalisation on a device (nvJPEG on CUDA), for `--decode gpu`.

`decode_train_batch(jpegs, seed, raw_indices, transform, device)` takes the undecoded JPEG bytes of a batch (1-D
uint8 CPU tensors) and the raw stream indices of its samples and returns float [B, 3, S, S] on `device`, the same
tensor layout and normalisation as `TrainTransform(S)` produces per sample on the CPU.

What equals the CPU path (`Loader` + `TrainTransform`), and how closely:
- Bit-exact: the crop box of every sample. Each sample's parameters come from the same `random.Random`
  (`leanvl.data.loader.transform_rng(seed, raw_index)`) fed to the same `leanvl.data.transforms.crop_params`, with
  the full-resolution width/height, so (top, left, h, w) are identical and exact resume still holds.
- Statistically equal only: the pixels. The CPU path lets libjpeg decode at 1/2..1/8 scale (PIL `draft`) and then
  resamples with PIL's bicubic filter; here the image is decoded at full size (nvJPEG or libjpeg-turbo, whose IDCT and
  chroma upsampling differ in the last bit) and resampled by `torch.nn.functional.interpolate(mode="bicubic",
  antialias=True)`, a different kernel implementation. Per-channel mean/std over a batch agree within 0.02 / 3%
  (normalised units; tests/data/test_gpu_decode.py), per-pixel differences are a few grey levels.
Greyscale JPEGs are expanded to RGB. Non-JPEG images (PNG, WebP) are not handled here: keep them on the CPU path.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from leanvl.data.loader import transform_rng
from leanvl.data.transforms import CLIP_MEAN, CLIP_STD, TrainTransform, crop_params
from leanvl.errors import LeanvlError

Box = tuple[int, int, int, int]  # (top, left, height, width) in full-resolution pixels


def decode_jpegs(jpegs: Sequence[torch.Tensor], device: torch.device | str) -> list[torch.Tensor]:
    """uint8 [3, H, W] images on `device`, one batched decode call (nvJPEG when `device` is CUDA)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not jpegs:
        raise LeanvlError("decode_train_batch got an empty batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision 0.29 flags its image decoders as deprecated (-> TorchCodec)
        try:
            out = decode_jpeg(list(jpegs), mode=ImageReadMode.RGB, device=device)
        except RuntimeError as exc:
            raise LeanvlError(f"GPU decode failed (not a baseline/progressive JPEG?): {exc}".splitlines()[0]) from None
    return list(out) if isinstance(out, (list, tuple)) else [out]


def crop_boxes(sizes: Sequence[tuple[int, int]], seed: int, raw_indices: Sequence[int],
               transform: TrainTransform) -> list[Box]:
    """The crop box of each (width, height) image, drawn exactly as the CPU `TrainTransform` draws it."""
    return [crop_params(w, h, transform_rng(seed, int(r)), transform.scale, transform.ratio)
            for (w, h), r in zip(sizes, raw_indices)]


def decode_crop_batch(jpegs: Sequence[torch.Tensor], boxes: Sequence[Box], size: int, device: torch.device | str,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised crops [B, 3, size, size] on `device` of JPEG byte tensors with their given (full-resolution) boxes."""
    if len(jpegs) != len(boxes):
        raise LeanvlError(f"{len(jpegs)} images but {len(boxes)} crop boxes")
    images = decode_jpegs(jpegs, device)
    out = torch.empty(len(images), 3, size, size, device=images[0].device, dtype=torch.float32)
    for i, (im, (top, left, h, w)) in enumerate(zip(images, boxes)):
        if top < 0 or left < 0 or top + h > im.shape[1] or left + w > im.shape[2]:
            raise LeanvlError(f"crop box {(top, left, h, w)} outside a {im.shape[2]}x{im.shape[1]} image")
        crop = im[:, top:top + h, left:left + w].unsqueeze(0).float()
        out[i] = F.interpolate(crop, size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
    out.clamp_(0, 255).round_()  # PIL's resize rounds and clamps to 8 bits; do the same before normalising
    mean, std = _mean_std(out.device)
    return out.div_(255.0).sub_(mean).div_(std).to(dtype)


@functools.lru_cache(maxsize=None)
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP mean and std [1, 3, 1, 1] on `device`, copied there once."""
    return (torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1),
            torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1))


def decode_train_batch(jpegs: Sequence[torch.Tensor], seed: int, raw_indices: Sequence[int],
                       transform: TrainTransform, device: torch.device | str,
                       dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, list[Box]]:
    """(normalised crops [B, 3, S, S] on `device`, their crop boxes) for a batch of JPEG byte tensors, the boxes
    drawn from each sample's seeded rng as the CPU transform draws them."""
    if len(jpegs) != len(raw_indices):
        raise LeanvlError(f"{len(jpegs)} images but {len(raw_indices)} raw indices")
    sizes = [jpeg_size(j) for j in jpegs]
    boxes = crop_boxes(sizes, seed, raw_indices, transform)
    return decode_crop_batch(jpegs, boxes, transform.size, device, dtype), boxes


def jpeg_size(jpeg: torch.Tensor) -> tuple[int, int]:
    """(width, height) from a JPEG's header (no pixel decode)."""
    import io

    from PIL import Image

    try:
        return Image.open(io.BytesIO(jpeg.numpy().tobytes())).size
    except (OSError, ValueError, SyntaxError) as exc:
        raise LeanvlError(f"GPU decode failed (not a JPEG?): {exc}".splitlines()[0]) from None
