"""Train / eval transforms: shape, dtype, normalisation, determinism, center crop, draft-path fidelity, modes."""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from open_clip import image_transform
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from leanvl.data.transforms import CLIP_MEAN, CLIP_STD, EvalTransform, TrainTransform, crop_params
from leanvl.errors import LeanvlError


def _jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], -1)
    arr = (base + rs.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)
    arr[height // 4 : height // 2, width // 3 : width // 2] = (250, 20, 30)  # a shape with hard edges
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _reference(img: Image.Image, params: tuple[int, int, int, int], size: int) -> torch.Tensor:
    crop = F.resized_crop(img.convert("RGB"), *params, [size, size], InterpolationMode.BICUBIC)
    return F.normalize(F.to_tensor(crop), CLIP_MEAN, CLIP_STD)


def test_train_output_and_exact_normalisation() -> None:
    img = Image.open(io.BytesIO(_jpeg(300, 200))).convert("RGB")  # decoded: direct (non-draft) path
    out = TrainTransform(64)(img, random.Random(3))
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    ref = _reference(img, crop_params(300, 200, random.Random(3)), 64)
    # same crop, bicubic, ToTensor + CLIP mean/std; resize(box=...) lets the filter see real pixels beyond the crop
    # edge where crop-then-resize clamps, so only the outermost rows/columns may differ slightly
    assert torch.allclose(out[:, 2:-2, 2:-2], ref[:, 2:-2, 2:-2], atol=1e-5)
    assert (out - ref).abs().max() < 0.2


def test_crop_params_follow_spec() -> None:
    rng = random.Random(0)
    for _ in range(500):
        w, h = rng.randint(50, 2000), rng.randint(50, 2000)
        top, left, ch, cw = crop_params(w, h, rng)
        assert 0 <= top <= h - ch and 0 <= left <= w - cw
        area = cw * ch / (w * h)
        in_spec = 0.9 - 0.02 <= area <= 1.0 and 3 / 4 - 0.05 <= cw / ch <= 4 / 3 + 0.05
        fallback = (ch, cw) in ((h, w), (h, int(round(h * 4 / 3))), (int(round(w * 4 / 3)), w),
                                (int(round(w / (3 / 4))), w))
        assert in_spec or fallback or cw == w or ch == h


def test_train_deterministic_for_same_seed() -> None:
    blob = _jpeg(1200, 1000)
    t = TrainTransform(96)
    a = t(Image.open(io.BytesIO(blob)), random.Random(42))
    b = t(Image.open(io.BytesIO(blob)), random.Random(42))
    c = t(Image.open(io.BytesIO(blob)), random.Random(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_draft_path_close_to_full_decode() -> None:
    blob = _jpeg(1600, 1280, seed=5)
    t = TrainTransform(224)
    for seed in range(3):
        lazy = Image.open(io.BytesIO(blob))
        fast = t(lazy, random.Random(seed))
        assert lazy.size[0] < 1600  # draft() really decoded at reduced scale
        full = Image.open(io.BytesIO(blob))
        full.load()
        exact = _reference(full, crop_params(1600, 1280, random.Random(seed)), 224)
        assert (fast - exact).abs().mean() < 0.03  # ~2 grey levels, normalised units
        assert torch.allclose(fast.mean(dim=(1, 2)), exact.mean(dim=(1, 2)), atol=0.01)
        assert torch.allclose(fast.std(dim=(1, 2)), exact.std(dim=(1, 2)), rtol=0.03)
        assert not torch.equal(fast, exact)


def test_statistics_match_open_clip_train_transform() -> None:
    blob = _jpeg(1100, 1050, seed=7)
    oc = image_transform(128, is_train=True)
    torch.manual_seed(0)
    a = torch.stack([oc(Image.open(io.BytesIO(blob))) for _ in range(6)])
    b = torch.stack([TrainTransform(128)(Image.open(io.BytesIO(blob)), random.Random(i)) for i in range(6)])
    assert torch.allclose(a.mean(dim=(0, 2, 3)), b.mean(dim=(0, 2, 3)), atol=0.05)
    assert torch.allclose(a.std(dim=(0, 2, 3)), b.std(dim=(0, 2, 3)), rtol=0.05)


def test_eval_center_crop_on_constructed_image() -> None:
    arr = np.zeros((100, 300, 3), dtype=np.uint8)  # wide: left third blue, middle red, right third green
    arr[:, :100] = (0, 0, 255)
    arr[:, 100:200] = (255, 0, 0)
    arr[:, 200:] = (0, 255, 0)
    out = EvalTransform(50)(Image.fromarray(arr))  # resize to 150 x 50, crop x in [50, 100): all red
    assert out.shape == (3, 50, 50)
    red = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out[:, :, 3:-3], red.view(3, 1, 1).expand(3, 50, 44), atol=0.05)
    oc = image_transform(50, is_train=False)(Image.fromarray(arr))
    assert torch.allclose(out, oc, atol=1e-5)


def test_eval_matches_open_clip_on_big_jpeg() -> None:
    blob = _jpeg(1300, 1024, seed=2)
    ours = EvalTransform(224)(Image.open(io.BytesIO(blob)))
    ref = image_transform(224, is_train=False)(Image.open(io.BytesIO(blob)))
    assert ours.shape == ref.shape == (3, 224, 224)
    assert (ours - ref).abs().mean() < 0.03


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGBA", "LA", "PA", "CMYK", "YCbCr", "I", "I;16", "F", "La", "HSV"])
def test_any_mode_becomes_rgb(mode: str) -> None:
    rs = np.random.RandomState(0)
    rgb = Image.fromarray(rs.randint(0, 256, (40, 60, 3), dtype=np.uint8))
    img = Image.fromarray((rs.randint(0, 60000, (40, 60))).astype(np.uint16)) if mode == "I;16" else rgb.convert(mode)
    for out in (TrainTransform(32)(img, random.Random(0)), EvalTransform(32)(img)):
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_grey_jpeg_draft_path() -> None:
    buf = io.BytesIO()
    Image.open(io.BytesIO(_jpeg(1200, 1100))).convert("L").save(buf, "JPEG")
    out = TrainTransform(128)(Image.open(io.BytesIO(buf.getvalue())), random.Random(0))
    assert out.shape == (3, 128, 128)
    px = out * torch.tensor(CLIP_STD).view(3, 1, 1) + torch.tensor(CLIP_MEAN).view(3, 1, 1)
    assert torch.allclose(px[0], px[1], atol=1e-5) and torch.allclose(px[1], px[2], atol=1e-5)


def test_bad_input_raises() -> None:
    with pytest.raises(LeanvlError):
        TrainTransform(0)
    with pytest.raises(LeanvlError):
        EvalTransform(-1)
    with pytest.raises(LeanvlError):
        TrainTransform(8)(np.zeros((4, 4, 3)), random.Random(0))  # type: ignore[arg-type]
