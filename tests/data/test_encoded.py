"""`--decode gpu` worker/device halves (leanvl.data.encoded): packing, fall-back of non-JPEGs, batch assembly."""
import io

import torch
from PIL import Image

from leanvl.data.encoded import DeviceDecoder, EncodedTrainTransform, open_jpeg, pack, unpack
from leanvl.data.loader import transform_rng
from leanvl.data.source_base import KEEP_JPEG, decode_image
from leanvl.data.transforms import TrainTransform
from tests.data.test_transforms import _jpeg

SIZE = 16


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_pack_round_trips_box_and_bytes():
    data = _jpeg(50, 40)
    box, jpeg = unpack(pack((3, 4, 30, 41), data))
    assert box == (3, 4, 30, 41) and jpeg.numpy().tobytes() == data


def test_only_kept_jpegs_skip_the_cpu_decode():
    jpeg, png = _jpeg(50, 40), _png()
    assert decode_image(jpeg).info.get("leanvl_jpeg") is None  # default: decoded on the CPU as ever
    token = KEEP_JPEG.set(True)
    try:
        kept, other = decode_image(jpeg), decode_image(png)
    finally:
        KEEP_JPEG.reset(token)
    assert kept.info["leanvl_jpeg"] == jpeg and kept.size == (50, 40)
    assert "leanvl_jpeg" not in other.info and other.mode == "RGB"
    assert open_jpeg(png) is None


def test_mixed_batch_keeps_sample_order():
    t = TrainTransform(SIZE)
    shipped = EncodedTrainTransform(t)
    blobs = [_jpeg(50, 40, seed=1), _png(), _jpeg(60, 45, seed=2)]
    images = [decode_image(b) if i == 1 else open_jpeg(b) for i, b in enumerate(blobs)]
    items = [shipped(im, transform_rng(0, i)) for i, im in enumerate(images)]
    assert [x.dim() for x in items] == [1, 3, 1]
    out = DeviceDecoder(SIZE, "cpu")({"image": items, "index": torch.arange(3)})["image"]
    assert out.shape == (3, 3, SIZE, SIZE)
    assert torch.equal(out[1], items[1])  # the PNG went through the CPU transform, in its place
    reference = torch.stack([t(Image.open(io.BytesIO(blobs[i])), transform_rng(0, i)) for i in (0, 2)])
    assert (out[[0, 2]] - reference).abs().mean() < 0.05
