"""`--decode gpu`: loader workers ship undecoded JPEGs with their crop boxes; the training device decodes them.

Worker side: `EncodedSource(source)` makes the source's `decode_image` return JPEGs header-parsed only (size known,
pixels not decoded), and `EncodedTrainTransform(transform)` draws each sample's crop box from the sample's seeded rng
exactly as `TrainTransform` does, and packs box + JPEG bytes into one 1-D uint8 tensor. Images that are not baseline
RGB/grey JPEGs (PNG, WebP, CMYK JPEG, synthetic scenes) take the CPU transform in the worker as before. The loader keeps
a batch holding packed samples as a list (leanvl.data.loader._collate).

Device side: `DeviceDecoder(size, device)(batch)` decodes the packed samples in one batched call on `device` (nvJPEG
on CUDA; torchvision's libjpeg-turbo on the CPU device, the same code path), crops, resizes and normalises them
(leanvl.data.gpu_decode) and puts the CPU-transformed ones in their places, so `batch["image"]` is the usual float
[B, 3, S, S]. Crop boxes are bit-exact with the CPU path, so exact resume holds; pixels are statistically equal
(see leanvl.data.gpu_decode).
"""
from __future__ import annotations

import random
from typing import Any

import torch
from PIL import Image

from leanvl.data.sample import Sample
from leanvl.data.source_base import (JPEG_KEY, KEEP_JPEG, Source, WrappedSource,  # noqa: F401 (re-exported)
                                     open_jpeg)
from leanvl.data.transforms import TrainTransform, crop_params
from leanvl.errors import LeanvlError

HEADER = 4  # int32 top, left, height, width in front of the JPEG bytes


class EncodedSource(WrappedSource):
    """`source` whose JPEGs decode header-only (see the module docstring); everything else reads through."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.image_size = getattr(source, "image_size", self.image_size)

    def __repr__(self) -> str:
        return f"EncodedSource({self.base!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def decode(self, raw: Any) -> Sample:
        token = KEEP_JPEG.set(True)
        try:
            return self.base.decode(raw)
        finally:
            KEEP_JPEG.reset(token)


class EncodedTrainTransform:
    """Worker transform: a kept JPEG -> packed (crop box, bytes); any other image -> `transform(img, rng)`."""

    def __init__(self, transform: TrainTransform) -> None:
        self.transform = transform

    def __call__(self, img: Image.Image, rng: random.Random) -> torch.Tensor:
        data = img.info.get(JPEG_KEY) if isinstance(img, Image.Image) else None
        if data is None:
            return self.transform(img, rng)
        box = crop_params(img.size[0], img.size[1], rng, self.transform.scale, self.transform.ratio)
        return pack(box, data)


def pack(box: tuple[int, int, int, int], data: bytes) -> torch.Tensor:
    """One 1-D uint8 tensor: the int32 (top, left, height, width) then the JPEG bytes."""
    head = torch.tensor(box, dtype=torch.int32).view(torch.uint8)
    return torch.cat([head, torch.frombuffer(bytearray(data), dtype=torch.uint8)])


def unpack(packed: torch.Tensor) -> tuple[tuple[int, int, int, int], torch.Tensor]:
    """(crop box, JPEG bytes) of a `pack`ed tensor."""
    head = packed[: 4 * HEADER].clone().view(torch.int32)
    top, left, h, w = (int(v) for v in head.tolist())
    return (top, left, h, w), packed[4 * HEADER:]


class DeviceDecoder:
    """Batch hook run in the training process: packed JPEGs in `batch["image"]` -> float [B, 3, S, S] on `device`."""

    def __init__(self, size: int, device: torch.device | str) -> None:
        self.size, self.device = size, torch.device(device)

    def __repr__(self) -> str:
        return f"DeviceDecoder(size={self.size}, device={self.device})"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from leanvl.data.gpu_decode import decode_crop_batch

        images = batch.get("image")
        if not isinstance(images, list):
            return batch
        where = [i for i, t in enumerate(images) if t.dim() == 1]
        boxes, jpegs = zip(*(unpack(images[i]) for i in where))
        decoded = decode_crop_batch(list(jpegs), list(boxes), self.size, self.device)
        if len(where) == len(images):
            return {**batch, "image": decoded}
        rest = [i for i in range(len(images)) if images[i].dim() != 1]  # non-JPEGs, transformed in the worker
        cpu = torch.stack([images[i] for i in rest])
        if cpu.shape[1:] != decoded.shape[1:]:
            raise LeanvlError(f"--decode gpu: a CPU-transformed image has shape {tuple(cpu.shape[1:])}, "
                              f"expected {tuple(decoded.shape[1:])}")
        out = torch.empty(len(images), *decoded.shape[1:], device=decoded.device, dtype=decoded.dtype)
        out[torch.tensor(where, device=out.device)] = decoded
        out[torch.tensor(rest, device=out.device)] = cpu.to(out.device, non_blocking=True)
        return {**batch, "image": out}
