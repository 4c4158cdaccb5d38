"""GPU decode path vs the CPU TrainTransform: identical crop boxes, statistically equal pixels (CPU and CUDA)."""
from __future__ import annotations

import io
import random

import pytest
import torch
from PIL import Image

from leanvl.data.gpu_decode import crop_boxes, decode_train_batch
from leanvl.data.loader import transform_rng
from leanvl.data.transforms import TrainTransform, crop_params
from leanvl.errors import LeanvlError
from tests.data.test_transforms import _jpeg

SIZE, SEED = 32, 7
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA variant: needs a CUDA device (nvJPEG); none on this machine"))]


@pytest.fixture(scope="module")
def blobs() -> list[bytes]:
    rng = random.Random(0)
    return [_jpeg(rng.randint(40, 200), rng.randint(40, 200), seed=i) for i in range(64)]


def _cpu(blobs: list[bytes], indices: list[int], draft: bool) -> torch.Tensor:
    t = TrainTransform(SIZE, draft=draft)
    return torch.stack([t(Image.open(io.BytesIO(b)), transform_rng(SEED, r)) for b, r in zip(blobs, indices)])


@pytest.mark.parametrize("device", DEVICES)
def test_gpu_path_matches_cpu_transform(blobs, device):
    indices = list(range(100, 164))
    tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    out, boxes = decode_train_batch(tensors, SEED, indices, TrainTransform(SIZE), device)
    assert out.shape == (64, 3, SIZE, SIZE) and out.device.type == device and out.dtype == torch.float32
    out = out.cpu()
    # crop boxes: bit-exact, the very parameters the CPU transform draws from the same per-sample rng
    sizes = [Image.open(io.BytesIO(b)).size for b in blobs]
    assert boxes == [crop_params(w, h, transform_rng(SEED, r)) for (w, h), r in zip(sizes, indices)]
    # pixels: close per image against the full-resolution CPU decode (a wrong box would be far off) ...
    direct = _cpu(blobs, indices, draft=False)
    # ~2 grey levels; measured 0.003 on the CPU, and 0.13 with wrong boxes
    assert (out - direct).abs().mean(dim=(1, 2, 3)).max() < 0.03
    # ... and per-channel statistics equal to the CPU path the loader runs (draft + PIL bicubic)
    cpu = _cpu(blobs, indices, draft=True)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), cpu.mean(dim=(0, 2, 3)), atol=0.02)
    assert torch.allclose(out.std(dim=(0, 2, 3)), cpu.std(dim=(0, 2, 3)), rtol=0.03)
    # other seeds give other boxes
    assert crop_boxes(sizes, SEED + 1, indices, TrainTransform(SIZE)) != boxes


def test_bad_batches_are_one_line_errors(blobs):
    t = TrainTransform(SIZE)
    good = torch.frombuffer(bytearray(blobs[0]), dtype=torch.uint8)
    with pytest.raises(LeanvlError, match="raw indices"):
        decode_train_batch([good], SEED, [1, 2], t, "cpu")
    with pytest.raises(LeanvlError, match="GPU decode failed") as err:
        decode_train_batch([good, torch.tensor([1, 2, 3], dtype=torch.uint8)], SEED, [1, 2], t, "cpu")
    assert "\n" not in str(err.value)
