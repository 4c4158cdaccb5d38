"""Helpers for the data tests: synthetic samples, a corrupt shard set, trivial transforms and a fake labeler."""
from __future__ import annotations

import io
import random

import torch
import webdataset as wds
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from leanvl.data.sample import Sample
from leanvl.data.synthetic import scene_for_index, synthetic_key


def to_tensor(img, rng: random.Random) -> torch.Tensor:
    """Trivial transform: uint8 pixels as float in [0, 1], ignoring the rng."""
    return pil_to_tensor(img).float() / 255.0


def noisy_tensor(img, rng: random.Random) -> torch.Tensor:
    """Transform whose output depends on the rng, so augmentation reproducibility is observable."""
    return to_tensor(img, rng) + rng.random()


def fake_labeler(captions: list[str]) -> list[list[int]]:
    """Sorted unique word lengths as 'label ids' (stands in for leanvl.text.labels.encode)."""
    return [sorted({len(w) for w in c.split()}) for c in captions]


def synth_samples(n: int, *, seed: int = 0, split: str = "train", size: int = 32) -> list[Sample]:
    out = []
    for i in range(n):
        image, caption, attrs = scene_for_index(seed, split, i, size=size)
        out.append(Sample(synthetic_key(seed, split, i), image, caption, attrs))
    return out


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def write_corrupt_shards(root) -> str:
    """2 shards: 10 good, 2 undecodable, 3 empty captions, 1 no caption, 1 no image, then a cut-off last member."""
    good, layout = _png(), []
    layout += [{"__key__": f"good{i}", "png": good, "txt": b"a red square"} for i in range(6)]
    layout += [{"__key__": f"bad{i}", "jpg": b"not a jpeg at all", "txt": b"caption"} for i in range(2)]
    layout += [{"__key__": f"empty{i}", "png": good, "txt": b"  \n"} for i in range(3)]
    layout += [{"__key__": "nocap", "png": good}, {"__key__": "noimg", "txt": b"just text"}]
    layout += [{"__key__": f"late{i}", "webp": _webp(), "txt": "a café".encode()} for i in range(4)]
    layout += [{"__key__": "cut", "png": good * 20, "txt": b"the last sample"}]
    for n, part in enumerate((layout[:9], layout[9:])):
        with wds.TarWriter(str(root / f"c-{n}.tar"), encoder=False) as w:
            for item in part:
                w.write(item)
    last = root / "c-1.tar"
    data = last.read_bytes()
    pos = data.index(b"cut.png")  # header of the last sample's image: cut inside its data
    last.write_bytes(data[: pos + 512 + 600])
    return str(root / "c-{0..1}.tar")


def _webp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 10, 200)).save(buf, format="WEBP")
    return buf.getvalue()
