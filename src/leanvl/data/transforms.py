"""Image transforms: CLIP-style training crop and evaluation resize, fast on big JPEGs.

`TrainTransform(size)(img, rng)`: RandomResizedCrop (scale (0.9, 1.0), ratio (3/4, 4/3), torchvision's sampling rule
driven by the given `random.Random`), bicubic resize to size x size, then ToTensor + CLIP mean/std.
`EvalTransform(size)(img)`: bicubic resize of the shorter side to `size`, center crop (torchvision's rounding), then
ToTensor + CLIP mean/std. Both accept any PIL mode and return float32 [3, size, size].

Speed: when the image is a JPEG whose pixels are not decoded yet (straight from `Image.open`), PIL's `draft()` asks
libjpeg to decode at 1/2, 1/4 or 1/8 scale (a DCT-domain downscale), the smallest that still leaves the crop at least
`size` pixels on each side, so the final bicubic step only ever downsamples. The bicubic resize then maps the crop box (in reduced coordinates, sub-pixel exact)
to the output in one `resize(box=...)` call, without copying the crop. Downscaling in two steps gives the same
image statistics as one full-resolution bicubic resize to within a small error (see tests and
benchmarks/image_pipeline.py). Already-decoded images take the direct path.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

from leanvl.errors import LeanvlError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DRAFT_MARGIN = 1.0  # after draft() the crop keeps >= DRAFT_MARGIN * size pixels per side

_SCALE = torch.tensor([1.0 / (255.0 * s) for s in CLIP_STD]).view(3, 1, 1)
_SHIFT = torch.tensor([m / s for m, s in zip(CLIP_MEAN, CLIP_STD)]).view(3, 1, 1)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 [3, H, W], ToTensor then CLIP mean/std normalisation."""
    arr = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
    return arr.float().mul_(_SCALE).sub_(_SHIFT)


def crop_params(width: int, height: int, rng: random.Random, scale: tuple[float, float] = (0.9, 1.0),
                ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision RandomResizedCrop.get_params with `rng`: (top, left, crop_h, crop_w)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _draft(img: Image.Image, crop_w: float, crop_h: float, size: int) -> tuple[Image.Image, float]:
    """Let libjpeg decode at 1/k scale when the crop keeps >= DRAFT_MARGIN * size pixels; returns (img, 1/k)."""
    if img.format != "JPEG" or not getattr(img, "tile", None):  # not a JPEG, or pixels already decoded
        return img, 1.0
    factor = min(crop_w, crop_h) / (DRAFT_MARGIN * size)
    if factor < 2:
        return img, 1.0
    width, height = img.size
    img.draft(img.mode, (math.ceil(width / factor), math.ceil(height / factor)))
    return img, 1.0 / max(1, round(width / img.size[0]))


def _rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB (alpha dropped as in open_clip; 16-bit / float grey scaled down to 8 bits)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.max() > 255:
            arr = arr / 256.0
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    for via in ("RGB", "RGBA", "LA", "L"):
        try:
            return img.convert(via).convert("RGB") if via != "RGB" else img.convert("RGB")
        except ValueError:
            continue
    raise LeanvlError(f"cannot convert an image of mode {img.mode} to RGB")


def _check_image(img: object) -> Image.Image:
    if not isinstance(img, Image.Image):
        raise LeanvlError(f"expected a PIL image, got {type(img).__name__}")
    if img.size[0] < 1 or img.size[1] < 1:
        raise LeanvlError(f"empty image of size {img.size}")
    return img


class TrainTransform:
    """RandomResizedCrop(size, scale (0.9, 1), ratio (3/4, 4/3), bicubic) + CLIP normalisation; call t(img, rng)."""

    def __init__(self, size: int, scale: tuple[float, float] = (0.9, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), draft: bool = True) -> None:
        if not isinstance(size, int) or size < 1:
            raise LeanvlError(f"image size must be a positive integer, got {size!r}")
        self.size, self.scale, self.ratio, self.draft = size, scale, ratio, draft

    def __call__(self, img: Image.Image, rng: random.Random) -> torch.Tensor:
        """Crop, resize and normalise `img` with crop parameters drawn from `rng`."""
        img = _check_image(img)
        width, height = img.size
        top, left, h, w = crop_params(width, height, rng, self.scale, self.ratio)
        k = 1.0
        if self.draft:
            img, k = _draft(img, w, h, self.size)
        img = _rgb(img)
        box = (left * k, top * k, (left + w) * k, (top + h) * k)
        return to_tensor(img.resize((self.size, self.size), Image.BICUBIC, box=box))

    def __repr__(self) -> str:
        return f"TrainTransform(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class EvalTransform:
    """Resize the shorter side to `size` (bicubic), center crop size x size, CLIP normalisation; call t(img)."""

    def __init__(self, size: int, draft: bool = True) -> None:
        if not isinstance(size, int) or size < 1:
            raise LeanvlError(f"image size must be a positive integer, got {size!r}")
        self.size, self.draft = size, draft

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """Resize, center crop and normalise `img`."""
        img = _check_image(img)
        width, height = img.size
        if self.draft:
            img, _ = _draft(img, width, height, self.size)
        img = _rgb(img)
        width, height = img.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.size * long / short)  # torchvision Resize(int) rule
        new_w, new_h = (self.size, new_long) if width <= height else (new_long, self.size)
        img = img.resize((new_w, new_h), Image.BICUBIC)
        top = int(round((new_h - self.size) / 2.0))
        left = int(round((new_w - self.size) / 2.0))
        return to_tensor(img.crop((left, top, left + self.size, top + self.size)))

    def __repr__(self) -> str:
        return f"EvalTransform(size={self.size})"
