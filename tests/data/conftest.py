"""Shared helpers for the data tests: tiny synthetic shard sets, trivial transforms and a fake labeler."""
from __future__ import annotations

import random

import pytest
import torch
from torchvision.transforms.functional import pil_to_tensor

from leanvl.data.sample import Sample
from leanvl.data.shards import write_shards
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


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> str:
    """40 synthetic 32 px samples in 4 shards of 10."""
    out = tmp_path_factory.mktemp("shards")
    write_shards(synth_samples(40), str(out), shard_size=10)
    return str(out)
